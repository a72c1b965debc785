//! Values that cross the session boundary: what the engine submits and what
//! the session reports back.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use smsgw_codecs::StatusClass;
use tokio::sync::mpsc;

/// A carrier's message id, normalised for use as a key: CMPP's 8-byte
/// Msg_Id, SMGP's 10-byte BCD MsgID, SGIP's 12-byte submit sequence. Stored
/// inline (no allocation), compared and hashed by its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CarrierMsgId {
    len: u8,
    bytes: [u8; CarrierMsgId::MAX],
}

impl CarrierMsgId {
    pub const MAX: usize = 12;

    /// `None` when longer than 12 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        if b.len() > Self::MAX {
            return None;
        }
        let mut bytes = [0u8; Self::MAX];
        bytes[..b.len()].copy_from_slice(b);
        Some(CarrierMsgId {
            len: b.len() as u8,
            bytes,
        })
    }

    pub fn from_u64(v: u64) -> Self {
        let mut bytes = [0u8; Self::MAX];
        bytes[..8].copy_from_slice(&v.to_be_bytes());
        CarrierMsgId { len: 8, bytes }
    }

    /// SGIP: the 3-part sequence of the Submit (node, time, counter).
    pub fn from_u32x3(a: u32, b: u32, c: u32) -> Self {
        let mut bytes = [0u8; Self::MAX];
        bytes[..4].copy_from_slice(&a.to_be_bytes());
        bytes[4..8].copy_from_slice(&b.to_be_bytes());
        bytes[8..12].copy_from_slice(&c.to_be_bytes());
        CarrierMsgId { len: 12, bytes }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Lower-case hex, the form used in logs and stores.
    pub fn to_hex(&self) -> String {
        hex::encode(self.as_bytes())
    }
}

impl fmt::Display for CarrierMsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CarrierMsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CarrierMsgId({self})")
    }
}

/// One PDU's worth of an MT message (a long message is split by the caller;
/// each segment is submitted on its own and gets its own result).
#[derive(Clone, PartialEq, Eq)]
pub struct Segment {
    /// Source address: the SP service code, optionally with an extension.
    pub src_id: String,
    /// One destination MSISDN.
    pub dest: String,
    /// Service code (CMPP Service_Id, SMGP ServiceID, SGIP ServiceType).
    pub service_id: String,
    /// Data coding (Msg_Fmt / MsgFormat / MessageCoding): 0 ASCII, 8 UCS-2, 15 GBK...
    pub msg_fmt: u8,
    /// Content starts with a user data header.
    pub udhi: bool,
    /// Encoded content, UDH included when `udhi`.
    pub content: Bytes,
    /// Ask for a status report.
    pub need_report: bool,
    /// Segment count and number (1-based), 1/1 for a short message.
    pub pk_total: u8,
    pub pk_number: u8,
}

impl fmt::Debug for Segment {
    // Never log message text or full numbers above trace (STYLE B7).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("src_id", &self.src_id)
            .field("dest", &mask_msisdn(&self.dest))
            .field("service_id", &self.service_id)
            .field("msg_fmt", &self.msg_fmt)
            .field("udhi", &self.udhi)
            .field("content_len", &self.content.len())
            .field("pk", &(self.pk_number, self.pk_total))
            .finish()
    }
}

impl Segment {
    /// A single-segment text message in the given coding.
    pub fn single(src_id: &str, dest: &str, service_id: &str, msg_fmt: u8, content: Bytes) -> Self {
        Segment {
            src_id: src_id.into(),
            dest: dest.into(),
            service_id: service_id.into(),
            msg_fmt,
            udhi: false,
            content,
            need_report: true,
            pk_total: 1,
            pk_number: 1,
        }
    }
}

/// Masks all but the first 3 and last 4 digits.
pub fn mask_msisdn(n: &str) -> String {
    let chars: Vec<char> = n.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..3].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - 7));
    out.extend(chars[chars.len() - 4..].iter());
    out
}

/// What the engine hands the session: a segment and an opaque token that
/// comes back in exactly one result event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitRequest {
    pub token: u64,
    pub segment: Segment,
}

