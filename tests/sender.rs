//! The sender over a real SQLite store with a scripted channel: lanes,
//! routing, outcome handling, report correlation, possible duplicates.
#![cfg(feature = "sql")]

use std::time::Duration;

use smsgw::adapters::sql::SqlStore;
use smsgw::engine::correlate::Correlator;
use smsgw::engine::dispatch::{Sender, SenderConfig};
use smsgw::engine::retry::{OutcomeClass, RetryPolicy};
use smsgw::engine::routing::NumberPlan;
use smsgw::engine::sweeper;
use smsgw::engine::validate::{validate, Rules};
use smsgw::engine::*;

const T0: Timestamp = Timestamp(1_800_000_000_000);

fn link(name: &str, protocol: ProtocolKind) -> LinkSpec {
    LinkSpec {
        name: name.into(),
        protocol,
        addr: "127.0.0.1:1".into(),
        account: "a".into(),
        secret: "s".into(),
        connections: 1,
        window: 16,
        tps: None,
        weight: 1,
    }
}

async fn setup(policy: RetryPolicy) -> (Sender<SqlStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let links = [
        link("m1", ProtocolKind::Cmpp3),
        link("u1", ProtocolKind::Sgip),
    ];
    let cfg = SenderConfig {
        lane_capacity: 100,
        ..SenderConfig::default()
    };
    let mut s = Sender::new(
        store,
        &links,
        policy,
        Correlator::new(Duration::from_secs(60)),
        cfg,
    );
    s.set_link_up("m1", true);
    s.set_link_up("u1", true);
    (s, dir)
}

fn policy() -> RetryPolicy {
    RetryPolicy::try_new(
        Duration::from_secs(1),
        Duration::from_secs(10),
        3,
        0.0,
        true,
    )
    .unwrap()
}

async fn put(s: &Sender<SqlStore>, json: &str) {
    let v = validate(
        json.as_bytes(),
        "t",
        T0,
        &Rules::default(),
        &NumberPlan::default(),
    );
    assert!(v.dead.is_empty(), "{:?}", v.dead);
    s.store().accept(&v.messages, &[]).await.unwrap();
}

fn accepted(d: &Dispatch, part: u16, pid: &str) -> ChannelEvent {
    ChannelEvent::Accepted {
        token: d.token,
        part,
        provider_id: ProviderMsgId::new(pid),
        route: d.options.route.clone().unwrap(),
    }
}

fn report(pid: &str, delivered: bool, at: Timestamp) -> ChannelEvent {
    ChannelEvent::Report(Report {
        provider_id: ProviderMsgId::new(pid),
        stat: if delivered { "DELIVRD" } else { "UNDELIV" }.into(),
        delivered,
        link: Some("m1".into()),
        received_at: at,
        ack: None,
    })
}

