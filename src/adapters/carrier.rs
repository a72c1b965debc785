//! The SMS [`Channel`]: the engine's dispatches go out over the session
//! layer's carrier links, and link events come back as [`ChannelEvent`]s.
//!
//! * One [`Link`] per configured [`LinkSpec`]; the route name is the link name.
//! * A message is split into segments here with the codecs (ASCII as
//!   ASCII, anything else as UCS-2, 8-bit concatenation reference); each
//!   segment is one session submit with its own token, mapped back to
//!   (dispatch token, part) when its result arrives.
//! * Outcome classes: `Throttled` → throttled, `Retryable` and `Unsent` →
//!   transient, `Permanent` and `Invalid` → permanent, `TimedOut` and
//!   `Unknown` (connection lost in flight) → unknown.
//! * Provider ids are the carrier msg-id in lowercase hex, the same form
//!   for the submit response and the report whatever the protocol.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use smsgw_codecs::text::{self, DataCoding, Family};
use smsgw_codecs::udh::ConcatRef;
use smsgw_codecs::StatusClass;
use tokio::sync::mpsc;

use crate::engine::metrics as m;
use crate::engine::ports::*;
use crate::engine::retry::OutcomeClass;
use crate::engine::types::*;
use crate::session::rate::RateConfig;
use crate::session::window::WindowConfig;
use crate::session::{
    Credentials, Link, LinkConfig, LinkEvent, LinkHandle, Segment, SubmitRequest, Submitter,
};

/// The codec family of a protocol (ASCII limits differ).
pub fn family(p: ProtocolKind) -> Family {
    match p {
        ProtocolKind::Cmpp2 | ProtocolKind::Cmpp3 => Family::Cmpp,
        ProtocolKind::Smgp => Family::Smgp,
        ProtocolKind::Sgip => Family::Sgip,
    }
}

fn coding_of(text: &str) -> DataCoding {
    if text.is_ascii() {
        DataCoding::ASCII
    } else {
        DataCoding::UCS2
    }
}

fn class_of(c: StatusClass) -> OutcomeClass {
    match c {
        StatusClass::Throttled => OutcomeClass::Throttled,
        StatusClass::Permanent => OutcomeClass::Permanent,
        StatusClass::Retryable | StatusClass::Ok => OutcomeClass::Transient,
    }
}

/// Knobs of the carrier channel that are not per link.
#[derive(Debug, Clone)]
pub struct CarrierOptions {
    /// Response timeout T per submit.
    pub response_timeout: Duration,
    /// Sends without a response before the outcome is unknown (N).
    pub max_sends: u32,
    /// Service code put in every submit.
    pub service_id: String,
}

impl Default for CarrierOptions {
    fn default() -> Self {
        CarrierOptions {
            response_timeout: Duration::from_secs(60),
            max_sends: 3,
            service_id: "smsgw".into(),
        }
    }
}

struct Route {
    handle: LinkHandle,
    submitter: Submitter,
    /// Submit queue capacity; `ready` keeps room for a long message.
    capacity: usize,
    /// `ready` while fewer than this many submits wait in the link's FIFO
    /// queue: priority lives in the engine's lanes, so the queue stays
    /// shallow and an otp message never waits behind a long FIFO.
    ready_depth: usize,
    protocol: ProtocolKind,
    src_id: String,
    up: Arc<AtomicBool>,
}

/// Room `ready` keeps free in a link's submit queue, so a dispatch (at most
/// this many segments) never waits on a full queue while its own link's
/// results wait to be read.
const HEADROOM: usize = 16;

/// Session token → where its result belongs.
type Pending = Arc<Mutex<HashMap<u64, (DispatchToken, u16)>>>;

pub struct CarrierChannel {
    routes: HashMap<String, Route>,
    pending: Pending,
    next_token: AtomicU64,
    next_ref: AtomicU8,
    service_id: String,
    /// Every link's connections notify it when they take a submit.
    room: Arc<tokio::sync::Notify>,
}

/// The session layer's config for an operator's link.
pub fn link_config(l: &LinkSpec, opts: &CarrierOptions) -> anyhow::Result<LinkConfig> {
    let mut cfg = LinkConfig::new(
        &l.name,
        l.protocol,
        &l.addr,
        Credentials {
            account: l.account.clone(),
            secret: l.secret.clone(),
            node_id: 3_000_000_001,
        },
    );
    cfg.connections = l.connections.max(1);
    cfg.window = WindowConfig::try_new(
        l.window.max(1) as usize,
        opts.response_timeout,
        opts.max_sends,
    )?;
    cfg.rate = l
        .tps
        .map_or_else(RateConfig::unlimited, RateConfig::from_tps);
    Ok(cfg)
}

