//! Ingest: upstream records → validation → durable acceptance → source
//! commit. The commit happens only after the store has accepted (or
//! dead-lettered) every record of the batch, so a crash redelivers and the
//! store's idempotency by upstream id drops the repeats.

use std::time::Duration;

use super::metrics as m;
use super::ports::*;
use super::routing::NumberPlan;
use super::types::*;
use super::validate::{validate, Rules};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counts of one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    pub records: usize,
    pub accepted: usize,
    pub duplicates: u64,
    pub dead_letters: usize,
}

#[derive(Debug, Clone)]
pub struct Ingest {
    pub rules: Rules,
    pub plan: NumberPlan,
    pub batch: usize,
    pub wait: Duration,
}

impl Ingest {
    /// Polls one batch and makes it durable. Status events of accepted
    /// messages go to `sink` (a sink failure is logged; the store has them).
    pub async fn once<Src, S, K>(
        &self,
        src: &mut Src,
        store: &S,
        sink: &K,
        now: Timestamp,
    ) -> Result<Ingested, IngestError>
    where
        Src: MessageSource,
        S: MessageStore,
        K: StatusSink,
    {
        let records = src.poll(self.batch, self.wait).await?;
        if records.is_empty() {
            return Ok(Ingested::default());
        }
        let mut msgs = Vec::with_capacity(records.len());
        let mut dead = Vec::new();
        for r in &records {
            let v = validate(&r.payload, &r.origin, now, &self.rules, &self.plan);
            msgs.extend(v.messages);
            dead.extend(v.dead);
        }
        let res = store.accept(&msgs, &dead).await?;
        count_accepted(&msgs, &res);
        for d in &dead {
            metrics::counter!(m::DEAD_LETTERS, "reason" => m::reason_class(&d.reason)).increment(1);
            tracing::warn!(origin = %d.origin, reason = %d.reason, "record dead-lettered");
        }
        if res.duplicates > 0 {
            metrics::counter!(m::DUPLICATES).increment(res.duplicates);
        }
        let events: Vec<StatusEvent> = res.accepted.iter().map(|(_, e)| e.clone()).collect();
        if let Err(e) = sink.publish(&events).await {
            tracing::warn!(error = %e, "publishing accepted events failed");
        }
        src.commit(&records).await?;
        Ok(Ingested {
            records: records.len(),
            accepted: res.accepted.len(),
            duplicates: res.duplicates,
            dead_letters: dead.len(),
        })
    }
}

/// `smsgw_accepted_total{priority}`, one increment per priority and batch.
fn count_accepted(msgs: &[NewMessage], res: &AcceptResult) {
    if res.accepted.is_empty() {
        return;
    }
    let prio: std::collections::HashMap<(&str, &str), Priority> = msgs
        .iter()
        .map(|m| ((m.upstream_id.as_str(), m.to.as_str()), m.priority))
        .collect();
    let mut n = [0u64; 3];
    for (_, ev) in &res.accepted {
        let p = prio
            .get(&(ev.id.as_str(), ev.to.as_str()))
            .copied()
            .unwrap_or(Priority::Notify);
        n[p.index()] += 1;
    }
    for p in Priority::ALL {
        if n[p.index()] > 0 {
            metrics::counter!(m::ACCEPTED, "priority" => p.as_str()).increment(n[p.index()]);
        }
    }
}