#[tokio::test]
async fn otp_goes_first_and_routes_by_carrier() {
    let (mut s, _d) = setup(policy()).await;
    for i in 0..50 {
        put(
            &s,
            &format!(r#"{{"id":"mk{i}","to":"13800138000","text":"sale","priority":"marketing"}}"#),
        )
        .await;
    }
    put(&s, r#"{"id":"n1","to":"13800138000","text":"bill"}"#).await;
    put(
        &s,
        r#"{"id":"o1","to":"13800138000","text":"code 1234","priority":"otp"}"#,
    )
    .await;
    put(&s, r#"{"id":"u","to":"18612345678","text":"hi"}"#).await;
    let f = s.fill(T0).await.unwrap();
    assert_eq!((f.claimed, f.queued), (53, 53));
    assert_eq!(s.backlog("m1", Priority::Marketing), 50);
    let first = s.next_for("m1").unwrap();
    assert_eq!(first.options.priority, Priority::Otp);
    assert_eq!(first.content.text, "code 1234");
    assert_eq!(s.next_for("m1").unwrap().options.priority, Priority::Notify);
    let u = s.next_for("u1").unwrap();
    assert_eq!(u.to, "18612345678");
    assert!(s.next_for("u1").is_none());
}

#[tokio::test]
async fn accepted_then_reports_deliver_a_long_message() {
    let (mut s, _d) = setup(policy()).await;
    put(
        &s,
        &format!(
            r#"{{"id":"L","to":"13800138000","text":"{}"}}"#,
            "好".repeat(100)
        ),
    )
    .await;
    s.fill(T0).await.unwrap();
    let d = s.next_for("m1").unwrap();
    let mut evs = vec![];
    // part 2's report arrives before either response
    evs.extend(s.on_event(report("B", true, T0), T0).await.unwrap());
    evs.extend(s.on_event(accepted(&d, 1, "A"), T0).await.unwrap());
    evs.extend(s.on_event(accepted(&d, 2, "B"), T0).await.unwrap());
    evs.extend(
        s.on_event(report("A", true, T0.plus(Duration::from_secs(3))), T0)
            .await
            .unwrap(),
    );
    let st: Vec<_> = evs.iter().map(|e| e.state).collect();
    assert_eq!(st, [MessageState::Submitted, MessageState::Delivered]);
    assert_eq!(evs[1].segments, 2);
    let stats = s.store().stats().await.unwrap();
    assert_eq!(stats.by_state["delivered"], 1);
    assert_eq!(stats.by_link["m1"].segments, 2);
}

#[tokio::test]
async fn outcomes_drive_retry_fail_and_possible_duplicates() {
    let (mut s, _d) = setup(policy()).await;
    put(&s, r#"{"id":"thr","to":"13800138000","text":"x"}"#).await;
    put(&s, r#"{"id":"perm","to":"13800138000","text":"x"}"#).await;
    put(&s, r#"{"id":"unk","to":"13800138000","text":"x"}"#).await;
    s.fill(T0).await.unwrap();
    let mut by_id = std::collections::HashMap::new();
    while let Some(d) = s.next_for("m1") {
        by_id.insert(d.token.message, d);
    }
    let hist = |s: &Sender<SqlStore>, id: &'static str| {
        let st = s.store().clone();
        async move { st.history(id).await.unwrap() }
    };
    for (i, d) in by_id.values().enumerate() {
        let ev = match i {
            _ if d.token.message.0 == 1 => ChannelEvent::Rejected {
                token: d.token,
                part: 1,
                code: "8".into(),
                class: OutcomeClass::Throttled,
                route: "m1".into(),
            },
            _ if d.token.message.0 == 2 => ChannelEvent::Rejected {
                token: d.token,
                part: 1,
                code: "13".into(),
                class: OutcomeClass::Permanent,
                route: "m1".into(),
            },
            _ => ChannelEvent::Unknown {
                token: d.token,
                part: 1,
                reason: UnknownReason::ConnectionLost,
                route: "m1".into(),
            },
        };
        s.on_event(ev, T0).await.unwrap();
    }
    let perm = hist(&s, "perm").await;
    assert_eq!(perm.last().unwrap().state, MessageState::Failed);
    assert_eq!(perm.last().unwrap().code.as_deref(), Some("13"));
    // nothing due before the 1 s backoff
    assert_eq!(
        s.fill(T0.plus(Duration::from_millis(999)))
            .await
            .unwrap()
            .claimed,
        0
    );
    let t1 = T0.plus(Duration::from_secs(1));
    assert_eq!(s.fill(t1).await.unwrap().claimed, 2);
    let mut dup = None;
    while let Some(d) = s.next_for("m1") {
        if d.token.message.0 == 3 {
            dup = Some(d);
        }
    }
    // the unknown one keeps failing: after 3 attempts it waits as retryable
    let mut d = dup.unwrap();
    let mut now = t1;
    for _ in 0..2 {
        s.on_event(
            ChannelEvent::Unknown {
                token: d.token,
                part: 1,
                reason: UnknownReason::TimedOut,
                route: "m1".into(),
            },
            now,
        )
        .await
        .unwrap();
        now = now.plus(Duration::from_secs(30));
        s.fill(now).await.unwrap();
        match std::iter::from_fn(|| s.next_for("m1")).find(|x| x.token.message.0 == 3) {
            Some(x) => d = x,
            None => break,
        }
    }
    let stats = s.store().stats().await.unwrap();
    assert_eq!(stats.by_state["retryable"], 1, "{stats:?}");
    assert_eq!(stats.possible_duplicates, 1);
    // the carrier is back: the sweeper resends it, the carrier takes it, marked as possible duplicate
    let rep = sweeper::sweep(
        s.store(),
        &Correlator::new(Duration::from_secs(60)),
        now,
        Duration::from_secs(3600),
        100,
    )
    .await
    .unwrap();
    assert_eq!(rep.resent, 1);
    s.fill(now).await.unwrap();
    let d = std::iter::from_fn(|| s.next_for("m1"))
        .find(|x| x.token.message.0 == 3)
        .unwrap();
    let evs = s.on_event(accepted(&d, 1, "Z"), now).await.unwrap();
    assert_eq!(evs[0].state, MessageState::Submitted);
    assert!(evs[0].possible_duplicate);
}

#[tokio::test]
async fn down_links_are_skipped_and_lost_claims_are_marked() {
    let (mut s, _d) = setup(policy()).await;
    s.set_link_up("m1", false);
    put(&s, r#"{"id":"a","to":"13800138000","text":"x"}"#).await;
    let f = s.fill(T0).await.unwrap();
    assert_eq!((f.claimed, f.unroutable), (1, 1));
    s.set_link_up("m1", true);
    let later = T0.plus(Duration::from_secs(5));
    assert_eq!(s.fill(later).await.unwrap().queued, 1);
    let d = s.next_for("m1").unwrap();
    assert!(!d.token.attempt.eq(&0));
    // the process "crashes" with it in flight: a new sender re-claims it after the lease
    let store = s.store().clone();
    let mut s2 = Sender::new(
        store,
        &[link("m1", ProtocolKind::Cmpp3)],
        policy(),
        Correlator::new(Duration::from_secs(60)),
        SenderConfig::default(),
    );
    s2.set_link_up("m1", true);
    assert_eq!(
        s2.fill(later.plus(Duration::from_secs(60)))
            .await
            .unwrap()
            .claimed,
        0
    );
    assert_eq!(
        s2.fill(later.plus(Duration::from_secs(121)))
            .await
            .unwrap()
            .claimed,
        1
    );
    let d2 = s2.next_for("m1").unwrap();
    let evs = s2
        .on_event(accepted(&d2, 1, "P"), later.plus(Duration::from_secs(122)))
        .await
        .unwrap();
    assert!(
        evs[0].possible_duplicate,
        "a resend after an unknown fate is marked"
    );
}

#[tokio::test]
async fn claims_given_back_do_not_use_up_attempts() {
    let (mut s, _d) = setup(policy()).await;
    let to: Vec<String> = (0..300).map(|i| format!("\"1380000{i:04}\"")).collect();
    put(
        &s,
        &format!(
            r#"{{"id":"bulk","to":[{}],"text":"sale","priority":"marketing"}}"#,
            to.join(",")
        ),
    )
    .await;
    // The marketing lane holds 100: a fill claims no more than the least
    // room of any lane, so repeated fills never claim past it.
    for _ in 0..5 {
        s.fill(T0).await.unwrap();
    }
    assert_eq!(s.backlog("m1", Priority::Marketing), 100);
    // The link goes down with the lane full, and no link is up for a while.
    s.on_event(
        ChannelEvent::RouteState {
            route: "m1".into(),
            up: false,
        },
        T0,
    )
    .await
    .unwrap();
    // released claims come back; with no link up they are given back again
    assert_eq!(s.fill(T0).await.unwrap().unroutable, 100);
    s.set_link_up("m1", true);
    let later = T0.plus(Duration::from_secs(5));
    for _ in 0..3 {
        s.fill(later).await.unwrap();
    }
    let d = s.next_for("m1").unwrap();
    // Released, no route: none of it reached the carrier.
    assert_eq!(d.token.attempt, 1, "give-backs counted as attempts");
    // So one lost send is retried, not parked for the sweeper.
    s.on_event(
        ChannelEvent::Unknown {
            token: d.token,
            part: 1,
            reason: UnknownReason::ConnectionLost,
            route: "m1".into(),
        },
        later,
    )
    .await
    .unwrap();
    let stats = s.store().stats().await.unwrap();
    assert_eq!(stats.by_state["retryable"], 0, "{stats:?}");
    assert_eq!(stats.possible_duplicates, 1);
}
