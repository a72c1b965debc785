//! SMGP 3.0 (China Telecom, SP ⇄ SMGW): header, every SP-side PDU, the
//! packed-BCD MsgID, TLV optional parameters, the 122-byte status report and
//! the MD5 login authenticators.
//!
//! Reference: China Telecom "短消息网关协议 SMGP V3.0.3" (2008-08). Section
//! numbers in the docs below (§n) are those of the project's SMGP wire
//! reference.

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;
use std::fmt;

use crate::error::{DecodeError, EncodeError};
use crate::frame::Protocol;
use crate::status::StatusClass;
use crate::text::{DataCoding, Segment};
use crate::udh::{self, Udh, UdhError};
use crate::wire::{len_u8, md5, FixedStr, HexFmt, Reader, Timestamp};

/// The SMGP 3.0 protocol: 12-byte header (PacketLength, RequestID,
/// SequenceID), 4-byte sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Smgp;

/// The protocol version this codec speaks (ClientVersion / ServerVersion).
pub const VERSION: u8 = 0x30;

/// Most recipients one Submit may carry (DestTermIDCount ≤ 100).
pub const MAX_DEST_TERM_IDS: usize = 100;

/// Length of the status report carried in a report Deliver's MsgContent.
pub const REPORT_LEN: usize = 122;

// ---------------------------------------------------------------------------
// RequestID

/// RequestID, 4 bytes (§3). Named `CommandId` for symmetry with the other
/// protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u32);

impl CommandId {
    pub const LOGIN: CommandId = CommandId(0x0000_0001);
    pub const LOGIN_RESP: CommandId = CommandId(0x8000_0001);
    pub const SUBMIT: CommandId = CommandId(0x0000_0002);
    pub const SUBMIT_RESP: CommandId = CommandId(0x8000_0002);
    pub const DELIVER: CommandId = CommandId(0x0000_0003);
    pub const DELIVER_RESP: CommandId = CommandId(0x8000_0003);
    pub const ACTIVE_TEST: CommandId = CommandId(0x0000_0004);
    pub const ACTIVE_TEST_RESP: CommandId = CommandId(0x8000_0004);
    pub const FORWARD: CommandId = CommandId(0x0000_0005);
    pub const FORWARD_RESP: CommandId = CommandId(0x8000_0005);
    pub const EXIT: CommandId = CommandId(0x0000_0006);
    pub const EXIT_RESP: CommandId = CommandId(0x8000_0006);
    pub const QUERY: CommandId = CommandId(0x0000_0007);
    pub const QUERY_RESP: CommandId = CommandId(0x8000_0007);
    pub const QUERY_TE_ROUTE: CommandId = CommandId(0x0000_0008);
    pub const QUERY_TE_ROUTE_RESP: CommandId = CommandId(0x8000_0008);
    pub const QUERY_SP_ROUTE: CommandId = CommandId(0x0000_0009);
    pub const QUERY_SP_ROUTE_RESP: CommandId = CommandId(0x8000_0009);
    pub const PAYMENT_REQUEST: CommandId = CommandId(0x0000_000A);
    pub const PAYMENT_REQUEST_RESP: CommandId = CommandId(0x8000_000A);
    pub const PAYMENT_AFFIRM: CommandId = CommandId(0x0000_000B);
    pub const PAYMENT_AFFIRM_RESP: CommandId = CommandId(0x8000_000B);
    pub const QUERY_USER_STATE: CommandId = CommandId(0x0000_000C);
    pub const QUERY_USER_STATE_RESP: CommandId = CommandId(0x8000_000C);
    pub const GET_ALL_TE_ROUTE: CommandId = CommandId(0x0000_000D);
    pub const GET_ALL_TE_ROUTE_RESP: CommandId = CommandId(0x8000_000D);
    pub const GET_ALL_SP_ROUTE: CommandId = CommandId(0x0000_000E);
    pub const GET_ALL_SP_ROUTE_RESP: CommandId = CommandId(0x8000_000E);
    pub const UPDATE_TE_ROUTE: CommandId = CommandId(0x0000_000F);
    pub const UPDATE_TE_ROUTE_RESP: CommandId = CommandId(0x8000_000F);
    pub const UPDATE_SP_ROUTE: CommandId = CommandId(0x0000_0010);
    pub const UPDATE_SP_ROUTE_RESP: CommandId = CommandId(0x8000_0010);
    pub const PUSH_UPDATE_TE_ROUTE: CommandId = CommandId(0x0000_0011);
    pub const PUSH_UPDATE_TE_ROUTE_RESP: CommandId = CommandId(0x8000_0011);
    pub const PUSH_UPDATE_SP_ROUTE: CommandId = CommandId(0x0000_0012);
    pub const PUSH_UPDATE_SP_ROUTE_RESP: CommandId = CommandId(0x8000_0012);

    /// The spec name ("Submit", "Submit_Resp", …), or `None` for ids the
    /// spec does not define.
    pub fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 18] = [
            "Login",
            "Submit",
            "Deliver",
            "Active_Test",
            "Forward",
            "Exit",
            "Query",
            "Query_TE_Route",
            "Query_SP_Route",
            "Payment_Request",
            "Payment_Affirm",
            "Query_UserState",
            "Get_All_TE_Route",
            "Get_All_SP_Route",
            "Update_TE_Route",
            "Update_SP_Route",
            "Push_Update_TE_Route",
            "Push_Update_SP_Route",
        ];
        const RESP_NAMES: [&str; 18] = [
            "Login_Resp",
            "Submit_Resp",
            "Deliver_Resp",
            "Active_Test_Resp",
            "Forward_Resp",
            "Exit_Resp",
            "Query_Resp",
            "Query_TE_Route_Resp",
            "Query_SP_Route_Resp",
            "Payment_Request_Resp",
            "Payment_Affirm_Resp",
            "Query_UserState_Resp",
            "Get_All_TE_Route_Resp",
            "Get_All_SP_Route_Resp",
            "Update_TE_Route_Resp",
            "Update_SP_Route_Resp",
            "Push_Update_TE_Route_Resp",
            "Push_Update_SP_Route_Resp",
        ];
        let low = (self.0 & 0x7FFF_FFFF) as usize;
        let table = if self.is_response() {
            &RESP_NAMES
        } else {
            &NAMES
        };
        if (1..=table.len()).contains(&low) {
            Some(table[low - 1])
        } else {
            None
        }
    }

    /// Whether the id is a response (high bit set).
    pub fn is_response(self) -> bool {
        self.0 & 0x8000_0000 != 0
    }

    /// The response id for a request id.
    pub fn response(self) -> CommandId {
        CommandId(self.0 | 0x8000_0000)
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{:#010x}", self.0),
        }
    }
}

// ---------------------------------------------------------------------------
// Status

/// Status, 4 bytes (§11): the result code of Login_Resp, Submit_Resp,
/// Deliver_Resp. Unknown codes survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Status(pub u32);

impl Status {
    pub const OK: Status = Status(0);
    pub const SYSTEM_BUSY: Status = Status(1);
    pub const TOO_MANY_CONNECTIONS: Status = Status(2);
    pub const BAD_MESSAGE_STRUCTURE: Status = Status(10);
    pub const BAD_COMMAND: Status = Status(11);
    pub const DUPLICATE_SEQUENCE: Status = Status(12);
    pub const BAD_IP_ADDRESS: Status = Status(20);
    pub const AUTHENTICATION_ERROR: Status = Status(21);
    pub const VERSION_TOO_HIGH: Status = Status(22);
    pub const ILLEGAL_MSG_TYPE: Status = Status(30);
    pub const ILLEGAL_PRIORITY: Status = Status(31);
    pub const ILLEGAL_FEE_TYPE: Status = Status(32);
    pub const ILLEGAL_FEE_CODE: Status = Status(33);
    pub const ILLEGAL_MSG_FORMAT: Status = Status(34);
    pub const ILLEGAL_TIME_FORMAT: Status = Status(35);
    pub const ILLEGAL_MSG_LENGTH: Status = Status(36);
    pub const VALIDITY_EXPIRED: Status = Status(37);
    pub const ILLEGAL_QUERY_TYPE: Status = Status(38);
    pub const ROUTING_ERROR: Status = Status(39);
    pub const ILLEGAL_FIXED_FEE: Status = Status(40);
    pub const ILLEGAL_UPDATE_TYPE: Status = Status(41);
    pub const ILLEGAL_ROUTE_ID: Status = Status(42);
    pub const ILLEGAL_SERVICE_ID: Status = Status(43);
    pub const ILLEGAL_VALID_TIME: Status = Status(44);
    pub const ILLEGAL_AT_TIME: Status = Status(45);
    pub const ILLEGAL_SRC_TERM_ID: Status = Status(46);
    pub const ILLEGAL_DEST_TERM_ID: Status = Status(47);
    pub const ILLEGAL_CHARGE_TERM_ID: Status = Status(48);
    pub const ILLEGAL_SP_CODE: Status = Status(49);
    pub const ILLEGAL_SRC_GATEWAY_ID: Status = Status(56);
    pub const ILLEGAL_QUERY_TERM_ID: Status = Status(57);
    pub const NO_MATCHING_ROUTE: Status = Status(58);
    pub const ILLEGAL_SP_TYPE: Status = Status(59);
    pub const ILLEGAL_LAST_ROUTE_ID: Status = Status(60);
    pub const ILLEGAL_ROUTE_TYPE: Status = Status(61);
    pub const ILLEGAL_DEST_GATEWAY_ID: Status = Status(62);
    pub const ILLEGAL_DEST_GATEWAY_IP: Status = Status(63);
    pub const ILLEGAL_DEST_GATEWAY_PORT: Status = Status(64);
    pub const ILLEGAL_TERM_RANGE_ID: Status = Status(65);
    pub const ILLEGAL_PROVINCE_CODE: Status = Status(66);
    pub const ILLEGAL_USER_TYPE: Status = Status(67);
    pub const ROUTE_UPDATE_NOT_SUPPORTED: Status = Status(68);
    pub const ILLEGAL_SP_ID: Status = Status(69);
    pub const ILLEGAL_SP_ACCESS_TYPE: Status = Status(70);
    pub const ROUTE_UPDATE_FAILED: Status = Status(71);
    pub const ILLEGAL_TIME: Status = Status(72);
    pub const ILLEGAL_M_SERVICE_ID: Status = Status(73);
    pub const SP_NO_SENDING_PERIOD: Status = Status(74);
    pub const SP_DAILY_VOLUME_EXCEEDED: Status = Status(75);
    pub const SP_ACCOUNT_EXPIRED: Status = Status(76);

