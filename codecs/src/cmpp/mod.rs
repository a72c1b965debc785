//! CMPP 2.0 / 3.0 (China Mobile Peer to Peer), SP ⇄ ISMG.
//!
//! One body parser and encoder serve both versions: the [`Version`] carried
//! by [`Cmpp`] selects the field widths (21- vs 32-byte terminal ids, 1- vs
//! 4-byte Status/Result) and the version-only fields, which are `Option`s
//! on the PDU structs (`Some` exactly for the version that carries them).
//!
//! Encoding is forgiving about those options: a `None` field the version
//! needs is written as zeros, a `Some` field the version lacks is not
//! written. Decoding always yields the canonical form, so a decoded PDU
//! re-encodes byte for byte.
//!
//! Reference: `cmpp.md` (CMPP 3.0.0 spec QB-GF-028-2003 and CMPP 2.0
//! implementations); section numbers below refer to it.

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;

use crate::error::{DecodeError, EncodeError};
use crate::frame::{header_u32, Protocol};
use crate::status::StatusClass;
use crate::text::{DataCoding, Segment};
use crate::udh::{self, Udh, UdhError};
use crate::wire::{len_u8, md5, FixedStr, Reader, Timestamp};

#[cfg(feature = "json")]
mod json;

/// Header length: Total_Length 4, Command_Id 4, Sequence_Id 4.
pub const HEADER_LEN: usize = 12;

/// Most recipients one SUBMIT may carry when encoding (DestUsr_tl; the
/// spec says "fewer than 100").
pub const MAX_RECIPIENTS: usize = 100;

/// Recipient list of a SUBMIT; one inline recipient needs no allocation.
pub type Recipients = SmallVec<[FixedStr<32>; 1]>;

// ---------------------------------------------------------------------------
// Version and protocol

/// The body layout in use (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// CMPP 2.0 (wire 0x20; also 0x21 and anything that is not 0x3x).
    V20,
    /// CMPP 3.0 (wire 0x30..=0x3F).
    V30,
}

impl Version {
    /// Maps a Version byte to a layout: 0x3x → 3.0, everything else → 2.0.
    pub fn from_wire(byte: u8) -> Self {
        if byte >> 4 == 3 {
            Version::V30
        } else {
            Version::V20
        }
    }

    /// The Version byte this side sends (0x20 or 0x30).
    pub const fn wire(self) -> u8 {
        match self {
            Version::V20 => 0x20,
            Version::V30 => 0x30,
        }
    }

    /// Width of a terminal id field (Fee/Dest/Src_terminal_Id): 21 or 32.
    pub const fn terminal_id_len(self) -> usize {
        match self {
            Version::V20 => 21,
            Version::V30 => 32,
        }
    }

    /// Width of a Status / Result / Success_Id field in a response: 1 or 4.
    pub const fn result_len(self) -> usize {
        match self {
            Version::V20 => 1,
            Version::V30 => 4,
        }
    }

    /// Length of a status report carried in a DELIVER: 60 or 71.
    pub const fn report_len(self) -> usize {
        35 + self.terminal_id_len() + 4
    }

    /// The other version.
    pub const fn other(self) -> Self {
        match self {
            Version::V20 => Version::V30,
            Version::V30 => Version::V20,
        }
    }
}

/// The CMPP protocol for [`crate::Framer`], parameterised by its version.
/// (`PartialEq` lets `Packet<Cmpp>` / `Inbound<Cmpp>` be compared.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cmpp {
    pub version: Version,
}

impl Cmpp {
    pub const V20: Cmpp = Cmpp {
        version: Version::V20,
    };
    pub const V30: Cmpp = Cmpp {
        version: Version::V30,
    };

    pub fn new(version: Version) -> Self {
        Cmpp { version }
    }
}

impl Protocol for Cmpp {
    fn name(&self) -> &'static str {
        match self.version {
            Version::V20 => "cmpp2",
            Version::V30 => "cmpp3",
        }
    }

    const HEADER_LEN: usize = HEADER_LEN;
    type Seq = u32;
    type Pdu = Pdu;

    fn read_header(&self, header: &[u8]) -> (u32, u32) {
        (header_u32(header, 4), header_u32(header, 8))
    }

    fn write_seq(&self, seq: u32, dst: &mut BytesMut) {
        dst.put_u32(seq);
    }

    #[inline]
    fn decode_body(&self, command_id: u32, body: Bytes) -> Result<Pdu, DecodeError> {
        Pdu::decode(self.version, CommandId(command_id), body)
    }

    fn command_id(&self, pdu: &Pdu) -> u32 {
        pdu.command_id().0
    }

    fn encode_body(&self, pdu: &Pdu, dst: &mut BytesMut) -> Result<(), EncodeError> {
        pdu.encode_body(self.version, dst)
    }
}

// ---------------------------------------------------------------------------
// Command ids

/// Command_Id (§3), identical in 2.0 and 3.0. Unknown ids survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u32);

impl CommandId {
    /// Bit set on every response id.
    pub const RESP_BIT: u32 = 0x8000_0000;

    pub const CONNECT: CommandId = CommandId(0x0000_0001);
    pub const CONNECT_RESP: CommandId = CommandId(0x8000_0001);
    pub const TERMINATE: CommandId = CommandId(0x0000_0002);
    pub const TERMINATE_RESP: CommandId = CommandId(0x8000_0002);
    pub const SUBMIT: CommandId = CommandId(0x0000_0004);
    pub const SUBMIT_RESP: CommandId = CommandId(0x8000_0004);
    pub const DELIVER: CommandId = CommandId(0x0000_0005);
    pub const DELIVER_RESP: CommandId = CommandId(0x8000_0005);
    pub const QUERY: CommandId = CommandId(0x0000_0006);
    pub const QUERY_RESP: CommandId = CommandId(0x8000_0006);
    pub const CANCEL: CommandId = CommandId(0x0000_0007);
    pub const CANCEL_RESP: CommandId = CommandId(0x8000_0007);
    pub const ACTIVE_TEST: CommandId = CommandId(0x0000_0008);
    pub const ACTIVE_TEST_RESP: CommandId = CommandId(0x8000_0008);
    pub const FWD: CommandId = CommandId(0x0000_0009);
    pub const FWD_RESP: CommandId = CommandId(0x8000_0009);
    pub const MT_ROUTE: CommandId = CommandId(0x0000_0010);
    pub const MT_ROUTE_RESP: CommandId = CommandId(0x8000_0010);
    pub const MO_ROUTE: CommandId = CommandId(0x0000_0011);
    pub const MO_ROUTE_RESP: CommandId = CommandId(0x8000_0011);
    /// CMPP_GET_MT_ROUTE (2.0 name: CMPP_GET_ROUTE).
    pub const GET_MT_ROUTE: CommandId = CommandId(0x0000_0012);
    pub const GET_MT_ROUTE_RESP: CommandId = CommandId(0x8000_0012);
    pub const MT_ROUTE_UPDATE: CommandId = CommandId(0x0000_0013);
    pub const MT_ROUTE_UPDATE_RESP: CommandId = CommandId(0x8000_0013);
    pub const MO_ROUTE_UPDATE: CommandId = CommandId(0x0000_0014);
    pub const MO_ROUTE_UPDATE_RESP: CommandId = CommandId(0x8000_0014);
    pub const PUSH_MT_ROUTE_UPDATE: CommandId = CommandId(0x0000_0015);
    pub const PUSH_MT_ROUTE_UPDATE_RESP: CommandId = CommandId(0x8000_0015);
    pub const PUSH_MO_ROUTE_UPDATE: CommandId = CommandId(0x0000_0016);
    pub const PUSH_MO_ROUTE_UPDATE_RESP: CommandId = CommandId(0x8000_0016);
    pub const GET_MO_ROUTE: CommandId = CommandId(0x0000_0017);
    pub const GET_MO_ROUTE_RESP: CommandId = CommandId(0x8000_0017);

