//! What a protocol supplies to the generic connection driver: login
//! checks, classification of inbound PDUs, and the PDUs the gateway sends
//! (responses, reports, MO, heartbeats). Protocol-independent job types
//! (reports, MO segments) and message ids live here too.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use smsgw_codecs::wire::FixedStr;
use smsgw_codecs::{DecodeError, Protocol};
use std::sync::Arc;

use crate::clock::Civil;
use crate::core::AccountRt;

/// A terminal number (MSISDN / SP number) as the wire carries it.
pub type Terminal = FixedStr<32>;

pub(crate) type PduOf<B> = <<B as Behavior>::P as Protocol>::Pdu;
pub(crate) type SeqOf<B> = <<B as Behavior>::P as Protocol>::Seq;

/// A message id the simulated gateway hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgId {
    /// CMPP Msg_Id: month 4 | day 5 | hour 5 | minute 6 | second 6 |
    /// gateway 22 | sequence 16 bits.
    Cmpp(u64),
    /// SMGP MsgID: 10 bytes packed BCD (gateway 6, MMDDHHMM 8, seq 6 digits).
    Smgp([u8; 10]),
    /// SGIP: the Submit's own 12-byte sequence (node, time, counter).
    Sgip([u32; 3]),
}

impl MsgId {
    /// The id of the `i`th recipient of a mass submit: CMPP adds inside the
    /// low 16 bits, SMGP inside the 6-digit sequence; SGIP keeps the
    /// sequence (its reports carry the user number).
    pub fn nth(self, i: u32) -> MsgId {
        match self {
            MsgId::Cmpp(v) => {
                let seq = (v as u16).wrapping_add(i as u16);
                MsgId::Cmpp((v & !0xFFFF) | seq as u64)
            }
            MsgId::Smgp(b) => {
                let mut seq = 0u32;
                for byte in &b[7..10] {
                    seq = seq * 100 + (byte >> 4) as u32 * 10 + (byte & 0x0F) as u32;
                }
                let seq = (seq + i) % 1_000_000;
                let mut out = b;
                out[7..10].copy_from_slice(&bcd3(seq));
                MsgId::Smgp(out)
            }
            MsgId::Sgip(s) => MsgId::Sgip(s),
        }
    }

    /// Builds a CMPP Msg_Id from its fields (cmpp.md §14).
    pub fn cmpp(c: &Civil, gateway: u32, seq: u16) -> MsgId {
        MsgId::Cmpp(
            (c.month as u64 & 0xF) << 60
                | (c.day as u64 & 0x1F) << 55
                | (c.hour as u64 & 0x1F) << 50
                | (c.minute as u64 & 0x3F) << 44
                | (c.second as u64 & 0x3F) << 38
                | (gateway as u64 & 0x3F_FFFF) << 16
                | seq as u64,
        )
    }

    /// Builds an SMGP MsgID (smgp.md §9).
    pub fn smgp(c: &Civil, gateway: u32, seq: u32) -> MsgId {
        let mut b = [0u8; 10];
        b[0..3].copy_from_slice(&bcd3(gateway % 1_000_000));
        b[3..7].copy_from_slice(&bcd4(
            c.month * 1_000_000 + c.day * 10_000 + c.hour * 100 + c.minute,
        ));
        b[7..10].copy_from_slice(&bcd3(seq % 1_000_000));
        MsgId::Smgp(b)
    }

    /// The usual text form: CMPP decimal u64, SMGP 20 digits, SGIP
    /// `node-time-counter`.
    pub fn to_text(&self) -> String {
        match self {
            MsgId::Cmpp(v) => v.to_string(),
            MsgId::Smgp(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
            MsgId::Sgip([a, b, c]) => format!("{a}-{b}-{c}"),
        }
    }
}

fn bcd3(v: u32) -> [u8; 3] {
    let d = |n: u32| (((n / 10 % 10) << 4) | (n % 10)) as u8;
    [d(v / 10_000), d(v / 100), d(v)]
}

fn bcd4(v: u32) -> [u8; 4] {
    let d = |n: u32| (((n / 10 % 10) << 4) | (n % 10)) as u8;
    [d(v / 1_000_000), d(v / 10_000), d(v / 100), d(v)]
}

/// The final state of a simulated delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Delivrd,
    Expired,
    Deleted,
    Undeliv,
    Unknown,
    Rejectd,
}

impl Outcome {
    pub fn from_stat(s: &str) -> Option<Outcome> {
        Some(match s.to_ascii_uppercase().as_str() {
            "DELIVRD" => Outcome::Delivrd,
            "EXPIRED" => Outcome::Expired,
            "DELETED" => Outcome::Deleted,
            "UNDELIV" => Outcome::Undeliv,
            "UNKNOWN" => Outcome::Unknown,
            "REJECTD" => Outcome::Rejectd,
            _ => return None,
        })
    }