    /// How the engine should treat the code. System busy and the daily
    /// volume cap ask us to slow down; too many connections, a duplicate
    /// sequence number and a no-sending period are transient; every other
    /// defined code (structure, authentication, field and routing errors)
    /// is permanent. Reserved and vendor codes are treated as permanent so
    /// an unknown answer never causes blind resends.
    pub fn class(self) -> StatusClass {
        match self.0 {
            0 => StatusClass::Ok,
            1 | 75 => StatusClass::Throttled,
            2 | 12 | 74 => StatusClass::Retryable,
            _ => StatusClass::Permanent,
        }
    }

    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// The spec's meaning of the code, or `None` for reserved/vendor codes.
    pub fn description(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "success",
            1 => "system busy",
            2 => "too many connections",
            10 => "bad message structure",
            11 => "bad command word",
            12 => "duplicate sequence number",
            20 => "bad IP address",
            21 => "authentication error",
            22 => "version too high",
            30 => "illegal MsgType",
            31 => "illegal Priority",
            32 => "illegal FeeType",
            33 => "illegal FeeCode",
            34 => "illegal MsgFormat",
            35 => "illegal time format",
            36 => "illegal MsgLength",
            37 => "validity period already passed",
            38 => "illegal QueryType",
            39 => "routing error",
            40 => "illegal FixedFee",
            41 => "illegal UpdateType",
            42 => "illegal RouteId",
            43 => "illegal ServiceId",
            44 => "illegal ValidTime",
            45 => "illegal AtTime",
            46 => "illegal SrcTermId",
            47 => "illegal DestTermId",
            48 => "illegal ChargeTermId",
            49 => "illegal SPCode",
            56 => "illegal SrcGatewayID",
            57 => "illegal QueryTermID",
            58 => "no matching route",
            59 => "illegal SPType",
            60 => "illegal LastRouteID",
            61 => "illegal RouteType",
            62 => "illegal DestGatewayID",
            63 => "illegal DestGatewayIP",
            64 => "illegal DestGatewayPort",
            65 => "illegal TermRangeID",
            66 => "illegal ProvinceCode",
            67 => "illegal UserType",
            68 => "this node does not support route update",
            69 => "illegal SPID",
            70 => "illegal SPAccessType",
            71 => "route update failed",
            72 => "illegal Time",
            73 => "illegal MServiceID",
            74 => "SP is in a no-sending period",
            75 => "SP exceeded its daily volume",
            76 => "SP account expired",
            _ => return None,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.description() {
            Some(d) => write!(f, "{} ({d})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

// ---------------------------------------------------------------------------
// Small wire enums

/// LoginMode, 1 byte (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LoginMode(pub u8);

impl LoginMode {
    /// 0: the SP only submits.
    pub const SEND: LoginMode = LoginMode(0);
    /// 1: the SMGW delivers MO messages and reports on this link.
    pub const RECEIVE: LoginMode = LoginMode(1);
    /// 2: both directions.
    pub const TRANSMIT: LoginMode = LoginMode(2);

    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("send"),
            1 => Some("receive"),
            2 => Some("transmit"),
            _ => None,
        }
    }
}

/// MsgType, 1 byte (§6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MsgType(pub u8);

impl MsgType {
    pub const MO: MsgType = MsgType(0);
    /// SP → handset (also web P2P).
    pub const MT: MsgType = MsgType(6);
    pub const P2P: MsgType = MsgType(7);

    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("MO"),
            6 => Some("MT"),
            7 => Some("P2P"),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// MsgID

/// MsgID, 10 bytes of packed BCD (§9): 6 digits SMGW code, 8 digits time
/// `MMDDhhmm`, 6 digits sequence. Each byte holds two digits, high nibble
/// first, so the hex dump reads as the 20-digit decimal string.
///
/// The raw bytes are kept as they came: a peer that puts non-BCD nibbles in
/// the id still round-trips, and [`fmt::Display`] then shows those nibbles
/// as hex letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MsgId(pub [u8; 10]);

impl MsgId {
    /// Builds an id from its parts: `smgw_code` ≤ 999999 (area code +
    /// device type + index, e.g. 755061), `time` = MMDDhhmm as a decimal
    /// number, `sequence` ≤ 999999. `None` if a part has too many digits.
    pub fn from_parts(smgw_code: u32, time: u32, sequence: u32) -> Option<MsgId> {
        if smgw_code > 999_999 || time > 99_999_999 || sequence > 999_999 {
            return None;
        }
        let mut digits = [0u8; 20];
        put_digits(&mut digits[0..6], smgw_code);
        put_digits(&mut digits[6..14], time);
        put_digits(&mut digits[14..20], sequence);
        let mut out = [0u8; 10];
        for (i, b) in out.iter_mut().enumerate() {
            *b = (digits[2 * i] << 4) | digits[2 * i + 1];
        }
        Some(MsgId(out))
    }

    /// Parses the 20-character text form (decimal digits, or hex digits
    /// for ids with non-BCD nibbles). Reports from some gateways carry the
    /// id this way; the result compares equal to the id from Submit_Resp.
    pub fn from_digits(text: &[u8]) -> Option<MsgId> {
        if text.len() != 20 {
            return None;
        }
        let mut out = [0u8; 10];
        for (i, b) in out.iter_mut().enumerate() {
            let hi = hex_val(text[2 * i])?;
            let lo = hex_val(text[2 * i + 1])?;
            *b = (hi << 4) | lo;
        }
        Some(MsgId(out))
    }

    pub fn as_bytes(&self) -> &[u8; 10] {
        &self.0
    }

    /// The 20 nibbles as values (0–15; 0–9 for a valid BCD id).
    pub fn nibbles(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = b >> 4;
            out[2 * i + 1] = b & 0x0F;
        }
        out
    }

    /// Whether every nibble is a decimal digit.
    pub fn is_bcd(&self) -> bool {
        self.nibbles().iter().all(|&n| n <= 9)
    }

    fn number(&self, from: usize, to: usize) -> u32 {
        self.nibbles()[from..to]
            .iter()
            .fold(0u32, |acc, &n| acc.wrapping_mul(10).wrapping_add(n as u32))
    }

    /// SMGW code, 6 digits (area code + device type + index), e.g. 755061.
    pub fn smgw_code(&self) -> u32 {
        self.number(0, 6)
    }

    /// Time `MMDDhhmm` as a decimal number, e.g. 12041507.
    pub fn time(&self) -> u32 {
        self.number(6, 14)
    }

    pub fn month(&self) -> u32 {
        self.number(6, 8)
    }
    pub fn day(&self) -> u32 {
        self.number(8, 10)
    }
    pub fn hour(&self) -> u32 {
        self.number(10, 12)
    }
    pub fn minute(&self) -> u32 {
        self.number(12, 14)
    }

    /// Sequence, 6 digits.
    pub fn sequence(&self) -> u32 {
        self.number(14, 20)
    }

    /// The id `n` places further on in a mass-send range (§7 / appendix B):
    /// the sequence part is incremented, wrapping 999999 → 000000.
    pub fn nth_in_range(&self, n: u32) -> MsgId {
        let seq = (self.sequence() as u64 + n as u64) % 1_000_000;
        let mut out = self.0;
        let mut digits = [0u8; 6];
        put_digits(&mut digits, seq as u32);
        out[7] = (digits[0] << 4) | digits[1];
        out[8] = (digits[2] << 4) | digits[3];
        out[9] = (digits[4] << 4) | digits[5];
        MsgId(out)
    }
}

fn put_digits(dst: &mut [u8], mut value: u32) {
    for d in dst.iter_mut().rev() {
        *d = (value % 10) as u8;
        value /= 10;
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for MsgId {
    /// The 20 digits (lower-case hex letters for non-BCD nibbles).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", HexFmt(&self.0))
    }
}

impl fmt::Debug for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MsgId({self})")
    }
}

impl std::str::FromStr for MsgId {
    type Err = InvalidMsgId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MsgId::from_digits(s.as_bytes()).ok_or(InvalidMsgId)
    }
}