    pub const fn is_response(self) -> bool {
        self.0 & Self::RESP_BIT != 0
    }

    /// The response id for a request id.
    pub const fn response(self) -> CommandId {
        CommandId(self.0 | Self::RESP_BIT)
    }

    /// The spec name ("CMPP_SUBMIT_RESP"), or None for an unknown id.
    pub fn name(self) -> Option<&'static str> {
        let (req, resp) = match self.0 & !Self::RESP_BIT {
            0x01 => ("CMPP_CONNECT", "CMPP_CONNECT_RESP"),
            0x02 => ("CMPP_TERMINATE", "CMPP_TERMINATE_RESP"),
            0x04 => ("CMPP_SUBMIT", "CMPP_SUBMIT_RESP"),
            0x05 => ("CMPP_DELIVER", "CMPP_DELIVER_RESP"),
            0x06 => ("CMPP_QUERY", "CMPP_QUERY_RESP"),
            0x07 => ("CMPP_CANCEL", "CMPP_CANCEL_RESP"),
            0x08 => ("CMPP_ACTIVE_TEST", "CMPP_ACTIVE_TEST_RESP"),
            0x09 => ("CMPP_FWD", "CMPP_FWD_RESP"),
            0x10 => ("CMPP_MT_ROUTE", "CMPP_MT_ROUTE_RESP"),
            0x11 => ("CMPP_MO_ROUTE", "CMPP_MO_ROUTE_RESP"),
            0x12 => ("CMPP_GET_MT_ROUTE", "CMPP_GET_MT_ROUTE_RESP"),
            0x13 => ("CMPP_MT_ROUTE_UPDATE", "CMPP_MT_ROUTE_UPDATE_RESP"),
            0x14 => ("CMPP_MO_ROUTE_UPDATE", "CMPP_MO_ROUTE_UPDATE_RESP"),
            0x15 => (
                "CMPP_PUSH_MT_ROUTE_UPDATE",
                "CMPP_PUSH_MT_ROUTE_UPDATE_RESP",
            ),
            0x16 => (
                "CMPP_PUSH_MO_ROUTE_UPDATE",
                "CMPP_PUSH_MO_ROUTE_UPDATE_RESP",
            ),
            0x17 => ("CMPP_GET_MO_ROUTE", "CMPP_GET_MO_ROUTE_RESP"),
            _ => return None,
        };
        Some(if self.is_response() { resp } else { req })
    }
}

// ---------------------------------------------------------------------------
// Msg_Id

/// Msg_Id (§14): 8 bytes, big-endian. Month 4 bits, day 5, hour 5,
/// minute 6, second 6, ISMG code 22, sequence 16.
///
/// Treat it as an opaque key outside of simulators: real gateways do not
/// always follow the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MsgId(pub u64);

impl MsgId {
    /// Builds an id from its parts; each part is masked to its width.
    pub const fn new(
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        gateway: u32,
        sequence: u16,
    ) -> Self {
        MsgId(
            ((month as u64 & 0xF) << 60)
                | ((day as u64 & 0x1F) << 55)
                | ((hour as u64 & 0x1F) << 50)
                | ((minute as u64 & 0x3F) << 44)
                | ((second as u64 & 0x3F) << 38)
                | ((gateway as u64 & 0x3F_FFFF) << 16)
                | sequence as u64,
        )
    }

    pub const fn month(self) -> u8 {
        (self.0 >> 60) as u8 & 0xF
    }
    pub const fn day(self) -> u8 {
        (self.0 >> 55) as u8 & 0x1F
    }
    pub const fn hour(self) -> u8 {
        (self.0 >> 50) as u8 & 0x1F
    }
    pub const fn minute(self) -> u8 {
        (self.0 >> 44) as u8 & 0x3F
    }
    pub const fn second(self) -> u8 {
        (self.0 >> 38) as u8 & 0x3F
    }
    /// The 22-bit ISMG code.
    pub const fn gateway(self) -> u32 {
        (self.0 >> 16) as u32 & 0x3F_FFFF
    }
    /// The 16-bit sequence.
    pub const fn sequence(self) -> u16 {
        self.0 as u16
    }

    /// The id of the `n`th recipient of a mass SUBMIT answered with `self`
    /// (§9.2): the sequence part advances and wraps within its 16 bits.
    pub const fn nth(self, n: u16) -> MsgId {
        MsgId((self.0 & !0xFFFF) | self.sequence().wrapping_add(n) as u64)
    }

    pub const fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl From<u64> for MsgId {
    fn from(v: u64) -> Self {
        MsgId(v)
    }
}

// ---------------------------------------------------------------------------
// Status codes

/// CONNECT_RESP Status (§6): 1 byte in 2.0, 4 bytes in 3.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConnectStatus(pub u32);

impl ConnectStatus {
    pub const OK: Self = ConnectStatus(0);
    pub const BAD_STRUCTURE: Self = ConnectStatus(1);
    pub const ILLEGAL_SOURCE: Self = ConnectStatus(2);
    pub const AUTH_FAILED: Self = ConnectStatus(3);
    pub const VERSION_TOO_HIGH: Self = ConnectStatus(4);
    /// Vendor (node-cmpp-3): too many connections for the system.
    pub const TOO_MANY_CONNECTIONS: Self = ConnectStatus(55);
    /// Vendor: too many connections for this account.
    pub const TOO_MANY_ACCOUNT_CONNECTIONS: Self = ConnectStatus(56);
    /// Vendor: login IP not allowed.
    pub const IP_NOT_ALLOWED: Self = ConnectStatus(57);
    /// Vendor: account does not belong to this proxy.
    pub const WRONG_PROXY: Self = ConnectStatus(60);

    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Connection-limit refusals are worth retrying later; the rest need
    /// an operator.
    pub fn class(self) -> StatusClass {
        match self.0 {
            0 => StatusClass::Ok,
            55 | 56 => StatusClass::Retryable,
            _ => StatusClass::Permanent,
        }
    }

    pub fn description(self) -> &'static str {
        match self.0 {
            0 => "success",
            1 => "bad message structure",
            2 => "illegal source address",
            3 => "authentication error",
            4 => "version too high",
            55 => "too many connections for the system (vendor)",
            56 => "too many connections for this account (vendor)",
            57 => "login IP not allowed (vendor)",
            60 => "account does not belong to this proxy (vendor)",
            _ => "other error",
        }
    }
}

/// SUBMIT_RESP / DELIVER_RESP Result (§10, §12): 1 byte in 2.0, 4 in 3.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubmitResult(pub u32);

impl SubmitResult {
    pub const OK: Self = SubmitResult(0);
    pub const BAD_STRUCTURE: Self = SubmitResult(1);
    pub const BAD_COMMAND: Self = SubmitResult(2);
    pub const DUPLICATE_SEQUENCE: Self = SubmitResult(3);
    pub const BAD_LENGTH: Self = SubmitResult(4);
    pub const BAD_FEE_CODE: Self = SubmitResult(5);
    pub const TOO_LONG: Self = SubmitResult(6);
    pub const BAD_SERVICE_ID: Self = SubmitResult(7);
    /// Flow control: slow down and resend later.
    pub const FLOW_CONTROL: Self = SubmitResult(8);
    /// 3.0: this ISMG does not serve the charged number (2.0: other error).
    pub const NOT_SERVED: Self = SubmitResult(9);
    pub const BAD_SRC_ID: Self = SubmitResult(10);
    pub const BAD_MSG_SRC: Self = SubmitResult(11);
    pub const BAD_FEE_TERMINAL_ID: Self = SubmitResult(12);
    pub const BAD_DEST_TERMINAL_ID: Self = SubmitResult(13);

    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// 8 (flow control), 77 (too many submits) and 250 (queue full) ask us
    /// to slow down; 3 (duplicate sequence) and the vendor session/timeout
    /// codes 51–55 are transient; everything else is permanent.
    pub fn class(self) -> StatusClass {
        match self.0 {
            0 => StatusClass::Ok,
            8 | 77 | 250 => StatusClass::Throttled,
            3 | 51..=55 => StatusClass::Retryable,
            _ => StatusClass::Permanent,
        }
    }

