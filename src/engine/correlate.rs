//! Delivery-report correlation: provider id → segment → message.
//!
//! * A report whose provider id is not bound yet (it beat the submit
//!   response, or the response is being stored on another node) is parked in
//!   the store with a TTL. Binding a provider id takes its parked reports;
//!   [`Correlator::sweep_parked`] retries every parked report and keeps the
//!   ones whose TTL ran out as unmatched (counted, kept for inspection).
//! * Matching goes through the store, so a report arriving on another
//!   connection, link or node than the submit still matches.
//! * One report per segment; the store marks the message delivered once all
//!   its segments are, failed as soon as one segment failed.

use std::time::Duration;

use super::metrics as m;
use super::ports::{Bind, Report, ReportStore, Settle, StoreResult};
use super::types::{ProviderMsgId, SegmentRef, StatusEvent, Timestamp};

/// What became of one incoming report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    Matched(Option<StatusEvent>),
    Parked,
}

#[derive(Debug, Clone)]
pub struct Correlator {
    park_ttl: Duration,
}

impl Correlator {
    pub fn new(park_ttl: Duration) -> Self {
        Correlator { park_ttl }
    }

    /// A part was accepted by the carrier: bind its provider id, then apply
    /// any report that arrived first. Returns the events to publish.
    pub async fn on_accepted<S: ReportStore>(
        &self,
        store: &S,
        seg: SegmentRef,
        link: &str,
        provider_id: &ProviderMsgId,
        now: Timestamp,
    ) -> StoreResult<Vec<StatusEvent>> {
        let mut events = Vec::new();
        events.extend(store.bind(seg, link, provider_id, now).await?);
        let taken = store.take_parked(provider_id).await?;
        for (i, report) in taken.iter().enumerate() {
            let applied = match self.apply(store, report).await {
                Ok(ReportOutcome::Matched(ev)) => {
                    events.extend(ev);
                    Ok(())
                }
                // Bound a moment ago, so this cannot miss; keep it anyway.
                Ok(ReportOutcome::Parked) => store
                    .park(report, report.received_at.plus(self.park_ttl))
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = applied {
                // taken but not applied (the store failed midway): park them
                // again so the sweeper or the caller's retry settles them
                for r in &taken[i..] {
                    let _ = store.park(r, r.received_at.plus(self.park_ttl)).await;
                }
                return Err(e);
            }
        }
        Ok(events)
    }

    /// A batch of outcomes: parts accepted by the carrier (`binds`) and
    /// delivery reports, stored as one unit ([`ReportStore::record`]).
    /// Reports parked for the bound parts (they came before the submit
    /// response) are taken first and applied ahead of the batch's reports;
    /// reports that match nothing are parked. Returns the events to publish.
    pub async fn on_outcomes<S: ReportStore>(
        &self,
        store: &S,
        binds: &[Bind],
        reports: &[Report],
        now: Timestamp,
    ) -> StoreResult<Vec<StatusEvent>> {
        let taken = if binds.is_empty() {
            Vec::new()
        } else {
            let pids: Vec<ProviderMsgId> = binds.iter().map(|b| b.provider_id.clone()).collect();
            store.take_parked_many(&pids).await?
        };
        let all: std::borrow::Cow<'_, [Report]> = if taken.is_empty() {
            reports.into()
        } else {
            taken
                .iter()
                .chain(reports)
                .cloned()
                .collect::<Vec<_>>()
                .into()
        };
        let (mut events, settled) = match store.record(binds, &all, now).await {
            Ok(r) => r,
            Err(e) => {
                // taken but not applied: park them again for the sweeper or a retry
                for r in &taken {
                    let _ = store.park(r, r.received_at.plus(self.park_ttl)).await;
                }
                return Err(e);
            }
        };
        events.extend(self.after_settle(store, &all, settled).await?);
        Ok(events)
    }

    /// Many parts were accepted: binds them all, then applies the reports
    /// that arrived first. Returns the events to publish.
    pub async fn on_accepted_many<S: ReportStore>(
        &self,
        store: &S,
        binds: &[Bind],
        now: Timestamp,
    ) -> StoreResult<Vec<StatusEvent>> {
        let mut events = store.bind_many(binds, now).await?;
        let pids: Vec<ProviderMsgId> = binds.iter().map(|b| b.provider_id.clone()).collect();
        let taken = store.take_parked_many(&pids).await?;
        if taken.is_empty() {
            return Ok(events);
        }
        match self.on_reports(store, &taken).await {
            Ok(evs) => {
                events.extend(evs);
                Ok(events)
            }
            Err(e) => {
                // taken but not applied: park them again for the sweeper or a retry
                for r in &taken {
                    let _ = store.park(r, r.received_at.plus(self.park_ttl)).await;
                }
                Err(e)
            }
        }
    }