/// A string that is not a 20-digit MsgID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a 20-digit SMGP MsgID")]
pub struct InvalidMsgId;

// ---------------------------------------------------------------------------
// TLVs

/// A TLV tag, 2 bytes (§10). Unknown tags survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u16);

impl Tag {
    /// TP_pid, 1 byte: GSM TP-PID.
    pub const TP_PID: Tag = Tag(0x0001);
    /// TP_udhi, 1 byte: 1 (or 0x40) = MsgContent starts with a UDH.
    pub const TP_UDHI: Tag = Tag(0x0002);
    /// LinkID, 20 bytes: transaction id of on-demand services.
    pub const LINK_ID: Tag = Tag(0x0003);
    /// ChargeUserType, 1 byte.
    pub const CHARGE_USER_TYPE: Tag = Tag(0x0004);
    /// ChargeTermType, 1 byte.
    pub const CHARGE_TERM_TYPE: Tag = Tag(0x0005);
    /// ChargeTermPseudo, variable.
    pub const CHARGE_TERM_PSEUDO: Tag = Tag(0x0006);
    /// DestTermType, 1 byte.
    pub const DEST_TERM_TYPE: Tag = Tag(0x0007);
    /// DestTermPseudo, variable.
    pub const DEST_TERM_PSEUDO: Tag = Tag(0x0008);
    /// PkTotal, 1 byte: segments with the same MsgID.
    pub const PK_TOTAL: Tag = Tag(0x0009);
    /// PkNumber, 1 byte: segment index, 1-based.
    pub const PK_NUMBER: Tag = Tag(0x000A);
    /// SubmitMsgType, 1 byte.
    pub const SUBMIT_MSG_TYPE: Tag = Tag(0x000B);
    /// SPDealResult, 1 byte.
    pub const SP_DEAL_RESULT: Tag = Tag(0x000C);
    /// SrcTermType, 1 byte.
    pub const SRC_TERM_TYPE: Tag = Tag(0x000D);
    /// SrcTermPseudo, variable.
    pub const SRC_TERM_PSEUDO: Tag = Tag(0x000E);
    /// NodesCount, 1 byte.
    pub const NODES_COUNT: Tag = Tag(0x000F);
    /// MsgSrc, 8 bytes.
    pub const MSG_SRC: Tag = Tag(0x0010);
    /// SrcType, 1 byte.
    pub const SRC_TYPE: Tag = Tag(0x0011);
    /// MServiceID, 21 bytes.
    pub const M_SERVICE_ID: Tag = Tag(0x0012);

    /// The spec name, or `None` for tags the spec does not define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0001 => "TP_pid",
            0x0002 => "TP_udhi",
            0x0003 => "LinkID",
            0x0004 => "ChargeUserType",
            0x0005 => "ChargeTermType",
            0x0006 => "ChargeTermPseudo",
            0x0007 => "DestTermType",
            0x0008 => "DestTermPseudo",
            0x0009 => "PkTotal",
            0x000A => "PkNumber",
            0x000B => "SubmitMsgType",
            0x000C => "SPDealResult",
            0x000D => "SrcTermType",
            0x000E => "SrcTermPseudo",
            0x000F => "NodesCount",
            0x0010 => "MsgSrc",
            0x0011 => "SrcType",
            0x0012 => "MServiceID",
            _ => return None,
        })
    }

    /// Whether the spec defines the value as a 1-byte integer.
    pub fn is_integer(self) -> bool {
        matches!(
            self.0,
            0x0001 | 0x0002 | 0x0004 | 0x0005 | 0x0007 | 0x0009..=0x000D | 0x000F | 0x0011
        )
    }
}

/// The TLV area after a Submit's or Deliver's Reserve, kept as the wire
/// bytes (zero-copy) and validated at decode: every element's tag, length
/// and value fit. Unknown tags and the original order survive byte for
/// byte.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Tlvs(Bytes);

impl Tlvs {
    /// No TLVs.
    pub fn new() -> Tlvs {
        Tlvs(Bytes::new())
    }

    pub fn builder() -> TlvsBuilder {
        TlvsBuilder::default()
    }

    /// Validates `area` (everything after Reserve) as a TLV sequence.
    /// `base` is the body offset where the area starts, for errors.
    pub fn parse(area: Bytes, pdu: &'static str, base: usize) -> Result<Tlvs, DecodeError> {
        let mut at = 0;
        while at < area.len() {
            let left = area.len() - at;
            if left < 4 {
                return Err(DecodeError::Field {
                    pdu,
                    field: "TLV",
                    offset: base + at,
                    reason: "TLV header overruns the body",
                });
            }
            let len = u16::from_be_bytes([area[at + 2], area[at + 3]]) as usize;
            if len > left - 4 {
                return Err(DecodeError::Field {
                    pdu,
                    field: "TLV",
                    offset: base + at,
                    reason: "TLV value overruns the body",
                });
            }
            at += 4 + len;
        }
        Ok(Tlvs(area))
    }

    /// The raw wire bytes of the area.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of wire bytes in the area.
    pub fn wire_len(&self) -> usize {
        self.0.len()
    }

    /// Every element in wire order.
    pub fn iter(&self) -> TlvIter<'_> {
        TlvIter { rest: &self.0 }
    }

    /// The value of the first element with `tag`.
    pub fn get(&self, tag: Tag) -> Option<&[u8]> {
        self.iter().find(|(t, _)| *t == tag).map(|(_, v)| v)
    }

    /// The first byte of a 1-byte integer TLV.
    pub fn get_u8(&self, tag: Tag) -> Option<u8> {
        self.get(tag).and_then(|v| v.first().copied())
    }

    /// A string TLV with trailing 0x00 removed (SMSGate sends value + NUL,
    /// the spec fixed widths padded with NUL).
    pub fn get_str(&self, tag: Tag) -> Option<&[u8]> {
        self.get(tag).map(trim_nul)
    }

    /// Whether TP_udhi says a UDH is present (bit 0 or bit 6).
    pub fn udhi(&self) -> bool {
        self.get_u8(Tag::TP_UDHI).is_some_and(udh::udhi_set)
    }

    pub fn pk_total(&self) -> Option<u8> {
        self.get_u8(Tag::PK_TOTAL)
    }

    pub fn pk_number(&self) -> Option<u8> {
        self.get_u8(Tag::PK_NUMBER)
    }

    pub fn link_id(&self) -> Option<&[u8]> {
        self.get_str(Tag::LINK_ID)
    }

    /// A copy with every element whose tag is in `drop` removed and
    /// `append` added at the end, in order.
    pub fn replaced(&self, drop: &[Tag], append: &[(Tag, &[u8])]) -> Tlvs {
        let mut b = Tlvs::builder();
        for (t, v) in self.iter() {
            if !drop.contains(&t) {
                b = b.put(t, v);
            }
        }
        for (t, v) in append {
            b = b.put(*t, v);
        }
        // Every value came from a valid area or is a short slice; lengths
        // fit in u16 unless the caller passed an oversized value, which
        // the builder then drops (see `TlvsBuilder::build`).
        b.build().unwrap_or_default()
    }
}

fn trim_nul(v: &[u8]) -> &[u8] {
    let end = v.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &v[..end]
}

impl fmt::Debug for Tlvs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for (t, v) in self.iter() {
            match t.name() {
                Some(n) => l.entry(&format_args!("{n}=0x{}", HexFmt(v))),
                None => l.entry(&format_args!("{:#06x}=0x{}", t.0, HexFmt(v))),
            };
        }
        l.finish()
    }
}

/// Iterator over `(tag, value)` pairs of a validated [`Tlvs`].
pub struct TlvIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = (Tag, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < 4 {
            return None;
        }
        let tag = Tag(u16::from_be_bytes([self.rest[0], self.rest[1]]));
        let len = u16::from_be_bytes([self.rest[2], self.rest[3]]) as usize;
        let end = (4 + len).min(self.rest.len());
        let value = &self.rest[4..end];
        self.rest = &self.rest[end..];
        Some((tag, value))
    }
}

/// Builds a [`Tlvs`] area element by element, in order.
#[derive(Debug, Default, Clone)]
pub struct TlvsBuilder {
    buf: BytesMut,
    too_long: Option<usize>,
}

impl TlvsBuilder {
    /// Appends an element.
    pub fn put(mut self, tag: Tag, value: &[u8]) -> Self {
        match u16::try_from(value.len()) {
            Ok(len) => {
                self.buf.put_u16(tag.0);
                self.buf.put_u16(len);
                self.buf.put_slice(value);
            }
            Err(_) => self.too_long = Some(value.len()),
        }
        self
    }

    /// Appends a 1-byte integer element.
    pub fn put_u8(self, tag: Tag, value: u8) -> Self {
        self.put(tag, &[value])
    }