    pub fn description(self) -> &'static str {
        match self.0 {
            0 => "success",
            1 => "bad message structure",
            2 => "bad command id",
            3 => "duplicate sequence number",
            4 => "bad message length",
            5 => "bad fee code / tariff",
            6 => "content longer than allowed",
            7 => "bad service code",
            8 => "flow control",
            9 => "ISMG does not serve the charged number (3.0) / other error (2.0)",
            10 => "bad Src_Id",
            11 => "bad Msg_src",
            12 => "bad Fee_terminal_Id",
            13 => "bad Dest_terminal_Id",
            51..=55 => "session or timeout error (vendor)",
            61 | 62 => "expiry or schedule time already past (vendor)",
            63 => "unknown FeeType (vendor)",
            64..=68 => "source/destination/user authentication failure (vendor)",
            69 => "blacklisted user (vendor)",
            71 => "too many hops (vendor)",
            72 => "no route (vendor)",
            77 => "too many submits (vendor)",
            70..=88 => "routing/DSMP/SCP failure (vendor)",
            100..=199 => "vendor-defined error",
            208 => "insufficient balance (vendor)",
            250 => "queue full (vendor)",
            202..=249 => "prepaid/billing error (vendor)",
            _ => "other error",
        }
    }
}

/// How a status report's Stat ends a message (§11.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportOutcome {
    /// DELIVRD.
    Delivered,
    /// ACCEPTD: intermediate, keep waiting.
    Pending,
    /// Everything else.
    Failed,
}

/// Report Stat values (§11.2).
pub struct Stat;

impl Stat {
    pub const DELIVRD: &'static [u8; 7] = b"DELIVRD";
    pub const EXPIRED: &'static [u8; 7] = b"EXPIRED";
    pub const DELETED: &'static [u8; 7] = b"DELETED";
    pub const UNDELIV: &'static [u8; 7] = b"UNDELIV";
    pub const ACCEPTD: &'static [u8; 7] = b"ACCEPTD";
    pub const UNKNOWN: &'static [u8; 7] = b"UNKNOWN";
    pub const REJECTD: &'static [u8; 7] = b"REJECTD";

    fn trim(stat: &[u8]) -> &[u8] {
        let end = stat
            .iter()
            .rposition(|&b| b != 0 && b != b' ')
            .map_or(0, |i| i + 1);
        &stat[..end]
    }

    /// DELIVRD is success, ACCEPTD pending, anything else a failure.
    /// Trailing 0x00 and spaces are ignored.
    pub fn outcome(stat: &[u8]) -> ReportOutcome {
        match Self::trim(stat) {
            b"DELIVRD" => ReportOutcome::Delivered,
            b"ACCEPTD" => ReportOutcome::Pending,
            _ => ReportOutcome::Failed,
        }
    }

    /// The outcome as a retry class: delivered → Ok, everything else is
    /// final (Permanent) except ACCEPTD (Retryable: still in progress).
    pub fn class(stat: &[u8]) -> StatusClass {
        match Self::outcome(stat) {
            ReportOutcome::Delivered => StatusClass::Ok,
            ReportOutcome::Pending => StatusClass::Retryable,
            ReportOutcome::Failed => StatusClass::Permanent,
        }
    }

    pub fn description(stat: &[u8]) -> &'static str {
        let s = Self::trim(stat);
        match s {
            b"DELIVRD" => "delivered",
            b"EXPIRED" => "validity period expired",
            b"DELETED" => "message deleted",
            b"UNDELIV" => "undeliverable",
            b"ACCEPTD" => "accepted (intermediate)",
            b"UNKNOWN" => "unknown state",
            b"REJECTD" => "rejected",
            _ => match s.get(..3) {
                Some(b"MA:") => "SMSC sent no response",
                Some(b"MB:") => "SMSC answered with an error",
                Some(b"MC:") => "no status report from the SMSC",
                Some(b"CA:") => "SCP gave no response",
                Some(b"CB:") => "SCP gave an error",
                Some(b"DA:") => "DSMP gave no response",
                Some(b"DB:") => "DSMP gave an error",
                Some(b"SA:") => "SP gave no response",
                Some(b"SB:") => "SP gave an error",
                Some(b"IA:") => "next ISMG gave no response",
                Some(b"IB:") => "next ISMG gave an error",
                Some(b"IC:") => "no report from the next ISMG",
                _ => "vendor-specific failure",
            },
        }
    }
}

/// Shorthand for [`Stat::outcome`].
pub fn report_outcome(stat: &[u8]) -> ReportOutcome {
    Stat::outcome(stat)
}

// ---------------------------------------------------------------------------
// Authenticators

/// AuthenticatorSource = MD5(Source_Addr ‖ 9 × 0x00 ‖ secret ‖ TS) (§5),
/// TS being the timestamp as 10 zero-padded ASCII digits.
pub fn authenticator_source(source_addr: &str, secret: &[u8], ts: Timestamp) -> [u8; 16] {
    auth_source_bytes(source_addr.as_bytes(), secret, ts)
}

fn auth_source_bytes(source_addr: &[u8], secret: &[u8], ts: Timestamp) -> [u8; 16] {
    md5(&[source_addr, &[0u8; 9], secret, &ts.digits()])
}

/// AuthenticatorISMG = MD5(Status ‖ AuthenticatorSource ‖ secret) (§6).
/// 3.0 hashes the 4-byte big-endian Status; 2.0 the 1-byte Status (gocmpp).
/// SMSGate hashes 4 bytes in 2.0 too: see [`authenticator_ismg_4byte`] and
/// [`ConnectResp::verify`], which accepts both.
pub fn authenticator_ismg(
    version: Version,
    status: ConnectStatus,
    auth_source: &[u8; 16],
    secret: &[u8],
) -> [u8; 16] {
    match version {
        Version::V30 => authenticator_ismg_4byte(status, auth_source, secret),
        Version::V20 => md5(&[&[status.0 as u8], auth_source, secret]),
    }
}

/// The 4-byte-Status AuthenticatorISMG (3.0, and SMSGate's 2.0 variant).
pub fn authenticator_ismg_4byte(
    status: ConnectStatus,
    auth_source: &[u8; 16],
    secret: &[u8],
) -> [u8; 16] {
    md5(&[&status.0.to_be_bytes(), auth_source, secret])
}

// ---------------------------------------------------------------------------
// PDUs

/// CMPP_CONNECT (§5), same layout in both versions; body 27 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Connect {
    /// Source_Addr, 6: the SP_Id.
    pub source_addr: FixedStr<6>,
    /// AuthenticatorSource, 16: MD5 digest.
    pub authenticator_source: [u8; 16],
    /// Version, 1: the raw byte (0x20, 0x21, 0x30…); see [`Connect::version`].
    pub version: u8,
    /// Timestamp, 4: MMDDhhmmss as a decimal number.
    pub timestamp: Timestamp,
}

impl Connect {
    /// A CONNECT with its authenticator computed.
    pub fn new(
        source_addr: &str,
        secret: &[u8],
        version: Version,
        timestamp: Timestamp,
    ) -> Result<Self, EncodeError> {
        let source = FixedStr::new(source_addr.as_bytes()).map_err(|_| EncodeError::TooLong {
            pdu: "CMPP_CONNECT",
            field: "Source_Addr",
            len: source_addr.len(),
            max: 6,
        })?;
        Ok(Connect {
            source_addr: source,
            authenticator_source: authenticator_source(source_addr, secret, timestamp),
            version: version.wire(),
            timestamp,
        })
    }

    /// The layout the peer asks for (0x3x → 3.0, else 2.0).
    pub fn layout(&self) -> Version {
        Version::from_wire(self.version)
    }