    /// Many reports arrived: settles them in order, parks the ones that
    /// match nothing yet. Returns the events to publish.
    pub async fn on_reports<S: ReportStore>(
        &self,
        store: &S,
        reports: &[Report],
    ) -> StoreResult<Vec<StatusEvent>> {
        let settled = store.settle_many(reports).await?;
        self.after_settle(store, reports, settled).await
    }

    /// Metrics and parking for settled `reports`; the events to publish.
    async fn after_settle<S: ReportStore>(
        &self,
        store: &S,
        reports: &[Report],
        settled: Vec<Settle>,
    ) -> StoreResult<Vec<StatusEvent>> {
        let mut events = Vec::new();
        let mut park = Vec::new();
        for (report, s) in reports.iter().zip(settled) {
            match s {
                Settle::Unknown => {
                    park.push((report.clone(), report.received_at.plus(self.park_ttl)));
                    metrics::counter!(m::REPORTS, "result" => "parked").increment(1);
                }
                Settle::Settled {
                    event,
                    submitted_at,
                    ..
                } => {
                    metrics::counter!(m::REPORTS, "result" => "matched").increment(1);
                    if let Some(t) = submitted_at {
                        metrics::histogram!(m::REPORT_DELAY)
                            .record(t.until(report.received_at).as_secs_f64());
                    }
                    events.extend(event);
                }
            }
        }
        if !park.is_empty() {
            store.park_many(&park).await?;
        }
        Ok(events)
    }

    /// A report arrived.
    pub async fn on_report<S: ReportStore>(
        &self,
        store: &S,
        report: &Report,
    ) -> StoreResult<ReportOutcome> {
        let out = self.apply(store, report).await?;
        if out == ReportOutcome::Parked {
            store
                .park(report, report.received_at.plus(self.park_ttl))
                .await?;
            metrics::counter!(m::REPORTS, "result" => "parked").increment(1);
        }
        Ok(out)
    }

    async fn apply<S: ReportStore>(
        &self,
        store: &S,
        report: &Report,
    ) -> StoreResult<ReportOutcome> {
        match store.settle(report).await? {
            Settle::Unknown => Ok(ReportOutcome::Parked),
            Settle::Settled {
                event,
                submitted_at,
                ..
            } => {
                metrics::counter!(m::REPORTS, "result" => "matched").increment(1);
                if let Some(t) = submitted_at {
                    metrics::histogram!(m::REPORT_DELAY)
                        .record(t.until(report.received_at).as_secs_f64());
                }
                Ok(ReportOutcome::Matched(event))
            }
        }
    }

