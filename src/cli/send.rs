//! `smsgw send`: validates a message and enqueues it into the store's
//! embedded queue (the input when no Kafka is configured).

use clap::Args;

use super::StoreArgs;

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Recipient; repeat or comma-separate for several.
    #[arg(long, required = true, value_delimiter = ',')]
    pub to: Vec<String>,
    #[arg(long)]
    pub text: String,
    /// otp | notify | marketing
    #[arg(long, default_value = "notify")]
    pub priority: String,
    /// Upstream idempotency key; generated when absent.
    #[arg(long)]
    pub id: Option<String>,
    /// Business tag for cost allocation.
    #[arg(long)]
    pub biz: Option<String>,
    /// RFC 3339 expiry; defaults to the configured validity.
    #[arg(long)]
    pub expire_at: Option<String>,
}

fn generated_id() -> String {
    let now = chrono::Utc::now();
    let nanos = now.timestamp_subsec_nanos();
    format!(
        "cli-{}-{:09}-{}",
        now.format("%Y%m%dT%H%M%S"),
        nanos,
        std::process::id()
    )
}

impl SendArgs {
    pub fn record(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": self.id.clone().unwrap_or_else(generated_id),
            "to": if self.to.len() == 1 { serde_json::json!(self.to[0]) } else { serde_json::json!(self.to) },
            "text": self.text,
            "priority": self.priority,
            "channel": "sms",
        });
        if let Some(b) = &self.biz {
            v["biz"] = b.clone().into();
        }
        if let Some(e) = &self.expire_at {
            v["expire_at"] = e.clone().into();
        }
        v
    }
}

#[cfg(feature = "sql")]
pub async fn run(args: SendArgs, store: &StoreArgs) -> anyhow::Result<()> {
    use crate::engine::routing::NumberPlan;
    use crate::engine::types::Timestamp;
    use crate::engine::validate::validate;
    let cfg = store.config()?;
    let record = args.record();
    let payload = serde_json::to_string(&record)?;
    // Refuse what the engine would dead-letter, so the operator sees why now.
    let now = Timestamp::now();
    let plan = NumberPlan::with_overrides(&cfg.routing.segments);
    let v = validate(payload.as_bytes(), "cli", now, &cfg.engine.rules(), &plan);
    if let Some(d) = v.dead.first() {
        anyhow::bail!("not sent: {}", d.reason);
    }
    let s = store.open().await?;
    let pos = s.enqueue(&payload, now).await?;
    s.close().await;
    let segments = v.messages.first().map_or(0, |m| m.segments);
    println!(
        "queued {} ({} recipient(s), {} segment(s) each, queue position {pos})",
        record["id"].as_str().unwrap_or_default(),
        v.messages.len(),
        segments
    );
    Ok(())
}

#[cfg(not(feature = "sql"))]
pub async fn run(_args: SendArgs, _store: &StoreArgs) -> anyhow::Result<()> {
    Err(super::no_store())
}