    /// Whether AuthenticatorSource matches `secret`.
    pub fn verify(&self, secret: &[u8]) -> bool {
        auth_source_bytes(self.source_addr.as_bytes(), secret, self.timestamp)
            == self.authenticator_source
    }

    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("CMPP_CONNECT", body);
        let pdu = Connect {
            source_addr: r.fixed("Source_Addr", 6)?,
            authenticator_source: r.array("AuthenticatorSource")?,
            version: r.u8("Version")?,
            timestamp: Timestamp(r.u32("Timestamp")?),
        };
        r.finish()?;
        Ok(pdu)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.source_addr
            .put(dst, 6, "CMPP_CONNECT", "Source_Addr")?;
        dst.put_slice(&self.authenticator_source);
        dst.put_u8(self.version);
        dst.put_u32(self.timestamp.0);
        Ok(())
    }
}

/// CMPP_CONNECT_RESP (§6); body 18 bytes in 2.0, 21 in 3.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectResp {
    /// Status, 1 (2.0) / 4 (3.0).
    pub status: ConnectStatus,
    /// AuthenticatorISMG, 16.
    pub authenticator_ismg: [u8; 16],
    /// Version, 1: highest version the ISMG supports (raw byte).
    pub version: u8,
}

impl ConnectResp {
    /// A response with its authenticator computed for `layout`; all zero
    /// when the status is not OK.
    pub fn new(
        layout: Version,
        status: ConnectStatus,
        auth_source: &[u8; 16],
        secret: &[u8],
        server_version: u8,
    ) -> Self {
        let authenticator_ismg = if status.is_ok() {
            authenticator_ismg(layout, status, auth_source, secret)
        } else {
            [0; 16]
        };
        ConnectResp {
            status,
            authenticator_ismg,
            version: server_version,
        }
    }

    /// Whether AuthenticatorISMG matches. In 2.0 both the 1-byte and the
    /// 4-byte (SMSGate) Status forms are accepted. Clients should log a
    /// mismatch rather than fail the login (§6).
    pub fn verify(&self, layout: Version, auth_source: &[u8; 16], secret: &[u8]) -> bool {
        self.authenticator_ismg == authenticator_ismg(layout, self.status, auth_source, secret)
            || self.authenticator_ismg == authenticator_ismg_4byte(self.status, auth_source, secret)
    }

    fn decode(body: &Bytes, v: Version) -> Result<Self, DecodeError> {
        let width = resp_width(body.len(), 17, v);
        let mut r = Reader::new("CMPP_CONNECT_RESP", body);
        let pdu = ConnectResp {
            status: ConnectStatus(read_uint(&mut r, "Status", width)?),
            authenticator_ismg: r.array("AuthenticatorISMG")?,
            version: r.u8("Version")?,
        };
        r.finish()?;
        Ok(pdu)
    }

    fn encode(&self, v: Version, dst: &mut BytesMut) -> Result<(), EncodeError> {
        put_uint(
            dst,
            self.status.0,
            v.result_len(),
            "CMPP_CONNECT_RESP",
            "Status",
        )?;
        dst.put_slice(&self.authenticator_ismg);
        dst.put_u8(self.version);
        Ok(())
    }
}

/// CMPP_SUBMIT (§9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Submit {
    /// Msg_Id, 8: 0 from the SP.
    pub msg_id: MsgId,
    /// Pk_total, 1: segments of this message.
    pub pk_total: u8,
    /// Pk_number, 1: this segment, 1-based.
    pub pk_number: u8,
    /// Registered_Delivery, 1: 0 none, 1 report wanted (2.0: 2 SMC bill).
    pub registered_delivery: u8,
    /// Msg_level, 1.
    pub msg_level: u8,
    /// Service_Id, 10.
    pub service_id: FixedStr<10>,
    /// Fee_UserType, 1.
    pub fee_user_type: u8,
    /// Fee_terminal_Id, 21 (2.0) / 32 (3.0).
    pub fee_terminal_id: FixedStr<32>,
    /// Fee_terminal_type, 1 (3.0 only).
    pub fee_terminal_type: Option<u8>,
    /// TP_pId, 1.
    pub tp_pid: u8,
    /// TP_udhi, 1: 1 = Msg_Content starts with a UDH.
    pub tp_udhi: u8,
    /// Msg_Fmt, 1: data coding.
    pub msg_fmt: DataCoding,
    /// Msg_src, 6: the SP_Id.
    pub msg_src: FixedStr<6>,
    /// FeeType, 2.
    pub fee_type: FixedStr<2>,
    /// FeeCode, 6.
    pub fee_code: FixedStr<6>,
    /// ValId_Time, 17.
    pub valid_time: FixedStr<17>,
    /// At_Time, 17.
    pub at_time: FixedStr<17>,
    /// Src_Id, 21.
    pub src_id: FixedStr<21>,
    /// Dest_terminal_Id, 21 (2.0) / 32 (3.0) each; DestUsr_tl, 1, is the
    /// length of this list.
    pub dest_terminal_ids: Recipients,
    /// Dest_terminal_type, 1 (3.0 only).
    pub dest_terminal_type: Option<u8>,
    /// Msg_Content, Msg_Length (1) bytes; UDH first when TP_udhi is set.
    pub msg_content: Bytes,
    /// Reserve, 8 (2.0 only).
    pub reserve: Option<FixedStr<8>>,
    /// LinkID, 20 (3.0 only).
    pub link_id: Option<FixedStr<20>>,
}

impl Default for Submit {
    /// An empty single-segment SUBMIT (Pk_total = Pk_number = 1).
    fn default() -> Self {
        Submit {
            msg_id: MsgId(0),
            pk_total: 1,
            pk_number: 1,
            registered_delivery: 0,
            msg_level: 0,
            service_id: FixedStr::EMPTY,
            fee_user_type: 0,
            fee_terminal_id: FixedStr::EMPTY,
            fee_terminal_type: None,
            tp_pid: 0,
            tp_udhi: 0,
            msg_fmt: DataCoding::ASCII,
            msg_src: FixedStr::EMPTY,
            fee_type: FixedStr::EMPTY,
            fee_code: FixedStr::EMPTY,
            valid_time: FixedStr::EMPTY,
            at_time: FixedStr::EMPTY,
            src_id: FixedStr::EMPTY,
            dest_terminal_ids: Recipients::new(),
            dest_terminal_type: None,
            msg_content: Bytes::new(),
            reserve: None,
            link_id: None,
        }
    }
}

impl Submit {
    /// The UDH when TP_udhi is set (bit 0 or bit 6).
    pub fn udh(&self) -> Result<Option<Udh>, UdhError> {
        content_udh(self.tp_udhi, &self.msg_content)
    }

    /// Msg_Content without its UDH.
    pub fn user_data(&self) -> &[u8] {
        user_data(self.tp_udhi, &self.msg_content)
    }

    /// The text, decoded per Msg_Fmt, UDH stripped.
    pub fn text(&self) -> String {
        crate::text::decode(self.user_data(), self.msg_fmt)
    }

    /// Puts `self` into the canonical form for `version` (the version-only
    /// options `Some` exactly where the version carries them), as decoding
    /// would produce.
    pub fn normalize(&mut self, version: Version) {
        match version {
            Version::V20 => {
                self.fee_terminal_type = None;
                self.dest_terminal_type = None;
                self.link_id = None;
                self.reserve.get_or_insert(FixedStr::EMPTY);
            }
            Version::V30 => {
                self.fee_terminal_type.get_or_insert(0);
                self.dest_terminal_type.get_or_insert(0);
                self.link_id.get_or_insert(FixedStr::EMPTY);
                self.reserve = None;
            }
        }
    }