    /// Appends a string element padded with 0x00 to `width` (the spec's
    /// fixed widths: LinkID 20, MsgSrc 8, MServiceID 21; widths above 64
    /// are capped at 64). A value at least `width` long is written as is.
    pub fn put_padded(self, tag: Tag, value: &[u8], width: usize) -> Self {
        if value.len() >= width {
            return self.put(tag, value);
        }
        let mut v = [0u8; 64];
        let width = width.min(64);
        v[..value.len()].copy_from_slice(value);
        self.put(tag, &v[..width])
    }

    /// The area; fails if a value was longer than 65,535 bytes.
    pub fn build(self) -> Result<Tlvs, EncodeError> {
        match self.too_long {
            Some(len) => Err(EncodeError::TooLong {
                pdu: "TLV",
                field: "Length",
                len,
                max: u16::MAX as usize,
            }),
            None => Ok(Tlvs(self.buf.freeze())),
        }
    }
}

// ---------------------------------------------------------------------------
// Authenticators

/// AuthenticatorClient = MD5(ClientID ‖ 7 × 0x00 ‖ shared secret ‖ TS) where
/// TS is the timestamp as 10 ASCII digits (§4). `client_id` is the account
/// as configured, without padding.
pub fn authenticator_client(client_id: &[u8], secret: &[u8], ts: Timestamp) -> [u8; 16] {
    md5(&[client_id, &[0u8; 7], secret, &ts.digits()])
}

/// AuthenticatorServer = MD5(Status as 4 bytes big-endian ‖
/// AuthenticatorClient ‖ shared secret) (§5).
pub fn authenticator_server(status: Status, auth_client: &[u8; 16], secret: &[u8]) -> [u8; 16] {
    md5(&[&status.0.to_be_bytes(), auth_client, secret])
}

/// Constant-time-ish comparison of two digests.
fn digest_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------
// PDUs

/// Login (§4), body 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Login {
    /// ClientID, 8: login account.
    pub client_id: FixedStr<8>,
    /// AuthenticatorClient, 16: MD5 digest (see [`authenticator_client`]).
    pub authenticator_client: [u8; 16],
    /// LoginMode, 1.
    pub login_mode: LoginMode,
    /// TimeStamp, 4: MMDDhhmmss as a decimal number.
    pub timestamp: Timestamp,
    /// ClientVersion, 1: 0x30 for SMGP 3.0.
    pub client_version: u8,
}

impl Login {
    /// A Login for `client_id` with its authenticator computed.
    pub fn new(
        client_id: &str,
        secret: &[u8],
        login_mode: LoginMode,
        timestamp: Timestamp,
    ) -> Result<Login, EncodeError> {
        let id = FixedStr::<8>::new(client_id.as_bytes()).map_err(|_| EncodeError::TooLong {
            pdu: "Login",
            field: "ClientID",
            len: client_id.len(),
            max: 8,
        })?;
        Ok(Login {
            client_id: id,
            authenticator_client: authenticator_client(id.as_bytes(), secret, timestamp),
            login_mode,
            timestamp,
            client_version: VERSION,
        })
    }

    /// Whether AuthenticatorClient matches `secret` (server side).
    pub fn verify(&self, secret: &[u8]) -> bool {
        let expect = authenticator_client(self.client_id.as_bytes(), secret, self.timestamp);
        digest_eq(&expect, &self.authenticator_client)
    }

    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Login", body);
        let v = Login {
            client_id: r.fixed("ClientID", 8)?,
            authenticator_client: r.array("AuthenticatorClient")?,
            login_mode: LoginMode(r.u8("LoginMode")?),
            timestamp: Timestamp(r.u32("TimeStamp")?),
            client_version: r.u8("ClientVersion")?,
        };
        r.finish()?;
        Ok(v)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.client_id.put(dst, 8, "Login", "ClientID")?;
        dst.put_slice(&self.authenticator_client);
        dst.put_u8(self.login_mode.0);
        dst.put_u32(self.timestamp.0);
        dst.put_u8(self.client_version);
        Ok(())
    }
}

/// Login_Resp (§5), body 21.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginResp {
    /// Status, 4.
    pub status: Status,
    /// AuthenticatorServer, 16: see [`authenticator_server`]; zeros when
    /// authentication failed.
    pub authenticator_server: [u8; 16],
    /// ServerVersion, 1.
    pub server_version: u8,
}

impl LoginResp {
    /// The server's answer to `login`: the authenticator is computed on
    /// success and left as zeros otherwise.
    pub fn for_login(login: &Login, status: Status, secret: &[u8]) -> LoginResp {
        let authenticator_server = if status.is_ok() {
            authenticator_server(status, &login.authenticator_client, secret)
        } else {
            [0; 16]
        };
        LoginResp {
            status,
            authenticator_server,
            server_version: VERSION,
        }
    }

    /// Whether AuthenticatorServer matches (client side; a client should
    /// log a mismatch rather than fail, see §14.1).
    pub fn verify(&self, auth_client: &[u8; 16], secret: &[u8]) -> bool {
        let expect = authenticator_server(self.status, auth_client, secret);
        digest_eq(&expect, &self.authenticator_server)
    }

    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Login_Resp", body);
        let v = LoginResp {
            status: Status(r.u32("Status")?),
            authenticator_server: r.array("AuthenticatorServer")?,
            server_version: r.u8("ServerVersion")?,
        };
        r.finish()?;
        Ok(v)
    }

    fn encode(&self, dst: &mut BytesMut) {
        dst.put_u32(self.status.0);
        dst.put_slice(&self.authenticator_server);
        dst.put_u8(self.server_version);
    }
}

/// Submit (§6), body 114 + 21·n + L, then TLVs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    /// MsgType, 1: 6 = MT.
    pub msg_type: MsgType,
    /// NeedReport, 1: 0 no, 1 yes.
    pub need_report: u8,
    /// Priority, 1: 0 low … 3 high.
    pub priority: u8,
    /// ServiceID, 10.
    pub service_id: FixedStr<10>,
    /// FeeType, 2: "00" free, "01" per message, "02" monthly, "03" capped.
    pub fee_type: FixedStr<2>,
    /// FeeCode, 6: per-message fee in fen.
    pub fee_code: FixedStr<6>,
    /// FixedFee, 6: monthly fee / cap in fen.
    pub fixed_fee: FixedStr<6>,
    /// MsgFormat, 1: 0 ASCII, 3 SIM write, 4 binary, 8 UCS2, 15 GB18030.
    pub msg_format: DataCoding,
    /// ValidTime, 17: `YYMMDDhhmmsstnnp`, empty = default.
    pub valid_time: FixedStr<17>,
    /// AtTime, 17: scheduled time, empty = now.
    pub at_time: FixedStr<17>,
    /// SrcTermID, 21: sender number.
    pub src_term_id: FixedStr<21>,
    /// ChargeTermID, 21: charged number; empty = default charging.
    pub charge_term_id: FixedStr<21>,
    /// DestTermIDCount, 1 + DestTermID, 21 × n: recipients (≤ 100).
    pub dest_term_ids: SmallVec<[FixedStr<21>; 1]>,
    /// MsgLength, 1 + MsgContent, L: payload, UDH included.
    pub msg_content: Bytes,
    /// Reserve, 8.
    pub reserve: [u8; 8],
    /// Optional TLVs after Reserve (§10).
    pub tlvs: Tlvs,
}

impl Default for Submit {
    fn default() -> Self {
        Submit {
            msg_type: MsgType::MT,
            need_report: 0,
            priority: 0,
            service_id: FixedStr::EMPTY,
            fee_type: FixedStr::EMPTY,
            fee_code: FixedStr::EMPTY,
            fixed_fee: FixedStr::EMPTY,
            msg_format: DataCoding(0),
            valid_time: FixedStr::EMPTY,
            at_time: FixedStr::EMPTY,
            src_term_id: FixedStr::EMPTY,
            charge_term_id: FixedStr::EMPTY,
            dest_term_ids: SmallVec::new(),
            msg_content: Bytes::new(),
            reserve: [0; 8],
            tlvs: Tlvs::new(),
        }
    }
}

impl Submit {
    /// Whether the TP_udhi TLV says MsgContent starts with a UDH.
    pub fn udhi(&self) -> bool {
        self.tlvs.udhi()
    }

    /// The UDH when TP_udhi is set.
    pub fn udh(&self) -> Result<Option<Udh>, UdhError> {
        content_udh(self.udhi(), &self.msg_content)
    }

    /// MsgContent without its UDH (the whole content when the header is
    /// absent or unreadable).
    pub fn user_data(&self) -> &[u8] {
        user_data(self.udhi(), &self.msg_content)
    }