/// The answer to one received status report (DELIVER_RESP, Deliver_Resp,
/// Report_Resp), held back until whoever consumes the report calls
/// [`ack`](ReportAck::ack) — after it stored the report durably. Until then
/// the carrier considers the report undelivered and resends it (after its
/// timeout, or on a later connection), so a crash between receipt and
/// storage loses nothing: reports are at-least-once, and the consumer must
/// settle a repeated report idempotently.
///
/// Cheap to clone (clones share one answer, written at most once). An ack
/// for a connection that has gone away is dropped silently. Never acking is
/// legitimate: the carrier resends.
///
/// Compares equal to every other `ReportAck`, so `Report` stays comparable.
#[derive(Clone, Default)]
pub struct ReportAck(Option<Arc<AckInner>>);

struct AckInner {
    /// Back to the connection that received the report.
    tx: mpsc::UnboundedSender<Bytes>,
    /// The encoded reply frame.
    frame: Bytes,
    sent: AtomicBool,
}

impl ReportAck {
    /// An ack that writes nothing (for reports built outside a connection).
    pub fn none() -> Self {
        ReportAck(None)
    }

    /// Writes `frame` on the connection behind `tx` when acked.
    pub(crate) fn new(tx: mpsc::UnboundedSender<Bytes>, frame: Bytes) -> Self {
        ReportAck(Some(Arc::new(AckInner {
            tx,
            frame,
            sent: AtomicBool::new(false),
        })))
    }

    /// Answers the report on the connection it came in on (once; later
    /// calls, on this handle or a clone, do nothing). Returns false when
    /// nothing was written: already acked, no reply to send, or the
    /// connection is gone (the carrier will resend the report).
    pub fn ack(&self) -> bool {
        let Some(inner) = &self.0 else {
            return false;
        };
        if inner.sent.swap(true, Ordering::AcqRel) {
            return false;
        }
        inner.tx.send(inner.frame.clone()).is_ok()
    }

    /// True once [`ack`](Self::ack) was called (on any clone).
    pub fn is_acked(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|i| i.sent.load(Ordering::Acquire))
    }
}

impl fmt::Debug for ReportAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.0 {
            None => "none",
            Some(i) if i.sent.load(Ordering::Acquire) => "acked",
            Some(_) => "pending",
        };
        write!(f, "ReportAck({state})")
    }
}

impl PartialEq for ReportAck {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ReportAck {}

/// A status report, normalised across protocols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The id the carrier gave in the submit response.
    pub carrier_id: CarrierMsgId,
    /// The raw 7-character state (DELIVRD, UNDELIV, ...), or a code as text.
    pub stat: String,
    /// True only for a successful delivery.
    pub delivered: bool,
    /// Recipient of the original submit.
    pub dest: String,
    /// Carrier's submit and done times as sent (YYMMDDHHMM), if any.
    pub submit_time: String,
    pub done_time: String,
    /// Sends the carrier its answer; call it once the report is stored.
    /// Ignored by `==`.
    pub ack: ReportAck,
}

/// A mobile-originated message, reassembled when it came in segments.
#[derive(Clone, PartialEq, Eq)]
pub struct Mo {
    pub src: String,
    pub dest: String,
    pub service_id: String,
    pub msg_fmt: u8,
    /// Content without any UDH.
    pub content: Bytes,
    /// CMPP 3.0 LinkID (echo it in on-demand replies), else empty.
    pub link_id: String,
}

impl fmt::Debug for Mo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mo")
            .field("src", &mask_msisdn(&self.src))
            .field("dest", &self.dest)
            .field("msg_fmt", &self.msg_fmt)
            .field("content_len", &self.content.len())
            .finish()
    }
}

/// One MO PDU as the dialect reads it, before reassembly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoSegment {
    pub mo: Mo,
    /// Content still carries the UDH when set.
    pub udhi: bool,
}