impl CarrierChannel {
    /// Starts every link; events of all links come out of the receiver.
    pub async fn start(
        links: &[LinkSpec],
        opts: CarrierOptions,
    ) -> anyhow::Result<(Self, mpsc::Receiver<ChannelEvent>)> {
        let (tx, rx) = mpsc::channel(8192);
        let pending: Pending = Arc::default();
        let room = Arc::new(tokio::sync::Notify::new());
        let mut routes = HashMap::new();
        for l in links {
            let mut cfg = link_config(l, &opts)?;
            cfg.room = Some(room.clone());
            cfg.queue_capacity =
                (l.window.max(1) as usize * cfg.connections as usize * 2).max(64) + HEADROOM;
            let capacity = cfg.queue_capacity;
            let ready_depth = (cfg.connections as usize * 4).max(8);
            cfg.events_capacity = 4096;
            let (handle, events) = Link::start(cfg).await?;
            let up = Arc::new(AtomicBool::new(false));
            routes.insert(
                l.name.clone(),
                Route {
                    submitter: handle.submitter(),
                    handle,
                    capacity,
                    ready_depth,
                    protocol: l.protocol,
                    src_id: l.account.clone(),
                    up: up.clone(),
                },
            );
            tokio::spawn(forward(
                l.name.clone(),
                events,
                tx.clone(),
                pending.clone(),
                up,
            ));
        }
        let ch = CarrierChannel {
            routes,
            pending,
            next_token: AtomicU64::new(1),
            next_ref: AtomicU8::new(0),
            service_id: opts.service_id,
            room,
        };
        Ok((ch, rx))
    }

    /// Stops every link: queued submits come back as `Unsent`, in-flight ones settle.
    pub async fn shutdown(self) {
        for (_, r) in self.routes {
            r.handle.shutdown().await;
        }
    }