    /// The text of the message, decoded per MsgFormat (lossy).
    pub fn text(&self) -> String {
        crate::text::decode(self.user_data(), self.msg_format)
    }

    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Submit", body);
        let msg_type = MsgType(r.u8("MsgType")?);
        let need_report = r.u8("NeedReport")?;
        let priority = r.u8("Priority")?;
        let service_id = r.fixed("ServiceID", 10)?;
        let fee_type = r.fixed("FeeType", 2)?;
        let fee_code = r.fixed("FeeCode", 6)?;
        let fixed_fee = r.fixed("FixedFee", 6)?;
        let msg_format = DataCoding(r.u8("MsgFormat")?);
        let valid_time = r.fixed("ValidTime", 17)?;
        let at_time = r.fixed("AtTime", 17)?;
        let src_term_id = r.fixed("SrcTermID", 21)?;
        let charge_term_id = r.fixed("ChargeTermID", 21)?;
        let count = r.u8("DestTermIDCount")? as usize;
        let mut dest_term_ids = SmallVec::with_capacity(count);
        for _ in 0..count {
            dest_term_ids.push(r.fixed("DestTermID", 21)?);
        }
        let len = r.u8("MsgLength")? as usize;
        let msg_content = r.bytes("MsgContent", len)?;
        let reserve = r.array("Reserve")?;
        let tlv_at = r.offset();
        let tlvs = Tlvs::parse(r.rest(), "Submit", tlv_at)?;
        let v = Submit {
            msg_type,
            need_report,
            priority,
            service_id,
            fee_type,
            fee_code,
            fixed_fee,
            msg_format,
            valid_time,
            at_time,
            src_term_id,
            charge_term_id,
            dest_term_ids,
            msg_content,
            reserve,
            tlvs,
        };
        v.udh()?;
        Ok(v)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        const P: &str = "Submit";
        if self.dest_term_ids.len() > MAX_DEST_TERM_IDS {
            return Err(EncodeError::TooLong {
                pdu: P,
                field: "DestTermIDCount",
                len: self.dest_term_ids.len(),
                max: MAX_DEST_TERM_IDS,
            });
        }
        let msg_len = len_u8(self.msg_content.len(), P, "MsgLength")?;
        dst.reserve(
            114 + 21 * self.dest_term_ids.len() + self.msg_content.len() + self.tlvs.wire_len(),
        );
        dst.put_u8(self.msg_type.0);
        dst.put_u8(self.need_report);
        dst.put_u8(self.priority);
        self.service_id.put(dst, 10, P, "ServiceID")?;
        self.fee_type.put(dst, 2, P, "FeeType")?;
        self.fee_code.put(dst, 6, P, "FeeCode")?;
        self.fixed_fee.put(dst, 6, P, "FixedFee")?;
        dst.put_u8(self.msg_format.0);
        self.valid_time.put(dst, 17, P, "ValidTime")?;
        self.at_time.put(dst, 17, P, "AtTime")?;
        self.src_term_id.put(dst, 21, P, "SrcTermID")?;
        self.charge_term_id.put(dst, 21, P, "ChargeTermID")?;
        dst.put_u8(self.dest_term_ids.len() as u8);
        for d in &self.dest_term_ids {
            d.put(dst, 21, P, "DestTermID")?;
        }
        dst.put_u8(msg_len);
        dst.put_slice(&self.msg_content);
        dst.put_slice(&self.reserve);
        dst.put_slice(self.tlvs.as_bytes());
        Ok(())
    }
}

/// One Submit per segment of a long message: each is `template` with the
/// segment as MsgContent and, for a segment that carries a concatenation
/// UDH, the TLVs TP_udhi = 1, PkTotal = total and PkNumber = seq (replacing
/// any the template had; other TLVs are kept, these three go last). A
/// segment without UDH gets the template's TLVs minus those three.
/// MsgFormat is the template's; MsgLength is computed on encode.
pub fn submits_for(template: &Submit, segments: &[Segment]) -> Vec<Submit> {
    const SEG_TAGS: [Tag; 3] = [Tag::TP_UDHI, Tag::PK_TOTAL, Tag::PK_NUMBER];
    segments
        .iter()
        .map(|seg| {
            let mut s = template.clone();
            s.msg_content = seg.content.clone();
            s.tlvs = match seg.concat {
                Some(c) => template.tlvs.replaced(
                    &SEG_TAGS,
                    &[
                        (Tag::TP_UDHI, &[1]),
                        (Tag::PK_TOTAL, &[c.total]),
                        (Tag::PK_NUMBER, &[c.seq]),
                    ],
                ),
                None => template.tlvs.replaced(&SEG_TAGS, &[]),
            };
            s
        })
        .collect()
}

fn content_udh(udhi: bool, content: &[u8]) -> Result<Option<Udh>, UdhError> {
    if udhi {
        udh::parse(content).map(Some)
    } else {
        Ok(None)
    }
}

fn user_data(udhi: bool, content: &[u8]) -> &[u8] {
    match content_udh(udhi, content) {
        Ok(Some(u)) => &content[u.header_len..],
        _ => content,
    }
}

/// Submit_Resp (§7), body 14. Deliver_Resp (§8) has the same layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubmitResp {
    /// MsgID, 10: the SMGW's id for the message (first of the range for
    /// several recipients).
    pub msg_id: MsgId,
    /// Status, 4.
    pub status: Status,
}

/// Deliver_Resp (§8), body 14.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliverResp {
    /// MsgID, 10: the Deliver's MsgID.
    pub msg_id: MsgId,
    /// Status, 4: 0 = accepted.
    pub status: Status,
}

fn decode_id_status(pdu: &'static str, body: &Bytes) -> Result<(MsgId, Status), DecodeError> {
    let mut r = Reader::new(pdu, body);
    let id = MsgId(r.array("MsgID")?);
    let status = Status(r.u32("Status")?);
    r.finish()?;
    Ok((id, status))
}

fn encode_id_status(id: &MsgId, status: Status, dst: &mut BytesMut) {
    dst.put_slice(&id.0);
    dst.put_u32(status.0);
}

/// Deliver (§8): an MO message or a status report, body 77 + L, then TLVs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    /// MsgID, 10: id of this Deliver.
    pub msg_id: MsgId,
    /// IsReport, 1: 0 MO, 1 status report.
    pub is_report: u8,
    /// MsgFormat, 1.
    pub msg_format: DataCoding,
    /// RecvTime, 14: `YYYYMMDDhhmmss`.
    pub recv_time: FixedStr<14>,
    /// SrcTermID, 21: MO sender (for a report: the handset).
    pub src_term_id: FixedStr<21>,
    /// DestTermID, 21: the SP number.
    pub dest_term_id: FixedStr<21>,
    /// MsgLength, 1 + MsgContent, L.
    pub content: DeliverContent,
    /// Reserve, 8.
    pub reserve: [u8; 8],
    /// Optional TLVs after Reserve (§10).
    pub tlvs: Tlvs,
}

/// A Deliver's MsgContent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverContent {
    /// MO payload (or a report that is not the standard 122-byte layout;
    /// [`Deliver::report`] still tries keyword parsing on it).
    Message(Bytes),
    /// The 122-byte status report (§8.1), when IsReport = 1.
    Report(Report),
}

