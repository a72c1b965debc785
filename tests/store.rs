//! Store tests against a real SQLite file, and against PostgreSQL when
//! `SMSGW_TEST_PG_URL` is set (see `scripts/pg.sh`). Each test gets a fresh
//! database.
#![cfg(feature = "sql")]

use std::time::Duration;

use smsgw::adapters::sql::{QueueSource, SqlStore};
use smsgw::engine::correlate::{Correlator, ReportOutcome};
use smsgw::engine::routing::NumberPlan;
use smsgw::engine::sweeper;
use smsgw::engine::validate::{validate, Rules};
use smsgw::engine::*;

const T0: Timestamp = Timestamp(1_800_000_000_000);

struct Db {
    store: SqlStore,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Db {
        store: SqlStore::open(&url).await.unwrap(),
        url,
        _dir: Some(dir),
    }
}

#[path = "common/pg.rs"]
mod pg;

/// A fresh PostgreSQL database, or `None` (skip; see [`pg::fresh_database`]).
async fn postgres() -> Option<Db> {
    let url = pg::fresh_database().await?;
    Some(Db {
        store: SqlStore::open(&url).await.unwrap(),
        url,
        _dir: None,
    })
}

/// Runs a test body against SQLite and, if configured, PostgreSQL.
macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$body(&super::sqlite().await.store).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(db) = super::postgres().await {
                    super::$body(&db.store).await;
                }
            }
        }
    };
}

fn msgs(json: &str, now: Timestamp) -> (Vec<NewMessage>, Vec<DeadLetter>) {
    let v = validate(
        json.as_bytes(),
        "test",
        now,
        &Rules::default(),
        &NumberPlan::default(),
    );
    (v.messages, v.dead)
}

async fn accept(s: &SqlStore, json: &str, now: Timestamp) -> AcceptResult {
    let (m, d) = msgs(json, now);
    s.accept(&m, &d).await.unwrap()
}

fn states(h: &[StatusEvent]) -> Vec<&'static str> {
    h.iter().map(|e| e.state.as_str()).collect()
}

fn id_states(evs: &[StatusEvent]) -> Vec<(String, &'static str)> {
    evs.iter()
        .map(|e| (e.id.clone(), e.state.as_str()))
        .collect()
}

async fn accept_is_idempotent(s: &SqlStore) {
    let r = accept(
        s,
        r#"{"id":"u1","to":["13800138000","18612345678"],"text":"hi","biz":"login"}"#,
        T0,
    )
    .await;
    assert_eq!(r.accepted.len(), 2);
    assert_eq!(r.duplicates, 0);
    let again = accept(
        s,
        r#"{"id":"u1","to":["13800138000","18612345678"],"text":"hi","biz":"login"}"#,
        T0,
    )
    .await;
    assert_eq!(again.accepted.len(), 0);
    assert_eq!(again.duplicates, 2);
    let st = s.stats().await.unwrap();
    assert_eq!(st.by_state["accepted"], 2);
    assert_eq!(st.by_biz["login"].messages, 2);
    assert_eq!(st.messages, 2);
}
both!(accept_idempotent, accept_is_idempotent);

async fn dead_letters_are_kept(s: &SqlStore) {
    accept(s, r#"{"id":"bad","to":"123","text":"x"}"#, T0).await;
    accept(s, "{oops", T0).await;
    let d = s.dead_letters(10).await.unwrap();
    assert_eq!(d.len(), 2);
    assert!(d[0].reason.starts_with("bad json"));
    assert!(d[1].reason.starts_with("bad number"));
    assert_eq!(s.stats().await.unwrap().dead_letters, 2);
}
both!(dead_letters, dead_letters_are_kept);

async fn claim_respects_priority_due_and_lease(s: &SqlStore) {
    accept(
        s,
        r#"{"id":"m","to":"13800138000","text":"x","priority":"marketing"}"#,
        T0,
    )
    .await;
    accept(s, r#"{"id":"n","to":"13800138000","text":"x"}"#, T0).await;
    accept(
        s,
        r#"{"id":"o","to":"13800138000","text":"x","priority":"otp"}"#,
        T0,
    )
    .await;
    let got = s.claim_due(T0, 2, Duration::from_secs(60)).await.unwrap();
    let ids: Vec<&str> = got.iter().map(|d| d.upstream_id.as_str()).collect();
    assert_eq!(ids, ["o", "n"]);
    assert_eq!(got[0].attempts, 1);
    // leased: not claimable again until the lease runs out
    let got = s.claim_due(T0, 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].upstream_id, "m");
    assert!(s
        .claim_due(
            T0.plus(Duration::from_secs(30)),
            10,
            Duration::from_secs(60)
        )
        .await
        .unwrap()
        .is_empty());
    let again = s
        .claim_due(
            T0.plus(Duration::from_secs(61)),
            10,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|d| d.attempts == 2));
}
both!(claim_priority_lease, claim_respects_priority_due_and_lease);