    /// Decodes a SUBMIT body straight into its [`Pdu`] variant, so the
    /// ~256-byte value is built in the caller's return slot instead of
    /// being moved from a `Result<Submit>` into a `Result<Pdu>`.
    fn decode_pdu(body: &Bytes, v: Version) -> Result<Pdu, DecodeError> {
        let tl = v.terminal_id_len();
        let v30 = v == Version::V30;
        let mut r = Reader::new("CMPP_SUBMIT", body);
        let msg_id = MsgId(r.u64("Msg_Id")?);
        let pk_total = r.u8("Pk_total")?;
        let pk_number = r.u8("Pk_number")?;
        let registered_delivery = r.u8("Registered_Delivery")?;
        let msg_level = r.u8("Msg_level")?;
        let service_id = r.fixed("Service_Id", 10)?;
        let fee_user_type = r.u8("Fee_UserType")?;
        let fee_terminal_id = r.fixed("Fee_terminal_Id", tl)?;
        let fee_terminal_type = if v30 {
            Some(r.u8("Fee_terminal_type")?)
        } else {
            None
        };
        let tp_pid = r.u8("TP_pId")?;
        let tp_udhi = r.u8("TP_udhi")?;
        let msg_fmt = DataCoding(r.u8("Msg_Fmt")?);
        let msg_src = r.fixed("Msg_src", 6)?;
        let fee_type = r.fixed("FeeType", 2)?;
        let fee_code = r.fixed("FeeCode", 6)?;
        let valid_time = r.fixed("ValId_Time", 17)?;
        let at_time = r.fixed("At_Time", 17)?;
        let src_id = r.fixed("Src_Id", 21)?;
        let n = r.u8("DestUsr_tl")? as usize;
        let mut dest_terminal_ids = Recipients::new();
        if n * tl > r.remaining() {
            return Err(r.truncated("Dest_terminal_Id"));
        }
        dest_terminal_ids.reserve_exact(n);
        for _ in 0..n {
            dest_terminal_ids.push(r.fixed("Dest_terminal_Id", tl)?);
        }
        let dest_terminal_type = if v30 {
            Some(r.u8("Dest_terminal_type")?)
        } else {
            None
        };
        let len = r.u8("Msg_Length")? as usize;
        let msg_content = r.bytes("Msg_Content", len)?;
        let (reserve, link_id) = if v30 {
            (None, Some(r.fixed("LinkID", 20)?))
        } else {
            (Some(r.fixed("Reserve", 8)?), None)
        };
        r.finish()?;
        if udh::udhi_set(tp_udhi) {
            udh::parse(&msg_content)?;
        }
        Ok(Pdu::Submit(Submit {
            msg_id,
            pk_total,
            pk_number,
            registered_delivery,
            msg_level,
            service_id,
            fee_user_type,
            fee_terminal_id,
            fee_terminal_type,
            tp_pid,
            tp_udhi,
            msg_fmt,
            msg_src,
            fee_type,
            fee_code,
            valid_time,
            at_time,
            src_id,
            dest_terminal_ids,
            dest_terminal_type,
            msg_content,
            reserve,
            link_id,
        }))
    }

    fn encode(&self, v: Version, dst: &mut BytesMut) -> Result<(), EncodeError> {
        const P: &str = "CMPP_SUBMIT";
        let tl = v.terminal_id_len();
        let v30 = v == Version::V30;
        let n = self.dest_terminal_ids.len();
        if n == 0 || n > MAX_RECIPIENTS {
            return Err(EncodeError::Invalid {
                pdu: P,
                field: "DestUsr_tl",
                reason: "between 1 and 100 recipients are required",
            });
        }
        let msg_len = len_u8(self.msg_content.len(), P, "Msg_Length")?;
        dst.reserve(151 + tl * n + self.msg_content.len());
        dst.put_u64(self.msg_id.0);
        dst.put_u8(self.pk_total);
        dst.put_u8(self.pk_number);
        dst.put_u8(self.registered_delivery);
        dst.put_u8(self.msg_level);
        self.service_id.put(dst, 10, P, "Service_Id")?;
        dst.put_u8(self.fee_user_type);
        self.fee_terminal_id.put(dst, tl, P, "Fee_terminal_Id")?;
        if v30 {
            dst.put_u8(self.fee_terminal_type.unwrap_or(0));
        }
        dst.put_u8(self.tp_pid);
        dst.put_u8(self.tp_udhi);
        dst.put_u8(self.msg_fmt.0);
        self.msg_src.put(dst, 6, P, "Msg_src")?;
        self.fee_type.put(dst, 2, P, "FeeType")?;
        self.fee_code.put(dst, 6, P, "FeeCode")?;
        self.valid_time.put(dst, 17, P, "ValId_Time")?;
        self.at_time.put(dst, 17, P, "At_Time")?;
        self.src_id.put(dst, 21, P, "Src_Id")?;
        dst.put_u8(n as u8);
        for d in &self.dest_terminal_ids {
            d.put(dst, tl, P, "Dest_terminal_Id")?;
        }
        if v30 {
            dst.put_u8(self.dest_terminal_type.unwrap_or(0));
        }
        dst.put_u8(msg_len);
        dst.put_slice(&self.msg_content);
        if v30 {
            self.link_id.unwrap_or_default().put(dst, 20, P, "LinkID")?;
        } else {
            self.reserve.unwrap_or_default().put(dst, 8, P, "Reserve")?;
        }
        Ok(())
    }
}

/// One SUBMIT per segment of a split message (long-sms.md §3): a copy of
/// `template` with Msg_Content (and so Msg_Length) from the segment,
/// Pk_total / Pk_number set to the count and the 1-based index, and
/// TP_udhi = 1 when the segment carries a UDH (0 otherwise). Msg_Fmt is
/// the template's: set it to the coding the segments were split with (or
/// use [`submits_for_text`]).
pub fn submits_for(template: &Submit, segments: &[Segment]) -> Vec<Submit> {
    let total = segments.len().min(u8::MAX as usize) as u8;
    segments
        .iter()
        .enumerate()
        .map(|(i, seg)| {
            let mut s = template.clone();
            s.pk_total = total.max(1);
            s.pk_number = (i + 1).min(u8::MAX as usize) as u8;
            s.tp_udhi = u8::from(seg.concat.is_some());
            s.msg_content = seg.content.clone();
            s
        })
        .collect()
}

/// Splits `text` with [`crate::text::split`] and builds one SUBMIT per
/// segment from `template`, with Msg_Fmt = `coding`.
pub fn submits_for_text(
    template: &Submit,
    text: &str,
    coding: DataCoding,
    reference: udh::ConcatRef,
) -> Result<Vec<Submit>, EncodeError> {
    let segments = crate::text::split(text, coding, crate::text::Family::Cmpp, reference)?;
    let mut t = template.clone();
    t.msg_fmt = coding;
    Ok(submits_for(&t, &segments))
}

/// CMPP_SUBMIT_RESP (§10); body 9 bytes in 2.0, 12 in 3.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubmitResp {
    /// Msg_Id, 8: assigned by the ISMG.
    pub msg_id: MsgId,
    /// Result, 1 (2.0) / 4 (3.0).
    pub result: SubmitResult,
}

/// CMPP_DELIVER_RESP (§12); body 9 bytes in 2.0, 12 in 3.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliverResp {
    /// Msg_Id, 8: the DELIVER's own Msg_Id (not a report's inner one).
    pub msg_id: MsgId,
    /// Result, 1 (2.0) / 4 (3.0).
    pub result: SubmitResult,
}

fn decode_id_result(
    pdu: &'static str,
    body: &Bytes,
    v: Version,
) -> Result<(MsgId, SubmitResult), DecodeError> {
    let width = resp_width(body.len(), 8, v);
    let mut r = Reader::new(pdu, body);
    let msg_id = MsgId(r.u64("Msg_Id")?);
    let result = SubmitResult(read_uint(&mut r, "Result", width)?);
    r.finish()?;
    Ok((msg_id, result))
}

fn encode_id_result(
    pdu: &'static str,
    msg_id: MsgId,
    result: SubmitResult,
    v: Version,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    dst.put_u64(msg_id.0);
    put_uint(dst, result.0, v.result_len(), pdu, "Result")
}

