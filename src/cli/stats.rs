//! `smsgw stats [--json]`.

use clap::Args;

use super::StoreArgs;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// One JSON object: by_state, by_link, by_biz, totals.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "sql")]
pub async fn run(args: StatsArgs, store: &StoreArgs) -> anyhow::Result<()> {
    use crate::engine::ports::MessageStore;
    let s = store.open().await?;
    let st = s.stats().await?;
    s.close().await;
    if args.json {
        println!("{}", serde_json::to_string(&st)?);
        return Ok(());
    }
    println!("messages {}  segments {}  queued {}  dead letters {}  unmatched reports {}  possible duplicates {}",
        st.messages, st.segments, st.queued, st.dead_letters, st.reports_unmatched, st.possible_duplicates);
    println!("by state:");
    for (k, v) in &st.by_state {
        println!("  {k:<10} {v}");
    }
    for (title, groups) in [("by link:", &st.by_link), ("by biz:", &st.by_biz)] {
        println!("{title}");
        for (k, g) in groups {
            let name = if k.is_empty() { "-" } else { k.as_str() };
            let states: Vec<String> = g.by_state.iter().map(|(s, n)| format!("{s}={n}")).collect();
            println!(
                "  {name:<16} messages {:<8} segments {:<8} {}",
                g.messages,
                g.segments,
                states.join(" ")
            );
        }
    }
    Ok(())
}

#[cfg(not(feature = "sql"))]
pub async fn run(_args: StatsArgs, _store: &StoreArgs) -> anyhow::Result<()> {
    Err(super::no_store())
}