impl DeliverContent {
    /// Wire length of the content.
    pub fn len(&self) -> usize {
        match self {
            DeliverContent::Message(b) => b.len(),
            DeliverContent::Report(_) => REPORT_LEN,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Deliver {
    fn default() -> Self {
        Deliver {
            msg_id: MsgId::default(),
            is_report: 0,
            msg_format: DataCoding(0),
            recv_time: FixedStr::EMPTY,
            src_term_id: FixedStr::EMPTY,
            dest_term_id: FixedStr::EMPTY,
            content: DeliverContent::Message(Bytes::new()),
            reserve: [0; 8],
            tlvs: Tlvs::new(),
        }
    }
}

impl Deliver {
    /// Whether the TP_udhi TLV says MsgContent starts with a UDH.
    pub fn udhi(&self) -> bool {
        self.tlvs.udhi()
    }

    /// The MO payload bytes (`None` for a parsed report).
    pub fn payload(&self) -> Option<&Bytes> {
        match &self.content {
            DeliverContent::Message(b) => Some(b),
            DeliverContent::Report(_) => None,
        }
    }

    /// The UDH of an MO message when TP_udhi is set.
    pub fn udh(&self) -> Result<Option<Udh>, UdhError> {
        match &self.content {
            DeliverContent::Message(b) => content_udh(self.udhi(), b),
            DeliverContent::Report(_) => Ok(None),
        }
    }

    /// MO content without its UDH (empty for a parsed report).
    pub fn user_data(&self) -> &[u8] {
        match &self.content {
            DeliverContent::Message(b) => user_data(self.udhi(), b),
            DeliverContent::Report(_) => &[],
        }
    }

    /// The MO text decoded per MsgFormat (lossy).
    pub fn text(&self) -> String {
        crate::text::decode(self.user_data(), self.msg_format)
    }

    /// The status report: the parsed 122-byte one, or for IsReport = 1
    /// with a non-standard layout, a keyword parse (textual 20-digit or
    /// raw 10-byte id).
    pub fn report(&self) -> Option<Report> {
        match &self.content {
            DeliverContent::Report(r) => Some(*r),
            DeliverContent::Message(b) if self.is_report == 1 => Report::parse(b),
            DeliverContent::Message(_) => None,
        }
    }

    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Deliver", body);
        let msg_id = MsgId(r.array("MsgID")?);
        let is_report = r.u8("IsReport")?;
        let msg_format = DataCoding(r.u8("MsgFormat")?);
        let recv_time = r.fixed("RecvTime", 14)?;
        let src_term_id = r.fixed("SrcTermID", 21)?;
        let dest_term_id = r.fixed("DestTermID", 21)?;
        let len = r.u8("MsgLength")? as usize;
        let raw = r.bytes("MsgContent", len)?;
        let reserve = r.array("Reserve")?;
        let tlv_at = r.offset();
        let tlvs = Tlvs::parse(r.rest(), "Deliver", tlv_at)?;
        let content = match (is_report, Report::parse_exact(&raw)) {
            (1, Some(rep)) => DeliverContent::Report(rep),
            _ => DeliverContent::Message(raw),
        };
        let v = Deliver {
            msg_id,
            is_report,
            msg_format,
            recv_time,
            src_term_id,
            dest_term_id,
            content,
            reserve,
            tlvs,
        };
        v.udh()?;
        Ok(v)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        const P: &str = "Deliver";
        let len = len_u8(self.content.len(), P, "MsgLength")?;
        dst.put_slice(&self.msg_id.0);
        dst.put_u8(self.is_report);
        dst.put_u8(self.msg_format.0);
        self.recv_time.put(dst, 14, P, "RecvTime")?;
        self.src_term_id.put(dst, 21, P, "SrcTermID")?;
        self.dest_term_id.put(dst, 21, P, "DestTermID")?;
        dst.put_u8(len);
        match &self.content {
            DeliverContent::Message(b) => dst.put_slice(b),
            DeliverContent::Report(rep) => rep.put(dst),
        }
        dst.put_slice(&self.reserve);
        dst.put_slice(self.tlvs.as_bytes());
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Status report

/// The keyword spellings seen in 122-byte reports (§8.1). Offsets are the
/// same in all of them; the style is kept so re-encoding is byte-identical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReportLabels {
    /// SMSGate: `submit date:` / `done date:` / `text:`.
    #[default]
    Lower,
    /// Spec text and go_smgp: `Submit date:` / `done date:` / `Text:`.
    Spec,
    /// gosmgp: `submit_date:` / `done_date:` / `text:`.
    Underscore,
}

impl ReportLabels {
    const ALL: [ReportLabels; 3] = [
        ReportLabels::Lower,
        ReportLabels::Spec,
        ReportLabels::Underscore,
    ];

    /// The eight literal labels at their offsets.
    fn labels(self) -> [(usize, &'static [u8]); 8] {
        let (submit, done, text): (&[u8], &[u8], &[u8]) = match self {
            ReportLabels::Lower => (b" submit date:", b" done date:", b" text:"),
            ReportLabels::Spec => (b" Submit date:", b" done date:", b" Text:"),
            ReportLabels::Underscore => (b" submit_date:", b" done_date:", b" text:"),
        };
        [
            (0, b"id:"),
            (13, b" sub:"),
            (21, b" dlvrd:"),
            (31, submit),
            (54, done),
            (75, b" stat:"),
            (88, b" err:"),
            (96, text),
        ]
    }
}

/// The status report carried in a report Deliver (§8.1), parsed by offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Report {
    /// id, 10: the MsgID from Submit_Resp (raw BCD).
    pub id: MsgId,
    /// sub, 3: default "001".
    pub sub: FixedStr<3>,
    /// dlvrd, 3: default "001".
    pub dlvrd: FixedStr<3>,
    /// submit date, 10: `YYMMDDhhmm`.
    pub submit_date: FixedStr<10>,
    /// done date, 10: `YYMMDDhhmm`.
    pub done_date: FixedStr<10>,
    /// stat, 7: DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD.
    pub stat: FixedStr<7>,
    /// err, 3: three ASCII digits.
    pub err: FixedStr<3>,
    /// text, 20: 3 digits original length + first 17 bytes of content.
    pub txt: FixedStr<20>,
    /// Keyword spelling, for byte-identical re-encoding.
    pub labels: ReportLabels,
}

impl Report {
    /// A report with the given outcome; sub/dlvrd "001", text "000".
    pub fn new(id: MsgId, stat: &str, err: u16, submit_date: &str, done_date: &str) -> Report {
        let mut e = [b'0'; 3];
        let mut v = err % 1000;
        for d in e.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        Report {
            id,
            sub: FixedStr::from_padded(b"001"),
            dlvrd: FixedStr::from_padded(b"001"),
            submit_date: FixedStr::from_padded(submit_date.as_bytes()),
            done_date: FixedStr::from_padded(done_date.as_bytes()),
            stat: FixedStr::from_padded(stat.as_bytes()),
            err: FixedStr::from_padded(&e),
            txt: FixedStr::from_padded(b"000"),
            labels: ReportLabels::Lower,
        }
    }

    /// Whether stat is DELIVRD.
    pub fn is_delivered(&self) -> bool {
        self.stat.as_bytes() == b"DELIVRD"
    }

    /// err as a number, when it is digits.
    pub fn err_code(&self) -> Option<u16> {
        std::str::from_utf8(self.err.trimmed().as_bytes())
            .ok()?
            .parse()
            .ok()
    }

    /// Parses the standard 122-byte layout by offset; `None` unless the
    /// length is 122 and every label matches one [`ReportLabels`] style
    /// exactly (so that re-encoding reproduces the bytes).
    pub fn parse_exact(b: &[u8]) -> Option<Report> {
        if b.len() != REPORT_LEN {
            return None;
        }
        let labels = ReportLabels::ALL.into_iter().find(|s| {
            s.labels()
                .iter()
                .all(|(at, l)| &b[*at..*at + l.len()] == *l)
        })?;
        Some(Self::by_offset(b, labels))
    }

    fn by_offset(b: &[u8], labels: ReportLabels) -> Report {
        let mut id = [0u8; 10];
        id.copy_from_slice(&b[3..13]);
        Report {
            id: MsgId(id),
            sub: FixedStr::from_padded(&b[18..21]),
            dlvrd: FixedStr::from_padded(&b[28..31]),
            submit_date: FixedStr::from_padded(&b[44..54]),
            done_date: FixedStr::from_padded(&b[65..75]),
            stat: FixedStr::from_padded(&b[81..88]),
            err: FixedStr::from_padded(&b[93..96]),
            txt: FixedStr::from_padded(&b[102..122]),
            labels,
        }
    }

    /// Lenient parse of any report content: the exact 122-byte layout, or
    /// a 122-byte layout whose labels differ only in case/underscores, or
    /// keyword parsing (`id:` followed by a 20-digit text id or 10 raw
    /// bytes, then `sub:`, `dlvrd:`, `submit date:`, `done date:`, `stat:`,
    /// `err:`, `text:` in any case, `_` accepted for the space).
    pub fn parse(b: &[u8]) -> Option<Report> {
        if let Some(r) = Self::parse_exact(b) {
            return Some(r);
        }
        if b.len() == REPORT_LEN
            && ReportLabels::Lower
                .labels()
                .iter()
                .all(|(at, l)| loose_eq(&b[*at..*at + l.len()], l))
        {
            return Some(Self::by_offset(b, ReportLabels::Lower));
        }
        Self::parse_keywords(b)
    }

    fn parse_keywords(b: &[u8]) -> Option<Report> {
        let at = find_loose(b, b"id:")? + 3;
        let rest = &b[at..];
        let text_id = rest.get(..20).and_then(MsgId::from_digits);
        let id = match text_id {
            Some(id) => id,
            None => {
                let raw = rest.get(..10)?;
                let mut id = [0u8; 10];
                id.copy_from_slice(raw);
                MsgId(id)
            }
        };
        let field = |key: &[u8], width: usize| -> &[u8] {
            match find_loose(b, key) {
                Some(i) => {
                    let v = &b[i + key.len()..];
                    let v = &v[..v.len().min(width)];
                    let end = v.iter().position(|&c| c == b' ').unwrap_or(v.len());
                    &v[..end]
                }
                None => &[],
            }
        };
        Some(Report {
            id,
            sub: FixedStr::from_padded(field(b" sub:", 3)),
            dlvrd: FixedStr::from_padded(field(b" dlvrd:", 3)),
            submit_date: FixedStr::from_padded(field(b" submit date:", 10)),
            done_date: FixedStr::from_padded(field(b" done date:", 10)),
            stat: FixedStr::from_padded(field(b" stat:", 7)),
            err: FixedStr::from_padded(field(b" err:", 3)),
            txt: FixedStr::from_padded(
                find_loose(b, b" text:")
                    .map(|i| &b[i + 6..(i + 26).min(b.len())])
                    .unwrap_or(&[]),
            ),
            labels: ReportLabels::Lower,
        })
    }

    /// Appends the 122 bytes.
    pub fn put(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.to_bytes());
    }

    /// The 122 wire bytes.
    pub fn to_bytes(&self) -> [u8; REPORT_LEN] {
        let mut out = [0u8; REPORT_LEN];
        for (at, l) in self.labels.labels() {
            out[at..at + l.len()].copy_from_slice(l);
        }
        out[3..13].copy_from_slice(&self.id.0);
        let mut put = |at: usize, v: &[u8]| out[at..at + v.len()].copy_from_slice(v);
        put(18, self.sub.as_bytes());
        put(28, self.dlvrd.as_bytes());
        put(44, self.submit_date.as_bytes());
        put(65, self.done_date.as_bytes());
        put(81, self.stat.as_bytes());
        put(93, self.err.as_bytes());
        put(102, self.txt.as_bytes());
        out
    }
}

/// Case-insensitive, `_` = ` ` comparison.
fn loose_eq(a: &[u8], b: &[u8]) -> bool {
    let norm = |c: u8| {
        if c == b'_' {
            b' '
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| norm(x) == norm(y))
}

fn find_loose(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).find(|&i| loose_eq(&hay[i..i + needle.len()], needle))
}

// ---------------------------------------------------------------------------
// Query

/// Query (§12), body 19: SP statistics query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Query {
    /// QueryTime, 8: `YYYYMMDD`.
    pub query_time: FixedStr<8>,
    /// QueryType, 1: 0 totals, 1 by service.
    pub query_type: u8,
    /// QueryCode, 10: service code when QueryType = 1.
    pub query_code: FixedStr<10>,
}

impl Query {
    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Query", body);
        let v = Query {
            query_time: r.fixed("QueryTime", 8)?,
            query_type: r.u8("QueryType")?,
            query_code: r.fixed("QueryCode", 10)?,
        };
        r.finish()?;
        Ok(v)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.query_time.put(dst, 8, "Query", "QueryTime")?;
        dst.put_u8(self.query_type);
        self.query_code.put(dst, 10, "Query", "QueryCode")
    }
}