    /// The 7-character Stat of CMPP / SMGP reports.
    pub fn stat(self) -> &'static [u8; 7] {
        match self {
            Outcome::Delivrd => b"DELIVRD",
            Outcome::Expired => b"EXPIRED",
            Outcome::Deleted => b"DELETED",
            Outcome::Undeliv => b"UNDELIV",
            Outcome::Unknown => b"UNKNOWN",
            Outcome::Rejectd => b"REJECTD",
        }
    }

    /// SMGP report `err:` (smgp.md §8.1).
    pub fn smgp_err(self) -> &'static [u8; 3] {
        match self {
            Outcome::Delivrd => b"000",
            Outcome::Expired => b"001",
            Outcome::Deleted => b"010",
            Outcome::Undeliv => b"006",
            Outcome::Unknown => b"999",
            Outcome::Rejectd => b"004",
        }
    }

    /// SGIP Report State and ErrorCode (sgip.md §9, §10).
    pub fn sgip_state(self) -> (u8, u8) {
        match self {
            Outcome::Delivrd => (0, 0),
            Outcome::Expired => (2, 25),
            Outcome::Deleted => (2, 32),
            Outcome::Undeliv => (2, 21),
            Outcome::Unknown => (2, 29),
            Outcome::Rejectd => (2, 24),
        }
    }
}

/// Weighted outcome table drawn from per report.
#[derive(Debug, Clone)]
pub struct OutcomeTable {
    cumulative: Vec<(f64, Outcome)>,
}

impl OutcomeTable {
    pub fn new(weights: &std::collections::BTreeMap<String, f64>) -> Self {
        let total: f64 = weights.values().filter(|w| **w > 0.0).sum();
        let mut acc = 0.0;
        let mut cumulative = Vec::new();
        for (k, w) in weights {
            if let (Some(o), true) = (Outcome::from_stat(k), *w > 0.0) {
                acc += w / total;
                cumulative.push((acc, o));
            }
        }
        if cumulative.is_empty() {
            cumulative.push((1.0, Outcome::Delivrd));
        }
        OutcomeTable { cumulative }
    }

    pub fn draw(&self, rng: &mut crate::rng::Rng) -> Outcome {
        if self.cumulative.len() == 1 {
            return self.cumulative[0].1;
        }
        let x = rng.f64();
        self.cumulative
            .iter()
            .find(|(c, _)| x < *c)
            .map_or(self.cumulative[self.cumulative.len() - 1].1, |(_, o)| *o)
    }
}

/// A status report waiting to be sent.
#[derive(Debug, Clone)]
pub struct ReportJob {
    /// The id from the submit response (per recipient).
    pub msg_id: MsgId,
    /// The recipient of the original submit.
    pub dest: Terminal,
    /// The submit's sender number (SP code), echoed as the DELIVER Dest_Id.
    pub src: Terminal,
    pub service_id: FixedStr<10>,
    pub outcome: Outcome,
    pub submit_time: Civil,
    /// Sends so far.
    pub attempts: u32,
    pub account: Arc<str>,
}

/// One MO segment waiting to be sent.
#[derive(Debug, Clone)]
pub struct MoSegment {
    /// The handset that sent it.
    pub src: Terminal,
    /// The SP number it was sent to.
    pub dest: Terminal,
    pub service_id: FixedStr<10>,
    pub coding: u8,
    pub udhi: bool,
    /// Content, UDH included.
    pub content: Bytes,
    pub attempts: u32,
    pub account: Arc<str>,
}

/// Something the gateway sends and expects acknowledged.
#[derive(Debug, Clone)]
pub enum Job {
    Report(ReportJob),
    Mo(MoSegment),
}

impl Job {
    pub fn attempts_mut(&mut self) -> &mut u32 {
        match self {
            Job::Report(r) => &mut r.attempts,
            Job::Mo(m) => &mut m.attempts,
        }
    }

    pub fn account(&self) -> &Arc<str> {
        match self {
            Job::Report(r) => &r.account,
            Job::Mo(m) => &m.account,
        }
    }
}

/// The parts of a submit the simulator acts on.
#[derive(Debug, Clone)]
pub struct SubmitInfo {
    pub recipients: SmallVec<[Terminal; 2]>,
    pub src: Terminal,
    pub service_id: FixedStr<10>,
    pub wants_report: bool,
    /// SGIP ReportFlag 0: a report only when delivery fails.
    pub report_failures_only: bool,
    pub coding: u8,
    pub udhi: bool,
    pub pk_total: u8,
    pub pk_number: u8,
    pub content: Bytes,
}

