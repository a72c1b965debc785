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
    /// Messages accepted already claimed (see [`PreClaim`]): the caller
    /// queues them for dispatch right away.
    pub ready: Vec<Dispatchable>,
}

/// otp messages are accepted already claimed, so they skip the store's
/// claim round trip and go to the dispatcher at once (otp volume is small;
/// the bulk goes through claims, which respect the lanes' room).
#[derive(Debug, Clone, Copy)]
pub struct PreClaim {
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub struct Ingest {
    pub rules: Rules,
    pub plan: NumberPlan,
    pub batch: usize,
    pub wait: Duration,
}

impl Ingest {
    /// Polls one batch and makes it durable; records are validated (and
    /// stamped accepted) at `now`, or when they arrive if `None`. Status
    /// events of accepted messages go to `sink` (a sink failure is logged;
    /// the store has them).
    pub async fn once<Src, S, K>(
        &self,
        src: &mut Src,
        store: &S,
        sink: &K,
        now: Option<Timestamp>,
        preclaim: Option<PreClaim>,
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
        let now = now.unwrap_or_else(Timestamp::now);
        let mut msgs = Vec::with_capacity(records.len());
        let mut dead = Vec::new();
        for r in &records {
            let v = validate(&r.payload, &r.origin, now, &self.rules, &self.plan);
            msgs.extend(v.messages);
            dead.extend(v.dead);
        }
        if let Some(pc) = &preclaim {
            for m in msgs.iter_mut().filter(|m| m.priority == Priority::Otp) {
                m.claimed_until = Some(now.plus(pc.lease));
            }
        }
        let t0 = std::time::Instant::now();
        let res = store.accept(&msgs, &dead).await?;
        metrics::histogram!(m::STORE_OP, "op" => "accept").record(t0.elapsed().as_secs_f64());
        let ready = if preclaim.is_some() {
            ready_of(&msgs, &res)
        } else {
            Vec::new()
        };
        count_accepted(&msgs, &res);
        for d in &dead {
            metrics::counter!(m::DEAD_LETTERS, "reason" => m::reason_class(&d.reason)).increment(1);
            tracing::warn!(origin = %d.origin, reason = %d.reason, "record dead-lettered");
        }
        if res.duplicates > 0 {
            metrics::counter!(m::DUPLICATES).increment(res.duplicates);
        }
        let events: Vec<StatusEvent> = res.accepted.iter().map(|(_, e)| e.clone()).collect();
        super::run::count_changes(&events);
        if let Err(e) = sink.publish(&events).await {
            tracing::warn!(error = %e, "publishing accepted events failed");
        }
        src.commit(&records).await?;
        Ok(Ingested {
            records: records.len(),
            accepted: res.accepted.len(),
            duplicates: res.duplicates,
            dead_letters: dead.len(),
            ready,
        })
    }
}

/// The newly accepted pre-claimed messages as dispatchables (a redelivered
/// record is not new: its message was dispatched the first time).
fn ready_of(msgs: &[NewMessage], res: &AcceptResult) -> Vec<Dispatchable> {
    let by_key: std::collections::HashMap<(&str, &str), &NewMessage> = msgs
        .iter()
        .filter(|m| m.claimed_until.is_some())
        .map(|m| ((m.upstream_id.as_str(), m.to.as_str()), m))
        .collect();
    if by_key.is_empty() {
        return Vec::new();
    }
    // durable from here: accept→dispatch latency counts from now
    let durable = Timestamp::now();
    let mut out: Vec<Dispatchable> = res
        .accepted
        .iter()
        .filter_map(|(id, ev)| {
            let m = by_key.get(&(ev.id.as_str(), ev.to.as_str()))?;
            Some(Dispatchable {
                id: *id,
                upstream_id: m.upstream_id.clone(),
                to: m.to.clone(),
                text: m.text.clone(),
                priority: m.priority,
                channel: m.channel,
                carrier: m.carrier,
                segments: m.segments,
                attempts: 1,
                expire_at: m.expire_at,
                possible_duplicate: false,
                accepted_at: durable,
            })
        })
        .collect();
    out.sort_by_key(|d| (d.priority.index(), d.id.0));
    out
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
