//! `smsgw msg show ID [--json]`: a message's status history.

use clap::{Args, Subcommand};

use super::StoreArgs;

#[derive(Debug, Args)]
pub struct MsgArgs {
    #[command(subcommand)]
    pub cmd: MsgCmd,
}

#[derive(Debug, Subcommand)]
pub enum MsgCmd {
    /// Shows every status change of an upstream id (all its recipients).
    Show {
        id: String,
        /// A JSON array of status events.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(feature = "sql")]
pub async fn run(args: MsgArgs, store: &StoreArgs) -> anyhow::Result<()> {
    use crate::engine::ports::MessageStore;
    use crate::engine::validate::mask_msisdn;
    let MsgCmd::Show { id, json } = args.cmd;
    let s = store.open().await?;
    let h = s.history(&id).await?;
    s.close().await;
    if h.is_empty() {
        anyhow::bail!("no message with id {id:?}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&h)?);
        return Ok(());
    }
    println!("{id}");
    for e in &h {
        println!(
            "  {}  {:<12} {:<10} segments {}  link {}  code {}{}",
            e.at,
            mask_msisdn(&e.to),
            e.state.as_str(),
            e.segments,
            e.link.as_deref().unwrap_or("-"),
            e.code.as_deref().unwrap_or("-"),
            if e.possible_duplicate {
                "  (possible duplicate)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

#[cfg(not(feature = "sql"))]
pub async fn run(_args: MsgArgs, _store: &StoreArgs) -> anyhow::Result<()> {
    Err(super::no_store())
}