async fn long_message_delivered_when_all_segments_are(s: &SqlStore) {
    let text = "长".repeat(140); // 3 segments
    let r = accept(
        s,
        &format!(r#"{{"id":"long","to":"13800138000","text":"{text}"}}"#),
        T0,
    )
    .await;
    let id = r.accepted[0].0;
    assert_eq!(r.accepted[0].1.segments, 3);
    let c = Correlator::new(Duration::from_secs(60));
    let seg = |part| SegmentRef { message: id, part };
    let mut evs = vec![];
    // part 2's report beats its response and arrives on another link
    let early = Report {
        provider_id: ProviderMsgId::new("0000000202"),
        stat: "DELIVRD".into(),
        delivered: true,
        link: Some("m2".into()),
        received_at: T0,
        ack: None,
    };
    assert_eq!(c.on_report(s, &early).await.unwrap(), ReportOutcome::Parked);
    evs.extend(
        c.on_accepted(s, seg(1), "m1", &ProviderMsgId::new("201"), T0)
            .await
            .unwrap(),
    );
    evs.extend(
        c.on_accepted(s, seg(2), "m1", &ProviderMsgId::new("202"), T0)
            .await
            .unwrap(),
    );
    assert!(evs.is_empty());
    evs.extend(
        c.on_accepted(s, seg(3), "m1", &ProviderMsgId::new("203"), T0)
            .await
            .unwrap(),
    );
    assert_eq!(states(&evs), ["submitted"]);
    assert_eq!(evs[0].link.as_deref(), Some("m1"));
    for pid in ["201", "201", "203"] {
        let r = Report {
            provider_id: ProviderMsgId::new(pid),
            received_at: T0.plus(Duration::from_secs(2)),
            ..early.clone()
        };
        if let ReportOutcome::Matched(ev) = c.on_report(s, &r).await.unwrap() {
            evs.extend(ev);
        }
    }
    assert_eq!(states(&evs), ["submitted", "delivered"]);
    let h = s.history("long").await.unwrap();
    assert_eq!(states(&h), ["accepted", "submitted", "delivered"]);
    assert_eq!(h[2].code.as_deref(), Some("DELIVRD"));
    let st = s.stats().await.unwrap();
    assert_eq!(st.by_state["delivered"], 1);
    assert_eq!(st.by_link["m1"].segments, 3);
    assert_eq!(st.segments, 3);
}
both!(long_message, long_message_delivered_when_all_segments_are);

async fn failed_report_fails_message(s: &SqlStore) {
    let r = accept(s, r#"{"id":"f","to":"13800138000","text":"x"}"#, T0).await;
    let id = r.accepted[0].0;
    let c = Correlator::new(Duration::from_secs(60));
    c.on_accepted(
        s,
        SegmentRef {
            message: id,
            part: 1,
        },
        "m1",
        &ProviderMsgId::new("9"),
        T0,
    )
    .await
    .unwrap();
    let rep = Report {
        provider_id: ProviderMsgId::new("9"),
        stat: "UNDELIV".into(),
        delivered: false,
        link: None,
        received_at: T0,
        ack: None,
    };
    match c.on_report(s, &rep).await.unwrap() {
        ReportOutcome::Matched(Some(ev)) => {
            assert_eq!(ev.state, MessageState::Failed);
            assert_eq!(ev.code.as_deref(), Some("UNDELIV"));
        }
        other => panic!("{other:?}"),
    }
}
both!(failed_report, failed_report_fails_message);

async fn unmatched_reports_are_counted_and_kept(s: &SqlStore) {
    let c = Correlator::new(Duration::from_secs(60));
    let rep = Report {
        provider_id: ProviderMsgId::new("404"),
        stat: "DELIVRD".into(),
        delivered: true,
        link: None,
        received_at: T0,
        ack: None,
    };
    c.on_report(s, &rep).await.unwrap();
    let (_, n) = c
        .sweep_parked(s, T0.plus(Duration::from_secs(59)), 100)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let (_, n) = c
        .sweep_parked(s, T0.plus(Duration::from_secs(60)), 100)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(s.stats().await.unwrap().reports_unmatched, 1);
    assert_eq!(
        s.unmatched_reports(10).await.unwrap()[0]
            .provider_id
            .as_str(),
        "404"
    );
}
both!(unmatched_reports, unmatched_reports_are_counted_and_kept);

async fn sweeper_resends_valid_and_expires_the_rest(s: &SqlStore) {
    let r = accept(
        s,
        r#"{"id":"a","to":"13800138000","text":"x","expire_at":"2027-01-15T10:00:00Z"}"#,
        T0,
    )
    .await;
    let a = r.accepted[0].0;
    let r = accept(
        s,
        r#"{"id":"b","to":"13800138000","text":"x","expire_at":"2027-01-15T12:00:00Z"}"#,
        T0,
    )
    .await;
    let b = r.accepted[0].0;
    // both used their attempts during an outage and possibly went out (unknown)
    for id in [a, b] {
        s.park_retryable(id, "unknown", true, T0).await.unwrap();
    }
    assert_eq!(s.stats().await.unwrap().by_state["retryable"], 2);
    let c = Correlator::new(Duration::from_secs(60));
    let between = Timestamp::parse_rfc3339("2027-01-15T11:00:00Z").unwrap();
    let rep = sweeper::sweep(s, &c, between, Duration::from_secs(3600), 100)
        .await
        .unwrap();
    assert_eq!((rep.resent, rep.expired), (1, 1));
    assert_eq!(states(&rep.events), ["expired"]);
    assert_eq!(rep.events[0].id, "a");
    let due = s
        .claim_due(between, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].upstream_id, "b");
    assert!(due[0].possible_duplicate);
    assert_eq!(due[0].attempts, 1, "requeue gives a fresh attempt budget");
    assert_eq!(s.stats().await.unwrap().possible_duplicates, 2);
    let h = s.history("a").await.unwrap();
    assert_eq!(states(&h), ["accepted", "expired"]);
    assert!(h[1].possible_duplicate);
}
both!(sweeping, sweeper_resends_valid_and_expires_the_rest);

async fn retry_and_fail_transitions(s: &SqlStore) {
    let r = accept(s, r#"{"id":"r","to":"13800138000","text":"x"}"#, T0).await;
    let id = r.accepted[0].0;
    s.claim_due(T0, 10, Duration::from_secs(60)).await.unwrap();
    s.schedule_retry(id, T0.plus(Duration::from_secs(5)), "throttled", false)
        .await
        .unwrap();
    assert!(s
        .claim_due(T0.plus(Duration::from_secs(4)), 10, Duration::from_secs(60))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.claim_due(T0.plus(Duration::from_secs(5)), 10, Duration::from_secs(60))
            .await
            .unwrap()
            .len(),
        1
    );
    let ev = s
        .fail(id, "13", Some("m1"), T0.plus(Duration::from_secs(6)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ev.state, ev.code.as_deref(), ev.link.as_deref()),
        (MessageState::Failed, Some("13"), Some("m1"))
    );
    // final: nothing changes any more
    assert!(s
        .expire(id, T0.plus(Duration::from_secs(7)))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        states(&s.history("r").await.unwrap()),
        ["accepted", "failed"]
    );
}
both!(retry_fail, retry_and_fail_transitions);

async fn queue_source_commits_after_acceptance(s: &SqlStore) {
    for i in 0..3 {
        s.enqueue(
            &format!(r#"{{"id":"q{i}","to":"13800138000","text":"x"}}"#),
            T0,
        )
        .await
        .unwrap();
    }
    let mut src = QueueSource::new(s.clone());
    let recs = src.poll(2, Duration::ZERO).await.unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].origin, format!("queue:{}", recs[0].position.offset));
    let recs2 = src.poll(10, Duration::ZERO).await.unwrap();
    assert_eq!(recs2.len(), 1);
    src.commit(&recs).await.unwrap();
    assert_eq!(s.stats().await.unwrap().queued, 1);
    // a restarted consumer sees only what was not committed
    let mut fresh = QueueSource::new(s.clone());
    assert_eq!(fresh.poll(10, Duration::ZERO).await.unwrap(), recs2);
}
both!(queue_source, queue_source_commits_after_acceptance);

async fn links_add_list_remove(s: &SqlStore) {
    let l = LinkSpec {
        name: "cmcc-1".into(),
        protocol: ProtocolKind::Cmpp3,
        addr: "127.0.0.1:7890".into(),
        account: "901234".into(),
        secret: "s3cret".into(),
        connections: 2,
        window: 16,
        tps: Some(100),
        weight: 1,
    };
    s.add_link(&l).await.unwrap();
    assert!(matches!(
        s.add_link(&l).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(s.links().await.unwrap(), vec![l]);
    assert!(s.remove_link("cmcc-1").await.unwrap());
    assert!(!s.remove_link("cmcc-1").await.unwrap());
}
both!(links, links_add_list_remove);

/// The batched calls (`bind_many`, `settle_many`, `take_parked_many`) as the
/// serve loop uses them: one report beats its response, a batch mixes parts
/// of one long message with single-part ones, repeats change nothing.
async fn batched_bind_and_settle(s: &SqlStore) {
    let text = "长".repeat(140); // 3 segments
    let mut m = Vec::new();
    for rec in [
        format!(r#"{{"id":"long","to":"13800138000","text":"{text}"}}"#),
        r#"{"id":"a","to":"13800138001","text":"x"}"#.to_owned(),
        r#"{"id":"b","to":"13800138002","text":"x"}"#.to_owned(),
        r#"{"id":"a","to":"13800138001","text":"x"}"#.to_owned(),
    ] {
        m.extend(msgs(&rec, T0).0);
    }
    let r = s.accept(&m, &[]).await.unwrap();
    assert_eq!(r.accepted.len(), 3);
    assert_eq!(r.duplicates, 1);
    let (long, a, b) = (r.accepted[0].0, r.accepted[1].0, r.accepted[2].0);
    let c = Correlator::new(Duration::from_secs(60));
    let rep = |pid: &str, ok: bool| Report {
        provider_id: ProviderMsgId::new(pid),
        stat: if ok { "DELIVRD" } else { "UNDELIV" }.into(),
        delivered: ok,
        link: Some("m2".into()),
        received_at: T0.plus(Duration::from_secs(1)),
        ack: None,
    };
    // b's report beats its response: parked
    assert!(c
        .on_reports(s, &[rep("b1", true)])
        .await
        .unwrap()
        .is_empty());
    let bind = |m, part, pid: &str| Bind {
        seg: SegmentRef { message: m, part },
        link: "m1".into(),
        provider_id: ProviderMsgId::new(pid),
    };
    let evs = c
        .on_accepted_many(
            s,
            &[
                bind(long, 1, "l1"),
                bind(a, 1, "a1"),
                bind(long, 2, "l2"),
                bind(b, 1, "b1"),
            ],
            T0,
        )
        .await
        .unwrap();
    // a and b submitted (b then delivered by its parked report); long waits for part 3
    let got = id_states(&evs);
    assert_eq!(
        got,
        [
            ("a".to_owned(), "submitted"),
            ("b".to_owned(), "submitted"),
            ("b".to_owned(), "delivered")
        ]
    );
    let evs = c
        .on_accepted_many(s, &[bind(long, 3, "l3")], T0)
        .await
        .unwrap();
    assert_eq!(states(&evs), ["submitted"]);
    let evs = c
        .on_reports(
            s,
            &[
                rep("l1", true),
                rep("a1", false),
                rep("l2", true),
                rep("l1", true), // repeat: settled, no change
                rep("l3", true),
                rep("nope", true), // parked
            ],
        )
        .await
        .unwrap();
    let got = id_states(&evs);
    assert_eq!(
        got,
        [("a".to_owned(), "failed"), ("long".to_owned(), "delivered")]
    );
    assert_eq!(
        states(&s.history("long").await.unwrap()),
        ["accepted", "submitted", "delivered"]
    );
    let ha = s.history("a").await.unwrap();
    assert_eq!(states(&ha), ["accepted", "submitted", "failed"]);
    assert_eq!(ha[2].code.as_deref(), Some("UNDELIV"));
    assert_eq!(ha[2].link.as_deref(), Some("m2"));
    assert_eq!(
        states(&s.history("b").await.unwrap()),
        ["accepted", "submitted", "delivered"]
    );
    assert_eq!(s.parked(10).await.unwrap().len(), 1);
    let st = s.stats().await.unwrap();
    assert_eq!(st.by_state["delivered"], 2);
    assert_eq!(st.by_state["failed"], 1);
}
both!(batched, batched_bind_and_settle);

/// What the recorder stores per batch (`Correlator::on_outcomes`, one
/// `record` transaction): submit responses and reports of the same parts
/// together, a report parked before its response, a repeat, a report of a
/// part whose response is in the same batch but later, an unknown id.
async fn outcomes_recorded_together(s: &SqlStore) {
    let text = "长".repeat(140); // 3 segments
    let mut m = Vec::new();
    for rec in [
        format!(r#"{{"id":"long","to":"13800138000","text":"{text}"}}"#),
        r#"{"id":"a","to":"13800138001","text":"x"}"#.to_owned(),
        r#"{"id":"b","to":"13800138002","text":"x"}"#.to_owned(),
        r#"{"id":"c","to":"13800138003","text":"x"}"#.to_owned(),
    ] {
        m.extend(msgs(&rec, T0).0);
    }
    let r = s.accept(&m, &[]).await.unwrap();
    let (long, a, b, c) = (
        r.accepted[0].0,
        r.accepted[1].0,
        r.accepted[2].0,
        r.accepted[3].0,
    );
    let cor = Correlator::new(Duration::from_secs(60));
    let rep = |pid: &str, ok: bool| Report {
        provider_id: ProviderMsgId::new(pid),
        stat: if ok { "DELIVRD" } else { "UNDELIV" }.into(),
        delivered: ok,
        link: Some("m2".into()),
        received_at: T0.plus(Duration::from_secs(1)),
        ack: None,
    };
    let bind = |m, part, pid: &str| Bind {
        seg: SegmentRef { message: m, part },
        link: "m1".into(),
        provider_id: ProviderMsgId::new(pid),
    };
    // c's report came before any response: parked
    assert!(cor
        .on_outcomes(s, &[], &[rep("c1", false)], T0)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.parked(10).await.unwrap().len(), 1);
    let evs = cor
        .on_outcomes(
            s,
            &[
                bind(long, 1, "l1"),
                bind(a, 1, "a1"),
                bind(long, 2, "l2"),
                bind(b, 1, "b1"),
                bind(c, 1, "c1"),
                bind(long, 3, "l3"),
            ],
            &[
                rep("a1", true),
                rep("l1", true),
                rep("a1", true), // repeat: settles nothing twice
                rep("l2", true),
                rep("l3", true),
                rep("zz", true), // matches nothing: parked
            ],
            T0,
        )
        .await
        .unwrap();
    let got = id_states(&evs);
    assert_eq!(
        got,
        [
            ("long".to_owned(), "submitted"),
            ("a".to_owned(), "submitted"),
            ("b".to_owned(), "submitted"),
            ("c".to_owned(), "submitted"),
            ("c".to_owned(), "failed"),
            ("a".to_owned(), "delivered"),
            ("long".to_owned(), "delivered"),
        ]
    );
    assert_eq!(
        states(&s.history("long").await.unwrap()),
        ["accepted", "submitted", "delivered"]
    );
    assert_eq!(
        states(&s.history("b").await.unwrap()),
        ["accepted", "submitted"]
    );
    let parked = s.parked(10).await.unwrap();
    assert_eq!(parked.len(), 1, "c's report taken, zz's parked");
    // b's report on its own batch later
    let evs = cor
        .on_outcomes(s, &[], &[rep("b1", true), rep("b1", true)], T0)
        .await
        .unwrap();
    assert_eq!(states(&evs), ["delivered"]);
    let st = s.stats().await.unwrap();
    assert_eq!(st.by_state["delivered"], 3);
    assert_eq!(st.by_state["failed"], 1);
}
both!(outcomes_recorded, outcomes_recorded_together);

fn new_msg(id: &str, to: &str, text: &str) -> NewMessage {
    NewMessage {
        upstream_id: id.into(),
        to: to.into(),
        text: text.into(),
        priority: Priority::Notify,
        biz: None,
        channel: ChannelKind::Sms,
        expire_at: T0.plus(Duration::from_secs(3600)),
        segments: 1,
        carrier: None,
        accepted_at: T0,
        claimed_until: None,
    }
}

/// A message accepted pre-claimed is stored as `claim_due` leaves a claim:
/// not claimable until its lease ends, then back as a lost claim (attempt 2,
/// possible duplicate). Ids map to the right inputs whatever the order.
async fn preclaimed_acceptance(s: &SqlStore) {
    let lease_end = T0.plus(Duration::from_secs(60));
    let mut m = vec![
        new_msg("p1", "13800138001", "one"),
        new_msg("p2", "13800138002", "two"),
        new_msg("p3", "13800138003", "three"),
    ];
    m[0].claimed_until = Some(lease_end);
    m[2].claimed_until = Some(lease_end);
    let r = s.accept(&m, &[]).await.unwrap();
    let ids: Vec<(MessageId, &str)> = r
        .accepted
        .iter()
        .map(|(i, e)| (*i, e.id.as_str()))
        .collect();
    assert_eq!(
        ids.iter().map(|(_, u)| *u).collect::<Vec<_>>(),
        ["p1", "p2", "p3"]
    );
    assert!(r
        .accepted
        .iter()
        .all(|(_, e)| e.state == MessageState::Accepted));
    // only the unclaimed one is due now
    let got = s.claim_due(T0, 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id, got[0].upstream_id.as_str()), ids[1]);
    assert_eq!(got[0].attempts, 1);
    assert!(!got[0].possible_duplicate);
    assert!(s
        .claim_due(
            T0.plus(Duration::from_secs(59)),
            10,
            Duration::from_secs(60)
        )
        .await
        .unwrap()
        .is_empty());
    // the leases run out: back as lost claims
    let mut again = s
        .claim_due(lease_end, 10, Duration::from_secs(60))
        .await
        .unwrap();
    again.sort_by_key(|d| d.id.0);
    let got: Vec<(MessageId, &str, u32, bool)> = again
        .iter()
        .map(|d| {
            (
                d.id,
                d.upstream_id.as_str(),
                d.attempts,
                d.possible_duplicate,
            )
        })
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    for (id, up, attempts, dup) in got {
        let (want, _) = ids.iter().find(|(_, u)| *u == up).unwrap();
        assert_eq!(id, *want);
        assert_eq!(attempts, 2, "{up}");
        // p2's claim at T0 is lost too (in flight at its next claim)
        assert!(dup, "{up}");
    }
    assert_eq!(s.stats().await.unwrap().possible_duplicates, 3);
}
both!(preclaimed, preclaimed_acceptance);

/// A key twice in one batch: the first row wins, the repeat is a duplicate.
async fn duplicate_key_inside_batch(s: &SqlStore) {
    let m = vec![
        new_msg("d", "13800138001", "first"),
        new_msg("d", "13800138002", "other recipient"),
        new_msg("d", "13800138001", "second"),
        new_msg("e", "13800138001", "x"),
    ];
    let r = s.accept(&m, &[]).await.unwrap();
    assert_eq!(r.duplicates, 1);
    let got: Vec<(&str, &str)> = r
        .accepted
        .iter()
        .map(|(_, e)| (e.id.as_str(), e.to.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("d", "13800138001"),
            ("d", "13800138002"),
            ("e", "13800138001")
        ]
    );
    let mut c = s.claim_due(T0, 10, Duration::from_secs(60)).await.unwrap();
    c.sort_by_key(|d| d.id.0);
    let texts: Vec<&str> = c.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(texts, ["first", "other recipient", "x"]);
    for (d, (id, _)) in c.iter().zip(&r.accepted) {
        assert_eq!(d.id, *id);
    }
    assert_eq!(
        states(&s.history("d").await.unwrap()),
        ["accepted", "accepted"]
    );
}
both!(duplicate_in_batch, duplicate_key_inside_batch);

/// NULL columns and awkward text survive the JSON batch parameter.
async fn json_round_trip(s: &SqlStore) {
    let text = "引号 \"double\" 'single' back\\slash \\\" \\u0041 😀🇨🇳 长文本\n\ttab {[}] $1 ->> 0";
    let id = "up\"'\\😀长";
    let mut m = new_msg(id, "13800138000", text);
    m.biz = None;
    m.carrier = None;
    let mut m2 = new_msg("plain", "13800138000", "x");
    m2.biz = Some("营销 \"biz\"".into());
    m2.carrier = Some(Carrier::Telecom);
    let dead = DeadLetter {
        origin: "test:1".into(),
        upstream_id: None,
        payload: text.into(),
        reason: "bad \"json\"".into(),
        at: T0,
    };
    let r = s
        .accept(&[m, m2], std::slice::from_ref(&dead))
        .await
        .unwrap();
    assert_eq!(r.accepted.len(), 2);
    let mut c = s.claim_due(T0, 10, Duration::from_secs(60)).await.unwrap();
    c.sort_by_key(|d| d.id.0);
    assert_eq!(c[0].upstream_id, id);
    assert_eq!(c[0].text, text);
    assert_eq!(c[0].carrier, None);
    assert_eq!(c[1].carrier, Some(Carrier::Telecom));
    let st = s.stats().await.unwrap();
    assert_eq!(st.by_biz[""].messages, 1);
    assert_eq!(st.by_biz["营销 \"biz\""].messages, 1);
    let d = s.dead_letters(10).await.unwrap();
    assert_eq!(d, [dead]);
    // through bind and settle (provider id, link and stat are JSON too)
    let pid = ProviderMsgId::new("pid\"\\😀");
    let evs = s
        .bind_many(
            &[Bind {
                seg: SegmentRef {
                    message: c[0].id,
                    part: 1,
                },
                link: "链路 \"a\"".into(),
                provider_id: pid.clone(),
            }],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].link.as_deref(), Some("链路 \"a\""));
    let rep = Report {
        provider_id: pid,
        stat: "UN\"DEL\\".into(),
        delivered: false,
        link: None,
        received_at: T0.plus(Duration::from_secs(1)),
        ack: None,
    };
    let out = s.settle_many(std::slice::from_ref(&rep)).await.unwrap();
    let Settle::Settled {
        event: Some(ev), ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(ev.code.as_deref(), Some("UN\"DEL\\"));
    // NULL link in the report keeps the submit's
    assert_eq!(ev.link.as_deref(), Some("链路 \"a\""));
    let h = s.history(id).await.unwrap();
    assert_eq!(states(&h), ["accepted", "submitted", "failed"]);
    assert!(h.iter().all(|e| e.id == id));
    // parked reports with a NULL link, out and back
    let parked = Report {
        provider_id: ProviderMsgId::new("q\"😀"),
        stat: "DELIVRD".into(),
        delivered: true,
        link: None,
        received_at: T0,
        ack: None,
    };
    s.park_many(&[(parked.clone(), T0)]).await.unwrap();
    let back = s
        .take_parked_many(&[ProviderMsgId::new("q\"😀"), ProviderMsgId::new("none")])
        .await
        .unwrap();
    assert_eq!(back, [parked]);
}
both!(json_text, json_round_trip);

/// SQLite keeps NUL characters through the JSON parameter (the bundled
/// SQLite; 3.40's `->>` cut the text at the NUL). PostgreSQL text cannot
/// hold NUL at all, bound directly or through JSON.
#[tokio::test]
async fn sqlite_json_keeps_nul() {
    let db = sqlite().await;
    let s = &db.store;
    let r = s
        .accept(&[new_msg("u\0x", "13800138000", "a\0b")], &[])
        .await
        .unwrap();
    assert_eq!(r.accepted.len(), 1);
    let c = s.claim_due(T0, 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        (c[0].upstream_id.as_str(), c[0].text.as_str()),
        ("u\0x", "a\0b")
    );
}

async fn insert_event(conn: &mut sqlx::AnyConnection, upstream: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(
        "INSERT INTO events (message_id, upstream_id, recipient, state, segments, at) \
         VALUES (1, $1, '13800138000', 'accepted', 1, $2) RETURNING id",
    )
    .bind(upstream)
    .bind(T0.0)
    .fetch_one(conn)
    .await
    .unwrap()
    .get::<i64, _>(0)
}

/// On PostgreSQL, ids from a sequence can commit out of order (here: the
/// second transaction commits first). The outbox reader must not advance
/// past the hole the first one leaves until it commits.
#[tokio::test]
async fn postgres_outbox_waits_for_a_late_commit() {
    use smsgw::adapters::outbox::{GapGuard, GAP_WAIT};
    use sqlx::Connection;
    let Some(db) = postgres().await else {
        return;
    };
    sqlx::any::install_default_drivers();
    let mut a = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let mut b = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let mut ta = a.begin().await.unwrap();
    let id_a = insert_event(&mut ta, "late").await;
    let mut tb = b.begin().await.unwrap();
    let id_b = insert_event(&mut tb, "early").await;
    assert!(id_a < id_b);
    tb.commit().await.unwrap();

    let mut guard = GapGuard::new(0, GAP_WAIT);
    let seen = db.store.events_after(0, 100).await.unwrap();
    let ids: Vec<i64> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![id_b], "the later id is visible first");
    let t = std::time::Instant::now();
    assert_eq!(guard.admit(&ids, t).rows, 0, "nothing past the hole");
    assert_eq!(guard.position(), id_a - 1);

    ta.commit().await.unwrap();
    let seen = db.store.events_after(guard.position(), 100).await.unwrap();
    let ids: Vec<i64> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![id_a, id_b]);
    let got = guard.admit(&ids, t + std::time::Duration::from_millis(10));
    assert_eq!(got.rows, 2);
    assert!(got.skipped.is_empty());
    assert_eq!(seen[0].1.id, "late");
    assert_eq!(guard.position(), id_b);
}

/// Several gateway nodes on one PostgreSQL: one relay lease at a time; it
/// passes on when its holder's session ends.
#[tokio::test]
async fn postgres_relay_lease_is_held_once() {
    let Some(db) = postgres().await else {
        return;
    };
    let other = SqlStore::open(&db.url).await.unwrap();
    let mut lease = db
        .store
        .try_relay_lease()
        .await
        .unwrap()
        .expect("free lease");
    assert!(other.try_relay_lease().await.unwrap().is_none());
    assert!(
        db.store.try_relay_lease().await.unwrap().is_none(),
        "not reentrant across connections"
    );
    db.store.check_relay_lease(&mut lease).await.unwrap();
    db.store
        .set_relay_cursor(&mut lease, "kafka-status", 42)
        .await
        .unwrap();
    assert_eq!(other.relay_cursor("kafka-status").await.unwrap(), 42);
    drop(lease);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(mut l) = other.try_relay_lease().await.unwrap() {
            other
                .set_relay_cursor(&mut l, "kafka-status", 43)
                .await
                .unwrap();
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lease never passed on"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(db.store.relay_cursor("kafka-status").await.unwrap(), 43);
}

/// A SQLite file has one serving process: the lease is always granted.
#[tokio::test]
async fn sqlite_relay_lease_always_granted() {
    let db = sqlite().await;
    let mut a = db.store.try_relay_lease().await.unwrap().unwrap();
    let _b = db.store.try_relay_lease().await.unwrap().unwrap();
    db.store
        .set_relay_cursor(&mut a, "kafka-dead-letters", 7)
        .await
        .unwrap();
    assert_eq!(
        db.store.relay_cursor("kafka-dead-letters").await.unwrap(),
        7
    );
}