/// CMPP_DELIVER (§11): an MO message, or a status report when
/// Registered_Delivery = 1 (see [`Deliver::report`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Deliver {
    /// Msg_Id, 8: the id of this DELIVER (echo it in DELIVER_RESP).
    pub msg_id: MsgId,
    /// Dest_Id, 21: the SP service code the handset sent to.
    pub dest_id: FixedStr<21>,
    /// Service_Id, 10.
    pub service_id: FixedStr<10>,
    /// TP_pid, 1.
    pub tp_pid: u8,
    /// TP_udhi, 1: content starts with a UDH (bit 0 or bit 6).
    pub tp_udhi: u8,
    /// Msg_Fmt, 1.
    pub msg_fmt: DataCoding,
    /// Src_terminal_Id, 21 (2.0) / 32 (3.0): MO sender, or the recipient
    /// of the original SUBMIT for a report.
    pub src_terminal_id: FixedStr<32>,
    /// Src_terminal_type, 1 (3.0 only).
    pub src_terminal_type: Option<u8>,
    /// Registered_Delivery, 1: 0 MO, 1 status report.
    pub registered_delivery: u8,
    /// Msg_Content, Msg_Length (1) bytes.
    pub msg_content: Bytes,
    /// Reserved, 8 (2.0 only).
    pub reserved: Option<FixedStr<8>>,
    /// LinkID, 20 (3.0 only).
    pub link_id: Option<FixedStr<20>>,
}

impl Default for Deliver {
    fn default() -> Self {
        Deliver {
            msg_id: MsgId(0),
            dest_id: FixedStr::EMPTY,
            service_id: FixedStr::EMPTY,
            tp_pid: 0,
            tp_udhi: 0,
            msg_fmt: DataCoding::ASCII,
            src_terminal_id: FixedStr::EMPTY,
            src_terminal_type: None,
            registered_delivery: 0,
            msg_content: Bytes::new(),
            reserved: None,
            link_id: None,
        }
    }
}

impl Deliver {
    pub fn is_report(&self) -> bool {
        self.registered_delivery == 1
    }

    /// The status report, when Registered_Delivery = 1. The layout is the
    /// one of `version` when Msg_Length fits it, else the other version's
    /// when that fits (some ISMGs mix them), else an error.
    pub fn report(&self, version: Version) -> Result<Option<Report>, DecodeError> {
        if !self.is_report() {
            return Ok(None);
        }
        let len = self.msg_content.len();
        let layout = if len != version.report_len() && len == version.other().report_len() {
            version.other()
        } else {
            version
        };
        Report::decode(&self.msg_content, layout).map(Some)
    }

    /// Makes this DELIVER carry `report` (Registered_Delivery = 1, TP_udhi
    /// = 0, Msg_Fmt = 0, content in the layout of `version`).
    pub fn set_report(&mut self, report: &Report, version: Version) -> Result<(), EncodeError> {
        self.registered_delivery = 1;
        self.tp_udhi = 0;
        self.msg_fmt = DataCoding::ASCII;
        self.msg_content = report.to_bytes(version)?;
        Ok(())
    }

    /// The UDH of an MO message when TP_udhi is set (never for a report).
    pub fn udh(&self) -> Result<Option<Udh>, UdhError> {
        if self.is_report() {
            return Ok(None);
        }
        content_udh(self.tp_udhi, &self.msg_content)
    }

    /// Msg_Content without its UDH.
    pub fn user_data(&self) -> &[u8] {
        if self.is_report() {
            return &self.msg_content;
        }
        user_data(self.tp_udhi, &self.msg_content)
    }

    /// The MO text, decoded per Msg_Fmt, UDH stripped.
    pub fn text(&self) -> String {
        crate::text::decode(self.user_data(), self.msg_fmt)
    }

    /// Puts `self` into the canonical form for `version` (see
    /// [`Submit::normalize`]).
    pub fn normalize(&mut self, version: Version) {
        match version {
            Version::V20 => {
                self.src_terminal_type = None;
                self.link_id = None;
                self.reserved.get_or_insert(FixedStr::EMPTY);
            }
            Version::V30 => {
                self.src_terminal_type.get_or_insert(0);
                self.link_id.get_or_insert(FixedStr::EMPTY);
                self.reserved = None;
            }
        }
    }

    fn decode(body: &Bytes, v: Version) -> Result<Self, DecodeError> {
        let v30 = v == Version::V30;
        let mut r = Reader::new("CMPP_DELIVER", body);
        let msg_id = MsgId(r.u64("Msg_Id")?);
        let dest_id = r.fixed("Dest_Id", 21)?;
        let service_id = r.fixed("Service_Id", 10)?;
        let tp_pid = r.u8("TP_pid")?;
        let tp_udhi = r.u8("TP_udhi")?;
        let msg_fmt = DataCoding(r.u8("Msg_Fmt")?);
        let src_terminal_id = r.fixed("Src_terminal_Id", v.terminal_id_len())?;
        let src_terminal_type = if v30 {
            Some(r.u8("Src_terminal_type")?)
        } else {
            None
        };
        let registered_delivery = r.u8("Registered_Delivery")?;
        let len = r.u8("Msg_Length")? as usize;
        let msg_content = r.bytes("Msg_Content", len)?;
        let (reserved, link_id) = if v30 {
            (None, Some(r.fixed("LinkID", 20)?))
        } else {
            (Some(r.fixed("Reserved", 8)?), None)
        };
        r.finish()?;
        let pdu = Deliver {
            msg_id,
            dest_id,
            service_id,
            tp_pid,
            tp_udhi,
            msg_fmt,
            src_terminal_id,
            src_terminal_type,
            registered_delivery,
            msg_content,
            reserved,
            link_id,
        };
        pdu.udh()?;
        Ok(pdu)
    }

    fn encode(&self, v: Version, dst: &mut BytesMut) -> Result<(), EncodeError> {
        const P: &str = "CMPP_DELIVER";
        let v30 = v == Version::V30;
        let msg_len = len_u8(self.msg_content.len(), P, "Msg_Length")?;
        dst.reserve(97 + self.msg_content.len());
        dst.put_u64(self.msg_id.0);
        self.dest_id.put(dst, 21, P, "Dest_Id")?;
        self.service_id.put(dst, 10, P, "Service_Id")?;
        dst.put_u8(self.tp_pid);
        dst.put_u8(self.tp_udhi);
        dst.put_u8(self.msg_fmt.0);
        self.src_terminal_id
            .put(dst, v.terminal_id_len(), P, "Src_terminal_Id")?;
        if v30 {
            dst.put_u8(self.src_terminal_type.unwrap_or(0));
        }
        dst.put_u8(self.registered_delivery);
        dst.put_u8(msg_len);
        dst.put_slice(&self.msg_content);
        if v30 {
            self.link_id.unwrap_or_default().put(dst, 20, P, "LinkID")?;
        } else {
            self.reserved
                .unwrap_or_default()
                .put(dst, 8, P, "Reserved")?;
        }
        Ok(())
    }
}

/// The status report in a DELIVER's Msg_Content (§11.1): 60 bytes in 2.0,
/// 71 in 3.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Report {
    /// Msg_Id, 8: the Msg_Id from the SUBMIT_RESP — the matching key.
    pub msg_id: MsgId,
    /// Stat, 7: final state, e.g. DELIVRD.
    pub stat: FixedStr<7>,
    /// Submit_time, 10: YYMMDDHHMM.
    pub submit_time: FixedStr<10>,
    /// Done_time, 10: YYMMDDHHMM.
    pub done_time: FixedStr<10>,
    /// Dest_terminal_Id, 21 (2.0) / 32 (3.0).
    pub dest_terminal_id: FixedStr<32>,
    /// SMSC_sequence, 4.
    pub smsc_sequence: u32,
}

impl Report {
    pub fn outcome(&self) -> ReportOutcome {
        Stat::outcome(self.stat.as_bytes())
    }