/// Query_Resp (§12), body 59.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryResp {
    /// QueryTime, 8.
    pub query_time: FixedStr<8>,
    /// QueryType, 1.
    pub query_type: u8,
    /// QueryCode, 10.
    pub query_code: FixedStr<10>,
    /// MT_TLMsg, 4: MT messages received from the SP.
    pub mt_tl_msg: u32,
    /// MT_TLUsr, 4: MT users.
    pub mt_tl_usr: u32,
    /// MT_Scs, 4: MT forwarded successfully.
    pub mt_scs: u32,
    /// MT_WT, 4: MT waiting.
    pub mt_wt: u32,
    /// MT_FL, 4: MT failed.
    pub mt_fl: u32,
    /// MO_Scs, 4: MO delivered successfully.
    pub mo_scs: u32,
    /// MO_WT, 4: MO waiting.
    pub mo_wt: u32,
    /// MO_FL, 4: MO failed.
    pub mo_fl: u32,
    /// Reserve, 8 (the spec table names it "Reverse").
    pub reserve: [u8; 8],
}

impl QueryResp {
    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Query_Resp", body);
        let v = QueryResp {
            query_time: r.fixed("QueryTime", 8)?,
            query_type: r.u8("QueryType")?,
            query_code: r.fixed("QueryCode", 10)?,
            mt_tl_msg: r.u32("MT_TLMsg")?,
            mt_tl_usr: r.u32("MT_TLUsr")?,
            mt_scs: r.u32("MT_Scs")?,
            mt_wt: r.u32("MT_WT")?,
            mt_fl: r.u32("MT_FL")?,
            mo_scs: r.u32("MO_Scs")?,
            mo_wt: r.u32("MO_WT")?,
            mo_fl: r.u32("MO_FL")?,
            reserve: r.array("Reserve")?,
        };
        r.finish()?;
        Ok(v)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.query_time.put(dst, 8, "Query_Resp", "QueryTime")?;
        dst.put_u8(self.query_type);
        self.query_code.put(dst, 10, "Query_Resp", "QueryCode")?;
        for v in [
            self.mt_tl_msg,
            self.mt_tl_usr,
            self.mt_scs,
            self.mt_wt,
            self.mt_fl,
            self.mo_scs,
            self.mo_wt,
            self.mo_fl,
        ] {
            dst.put_u32(v);
        }
        dst.put_slice(&self.reserve);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Pdu

/// Every SMGP PDU an SP link carries. Ids the codec does not model
/// (Forward, the routing and billing PDUs, vendor ids) come out as
/// `Unknown` with their body intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    Login(Login),
    LoginResp(LoginResp),
    Submit(Submit),
    SubmitResp(SubmitResp),
    Deliver(Deliver),
    DeliverResp(DeliverResp),
    ActiveTest,
    ActiveTestResp,
    Exit,
    ExitResp,
    Query(Query),
    QueryResp(QueryResp),
    Unknown { command_id: CommandId, body: Bytes },
}

impl Pdu {
    pub fn command_id(&self) -> CommandId {
        match self {
            Pdu::Login(_) => CommandId::LOGIN,
            Pdu::LoginResp(_) => CommandId::LOGIN_RESP,
            Pdu::Submit(_) => CommandId::SUBMIT,
            Pdu::SubmitResp(_) => CommandId::SUBMIT_RESP,
            Pdu::Deliver(_) => CommandId::DELIVER,
            Pdu::DeliverResp(_) => CommandId::DELIVER_RESP,
            Pdu::ActiveTest => CommandId::ACTIVE_TEST,
            Pdu::ActiveTestResp => CommandId::ACTIVE_TEST_RESP,
            Pdu::Exit => CommandId::EXIT,
            Pdu::ExitResp => CommandId::EXIT_RESP,
            Pdu::Query(_) => CommandId::QUERY,
            Pdu::QueryResp(_) => CommandId::QUERY_RESP,
            Pdu::Unknown { command_id, .. } => *command_id,
        }
    }

    /// The spec name of the command ("Submit_Resp"), or "Unknown".
    pub fn name(&self) -> &'static str {
        self.command_id().name().unwrap_or("Unknown")
    }

    pub fn is_response(&self) -> bool {
        self.command_id().is_response()
    }

    /// The Status of a response that carries one.
    pub fn status(&self) -> Option<Status> {
        match self {
            Pdu::LoginResp(r) => Some(r.status),
            Pdu::SubmitResp(r) => Some(r.status),
            Pdu::DeliverResp(r) => Some(r.status),
            _ => None,
        }
    }

    /// Decodes a body for `command_id`.
    pub fn decode(command_id: CommandId, body: Bytes) -> Result<Pdu, DecodeError> {
        let empty = |pdu: &'static str, v: Pdu| -> Result<Pdu, DecodeError> {
            Reader::new(pdu, &body).finish()?;
            Ok(v)
        };
        Ok(match command_id {
            CommandId::LOGIN => Pdu::Login(Login::decode(&body)?),
            CommandId::LOGIN_RESP => Pdu::LoginResp(LoginResp::decode(&body)?),
            CommandId::SUBMIT => Pdu::Submit(Submit::decode(&body)?),
            CommandId::SUBMIT_RESP => {
                let (msg_id, status) = decode_id_status("Submit_Resp", &body)?;
                Pdu::SubmitResp(SubmitResp { msg_id, status })
            }
            CommandId::DELIVER => Pdu::Deliver(Deliver::decode(&body)?),
            CommandId::DELIVER_RESP => {
                let (msg_id, status) = decode_id_status("Deliver_Resp", &body)?;
                Pdu::DeliverResp(DeliverResp { msg_id, status })
            }
            CommandId::ACTIVE_TEST => empty("Active_Test", Pdu::ActiveTest)?,
            CommandId::ACTIVE_TEST_RESP => empty("Active_Test_Resp", Pdu::ActiveTestResp)?,
            CommandId::EXIT => empty("Exit", Pdu::Exit)?,
            CommandId::EXIT_RESP => empty("Exit_Resp", Pdu::ExitResp)?,
            CommandId::QUERY => Pdu::Query(Query::decode(&body)?),
            CommandId::QUERY_RESP => Pdu::QueryResp(QueryResp::decode(&body)?),
            _ => Pdu::Unknown { command_id, body },
        })
    }

    /// Appends the body.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Pdu::Login(v) => v.encode(dst),
            Pdu::LoginResp(v) => {
                v.encode(dst);
                Ok(())
            }
            Pdu::Submit(v) => v.encode(dst),
            Pdu::SubmitResp(v) => {
                encode_id_status(&v.msg_id, v.status, dst);
                Ok(())
            }
            Pdu::Deliver(v) => v.encode(dst),
            Pdu::DeliverResp(v) => {
                encode_id_status(&v.msg_id, v.status, dst);
                Ok(())
            }
            Pdu::ActiveTest | Pdu::ActiveTestResp | Pdu::Exit | Pdu::ExitResp => Ok(()),
            Pdu::Query(v) => v.encode(dst),
            Pdu::QueryResp(v) => v.encode(dst),
            Pdu::Unknown { body, .. } => {
                dst.put_slice(body);
                Ok(())
            }
        }
    }
}

impl Protocol for Smgp {
    fn name(&self) -> &'static str {
        "smgp"
    }

    const HEADER_LEN: usize = 12;
    type Seq = u32;
    type Pdu = Pdu;

    fn read_header(&self, header: &[u8]) -> (u32, u32) {
        let be = |at: usize| {
            let mut b = [0u8; 4];
            if let Some(s) = header.get(at..at + 4) {
                b.copy_from_slice(s);
            }
            u32::from_be_bytes(b)
        };
        (be(4), be(8))
    }

    fn write_seq(&self, seq: u32, dst: &mut BytesMut) {
        dst.put_u32(seq);
    }

    fn decode_body(&self, command_id: u32, body: Bytes) -> Result<Pdu, DecodeError> {
        Pdu::decode(CommandId(command_id), body)
    }

    fn command_id(&self, pdu: &Pdu) -> u32 {
        pdu.command_id().0
    }

    fn encode_body(&self, pdu: &Pdu, dst: &mut BytesMut) -> Result<(), EncodeError> {
        pdu.encode(dst)
    }
}

