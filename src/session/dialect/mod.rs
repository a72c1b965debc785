//! What the generic connection driver needs from each protocol: login,
//! sequences, submit, classification of inbound packets, heartbeat and
//! terminate. One implementation per protocol over its codec module.

use bytes::Bytes;
use smsgw_codecs::wire::Timestamp;
use smsgw_codecs::{DecodeError, EncodeError, Packet, Protocol, StatusClass};

use super::types::{CarrierMsgId, MoSegment, Report, Segment};

pub mod cmpp;
pub mod sgip;
pub mod smgp;

/// Account and secret for a login, plus SGIP's node id.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// CMPP Source_Addr (SP_Id), SMGP ClientID, SGIP Login Name.
    pub account: String,
    pub secret: String,
    /// SGIP: the SP node id (3AAAAQQQQQ) used in sequences; ignored elsewhere.
    pub node_id: u32,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("account", &self.account)
            .field("secret", &"***")
            .field("node_id", &self.node_id)
            .finish()
    }
}

/// The carrier's answer to our login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginVerdict {
    Ok,
    Refused { code: u32, class: StatusClass },
}

/// The carrier's answer to one submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    Accepted(CarrierMsgId),
    Rejected { code: u32, class: StatusClass },
}

impl SubmitOutcome {
    pub fn class(&self) -> StatusClass {
        match self {
            SubmitOutcome::Accepted(_) => StatusClass::Ok,
            SubmitOutcome::Rejected { class, .. } => *class,
        }
    }
}

/// An inbound packet, sorted for the driver. `reply` is sent back at once.
#[derive(Debug)]
pub enum Classified<P: Protocol> {
    /// Answer to our login.
    LoginResp {
        verdict: LoginVerdict,
        /// The carrier's authenticator did not verify (logged, not fatal).
        auth_mismatch: bool,
    },
    /// Answer to one of our submits.
    SubmitResp { seq: P::Seq, outcome: SubmitOutcome },
    /// A status report.
    Report { report: Report, reply: Packet<P> },
    /// An MO segment.
    Mo { mo: MoSegment, reply: Packet<P> },
    /// The peer's heartbeat.
    HeartbeatReq { reply: Packet<P> },
    /// Answer to our heartbeat.
    HeartbeatResp,
    /// The peer wants to end the session: answer, then close.
    CloseReq { reply: Packet<P> },
    /// Answer to our terminate.
    CloseResp,
    /// Some other request: answer it (an error response when not supported).
    Other { reply: Option<Packet<P>> },
    /// A response to something we do not track.
    Ignore,
}

/// One protocol seen from the SP side.
pub trait Dialect: Send + 'static {
    type P: Protocol;

    /// The codec protocol value (carries the version where there is one).
    fn protocol(&self) -> Self::P;
    /// Short name for spans and metrics labels ("cmpp", "smgp", "sgip").
    fn name(&self) -> &'static str;

    /// A fresh sequence; wraps.
    fn next_seq(&mut self, ts: Timestamp) -> <Self::P as Protocol>::Seq;

    /// The login request for `creds` at `ts`. Remembers what it needs to
    /// verify the answer.
    fn login(
        &mut self,
        creds: &Credentials,
        ts: Timestamp,
    ) -> Result<<Self::P as Protocol>::Pdu, EncodeError>;

    /// The submit request for one segment.
    fn submit(
        &self,
        creds: &Credentials,
        seg: &Segment,
    ) -> Result<<Self::P as Protocol>::Pdu, EncodeError>;

    /// The keep-alive request; `None` when the protocol has none (SGIP).
    fn heartbeat(&self) -> Option<<Self::P as Protocol>::Pdu>;

    /// The end-of-session request.
    fn terminate(&self) -> <Self::P as Protocol>::Pdu;

    /// Sorts an inbound packet and builds any reply.
    fn classify(&self, creds: &Credentials, pkt: Packet<Self::P>) -> Classified<Self::P>;

    /// The answer to a well-framed packet whose body did not decode, or
    /// `None` when the protocol says to drop the connection (SGIP) or the
    /// packet was a response (nothing to answer).
    fn malformed_reply(
        &self,
        command_id: u32,
        seq: <Self::P as Protocol>::Seq,
        error: &DecodeError,
        frame: &Bytes,
    ) -> Option<Packet<Self::P>>;
}

/// Which protocol a link speaks (the crate-wide name set).
pub use crate::protocol::ProtocolKind;