    /// Retries parked reports; the ones past their TTL that still match
    /// nothing are kept as unmatched. Returns (events, unmatched count).
    pub async fn sweep_parked<S: ReportStore>(
        &self,
        store: &S,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<(Vec<StatusEvent>, u64)> {
        let mut events = Vec::new();
        let mut unmatched = 0;
        for p in store.parked(limit).await? {
            match self.apply(store, &p.report).await? {
                ReportOutcome::Matched(ev) => {
                    events.extend(ev);
                    store.unpark(p.key, false).await?;
                }
                ReportOutcome::Parked if p.until <= now => {
                    store.unpark(p.key, true).await?;
                    unmatched += 1;
                    metrics::counter!(m::REPORTS, "result" => "unmatched").increment(1);
                }
                ReportOutcome::Parked => {}
            }
        }
        Ok((events, unmatched))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::engine::ports::ParkedReport;
    use crate::engine::types::{MessageId, MessageState};

    /// In-memory ReportStore: messages with N parts, provider ids bound per part.
    #[derive(Default)]
    pub struct MemReports {
        inner: Mutex<Inner>,
    }

    #[derive(Default)]
    struct Inner {
        parts: HashMap<MessageId, u16>,
        bound: HashMap<ProviderMsgId, (SegmentRef, Timestamp)>,
        seg_report: HashMap<SegmentRef, bool>,
        state: HashMap<MessageId, MessageState>,
        parked: Vec<ParkedReport>,
        unmatched: Vec<Report>,
        next_key: i64,
    }

    impl MemReports {
        pub fn with_message(self, id: i64, parts: u16) -> Self {
            let mut i = self.inner.lock().unwrap();
            i.parts.insert(MessageId(id), parts);
            i.state.insert(MessageId(id), MessageState::Accepted);
            drop(i);
            self
        }
        pub fn state(&self, id: i64) -> MessageState {
            self.inner.lock().unwrap().state[&MessageId(id)]
        }
        pub fn unmatched(&self) -> usize {
            self.inner.lock().unwrap().unmatched.len()
        }
        pub fn parked_len(&self) -> usize {
            self.inner.lock().unwrap().parked.len()
        }
    }

    fn ev(id: MessageId, state: MessageState, code: Option<&str>) -> StatusEvent {
        StatusEvent {
            id: id.to_string(),
            to: String::new(),
            state,
            code: code.map(str::to_owned),
            segments: 0,
            link: None,
            at: String::new(),
            possible_duplicate: false,
        }
    }

    impl ReportStore for MemReports {
        async fn bind(
            &self,
            seg: SegmentRef,
            _link: &str,
            pid: &ProviderMsgId,
            now: Timestamp,
        ) -> StoreResult<Option<StatusEvent>> {
            let mut i = self.inner.lock().unwrap();
            i.bound.insert(pid.clone(), (seg, now));
            let n = i.parts[&seg.message];
            let bound = i
                .bound
                .values()
                .filter(|(s, _)| s.message == seg.message)
                .count();
            if bound == usize::from(n) && i.state[&seg.message] == MessageState::Accepted {
                i.state.insert(seg.message, MessageState::Submitted);
                return Ok(Some(ev(seg.message, MessageState::Submitted, None)));
            }
            Ok(None)
        }
        async fn settle(&self, r: &Report) -> StoreResult<Settle> {
            let mut i = self.inner.lock().unwrap();
            let Some(&(seg, at)) = i.bound.get(&r.provider_id) else {
                return Ok(Settle::Unknown);
            };
            if i.seg_report.contains_key(&seg) {
                return Ok(Settle::Settled {
                    segment: seg,
                    event: None,
                    submitted_at: Some(at),
                });
            }
            i.seg_report.insert(seg, r.delivered);
            let n = i.parts[&seg.message];
            let st = i.state[&seg.message];
            let event = if st.is_final() {
                None
            } else if !r.delivered {
                i.state.insert(seg.message, MessageState::Failed);
                Some(ev(seg.message, MessageState::Failed, Some(&r.stat)))
            } else {
                let done = (1..=n).all(|p| {
                    i.seg_report.get(&SegmentRef {
                        message: seg.message,
                        part: p,
                    }) == Some(&true)
                });
                if done {
                    i.state.insert(seg.message, MessageState::Delivered);
                    Some(ev(seg.message, MessageState::Delivered, Some(&r.stat)))
                } else {
                    None
                }
            };
            Ok(Settle::Settled {
                segment: seg,
                event,
                submitted_at: Some(at),
            })
        }
        async fn park(&self, r: &Report, until: Timestamp) -> StoreResult<()> {
            let mut i = self.inner.lock().unwrap();
            i.next_key += 1;
            let key = i.next_key;
            i.parked.push(ParkedReport {
                key,
                report: r.clone(),
                until,
            });
            Ok(())
        }
        async fn take_parked(&self, pid: &ProviderMsgId) -> StoreResult<Vec<Report>> {
            let mut i = self.inner.lock().unwrap();
            let (take, keep): (Vec<_>, Vec<_>) = i
                .parked
                .drain(..)
                .partition(|p| &p.report.provider_id == pid);
            i.parked = keep;
            Ok(take.into_iter().map(|p| p.report).collect())
        }
        async fn parked(&self, limit: usize) -> StoreResult<Vec<ParkedReport>> {
            Ok(self
                .inner
                .lock()
                .unwrap()
                .parked
                .iter()
                .take(limit)
                .cloned()
                .collect())
        }
        async fn unpark(&self, key: i64, unmatched: bool) -> StoreResult<()> {
            let mut i = self.inner.lock().unwrap();
            if let Some(pos) = i.parked.iter().position(|p| p.key == key) {
                let p = i.parked.remove(pos);
                if unmatched {
                    i.unmatched.push(p.report);
                }
            }
            Ok(())
        }
    }

    pub fn report(pid: &str, delivered: bool, at: i64, link: &str) -> Report {
        Report {
            provider_id: ProviderMsgId::new(pid),
            stat: if delivered { "DELIVRD" } else { "UNDELIV" }.to_owned(),
            delivered,
            link: Some(link.to_owned()),
            received_at: Timestamp(at),
            ack: None,
        }
    }

    fn seg(id: i64, part: u16) -> SegmentRef {
        SegmentRef {
            message: MessageId(id),
            part,
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn report_after_response_matches() {
        block_on(async {
            let s = MemReports::default().with_message(1, 1);
            let c = Correlator::new(Duration::from_secs(60));
            let evs = c
                .on_accepted(&s, seg(1, 1), "m1", &ProviderMsgId::new("77"), Timestamp(0))
                .await
                .unwrap();
            assert_eq!(evs[0].state, MessageState::Submitted);
            let out = c
                .on_report(&s, &report("77", true, 10, "m2"))
                .await
                .unwrap();
            assert!(
                matches!(out, ReportOutcome::Matched(Some(ref e)) if e.state == MessageState::Delivered)
            );
        });
    }

    #[test]
    fn report_before_response_is_parked_then_matched() {
        block_on(async {
            let s = MemReports::default().with_message(1, 1);
            let c = Correlator::new(Duration::from_secs(60));
            // report on another link, before the submit response was stored
            assert_eq!(
                c.on_report(&s, &report("0077", true, 5, "m2"))
                    .await
                    .unwrap(),
                ReportOutcome::Parked
            );
            assert_eq!(s.parked_len(), 1);
            let evs = c
                .on_accepted(
                    &s,
                    seg(1, 1),
                    "m1",
                    &ProviderMsgId::new("77"),
                    Timestamp(10),
                )
                .await
                .unwrap();
            let states: Vec<_> = evs.iter().map(|e| e.state).collect();
            assert_eq!(states, [MessageState::Submitted, MessageState::Delivered]);
            assert_eq!(s.parked_len(), 0);
        });
    }

    #[test]
    fn delivered_only_when_all_segments_are() {
        block_on(async {
            let s = MemReports::default().with_message(1, 3);
            let c = Correlator::new(Duration::from_secs(60));
            for p in 1..=3u16 {
                c.on_accepted(
                    &s,
                    seg(1, p),
                    "m1",
                    &ProviderMsgId::new(&format!("10{p}")),
                    Timestamp(0),
                )
                .await
                .unwrap();
            }
            assert_eq!(s.state(1), MessageState::Submitted);
            c.on_report(&s, &report("101", true, 1, "m1"))
                .await
                .unwrap();
            c.on_report(&s, &report("101", true, 1, "m1"))
                .await
                .unwrap(); // repeat: no effect
            c.on_report(&s, &report("102", true, 1, "m1"))
                .await
                .unwrap();
            assert_eq!(s.state(1), MessageState::Submitted);
            c.on_report(&s, &report("103", true, 1, "m1"))
                .await
                .unwrap();
            assert_eq!(s.state(1), MessageState::Delivered);
        });
    }

    #[test]
    fn unmatched_reports_expire_and_are_kept() {
        block_on(async {
            let s = MemReports::default().with_message(1, 1);
            let c = Correlator::new(Duration::from_secs(60));
            c.on_report(&s, &report("999", true, 0, "m1"))
                .await
                .unwrap();
            c.on_report(&s, &report("555", false, 0, "m1"))
                .await
                .unwrap();
            // before the TTL nothing is given up
            let (evs, unmatched) = c.sweep_parked(&s, Timestamp(30_000), 100).await.unwrap();
            assert!(evs.is_empty());
            assert_eq!(unmatched, 0);
            // 555 gets bound through a path that did not take parked reports (another node)
            s.bind(
                seg(1, 1),
                "m1",
                &ProviderMsgId::new("555"),
                Timestamp(40_000),
            )
            .await
            .unwrap();
            let (evs, unmatched) = c.sweep_parked(&s, Timestamp(61_000), 100).await.unwrap();
            assert_eq!(evs.len(), 1);
            assert_eq!(evs[0].state, MessageState::Failed);
            assert_eq!(unmatched, 1);
            assert_eq!(s.unmatched(), 1);
            assert_eq!(s.parked_len(), 0);
        });
    }
}