// ---------------------------------------------------------------------------
// JSON

#[cfg(feature = "json")]
mod json {
    use super::*;
    use crate::json::{coding, content, hex};
    use serde_json::{json, Map, Value};

    fn s<const N: usize>(v: &FixedStr<N>) -> Value {
        Value::String(v.to_str_lossy().into_owned())
    }

    fn status(st: Status) -> Value {
        json!({
            "code": st.0,
            "class": st.class().as_str(),
            "description": st.description(),
        })
    }

    pub(super) fn msg_id(id: &MsgId) -> Value {
        let d = id.to_string();
        json!({
            "digits": d,
            "smgw_code": &d[0..6],
            "time": &d[6..14],
            "sequence": &d[14..20],
            "bcd": id.is_bcd(),
        })
    }

    fn tlvs(t: &Tlvs) -> Value {
        Value::Array(
            t.iter()
                .map(|(tag, v)| {
                    let mut m = Map::new();
                    m.insert("tag".into(), json!(format!("{:#06x}", tag.0)));
                    m.insert("name".into(), json!(tag.name()));
                    m.insert("hex".into(), json!(hex(v)));
                    if tag.is_integer() && v.len() == 1 {
                        m.insert("value".into(), json!(v[0]));
                    } else if tag.name().is_some() {
                        m.insert(
                            "value".into(),
                            json!(String::from_utf8_lossy(trim_nul(v)).into_owned()),
                        );
                    }
                    Value::Object(m)
                })
                .collect(),
        )
    }

    pub(super) fn report(r: &Report) -> Value {
        json!({
            "id": msg_id(&r.id),
            "sub": s(&r.sub),
            "dlvrd": s(&r.dlvrd),
            "submit_date": s(&r.submit_date),
            "done_date": s(&r.done_date),
            "stat": s(&r.stat),
            "err": s(&r.err),
            "text": s(&r.txt),
            "text_hex": hex(r.txt.as_bytes()),
            "labels": format!("{:?}", r.labels),
        })
    }

    pub(super) fn pdu(p: &Pdu) -> Value {
        let id = p.command_id();
        let mut m = Map::new();
        m.insert("command".into(), json!(id.name().unwrap_or("Unknown")));
        m.insert("command_id".into(), json!(format!("{:#010x}", id.0)));
        let fields = match p {
            Pdu::Login(v) => json!({
                "client_id": s(&v.client_id),
                "authenticator_client": hex(&v.authenticator_client),
                "login_mode": { "value": v.login_mode.0, "name": v.login_mode.name() },
                "timestamp": format!("{}", std::str::from_utf8(&v.timestamp.digits()).unwrap_or("")),
                "client_version": format!("{:#04x}", v.client_version),
            }),
            Pdu::LoginResp(v) => json!({
                "status": status(v.status),
                "authenticator_server": hex(&v.authenticator_server),
                "server_version": format!("{:#04x}", v.server_version),
            }),
            Pdu::Submit(v) => json!({
                "msg_type": { "value": v.msg_type.0, "name": v.msg_type.name() },
                "need_report": v.need_report,
                "priority": v.priority,
                "service_id": s(&v.service_id),
                "fee_type": s(&v.fee_type),
                "fee_code": s(&v.fee_code),
                "fixed_fee": s(&v.fixed_fee),
                "msg_format": coding(v.msg_format),
                "valid_time": s(&v.valid_time),
                "at_time": s(&v.at_time),
                "src_term_id": s(&v.src_term_id),
                "charge_term_id": s(&v.charge_term_id),
                "dest_term_ids": v.dest_term_ids.iter().map(s).collect::<Vec<_>>(),
                "msg_content": content(v.udhi(), v.msg_format, &v.msg_content),
                "reserve": hex(&v.reserve),
                "tlvs": tlvs(&v.tlvs),
            }),
            Pdu::SubmitResp(v) => {
                json!({ "msg_id": msg_id(&v.msg_id), "status": status(v.status) })
            }
            Pdu::Deliver(v) => {
                let c = match &v.content {
                    DeliverContent::Message(b) => {
                        let mut c = content(v.udhi(), v.msg_format, b);
                        if let (1, Some(r), Value::Object(m)) = (v.is_report, v.report(), &mut c) {
                            m.insert("report".into(), report(&r));
                        }
                        c
                    }
                    DeliverContent::Report(r) => {
                        let b = r.to_bytes();
                        json!({ "hex": hex(&b), "length": b.len(), "report": report(r) })
                    }
                };
                json!({
                    "msg_id": msg_id(&v.msg_id),
                    "is_report": v.is_report,
                    "msg_format": coding(v.msg_format),
                    "recv_time": s(&v.recv_time),
                    "src_term_id": s(&v.src_term_id),
                    "dest_term_id": s(&v.dest_term_id),
                    "msg_content": c,
                    "reserve": hex(&v.reserve),
                    "tlvs": tlvs(&v.tlvs),
                })
            }
            Pdu::DeliverResp(v) => {
                json!({ "msg_id": msg_id(&v.msg_id), "status": status(v.status) })
            }
            Pdu::ActiveTest | Pdu::ActiveTestResp | Pdu::Exit | Pdu::ExitResp => json!({}),
            Pdu::Query(v) => json!({
                "query_time": s(&v.query_time),
                "query_type": v.query_type,
                "query_code": s(&v.query_code),
            }),
            Pdu::QueryResp(v) => json!({
                "query_time": s(&v.query_time),
                "query_type": v.query_type,
                "query_code": s(&v.query_code),
                "mt_tl_msg": v.mt_tl_msg,
                "mt_tl_usr": v.mt_tl_usr,
                "mt_scs": v.mt_scs,
                "mt_wt": v.mt_wt,
                "mt_fl": v.mt_fl,
                "mo_scs": v.mo_scs,
                "mo_wt": v.mo_wt,
                "mo_fl": v.mo_fl,
                "reserve": hex(&v.reserve),
            }),
            Pdu::Unknown { body, .. } => json!({ "body": hex(body), "length": body.len() }),
        };
        if let Value::Object(f) = fields {
            m.extend(f);
        }
        Value::Object(m)
    }
}

#[cfg(feature = "json")]
impl Pdu {
    /// Every field with decoded values, for `smsgw pdu decode`.
    pub fn to_json(&self) -> serde_json::Value {
        json::pdu(self)
    }
}

#[cfg(feature = "json")]
impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        json::report(self)
    }
}

#[cfg(feature = "json")]
impl MsgId {
    pub fn to_json(&self) -> serde_json::Value {
        json::msg_id(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_id_parts() {
        let id = MsgId::from_parts(755061, 12041507, 1).unwrap();
        assert_eq!(id.to_string(), "75506112041507000001");
        assert_eq!(
            id.0,
            [0x75, 0x50, 0x61, 0x12, 0x04, 0x15, 0x07, 0x00, 0x00, 0x01]
        );
        assert_eq!(id.smgw_code(), 755061);
        assert_eq!(id.time(), 12041507);
        assert_eq!(
            (id.month(), id.day(), id.hour(), id.minute()),
            (12, 4, 15, 7)
        );
        assert_eq!(id.sequence(), 1);
        assert!(id.is_bcd());
        assert_eq!("75506112041507000001".parse::<MsgId>(), Ok(id));
        assert_eq!(MsgId::from_parts(1_000_000, 0, 0), None);
        let last = MsgId::from_parts(10061, 1161700, 999_999).unwrap();
        assert_eq!(last.to_string(), "01006101161700999999");
        assert_eq!(last.nth_in_range(2).to_string(), "01006101161700000001");
    }

    #[test]
    fn status_classes() {
        assert_eq!(Status::OK.class(), StatusClass::Ok);
        assert_eq!(Status::SYSTEM_BUSY.class(), StatusClass::Throttled);
        assert_eq!(Status::AUTHENTICATION_ERROR.class(), StatusClass::Permanent);
        assert_eq!(
            Status::BAD_MESSAGE_STRUCTURE.class(),
            StatusClass::Permanent
        );
        assert_eq!(Status(200).description(), None);
        assert_eq!(CommandId::SUBMIT_RESP.name(), Some("Submit_Resp"));
        assert_eq!(CommandId(0x13).name(), None);
        assert_eq!(CommandId(0x8000_0000).name(), None);
    }

    #[test]
    fn tlv_overrun_is_field_error() {
        let e = Tlvs::parse(Bytes::from_static(&[0, 2, 0, 2, 1]), "Submit", 100).unwrap_err();
        assert!(matches!(e, DecodeError::Field { offset: 100, .. }));
        let e = Tlvs::parse(Bytes::from_static(&[0, 2, 0]), "Submit", 100).unwrap_err();
        assert!(matches!(e, DecodeError::Field { .. }));
        let t = Tlvs::builder()
            .put_u8(Tag::TP_UDHI, 1)
            .put(Tag(0x1234), b"xy")
            .build()
            .unwrap();
        assert_eq!(t.as_bytes(), &[0, 2, 0, 1, 1, 0x12, 0x34, 0, 2, b'x', b'y']);
        assert!(t.udhi());
        assert_eq!(t.get(Tag(0x1234)), Some(&b"xy"[..]));
    }
}