/// What an inbound PDU on a logged-in connection means to the simulator.
pub enum Event<P: Protocol> {
    Submit(Box<SubmitInfo>),
    ActiveTest,
    ActiveTestResp,
    /// DELIVER_RESP / Report_Resp / UserRpt_Resp, matched by sequence.
    Ack,
    Terminate,
    TerminateResp,
    /// Anything else: answer with this response, if any.
    Other(Option<P::Pdu>),
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownAccount,
    BadSecret,
    BadVersion,
    BadLoginType,
    TooManyConnections,
    Malformed,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownAccount => "unknown account",
            Refusal::BadSecret => "authentication failed",
            Refusal::BadVersion => "unsupported version",
            Refusal::BadLoginType => "bad login type",
            Refusal::TooManyConnections => "too many connections",
            Refusal::Malformed => "malformed login",
        }
    }
}

/// The status a submit response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitStatus {
    Ok,
    Throttled,
    /// An injected or vendor code, written as is.
    Code(u32),
}

/// Result of looking at a PDU on a connection that has not logged in.
pub enum LoginAttempt<C> {
    /// Not a login PDU.
    NotLogin,
    Accepted {
        account: Arc<AccountRt>,
        ctx: C,
        /// Whether DELIVER / reports may be sent on this connection
        /// (SMGP login mode 0 is send-only).
        can_receive: bool,
    },
    Refused {
        refusal: Refusal,
        ctx: C,
        account: Option<Arc<AccountRt>>,
    },
}

/// Account lookup handed to `Behavior::login`.
pub trait Accounts {
    fn get(&self, id: &str) -> Option<Arc<AccountRt>>;
}

/// A protocol's side of the simulator.
pub trait Behavior: Send + Sync + 'static {
    type P: Protocol;
    /// What a login response needs from its request (authenticator, version).
    type LoginCtx: Send;

    fn protocol(&self) -> Self::P;

    /// Looks at a PDU received before login.
    fn login(&self, pdu: &PduOf<Self>, accounts: &dyn Accounts) -> LoginAttempt<Self::LoginCtx>;
    /// The login response for an accepted (`Ok`) or refused login.
    fn login_resp(&self, ctx: &Self::LoginCtx, result: Result<(), Refusal>) -> PduOf<Self>;
    /// The answer to a request that arrived before login (then the
    /// connection is closed).
    fn refuse_before_login(&self, pdu: &PduOf<Self>) -> Option<PduOf<Self>>;

    fn classify(&self, pdu: PduOf<Self>) -> Event<Self::P>;

    /// The id a submit gets. `counter` is a fresh sequence from the
    /// simulator's id generator; `seq` is the submit's own sequence.
    fn submit_id(&self, seq: SeqOf<Self>, counter: u32, at: &Civil) -> MsgId;
    /// Period over which the id counter may not repeat: CMPP 65,536 per
    /// second, SMGP 1,000,000 per minute, SGIP unbounded (0).
    fn id_space(&self) -> (u32, u64);
    fn submit_resp(&self, id: MsgId, status: SubmitStatus) -> PduOf<Self>;
    /// The error response to a well-framed request whose body did not
    /// decode, if the protocol has one for that command.
    fn malformed_resp(&self, command_id: u32, error: &DecodeError) -> Option<PduOf<Self>>;

    /// DELIVER (report) / SGIP Report.
    fn report_pdu(&self, job: &ReportJob, deliver_id: MsgId, now: &Civil) -> PduOf<Self>;
    /// DELIVER (MO).
    fn mo_pdu(&self, seg: &MoSegment, deliver_id: MsgId, now: &Civil) -> PduOf<Self>;
    /// The id of a DELIVER the gateway originates.
    fn deliver_id(&self, counter: u32, at: &Civil) -> MsgId;

    /// ACTIVE_TEST, or `None` when the protocol has no link test (SGIP).
    fn active_test(&self) -> Option<PduOf<Self>>;
    fn active_test_resp(&self) -> PduOf<Self>;
    fn terminate_resp(&self) -> PduOf<Self>;

    /// The sequence of the `counter`th request the gateway originates.
    fn seq(&self, counter: u32, at: &Civil) -> SeqOf<Self>;
    /// Command id of DELIVER (used to build a corrupt frame on demand).
    fn deliver_command_id(&self) -> u32;

    /// SGIP: reports and MO go over a separate connection to the SP.
    fn uses_sp_link(&self) -> bool {
        false
    }
    /// SGIP: the Bind the SMG sends to the SP (login type 2).
    fn sp_bind(&self, _name: &str, _password: &str) -> Option<PduOf<Self>> {
        None
    }
    /// SGIP: whether `pdu` is a successful answer to `sp_bind` (`None` if it
    /// is not a bind response at all).
    fn sp_bind_result(&self, _pdu: &PduOf<Self>) -> Option<bool> {
        None
    }
}