    /// Parses a report in the layout of `version` (exact length).
    pub fn decode(content: &Bytes, version: Version) -> Result<Self, DecodeError> {
        let mut r = Reader::new("CMPP_DELIVER.Report", content);
        let rep = Report {
            msg_id: MsgId(r.u64("Msg_Id")?),
            stat: r.fixed("Stat", 7)?,
            submit_time: r.fixed("Submit_time", 10)?,
            done_time: r.fixed("Done_time", 10)?,
            dest_terminal_id: r.fixed("Dest_terminal_Id", version.terminal_id_len())?,
            smsc_sequence: r.u32("SMSC_sequence")?,
        };
        r.finish()?;
        Ok(rep)
    }

    /// Appends the report in the layout of `version`.
    pub fn encode(&self, version: Version, dst: &mut BytesMut) -> Result<(), EncodeError> {
        const P: &str = "CMPP_DELIVER.Report";
        dst.put_u64(self.msg_id.0);
        self.stat.put(dst, 7, P, "Stat")?;
        self.submit_time.put(dst, 10, P, "Submit_time")?;
        self.done_time.put(dst, 10, P, "Done_time")?;
        self.dest_terminal_id
            .put(dst, version.terminal_id_len(), P, "Dest_terminal_Id")?;
        dst.put_u32(self.smsc_sequence);
        Ok(())
    }

    /// The report as Msg_Content bytes.
    pub fn to_bytes(&self, version: Version) -> Result<Bytes, EncodeError> {
        let mut b = BytesMut::with_capacity(version.report_len());
        self.encode(version, &mut b)?;
        Ok(b.freeze())
    }
}

/// CMPP_QUERY (§13); body 27 bytes in both versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Query {
    /// Time, 8: YYYYMMDD.
    pub time: FixedStr<8>,
    /// Query_Type, 1: 0 totals, 1 by service.
    pub query_type: u8,
    /// Query_Code, 10: Service_Id when Query_Type = 1.
    pub query_code: FixedStr<10>,
    /// Reserve, 8.
    pub reserve: FixedStr<8>,
}

impl Query {
    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("CMPP_QUERY", body);
        let pdu = Query {
            time: r.fixed("Time", 8)?,
            query_type: r.u8("Query_Type")?,
            query_code: r.fixed("Query_Code", 10)?,
            reserve: r.fixed("Reserve", 8)?,
        };
        r.finish()?;
        Ok(pdu)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        const P: &str = "CMPP_QUERY";
        self.time.put(dst, 8, P, "Time")?;
        dst.put_u8(self.query_type);
        self.query_code.put(dst, 10, P, "Query_Code")?;
        self.reserve.put(dst, 8, P, "Reserve")
    }
}

/// CMPP_QUERY_RESP (§13); body 51 bytes in both versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct QueryResp {
    /// Time, 8: YYYYMMDD.
    pub time: FixedStr<8>,
    /// Query_Type, 1.
    pub query_type: u8,
    /// Query_Code, 10.
    pub query_code: FixedStr<10>,
    /// MT_TLMsg, 4: messages received from the SP.
    pub mt_tlmsg: u32,
    /// MT_Tlusr, 4: users.
    pub mt_tlusr: u32,
    /// MT_Scs, 4: forwarded successfully.
    pub mt_scs: u32,
    /// MT_WT, 4: waiting.
    pub mt_wt: u32,
    /// MT_FL, 4: failed.
    pub mt_fl: u32,
    /// MO_Scs, 4: delivered to the SP.
    pub mo_scs: u32,
    /// MO_WT, 4: waiting.
    pub mo_wt: u32,
    /// MO_FL, 4: failed.
    pub mo_fl: u32,
}

impl QueryResp {
    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("CMPP_QUERY_RESP", body);
        let pdu = QueryResp {
            time: r.fixed("Time", 8)?,
            query_type: r.u8("Query_Type")?,
            query_code: r.fixed("Query_Code", 10)?,
            mt_tlmsg: r.u32("MT_TLMsg")?,
            mt_tlusr: r.u32("MT_Tlusr")?,
            mt_scs: r.u32("MT_Scs")?,
            mt_wt: r.u32("MT_WT")?,
            mt_fl: r.u32("MT_FL")?,
            mo_scs: r.u32("MO_Scs")?,
            mo_wt: r.u32("MO_WT")?,
            mo_fl: r.u32("MO_FL")?,
        };
        r.finish()?;
        Ok(pdu)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        const P: &str = "CMPP_QUERY_RESP";
        self.time.put(dst, 8, P, "Time")?;
        dst.put_u8(self.query_type);
        self.query_code.put(dst, 10, P, "Query_Code")?;
        for v in [
            self.mt_tlmsg,
            self.mt_tlusr,
            self.mt_scs,
            self.mt_wt,
            self.mt_fl,
            self.mo_scs,
            self.mo_wt,
            self.mo_fl,
        ] {
            dst.put_u32(v);
        }
        Ok(())
    }
}

/// CMPP_CANCEL (§13): Msg_Id 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cancel {
    /// Msg_Id, 8: the message to cancel.
    pub msg_id: MsgId,
}

/// CMPP_CANCEL_RESP (§13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CancelResp {
    /// Success_Id, 1 (2.0) / 4 (3.0): 0 success, 1 failure.
    pub success_id: u32,
}

/// CMPP_ACTIVE_TEST_RESP (§8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActiveTestResp {
    /// Reserved, 1; `None` for a peer that sent a 12-byte RESP with no
    /// body (accepted leniently and re-encoded the same way).
    pub reserved: Option<u8>,
}

impl Default for ActiveTestResp {
    fn default() -> Self {
        ActiveTestResp { reserved: Some(0) }
    }
}

/// Every CMPP PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    Connect(Connect),
    ConnectResp(ConnectResp),
    Terminate,
    TerminateResp,
    Submit(Submit),
    SubmitResp(SubmitResp),
    Deliver(Deliver),
    DeliverResp(DeliverResp),
    Query(Query),
    QueryResp(QueryResp),
    Cancel(Cancel),
    CancelResp(CancelResp),
    ActiveTest,
    ActiveTestResp(ActiveTestResp),
    /// A command this codec does not decode (FWD, routing commands, vendor
    /// ids); the body is kept verbatim.
    Unknown {
        command_id: CommandId,
        body: Bytes,
    },
}

impl Pdu {
    pub fn command_id(&self) -> CommandId {
        match self {
            Pdu::Connect(_) => CommandId::CONNECT,
            Pdu::ConnectResp(_) => CommandId::CONNECT_RESP,
            Pdu::Terminate => CommandId::TERMINATE,
            Pdu::TerminateResp => CommandId::TERMINATE_RESP,
            Pdu::Submit(_) => CommandId::SUBMIT,
            Pdu::SubmitResp(_) => CommandId::SUBMIT_RESP,
            Pdu::Deliver(_) => CommandId::DELIVER,
            Pdu::DeliverResp(_) => CommandId::DELIVER_RESP,
            Pdu::Query(_) => CommandId::QUERY,
            Pdu::QueryResp(_) => CommandId::QUERY_RESP,
            Pdu::Cancel(_) => CommandId::CANCEL,
            Pdu::CancelResp(_) => CommandId::CANCEL_RESP,
            Pdu::ActiveTest => CommandId::ACTIVE_TEST,
            Pdu::ActiveTestResp(_) => CommandId::ACTIVE_TEST_RESP,
            Pdu::Unknown { command_id, .. } => *command_id,
        }
    }