/// Why a connection went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// Could not open TCP within the connect timeout, or refused.
    Connect(String),
    /// The carrier refused the login.
    LoginRefused { code: u32, class: StatusClass },
    /// No login response in time.
    LoginTimeout,
    /// The peer closed the socket or an I/O error occurred.
    Io(String),
    /// The byte stream could not be framed.
    Framing(String),
    /// N heartbeats went unanswered.
    HeartbeatMissed,
    /// The peer asked to close (TERMINATE / Exit / Unbind).
    PeerClosed,
    /// The link config cannot produce a valid login (e.g. account too long).
    Config(String),
    /// We shut down.
    Shutdown,
}

impl DownReason {
    /// Bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            DownReason::Connect(_) => "connect",
            DownReason::LoginRefused { .. } => "login_refused",
            DownReason::LoginTimeout => "login_timeout",
            DownReason::Io(_) => "io",
            DownReason::Framing(_) => "framing",
            DownReason::HeartbeatMissed => "heartbeat",
            DownReason::PeerClosed => "peer_closed",
            DownReason::Config(_) => "config",
            DownReason::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::Connect(e) => write!(f, "connect failed: {e}"),
            DownReason::LoginRefused { code, class } => {
                write!(f, "login refused: status {code} ({class})")
            }
            DownReason::LoginTimeout => f.write_str("login timed out"),
            DownReason::Io(e) => write!(f, "i/o: {e}"),
            DownReason::Framing(e) => write!(f, "framing: {e}"),
            DownReason::HeartbeatMissed => f.write_str("heartbeats unanswered"),
            DownReason::PeerClosed => f.write_str("peer closed the session"),
            DownReason::Config(e) => write!(f, "config: {e}"),
            DownReason::Shutdown => f.write_str("shut down"),
        }
    }
}

/// Everything a link reports. Every submitted token gets exactly one of
/// `Accepted`, `Rejected`, `TimedOut`, `Unknown`, `Unsent` or `Invalid`.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// The carrier took the segment.
    Accepted {
        token: u64,
        carrier_id: CarrierMsgId,
        conn: u32,
        /// Submit written → response read.
        latency: Duration,
        /// When the response was read (so the submit went out at
        /// `answered_at - latency`).
        answered_at: std::time::Instant,
    },
    /// The carrier refused it. `Throttled` and `Retryable` may be resubmitted.
    Rejected {
        token: u64,
        code: u32,
        class: StatusClass,
        latency: Duration,
    },
    /// N sends without any response.
    TimedOut { token: u64 },
    /// Sent, then the connection was lost before a response: the carrier
    /// may or may not have it.
    Unknown { token: u64 },
    /// Never sent (the link shut down with it queued): safe to resubmit.
    Unsent { token: u64 },
    /// The segment cannot be encoded for this protocol; resending won't help.
    Invalid { token: u64, reason: String },
    /// A status report; unanswered until `report.ack.ack()` (call it once
    /// the report is stored — the carrier resends unanswered ones).
    Report(Report),
    /// A (reassembled) MO message.
    Mo(Mo),
    /// A connection logged in.
    Up { conn: u32 },
    /// A connection went down (or failed to come up).
    Down { conn: u32, reason: DownReason },
}

impl LinkEvent {
    /// The token, for per-segment results.
    pub fn token(&self) -> Option<u64> {
        match self {
            LinkEvent::Accepted { token, .. }
            | LinkEvent::Rejected { token, .. }
            | LinkEvent::TimedOut { token }
            | LinkEvent::Unknown { token }
            | LinkEvent::Unsent { token }
            | LinkEvent::Invalid { token, .. } => Some(*token),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carrier_id_forms() {
        let a = CarrierMsgId::from_u64(0x0123_4567_89ab_cdef);
        assert_eq!(a.to_hex(), "0123456789abcdef");
        assert_eq!(
            a,
            CarrierMsgId::from_slice(&0x0123_4567_89ab_cdefu64.to_be_bytes()).unwrap()
        );
        let s = CarrierMsgId::from_u32x3(1, 2, 3);
        assert_eq!(s.as_bytes().len(), 12);
        assert!(CarrierMsgId::from_slice(&[0; 13]).is_none());
    }

    #[test]
    fn msisdn_is_masked() {
        assert_eq!(mask_msisdn("13800138000"), "138****8000");
        assert_eq!(mask_msisdn("12345"), "*****");
    }
}