    pub fn routes(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    fn segments(&self, route: &Route, d: &Dispatch) -> Result<Vec<Segment>, String> {
        let coding = coding_of(&d.content.text);
        let reference = ConcatRef::Eight(self.next_ref.fetch_add(1, Ordering::Relaxed));
        let parts = text::split(&d.content.text, coding, family(route.protocol), reference)
            .map_err(|e| e.to_string())?;
        Ok(parts
            .into_iter()
            .map(|s| Segment {
                src_id: route.src_id.clone(),
                dest: d.to.clone(),
                service_id: self.service_id.clone(),
                msg_fmt: coding.0,
                udhi: s.concat.is_some(),
                pk_total: s.pk_total(),
                pk_number: s.pk_number(),
                content: Bytes::from(s.content.to_vec()),
                need_report: d.options.want_report,
            })
            .collect())
    }
}

async fn forward(
    link: String,
    mut events: mpsc::Receiver<LinkEvent>,
    tx: mpsc::Sender<ChannelEvent>,
    pending: Pending,
    up: Arc<AtomicBool>,
) {
    let mut conns: HashSet<u32> = HashSet::new();
    while let Some(ev) = events.recv().await {
        let take = |t: u64| pending.lock().expect("poisoned").remove(&t);
        let route = link.clone();
        let out = match ev {
            LinkEvent::Accepted {
                token,
                carrier_id,
                latency,
                answered_at,
                ..
            } => take(token).map(|(t, part)| {
                if part == 1 {
                    // when the submit went out, on the wall clock
                    let sent_ago = answered_at.elapsed() + latency;
                    let secs = m::seconds_since(t.accepted_at) - sent_ago.as_secs_f64();
                    metrics::histogram!(m::ACCEPT_TO_SUBMIT, "priority" => t.priority.as_str())
                        .record(secs.max(0.0));
                }
                ChannelEvent::Accepted {
                    token: t,
                    part,
                    provider_id: ProviderMsgId::new(&carrier_id.to_hex()),
                    route,
                }
            }),
            LinkEvent::Rejected {
                token, code, class, ..
            } => take(token).map(|(t, part)| ChannelEvent::Rejected {
                token: t,
                part,
                code: code.to_string(),
                class: class_of(class),
                route,
            }),
            LinkEvent::TimedOut { token } => take(token).map(|(t, part)| ChannelEvent::Unknown {
                token: t,
                part,
                reason: UnknownReason::TimedOut,
                route,
            }),
            LinkEvent::Unknown { token } => take(token).map(|(t, part)| ChannelEvent::Unknown {
                token: t,
                part,
                reason: UnknownReason::ConnectionLost,
                route,
            }),
            LinkEvent::Unsent { token } => take(token).map(|(t, part)| ChannelEvent::Rejected {
                token: t,
                part,
                code: "unsent".into(),
                class: OutcomeClass::Transient,
                route,
            }),
            LinkEvent::Invalid { token, reason } => {
                take(token).map(|(t, part)| ChannelEvent::Rejected {
                    token: t,
                    part,
                    code: format!("invalid: {reason}"),
                    class: OutcomeClass::Permanent,
                    route,
                })
            }
            LinkEvent::Report(r) => {
                // The carrier gets its answer once the engine stored it.
                let ack = r.ack;
                Some(ChannelEvent::Report(Report {
                    provider_id: ProviderMsgId::new(&r.carrier_id.to_hex()),
                    stat: r.stat,
                    delivered: r.delivered,
                    link: Some(route),
                    received_at: Timestamp::now(),
                    ack: Some(Ack::new(move || {
                        ack.ack();
                    })),
                }))
            }
            LinkEvent::Mo(mo) => Some(ChannelEvent::Inbound {
                from: mo.src.clone(),
                to: mo.dest.clone(),
                text: text::decode(&mo.content, DataCoding(mo.msg_fmt)),
                route,
            }),
            LinkEvent::Up { conn } => {
                let was = !conns.is_empty();
                conns.insert(conn);
                up.store(true, Ordering::SeqCst);
                (!was).then_some(ChannelEvent::RouteState { route, up: true })
            }
            LinkEvent::Down { conn, reason } => {
                tracing::warn!(carrier = %link, conn, reason = %reason, "connection down");
                let was = !conns.is_empty();
                conns.remove(&conn);
                let now_up = !conns.is_empty();
                up.store(now_up, Ordering::SeqCst);
                (was && !now_up).then_some(ChannelEvent::RouteState { route, up: false })
            }
        };
        if let Some(out) = out {
            if tx.send(out).await.is_err() {
                break;
            }
        }
    }
}

impl Channel for CarrierChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(self.shutdown())
    }

    fn parts(&self, content: &Content) -> u16 {
        // Per protocol the ASCII limits differ; without a route take the stricter SMGP/SGIP ones.
        text::segment_count(
            &content.text,
            coding_of(&content.text),
            Family::Sgip,
            ConcatRef::Eight(0),
        )
        .map_or(1, |n| n as u16)
    }

    fn readiness(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.room.clone())
    }

    fn ready(&self, route: &str) -> bool {
        self.routes.get(route).is_some_and(|r| {
            r.up.load(Ordering::SeqCst)
                && r.handle.queued() + HEADROOM <= r.capacity
                && r.handle.queued() < r.ready_depth
        })
    }

    fn ready_for(&self, route: &str, p: Priority) -> bool {
        if p != Priority::Otp {
            return self.ready(route);
        }
        // otp goes through the link's urgent queue, ahead of the FIFO
        self.routes.get(route).is_some_and(|r| {
            r.up.load(Ordering::SeqCst) && r.handle.urgent_queued() + HEADROOM <= r.capacity
        })
    }

    fn dispatch(&self, d: Dispatch) -> BoxFuture<'_, Result<(), DispatchError>> {
        Box::pin(async move {
            let name = d.options.route.clone().unwrap_or_default();
            let route = self
                .routes
                .get(&name)
                .ok_or_else(|| DispatchError::NoRoute {
                    to_class: name.clone(),
                })?;
            let segs = match self.segments(route, &d) {
                Ok(s) => s,
                Err(_) => {
                    return Err(DispatchError::NoRoute {
                        to_class: "unencodable text".into(),
                    })
                }
            };
            for (i, seg) in segs.into_iter().enumerate() {
                let token = self.next_token.fetch_add(1, Ordering::Relaxed);
                self.pending
                    .lock()
                    .expect("poisoned")
                    .insert(token, (d.token, i as u16 + 1));
                let req = SubmitRequest {
                    token,
                    segment: seg,
                };
                let sent = if d.options.priority == Priority::Otp {
                    route.submitter.submit_urgent(req).await
                } else {
                    route.submitter.submit(req).await
                };
                if sent.is_err() {
                    self.pending.lock().expect("poisoned").remove(&token);
                    return Err(DispatchError::Closed);
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::validate::sms_segments;

    #[test]
    fn engine_segment_count_agrees_with_codecs() {
        let texts = [
            "a".to_string(),
            "a".repeat(140),
            "a".repeat(141),
            "a".repeat(159),
            "a".repeat(160),
            "a".repeat(306),
            "a".repeat(307),
            "中".repeat(70),
            "中".repeat(71),
            "中".repeat(134),
            "中".repeat(135),
            format!("{}a", "中".repeat(69)),
        ];
        for t in &texts {
            for (carrier, fam) in [
                (Carrier::Mobile, Family::Cmpp),
                (Carrier::Telecom, Family::Smgp),
                (Carrier::Unicom, Family::Sgip),
            ] {
                let codec = text::segment_count(t, coding_of(t), fam, ConcatRef::Eight(0)).unwrap();
                assert_eq!(
                    sms_segments(t, Some(carrier)) as usize,
                    codec,
                    "{} chars to {carrier}",
                    t.chars().count()
                );
            }
        }
    }
}