    /// The spec name of the command, or "UNKNOWN".
    pub fn name(&self) -> &'static str {
        self.command_id().name().unwrap_or("UNKNOWN")
    }

    pub fn is_response(&self) -> bool {
        self.command_id().is_response()
    }

    /// Decodes a body (the bytes after the 12-byte header).
    #[inline]
    pub fn decode(
        version: Version,
        command_id: CommandId,
        body: Bytes,
    ) -> Result<Pdu, DecodeError> {
        let v = version;
        Ok(match command_id {
            CommandId::CONNECT => Pdu::Connect(Connect::decode(&body)?),
            CommandId::CONNECT_RESP => Pdu::ConnectResp(ConnectResp::decode(&body, v)?),
            CommandId::TERMINATE => {
                empty("CMPP_TERMINATE", &body)?;
                Pdu::Terminate
            }
            CommandId::TERMINATE_RESP => {
                empty("CMPP_TERMINATE_RESP", &body)?;
                Pdu::TerminateResp
            }
            CommandId::SUBMIT => return Submit::decode_pdu(&body, v),
            CommandId::SUBMIT_RESP => {
                let (msg_id, result) = decode_id_result("CMPP_SUBMIT_RESP", &body, v)?;
                Pdu::SubmitResp(SubmitResp { msg_id, result })
            }
            CommandId::DELIVER => Pdu::Deliver(Deliver::decode(&body, v)?),
            CommandId::DELIVER_RESP => {
                let (msg_id, result) = decode_id_result("CMPP_DELIVER_RESP", &body, v)?;
                Pdu::DeliverResp(DeliverResp { msg_id, result })
            }
            CommandId::QUERY => Pdu::Query(Query::decode(&body)?),
            CommandId::QUERY_RESP => Pdu::QueryResp(QueryResp::decode(&body)?),
            CommandId::CANCEL => {
                let mut r = Reader::new("CMPP_CANCEL", &body);
                let msg_id = MsgId(r.u64("Msg_Id")?);
                r.finish()?;
                Pdu::Cancel(Cancel { msg_id })
            }
            CommandId::CANCEL_RESP => {
                let width = resp_width(body.len(), 0, v);
                let mut r = Reader::new("CMPP_CANCEL_RESP", &body);
                let success_id = read_uint(&mut r, "Success_Id", width)?;
                r.finish()?;
                Pdu::CancelResp(CancelResp { success_id })
            }
            CommandId::ACTIVE_TEST => {
                empty("CMPP_ACTIVE_TEST", &body)?;
                Pdu::ActiveTest
            }
            CommandId::ACTIVE_TEST_RESP => {
                let mut r = Reader::new("CMPP_ACTIVE_TEST_RESP", &body);
                let reserved = if r.remaining() == 0 {
                    None
                } else {
                    Some(r.u8("Reserved")?)
                };
                r.finish()?;
                Pdu::ActiveTestResp(ActiveTestResp { reserved })
            }
            _ => Pdu::Unknown { command_id, body },
        })
    }

    /// Appends the body in the layout of `version`.
    pub fn encode_body(&self, version: Version, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let v = version;
        match self {
            Pdu::Connect(p) => p.encode(dst),
            Pdu::ConnectResp(p) => p.encode(v, dst),
            Pdu::Terminate | Pdu::TerminateResp | Pdu::ActiveTest => Ok(()),
            Pdu::Submit(p) => p.encode(v, dst),
            Pdu::SubmitResp(p) => encode_id_result("CMPP_SUBMIT_RESP", p.msg_id, p.result, v, dst),
            Pdu::Deliver(p) => p.encode(v, dst),
            Pdu::DeliverResp(p) => {
                encode_id_result("CMPP_DELIVER_RESP", p.msg_id, p.result, v, dst)
            }
            Pdu::Query(p) => p.encode(dst),
            Pdu::QueryResp(p) => p.encode(dst),
            Pdu::Cancel(p) => {
                dst.put_u64(p.msg_id.0);
                Ok(())
            }
            Pdu::CancelResp(p) => put_uint(
                dst,
                p.success_id,
                v.result_len(),
                "CMPP_CANCEL_RESP",
                "Success_Id",
            ),
            Pdu::ActiveTestResp(p) => {
                if let Some(b) = p.reserved {
                    dst.put_u8(b);
                }
                Ok(())
            }
            Pdu::Unknown { body, .. } => {
                dst.put_slice(body);
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------
// helpers

/// Width of the Status/Result field of a response whose body is `fixed`
/// bytes plus that field: the length tells the layout (§4 "practical
/// rule"), so a response in the other version's layout is still read.
fn resp_width(body_len: usize, fixed: usize, v: Version) -> usize {
    if body_len == fixed + 1 {
        1
    } else if body_len == fixed + 4 {
        4
    } else {
        v.result_len()
    }
}

fn read_uint(r: &mut Reader<'_>, field: &'static str, width: usize) -> Result<u32, DecodeError> {
    if width == 1 {
        r.u8(field).map(u32::from)
    } else {
        r.u32(field)
    }
}

fn put_uint(
    dst: &mut BytesMut,
    value: u32,
    width: usize,
    pdu: &'static str,
    field: &'static str,
) -> Result<(), EncodeError> {
    if width == 1 {
        let b = u8::try_from(value).map_err(|_| EncodeError::Invalid {
            pdu,
            field,
            reason: "value does not fit the 1-byte CMPP 2.0 field",
        })?;
        dst.put_u8(b);
    } else {
        dst.put_u32(value);
    }
    Ok(())
}

fn empty(pdu: &'static str, body: &Bytes) -> Result<(), DecodeError> {
    Reader::new(pdu, body).finish()
}

fn content_udh(tp_udhi: u8, content: &[u8]) -> Result<Option<Udh>, UdhError> {
    if udh::udhi_set(tp_udhi) {
        udh::parse(content).map(Some)
    } else {
        Ok(None)
    }
}

fn user_data(tp_udhi: u8, content: &[u8]) -> &[u8] {
    match content_udh(tp_udhi, content) {
        Ok(Some(h)) => content.get(h.header_len..).unwrap_or(&[]),
        _ => content,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_id_worked_example() {
        let id = MsgId::new(12, 4, 15, 7, 30, 1001, 1);
        assert_eq!(id, MsgId(0xC23C_7780_03E9_0001));
        assert_eq!(id.0, 13996193133665779713);
        assert_eq!(
            (
                id.month(),
                id.day(),
                id.hour(),
                id.minute(),
                id.second(),
                id.gateway(),
                id.sequence()
            ),
            (12, 4, 15, 7, 30, 1001, 1)
        );
        let d = MsgId(0xC23C87C003E90002);
        assert_eq!((d.minute(), d.second(), d.sequence()), (8, 31, 2));
        assert_eq!(MsgId::new(1, 1, 0, 0, 0, 7, 0xFFFF).nth(2).sequence(), 1);
        assert_eq!(MsgId::new(1, 1, 0, 0, 0, 7, 0xFFFF).nth(2).gateway(), 7);
    }

    #[test]
    fn version_bytes() {
        assert_eq!(Version::from_wire(0x30), Version::V30);
        assert_eq!(Version::from_wire(0x31), Version::V30);
        assert_eq!(Version::from_wire(0x20), Version::V20);
        assert_eq!(Version::from_wire(0x21), Version::V20);
        assert_eq!(Version::from_wire(0x00), Version::V20);
        assert_eq!(Version::V20.report_len(), 60);
        assert_eq!(Version::V30.report_len(), 71);
    }

    #[test]
    fn classes() {
        assert_eq!(SubmitResult(8).class(), StatusClass::Throttled);
        assert_eq!(SubmitResult(0).class(), StatusClass::Ok);
        assert_eq!(SubmitResult(3).class(), StatusClass::Retryable);
        assert_eq!(SubmitResult(13).class(), StatusClass::Permanent);
        assert_eq!(ConnectStatus(3).class(), StatusClass::Permanent);
        assert_eq!(Stat::outcome(b"DELIVRD"), ReportOutcome::Delivered);
        assert_eq!(Stat::outcome(b"ACCEPTD"), ReportOutcome::Pending);
        assert_eq!(Stat::outcome(b"MB:0001"), ReportOutcome::Failed);
        assert_eq!(Stat::description(b"MB:0001"), "SMSC answered with an error");
        assert_eq!(CommandId::SUBMIT.response(), CommandId::SUBMIT_RESP);
        assert_eq!(
            CommandId(0x8000_0012).name(),
            Some("CMPP_GET_MT_ROUTE_RESP")
        );
        assert_eq!(CommandId(3).name(), None);
    }
}
