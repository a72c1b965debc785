//! SGIP 1.2 (China Unicom, SP ⇄ SMG).
//!
//! SGIP uses two connections: the SP binds to the SMG (Login Type 1) to send
//! Submit, and the SMG binds to a server the SP runs (Login Type 2) to send
//! Deliver (MO), Report and UserRpt. Both directions use the same framing and
//! the same [`Pdu`] type; there is no link-test command.
//!
//! The header is 20 bytes: total length, command id and a 12-byte sequence
//! ([`SeqNo`]: node id, `MMDDhhmmss`, counter). A response repeats its
//! command's sequence, and a [`Report`] names the Submit it reports on by the
//! Submit's header sequence.

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;

use crate::error::{DecodeError, EncodeError};
use crate::frame::{header_u32, Protocol};
use crate::status::StatusClass;
use crate::text::DataCoding;
use crate::udh::{self, Udh, UdhError};
use crate::wire::{put_padded, FixedStr, Reader, Timestamp};

/// Maximum recipients the UserCount byte can carry on the wire (the spec
/// allows 1–100; encode checks only what the byte can express).
pub const MAX_USER_COUNT: usize = u8::MAX as usize;

/// The SGIP 1.2 protocol, for [`crate::Framer`]. `PartialEq` lets
/// `Inbound<Sgip>` / `Packet<Sgip>` (whose derives bound `P: PartialEq`) compare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sgip;

impl Protocol for Sgip {
    fn name(&self) -> &'static str {
        "sgip"
    }
    const HEADER_LEN: usize = 20;
    type Seq = SeqNo;
    type Pdu = Pdu;

    fn read_header(&self, header: &[u8]) -> (u32, SeqNo) {
        let seq = SeqNo {
            node_id: header_u32(header, 8),
            timestamp: Timestamp(header_u32(header, 12)),
            counter: header_u32(header, 16),
        };
        (header_u32(header, 4), seq)
    }

    fn write_seq(&self, seq: SeqNo, dst: &mut BytesMut) {
        seq.put(dst);
    }

    fn decode_body(&self, command_id: u32, body: Bytes) -> Result<Pdu, DecodeError> {
        Pdu::decode(CommandId(command_id), body)
    }

    fn command_id(&self, pdu: &Pdu) -> u32 {
        pdu.command_id().0
    }

    fn encode_body(&self, pdu: &Pdu, dst: &mut BytesMut) -> Result<(), EncodeError> {
        pdu.encode_body(dst)
    }
}

// ---------------------------------------------------------------------------
// Sequence

/// The 12-byte SGIP sequence number (spec §2): three big-endian u32s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNo {
    /// Sequence Number — node id (4): the node that created the command.
    /// SP node ids (`3AAAAQQQQQ`) exceed `i32::MAX`.
    pub node_id: u32,
    /// Sequence Number — time (4): `MMDDhhmmss` as a decimal number.
    pub timestamp: Timestamp,
    /// Sequence Number — counter (4): +1 per command, wraps.
    pub counter: u32,
}

impl SeqNo {
    pub const WIRE_LEN: usize = 12;

    pub fn new(node_id: u32, timestamp: Timestamp, counter: u32) -> Self {
        SeqNo {
            node_id,
            timestamp,
            counter,
        }
    }

    /// Appends the 12 wire bytes.
    pub fn put(&self, dst: &mut BytesMut) {
        dst.put_u32(self.node_id);
        dst.put_u32(self.timestamp.0);
        dst.put_u32(self.counter);
    }

    /// The 12 wire bytes.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&self.node_id.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.0.to_be_bytes());
        out[8..].copy_from_slice(&self.counter.to_be_bytes());
        out
    }

    /// Parses the 12 wire bytes.
    pub fn from_bytes(b: [u8; 12]) -> Self {
        let u = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        SeqNo {
            node_id: u(0),
            timestamp: Timestamp(u(4)),
            counter: u(8),
        }
    }

    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(SeqNo::from_bytes(r.array::<12>(field)?))
    }

    /// `{"node_id", "timestamp", "time", "counter"}`.
    #[cfg(feature = "json")]
    pub fn to_json(&self) -> serde_json::Value {
        let t = self.timestamp;
        serde_json::json!({
            "node_id": self.node_id,
            "timestamp": t.0,
            "time": format!(
                "{:02}-{:02} {:02}:{:02}:{:02}",
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            "counter": self.counter,
        })
    }
}

impl std::fmt::Display for SeqNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{:010}/{}",
            self.node_id, self.timestamp.0, self.counter
        )
    }
}

/// Sans-IO sequence allocator: the caller supplies the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqGen {
    /// Our node id (SP: `3AAAAQQQQQ`).
    pub node_id: u32,
    /// The counter the next sequence gets (starts at 0, wraps).
    pub counter: u32,
}

impl SeqGen {
    pub fn new(node_id: u32) -> Self {
        SeqGen {
            node_id,
            counter: 0,
        }
    }

    /// The next sequence, stamped with `ts`; the counter wraps at `u32::MAX`.
    pub fn next(&mut self, ts: Timestamp) -> SeqNo {
        let counter = self.counter;
        self.counter = self.counter.wrapping_add(1);
        SeqNo {
            node_id: self.node_id,
            timestamp: ts,
            counter,
        }
    }
}

// ---------------------------------------------------------------------------
// Wire enums

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($ty:ty);
        $( $(#[$cmeta:meta])* $konst:ident = $val:expr => $text:expr; )*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $ty);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($val); )*

            /// The spec name of the value, or `None` for an unknown one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some($text), )*
                    _ => None,
                }
            }
        }

        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                $name(v)
            }
        }
    };
}

wire_enum! {
    /// SGIP Command ID (spec §3).
    pub struct CommandId(u32);
    BIND = 0x0000_0001 => "Bind";
    BIND_RESP = 0x8000_0001 => "Bind_Resp";
    UNBIND = 0x0000_0002 => "Unbind";
    UNBIND_RESP = 0x8000_0002 => "Unbind_Resp";
    SUBMIT = 0x0000_0003 => "Submit";
    SUBMIT_RESP = 0x8000_0003 => "Submit_Resp";
    DELIVER = 0x0000_0004 => "Deliver";
    DELIVER_RESP = 0x8000_0004 => "Deliver_Resp";
    REPORT = 0x0000_0005 => "Report";
    REPORT_RESP = 0x8000_0005 => "Report_Resp";
    ADD_SP = 0x0000_0006 => "AddSP";
    ADD_SP_RESP = 0x8000_0006 => "AddSP_Resp";
    MODIFY_SP = 0x0000_0007 => "ModifySP";
    MODIFY_SP_RESP = 0x8000_0007 => "ModifySP_Resp";
    DELETE_SP = 0x0000_0008 => "DeleteSP";
    DELETE_SP_RESP = 0x8000_0008 => "DeleteSP_Resp";
    QUERY_ROUTE = 0x0000_0009 => "QueryRoute";
    QUERY_ROUTE_RESP = 0x8000_0009 => "QueryRoute_Resp";
    ADD_TELE_SEG = 0x0000_000A => "AddTeleSeg";
    ADD_TELE_SEG_RESP = 0x8000_000A => "AddTeleSeg_Resp";
    MODIFY_TELE_SEG = 0x0000_000B => "ModifyTeleSeg";
    MODIFY_TELE_SEG_RESP = 0x8000_000B => "ModifyTeleSeg_Resp";
    DELETE_TELE_SEG = 0x0000_000C => "DeleteTeleSeg";
    DELETE_TELE_SEG_RESP = 0x8000_000C => "DeleteTeleSeg_Resp";
    ADD_SMG = 0x0000_000D => "AddSMG";
    ADD_SMG_RESP = 0x8000_000D => "AddSMG_Resp";
    MODIFY_SMG = 0x0000_000E => "ModifySMG";
    /// The spec table misprints this as 0x0000000E; implementations use 0x8000000E.
    MODIFY_SMG_RESP = 0x8000_000E => "ModifySMG_Resp";
    DELETE_SMG = 0x0000_000F => "DeleteSMG";
    DELETE_SMG_RESP = 0x8000_000F => "DeleteSMG_Resp";
    CHECK_USER = 0x0000_0010 => "CheckUser";
    CHECK_USER_RESP = 0x8000_0010 => "CheckUser_Resp";
    USER_RPT = 0x0000_0011 => "UserRpt";
    USER_RPT_RESP = 0x8000_0011 => "UserRpt_Resp";
    TRACE = 0x0000_1000 => "Trace";
    TRACE_RESP = 0x8000_1000 => "Trace_Resp";
}

impl CommandId {
    /// Whether this is a response id (high bit set).
    pub fn is_response(self) -> bool {
        self.0 & 0x8000_0000 != 0
    }

    /// The response id for a command id.
    pub fn response(self) -> CommandId {
        CommandId(self.0 | 0x8000_0000)
    }
}

wire_enum! {
    /// Bind Login Type (spec §4).
    pub struct LoginType(u8);
    /// SP → SMG connection (the SP submits).
    SP_TO_SMG = 1 => "SP->SMG";
    /// SMG → SP connection (the SMG delivers MO and reports).
    SMG_TO_SP = 2 => "SMG->SP";
    SMG_TO_SMG = 3 => "SMG<->SMG";
    SMG_TO_GNS = 4 => "SMG->GNS";
    GNS_TO_SMG = 5 => "GNS->SMG";
    GNS_TO_GNS = 6 => "GNS primary<->backup";
    /// Test connection (SP/SMG), used for Trace.
    TEST = 11 => "test";
}

wire_enum! {
    /// Result (responses) and ErrorCode (Report) values, spec §10
    /// (SGIP 1.2 table; SGIP 1.3 additions named where they do not clash).
    pub struct ResultCode(u8);
    OK = 0 => "ok";
    ILLEGAL_LOGIN = 1 => "illegal login";
    REPEATED_LOGIN = 2 => "repeated login";
    TOO_MANY_CONNECTIONS = 3 => "too many connections";
    BAD_LOGIN_TYPE = 4 => "bad login type";
    BAD_PARAMETER = 5 => "parameter format error";
    ILLEGAL_MOBILE_NUMBER = 6 => "illegal mobile number";
    BAD_COMMAND_ID = 7 => "bad command id";
    BAD_LENGTH = 8 => "bad message length";
    BAD_SEQUENCE = 9 => "illegal sequence number";
    ILLEGAL_GNS_OPERATION = 10 => "illegal GNS operation";
    NODE_BUSY = 11 => "node busy";
    /// 1.3: service code not registered.
    SERVICE_NOT_REGISTERED = 13 => "service code not registered";
    /// 1.3: wrong fee type or amount.
    BAD_FEE = 14 => "wrong fee type/amount";
    /// 1.3: LinkID mismatch.
    LINK_ID_MISMATCH = 17 => "LinkID mismatch";
    /// 1.3: user has not subscribed.
    NOT_SUBSCRIBED = 18 => "user has not subscribed";
    /// 1.3: UserCount must be 1.
    USER_COUNT_MUST_BE_1 = 19 => "UserCount must be 1";
    DESTINATION_UNREACHABLE = 21 => "destination unreachable";
    ROUTING_ERROR = 22 => "routing error";
    NO_ROUTE = 23 => "route does not exist";
    CHARGE_NUMBER_INVALID = 24 => "charged number invalid";
    USER_UNREACHABLE = 25 => "user cannot be reached";
    HANDSET_MEMORY_FULL = 26 => "handset memory full";
    HANDSET_NO_SMS = 27 => "handset does not support SMS";
    HANDSET_RECEIVE_ERROR = 28 => "handset error receiving SMS";
    UNKNOWN_USER = 29 => "unknown user";
    FUNCTION_NOT_PROVIDED = 30 => "function not provided";
    ILLEGAL_DEVICE = 31 => "illegal device";
    /// 1.2: system failure; 1.3: packet format error.
    SYSTEM_FAILURE = 32 => "system failure (1.2) / packet format error (1.3)";
    /// 1.2: SMSC queue full; 1.3: flow limit exceeded.
    QUEUE_FULL = 33 => "SMSC queue full (1.2) / flow limit exceeded (1.3)";
    /// 1.3: logging in too often.
    LOGIN_TOO_OFTEN = 34 => "logging in too often";
    /// 1.3: too many MTs for one LinkID.
    TOO_MANY_MT_FOR_LINK_ID = 38 => "too many MTs for one LinkID";
    /// 1.3: third-party charging not allowed.
    THIRD_PARTY_CHARGING_NOT_ALLOWED = 39 => "third-party charging not allowed";
    /// 1.3: MorelatetoMTFlag 3 not allowed.
    MT_FLAG_3_NOT_ALLOWED = 40 => "MorelatetoMTFlag 3 not allowed";
    /// 1.3: unknown web on-demand command.
    UNKNOWN_WEB_COMMAND = 43 => "unknown web on-demand command";
    /// 1.3: notification intercepted.
    NOTIFICATION_INTERCEPTED = 44 => "notification intercepted";
    /// 1.3: monthly bill not allowed now.
    MONTHLY_BILL_NOT_ALLOWED = 95 => "monthly bill not allowed now";
}

impl ResultCode {
    /// How the engine should treat the code. Flow control (11 node busy,
    /// 33 queue full / flow limit, 34 logging in too often) is `Throttled`;
    /// transient network/handset conditions are `Retryable`; the rest is
    /// `Permanent`.
    pub fn class(self) -> StatusClass {
        match self.0 {
            0 => StatusClass::Ok,
            11 | 33 | 34 => StatusClass::Throttled,
            3 | 21 | 25 | 26 | 28 | 32 => StatusClass::Retryable,
            _ => StatusClass::Permanent,
        }
    }

    /// Human-readable meaning ("unknown error code" when not in the tables).
    pub fn description(self) -> &'static str {
        self.name().unwrap_or("unknown error code")
    }

    pub fn is_ok(self) -> bool {
        self.0 == 0
    }
}

wire_enum! {
    /// Report State (spec §9).
    pub struct ReportState(u8);
    DELIVERED = 0 => "delivered";
    WAITING = 1 => "waiting";
    FAILED = 2 => "failed";
}

impl ReportState {
    /// Delivered or failed: no further report will follow.
    pub fn is_final(self) -> bool {
        self.0 != 1
    }
}

wire_enum! {
    /// Report ReportType (spec §9).
    pub struct ReportType(u8);
    /// Report on an earlier Submit.
    SUBMIT = 0 => "submit";
    /// Report on an earlier forwarded Deliver (SMG⇄SMG).
    DELIVER = 1 => "deliver";
}

wire_enum! {
    /// Submit FeeType (spec §7).
    pub struct FeeType(u8);
    SEND_RECORD = 0 => "send record";
    FREE = 1 => "free";
    PER_MESSAGE = 2 => "per message";
    MONTHLY = 3 => "monthly";
    BY_SP = 4 => "charged by SP";
}

wire_enum! {
    /// Submit ReportFlag (spec §7).
    pub struct ReportFlag(u8);
    /// Report only when delivery finally fails (the spec default).
    ON_FAILURE = 0 => "on failure";
    ALWAYS = 1 => "always";
    NEVER = 2 => "never";
    /// Monthly-fee information only; not delivered to the handset.
    MONTHLY_FEE = 3 => "monthly fee";
}

wire_enum! {
    /// Submit MorelatetoMTFlag (spec §7).
    pub struct MoRelateToMtFlag(u8);
    FIRST_MT_AFTER_MO = 0 => "first MT after MO";
    FURTHER_MT_AFTER_MO = 1 => "further MT after MO";
    NOT_MO_RELATED = 2 => "not MO related";
    SYSTEM_FEEDBACK = 3 => "system feedback";
}

wire_enum! {
    /// UserRpt UserCondition (spec §11).
    pub struct UserCondition(u8);
    CANCELLED = 0 => "cancelled";
    SUSPENDED = 1 => "suspended for arrears";
    NORMAL = 2 => "back to normal";
}

// ---------------------------------------------------------------------------
// Bodies

/// Bind (spec §4), body 41 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Bind {
    /// Login Type (1).
    pub login_type: LoginType,
    /// Login Name (16).
    pub login_name: FixedStr<16>,
    /// Login Password (16), plain text.
    pub login_password: FixedStr<16>,
    /// Reserve (8).
    pub reserve: FixedStr<8>,
}

impl Bind {
    pub const BODY_LEN: usize = 41;

    /// Builds a Bind; fails when name or password exceed 16 bytes.
    pub fn new(login_type: LoginType, name: &str, password: &str) -> Result<Self, EncodeError> {
        Ok(Bind {
            login_type,
            login_name: FixedStr::new(name.as_bytes())
                .map_err(|_| too_long("Bind", "Login Name", name.len(), 16))?,
            login_password: FixedStr::new(password.as_bytes())
                .map_err(|_| too_long("Bind", "Login Password", password.len(), 16))?,
            reserve: FixedStr::EMPTY,
        })
    }

    /// Whether the presented name and password match (SGIP has no digest;
    /// the password comparison does not short-circuit).
    pub fn verify(&self, name: &str, password: &str) -> bool {
        let name_ok = self.login_name.as_bytes() == name.as_bytes();
        let a = self.login_password.as_bytes();
        let b = password.as_bytes();
        let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
        for i in 0..a.len().max(b.len()) {
            diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
        }
        name_ok & (diff == 0)
    }

    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Bind", body);
        let v = Bind {
            login_type: LoginType(r.u8("Login Type")?),
            login_name: r.fixed("Login Name", 16)?,
            login_password: r.fixed("Login Password", 16)?,
            reserve: r.fixed("Reserve", 8)?,
        };
        r.finish()?;
        Ok(v)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        dst.put_u8(self.login_type.0);
        self.login_name.put(dst, 16, "Bind", "Login Name")?;
        self.login_password.put(dst, 16, "Bind", "Login Password")?;
        self.reserve.put(dst, 8, "Bind", "Reserve")
    }
}

/// The Result + Reserve body of Bind_Resp, Submit_Resp, Deliver_Resp,
/// Report_Resp and UserRpt_Resp (spec §5), 9 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Resp {
    /// Result (1): 0 ok, else an error code (§10).
    pub result: ResultCode,
    /// Reserve (8).
    pub reserve: FixedStr<8>,
}

impl Resp {
    pub const BODY_LEN: usize = 9;

    pub fn new(result: ResultCode) -> Self {
        Resp {
            result,
            reserve: FixedStr::EMPTY,
        }
    }

    pub fn ok() -> Self {
        Self::new(ResultCode::OK)
    }

    fn decode(pdu: &'static str, body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(pdu, body);
        let v = Resp {
            result: ResultCode(r.u8("Result")?),
            reserve: r.fixed("Reserve", 8)?,
        };
        r.finish()?;
        Ok(v)
    }

    fn encode(&self, pdu: &'static str, dst: &mut BytesMut) -> Result<(), EncodeError> {
        dst.put_u8(self.result.0);
        self.reserve.put(dst, 8, pdu, "Reserve")
    }
}

/// Submit (SP → SMG, spec §7), body 123 + 21·UserCount + MessageLength.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Submit {
    /// SPNumber (21): SP access number shown as the sender.
    pub sp_number: FixedStr<21>,
    /// ChargeNumber (21): charged number; 21 × '0' = the SP pays.
    pub charge_number: FixedStr<21>,
    /// UserNumber (21 × UserCount): recipients, "86"-prefixed. UserCount
    /// (1) is the length of this list.
    pub user_numbers: SmallVec<[FixedStr<21>; 1]>,
    /// CorpId (5).
    pub corp_id: FixedStr<5>,
    /// ServiceType (10).
    pub service_type: FixedStr<10>,
    /// FeeType (1).
    pub fee_type: FeeType,
    /// FeeValue (6): fee in fen, as text.
    pub fee_value: FixedStr<6>,
    /// GivenValue (6): credit in fen, as text.
    pub given_value: FixedStr<6>,
    /// AgentFlag (1): 0 should charge, 1 actually charged.
    pub agent_flag: u8,
    /// MorelatetoMTFlag (1).
    pub morelateto_mt_flag: MoRelateToMtFlag,
    /// Priority (1): 0–9.
    pub priority: u8,
    /// ExpireTime (16): `yymmddhhmmsstnnp`, empty = default.
    pub expire_time: FixedStr<16>,
    /// ScheduleTime (16): same format, empty = now.
    pub schedule_time: FixedStr<16>,
    /// ReportFlag (1).
    pub report_flag: ReportFlag,
    /// TP_pid (1).
    pub tp_pid: u8,
    /// TP_udhi (1): 1 = content starts with a UDH (0x40 also accepted).
    pub tp_udhi: u8,
    /// MessageCoding (1).
    pub message_coding: DataCoding,
    /// MessageType (1): 0 = short message.
    pub message_type: u8,
    /// MessageContent (MessageLength, a 4-byte field, UDH included).
    pub message_content: Bytes,
    /// Reserve (8).
    pub reserve: FixedStr<8>,
}

impl Default for Submit {
    fn default() -> Self {
        Submit {
            sp_number: FixedStr::EMPTY,
            charge_number: FixedStr::EMPTY,
            user_numbers: SmallVec::new(),
            corp_id: FixedStr::EMPTY,
            service_type: FixedStr::EMPTY,
            fee_type: FeeType::FREE,
            fee_value: FixedStr::EMPTY,
            given_value: FixedStr::EMPTY,
            agent_flag: 0,
            morelateto_mt_flag: MoRelateToMtFlag::NOT_MO_RELATED,
            priority: 0,
            expire_time: FixedStr::EMPTY,
            schedule_time: FixedStr::EMPTY,
            report_flag: ReportFlag::ALWAYS,
            tp_pid: 0,
            tp_udhi: 0,
            message_coding: DataCoding::ASCII,
            message_type: 0,
            message_content: Bytes::new(),
            reserve: FixedStr::EMPTY,
        }
    }
}

impl Submit {
    /// Fixed part of the body (everything but recipients and content).
    pub const FIXED_BODY_LEN: usize = 123;

    /// Whether TP_udhi says the content starts with a UDH (bit 0 or 6).
    pub fn udhi(&self) -> bool {
        udh::udhi_set(self.tp_udhi)
    }

    /// The parsed UDH when TP_udhi is set.
    pub fn udh(&self) -> Result<Option<Udh>, UdhError> {
        content_udh(self.tp_udhi, &self.message_content)
    }

    /// The content after any UDH, decoded with MessageCoding.
    pub fn text(&self) -> String {
        content_text(self.tp_udhi, self.message_coding, &self.message_content)
    }

    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Submit", body);
        let sp_number = r.fixed("SPNumber", 21)?;
        let charge_number = r.fixed("ChargeNumber", 21)?;
        let count = r.u8("UserCount")?;
        let mut user_numbers = SmallVec::with_capacity(count as usize);
        for _ in 0..count {
            user_numbers.push(r.fixed("UserNumber", 21)?);
        }
        let corp_id = r.fixed("CorpId", 5)?;
        let service_type = r.fixed("ServiceType", 10)?;
        let fee_type = FeeType(r.u8("FeeType")?);
        let fee_value = r.fixed("FeeValue", 6)?;
        let given_value = r.fixed("GivenValue", 6)?;
        let agent_flag = r.u8("AgentFlag")?;
        let morelateto_mt_flag = MoRelateToMtFlag(r.u8("MorelatetoMTFlag")?);
        let priority = r.u8("Priority")?;
        let expire_time = r.fixed("ExpireTime", 16)?;
        let schedule_time = r.fixed("ScheduleTime", 16)?;
        let report_flag = ReportFlag(r.u8("ReportFlag")?);
        let tp_pid = r.u8("TP_pid")?;
        let tp_udhi = r.u8("TP_udhi")?;
        let message_coding = DataCoding(r.u8("MessageCoding")?);
        let message_type = r.u8("MessageType")?;
        let message_content = read_content(&mut r)?;
        let reserve = r.fixed("Reserve", 8)?;
        r.finish()?;
        content_udh(tp_udhi, &message_content)?;
        Ok(Submit {
            sp_number,
            charge_number,
            user_numbers,
            corp_id,
            service_type,
            fee_type,
            fee_value,
            given_value,
            agent_flag,
            morelateto_mt_flag,
            priority,
            expire_time,
            schedule_time,
            report_flag,
            tp_pid,
            tp_udhi,
            message_coding,
            message_type,
            message_content,
            reserve,
        })
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        const P: &str = "Submit";
        if self.user_numbers.len() > MAX_USER_COUNT {
            return Err(too_long(
                P,
                "UserCount",
                self.user_numbers.len(),
                MAX_USER_COUNT,
            ));
        }
        dst.reserve(
            Self::FIXED_BODY_LEN + 21 * self.user_numbers.len() + self.message_content.len(),
        );
        self.sp_number.put(dst, 21, P, "SPNumber")?;
        self.charge_number.put(dst, 21, P, "ChargeNumber")?;
        dst.put_u8(self.user_numbers.len() as u8);
        for n in &self.user_numbers {
            n.put(dst, 21, P, "UserNumber")?;
        }
        self.corp_id.put(dst, 5, P, "CorpId")?;
        self.service_type.put(dst, 10, P, "ServiceType")?;
        dst.put_u8(self.fee_type.0);
        self.fee_value.put(dst, 6, P, "FeeValue")?;
        self.given_value.put(dst, 6, P, "GivenValue")?;
        dst.put_u8(self.agent_flag);
        dst.put_u8(self.morelateto_mt_flag.0);
        dst.put_u8(self.priority);
        self.expire_time.put(dst, 16, P, "ExpireTime")?;
        self.schedule_time.put(dst, 16, P, "ScheduleTime")?;
        dst.put_u8(self.report_flag.0);
        dst.put_u8(self.tp_pid);
        dst.put_u8(self.tp_udhi);
        dst.put_u8(self.message_coding.0);
        dst.put_u8(self.message_type);
        put_content(dst, &self.message_content, P)?;
        self.reserve.put(dst, 8, P, "Reserve")
    }
}

/// Deliver (SMG → SP, MO, spec §8), body 57 + MessageLength.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Deliver {
    /// UserNumber (21): the sending handset, "86"-prefixed.
    pub user_number: FixedStr<21>,
    /// SPNumber (21): the SP access number the user sent to.
    pub sp_number: FixedStr<21>,
    /// TP_pid (1).
    pub tp_pid: u8,
    /// TP_udhi (1): 1 (or 0x40) = UDH present.
    pub tp_udhi: u8,
    /// MessageCoding (1).
    pub message_coding: DataCoding,
    /// MessageContent (MessageLength, a 4-byte field, UDH included).
    pub message_content: Bytes,
    /// Reserve (8).
    pub reserve: FixedStr<8>,
}

impl Default for Deliver {
    fn default() -> Self {
        Deliver {
            user_number: FixedStr::EMPTY,
            sp_number: FixedStr::EMPTY,
            tp_pid: 0,
            tp_udhi: 0,
            message_coding: DataCoding::ASCII,
            message_content: Bytes::new(),
            reserve: FixedStr::EMPTY,
        }
    }
}

impl Deliver {
    pub const FIXED_BODY_LEN: usize = 57;

    /// Whether TP_udhi says the content starts with a UDH (bit 0 or 6).
    pub fn udhi(&self) -> bool {
        udh::udhi_set(self.tp_udhi)
    }

    /// The parsed UDH when TP_udhi is set.
    pub fn udh(&self) -> Result<Option<Udh>, UdhError> {
        content_udh(self.tp_udhi, &self.message_content)
    }

    /// The content after any UDH, decoded with MessageCoding.
    pub fn text(&self) -> String {
        content_text(self.tp_udhi, self.message_coding, &self.message_content)
    }

    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Deliver", body);
        let user_number = r.fixed("UserNumber", 21)?;
        let sp_number = r.fixed("SPNumber", 21)?;
        let tp_pid = r.u8("TP_pid")?;
        let tp_udhi = r.u8("TP_udhi")?;
        let message_coding = DataCoding(r.u8("MessageCoding")?);
        let message_content = read_content(&mut r)?;
        let reserve = r.fixed("Reserve", 8)?;
        r.finish()?;
        content_udh(tp_udhi, &message_content)?;
        Ok(Deliver {
            user_number,
            sp_number,
            tp_pid,
            tp_udhi,
            message_coding,
            message_content,
            reserve,
        })
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        const P: &str = "Deliver";
        self.user_number.put(dst, 21, P, "UserNumber")?;
        self.sp_number.put(dst, 21, P, "SPNumber")?;
        dst.put_u8(self.tp_pid);
        dst.put_u8(self.tp_udhi);
        dst.put_u8(self.message_coding.0);
        put_content(dst, &self.message_content, P)?;
        self.reserve.put(dst, 8, P, "Reserve")
    }
}

/// Report (SMG → SP, status report, spec §9), body 44.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Report {
    /// SubmitSequenceNumber (12): the header sequence of the reported Submit.
    pub submit_sequence_number: SeqNo,
    /// ReportType (1).
    pub report_type: ReportType,
    /// UserNumber (21): the recipient this report is about.
    pub user_number: FixedStr<21>,
    /// State (1): 0 delivered, 1 waiting, 2 failed.
    pub state: ReportState,
    /// ErrorCode (1): §10 code when State = 2, otherwise 0.
    pub error_code: ResultCode,
    /// Reserve (8).
    pub reserve: FixedStr<8>,
}

impl Report {
    pub const BODY_LEN: usize = 44;

    /// The matching key: (the Submit's sequence, the recipient).
    pub fn key(&self) -> (SeqNo, FixedStr<21>) {
        (self.submit_sequence_number, self.user_number)
    }

    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Report", body);
        let v = Report {
            submit_sequence_number: SeqNo::read(&mut r, "SubmitSequenceNumber")?,
            report_type: ReportType(r.u8("ReportType")?),
            user_number: r.fixed("UserNumber", 21)?,
            state: ReportState(r.u8("State")?),
            error_code: ResultCode(r.u8("ErrorCode")?),
            reserve: r.fixed("Reserve", 8)?,
        };
        r.finish()?;
        Ok(v)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.submit_sequence_number.put(dst);
        dst.put_u8(self.report_type.0);
        self.user_number.put(dst, 21, "Report", "UserNumber")?;
        dst.put_u8(self.state.0);
        dst.put_u8(self.error_code.0);
        self.reserve.put(dst, 8, "Report", "Reserve")
    }
}

/// UserRpt (SMG → SP, spec §11), body 51.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UserRpt {
    /// SPNumber (21).
    pub sp_number: FixedStr<21>,
    /// UserNumber (21).
    pub user_number: FixedStr<21>,
    /// UserCondition (1).
    pub user_condition: UserCondition,
    /// Reserve (8).
    pub reserve: FixedStr<8>,
}

impl UserRpt {
    pub const BODY_LEN: usize = 51;

    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("UserRpt", body);
        let v = UserRpt {
            sp_number: r.fixed("SPNumber", 21)?,
            user_number: r.fixed("UserNumber", 21)?,
            user_condition: UserCondition(r.u8("UserCondition")?),
            reserve: r.fixed("Reserve", 8)?,
        };
        r.finish()?;
        Ok(v)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.sp_number.put(dst, 21, "UserRpt", "SPNumber")?;
        self.user_number.put(dst, 21, "UserRpt", "UserNumber")?;
        dst.put_u8(self.user_condition.0);
        self.reserve.put(dst, 8, "UserRpt", "Reserve")
    }
}

/// Trace (SP → SMG on a test connection, spec §11), body 41.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Trace {
    /// SubmitSequenceNumber (12): the Submit to trace.
    pub submit_sequence_number: SeqNo,
    /// UserNumber (21).
    pub user_number: FixedStr<21>,
    /// Reserve (8).
    pub reserve: FixedStr<8>,
}

impl Trace {
    pub const BODY_LEN: usize = 41;

    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Trace", body);
        let v = Trace {
            submit_sequence_number: SeqNo::read(&mut r, "SubmitSequenceNumber")?,
            user_number: r.fixed("UserNumber", 21)?,
            reserve: r.fixed("Reserve", 8)?,
        };
        r.finish()?;
        Ok(v)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.submit_sequence_number.put(dst);
        self.user_number.put(dst, 21, "Trace", "UserNumber")?;
        self.reserve.put(dst, 8, "Trace", "Reserve")
    }
}

/// One node's entry in a Trace_Resp (47 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TraceNode {
    /// Result (1): 0 received, 1 waiting, other = error.
    pub result: u8,
    /// NodeId (6), as text.
    pub node_id: FixedStr<6>,
    /// ReceiveTime (16): `yymmddhhmmss` padded.
    pub receive_time: FixedStr<16>,
    /// SendTime (16): `yymmddhhmmss` padded.
    pub send_time: FixedStr<16>,
    /// Reserve (8).
    pub reserve: FixedStr<8>,
}

impl TraceNode {
    pub const WIRE_LEN: usize = 47;
}

/// Trace_Resp (spec §11): Count (1), then Count node entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TraceResp {
    /// The node entries; Count (1) is the length of this list.
    pub nodes: SmallVec<[TraceNode; 1]>,
}

impl TraceResp {
    fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new("Trace_Resp", body);
        let count = r.u8("Count")?;
        let mut nodes = SmallVec::with_capacity(count as usize);
        for _ in 0..count {
            nodes.push(TraceNode {
                result: r.u8("Result")?,
                node_id: r.fixed("NodeId", 6)?,
                receive_time: r.fixed("ReceiveTime", 16)?,
                send_time: r.fixed("SendTime", 16)?,
                reserve: r.fixed("Reserve", 8)?,
            });
        }
        r.finish()?;
        Ok(TraceResp { nodes })
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        const P: &str = "Trace_Resp";
        if self.nodes.len() > u8::MAX as usize {
            return Err(too_long(P, "Count", self.nodes.len(), u8::MAX as usize));
        }
        dst.put_u8(self.nodes.len() as u8);
        for n in &self.nodes {
            dst.put_u8(n.result);
            n.node_id.put(dst, 6, P, "NodeId")?;
            n.receive_time.put(dst, 16, P, "ReceiveTime")?;
            n.send_time.put(dst, 16, P, "SendTime")?;
            n.reserve.put(dst, 8, P, "Reserve")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Pdu

/// Every SGIP PDU an SP deals with; other ids (GNS, CheckUser, vendor) are
/// kept as [`Pdu::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    Bind(Bind),
    BindResp(Resp),
    Unbind,
    UnbindResp,
    Submit(Submit),
    SubmitResp(Resp),
    Deliver(Deliver),
    DeliverResp(Resp),
    Report(Report),
    ReportResp(Resp),
    UserRpt(UserRpt),
    UserRptResp(Resp),
    Trace(Trace),
    TraceResp(TraceResp),
    Unknown { command_id: CommandId, body: Bytes },
}

impl Pdu {
    /// The command id, derived from the variant.
    pub fn command_id(&self) -> CommandId {
        match self {
            Pdu::Bind(_) => CommandId::BIND,
            Pdu::BindResp(_) => CommandId::BIND_RESP,
            Pdu::Unbind => CommandId::UNBIND,
            Pdu::UnbindResp => CommandId::UNBIND_RESP,
            Pdu::Submit(_) => CommandId::SUBMIT,
            Pdu::SubmitResp(_) => CommandId::SUBMIT_RESP,
            Pdu::Deliver(_) => CommandId::DELIVER,
            Pdu::DeliverResp(_) => CommandId::DELIVER_RESP,
            Pdu::Report(_) => CommandId::REPORT,
            Pdu::ReportResp(_) => CommandId::REPORT_RESP,
            Pdu::UserRpt(_) => CommandId::USER_RPT,
            Pdu::UserRptResp(_) => CommandId::USER_RPT_RESP,
            Pdu::Trace(_) => CommandId::TRACE,
            Pdu::TraceResp(_) => CommandId::TRACE_RESP,
            Pdu::Unknown { command_id, .. } => *command_id,
        }
    }

    /// Spec name of the command ("Unknown" for unknown ids).
    pub fn name(&self) -> &'static str {
        self.command_id().name().unwrap_or("Unknown")
    }

    /// The Result of a Result+Reserve response.
    pub fn result(&self) -> Option<ResultCode> {
        match self {
            Pdu::BindResp(r)
            | Pdu::SubmitResp(r)
            | Pdu::DeliverResp(r)
            | Pdu::ReportResp(r)
            | Pdu::UserRptResp(r) => Some(r.result),
            _ => None,
        }
    }

    /// The response a server sends to this command with the given result
    /// (`Unbind` → `UnbindResp`; `None` for responses, Trace and unknown ids).
    pub fn response(&self, result: ResultCode) -> Option<Pdu> {
        let r = Resp::new(result);
        Some(match self {
            Pdu::Bind(_) => Pdu::BindResp(r),
            Pdu::Unbind => Pdu::UnbindResp,
            Pdu::Submit(_) => Pdu::SubmitResp(r),
            Pdu::Deliver(_) => Pdu::DeliverResp(r),
            Pdu::Report(_) => Pdu::ReportResp(r),
            Pdu::UserRpt(_) => Pdu::UserRptResp(r),
            _ => return None,
        })
    }

    /// Decodes a body for `command_id`. Unknown ids become [`Pdu::Unknown`].
    pub fn decode(command_id: CommandId, body: Bytes) -> Result<Pdu, DecodeError> {
        Ok(match command_id {
            CommandId::BIND => Pdu::Bind(Bind::decode(&body)?),
            CommandId::BIND_RESP => Pdu::BindResp(Resp::decode("Bind_Resp", &body)?),
            CommandId::UNBIND => {
                Reader::new("Unbind", &body).finish()?;
                Pdu::Unbind
            }
            CommandId::UNBIND_RESP => {
                Reader::new("Unbind_Resp", &body).finish()?;
                Pdu::UnbindResp
            }
            CommandId::SUBMIT => Pdu::Submit(Submit::decode(&body)?),
            CommandId::SUBMIT_RESP => Pdu::SubmitResp(Resp::decode("Submit_Resp", &body)?),
            CommandId::DELIVER => Pdu::Deliver(Deliver::decode(&body)?),
            CommandId::DELIVER_RESP => Pdu::DeliverResp(Resp::decode("Deliver_Resp", &body)?),
            CommandId::REPORT => Pdu::Report(Report::decode(&body)?),
            CommandId::REPORT_RESP => Pdu::ReportResp(Resp::decode("Report_Resp", &body)?),
            CommandId::USER_RPT => Pdu::UserRpt(UserRpt::decode(&body)?),
            CommandId::USER_RPT_RESP => Pdu::UserRptResp(Resp::decode("UserRpt_Resp", &body)?),
            CommandId::TRACE => Pdu::Trace(Trace::decode(&body)?),
            CommandId::TRACE_RESP => Pdu::TraceResp(TraceResp::decode(&body)?),
            command_id => Pdu::Unknown { command_id, body },
        })
    }

    /// Appends the body (the framer writes the header).
    pub fn encode_body(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Pdu::Bind(b) => b.encode(dst),
            Pdu::BindResp(r) => r.encode("Bind_Resp", dst),
            Pdu::Unbind | Pdu::UnbindResp => Ok(()),
            Pdu::Submit(s) => s.encode(dst),
            Pdu::SubmitResp(r) => r.encode("Submit_Resp", dst),
            Pdu::Deliver(d) => d.encode(dst),
            Pdu::DeliverResp(r) => r.encode("Deliver_Resp", dst),
            Pdu::Report(r) => r.encode(dst),
            Pdu::ReportResp(r) => r.encode("Report_Resp", dst),
            Pdu::UserRpt(u) => u.encode(dst),
            Pdu::UserRptResp(r) => r.encode("UserRpt_Resp", dst),
            Pdu::Trace(t) => t.encode(dst),
            Pdu::TraceResp(t) => t.encode(dst),
            Pdu::Unknown { body, .. } => {
                dst.put_slice(body);
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Long messages

/// One Submit per segment: each copies `template`, takes the segment's
/// content (UDH included; MessageLength is computed on encode) and sets
/// TP_udhi to 1 when the segment carries a concatenation header (0 for a
/// single unsegmented message). MessageCoding is the template's, which must
/// be the coding the text was split with. Every Submit needs its own header
/// sequence; the SMG reports on each segment separately.
pub fn submits_for(template: &Submit, segments: &[crate::text::Segment]) -> Vec<Submit> {
    segments
        .iter()
        .map(|seg| Submit {
            tp_udhi: u8::from(seg.concat.is_some()),
            message_content: seg.content.clone(),
            ..template.clone()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Helpers

fn too_long(pdu: &'static str, field: &'static str, len: usize, max: usize) -> EncodeError {
    EncodeError::TooLong {
        pdu,
        field,
        len,
        max,
    }
}

fn read_content(r: &mut Reader<'_>) -> Result<Bytes, DecodeError> {
    let at = r.offset();
    let len = r.u32("MessageLength")? as usize;
    if len > r.remaining() {
        return Err(DecodeError::Truncated {
            pdu: r.pdu(),
            field: "MessageContent",
            offset: at + 4,
        });
    }
    r.bytes("MessageContent", len)
}

fn put_content(dst: &mut BytesMut, content: &Bytes, pdu: &'static str) -> Result<(), EncodeError> {
    let len = u32::try_from(content.len())
        .map_err(|_| too_long(pdu, "MessageLength", content.len(), u32::MAX as usize))?;
    dst.put_u32(len);
    put_padded(dst, content, content.len(), pdu, "MessageContent")
}

fn content_udh(tp_udhi: u8, content: &[u8]) -> Result<Option<Udh>, UdhError> {
    if udh::udhi_set(tp_udhi) {
        udh::parse(content).map(Some)
    } else {
        Ok(None)
    }
}

fn content_text(tp_udhi: u8, coding: DataCoding, content: &[u8]) -> String {
    let start = match content_udh(tp_udhi, content) {
        Ok(Some(u)) => u.header_len,
        _ => 0,
    };
    crate::text::decode(&content[start..], coding)
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

    fn named<T: Into<u64>>(v: T, name: Option<&'static str>) -> Value {
        let v: u64 = v.into();
        match name {
            Some(n) => json!({ "value": v, "name": n }),
            None => json!({ "value": v }),
        }
    }

    fn result(r: ResultCode) -> Value {
        json!({
            "value": r.0,
            "description": r.description(),
            "class": r.class().as_str(),
        })
    }

    fn resp(r: &Resp) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("result".into(), result(r.result));
        m.insert("reserve".into(), s(&r.reserve));
        m
    }

    impl Pdu {
        /// Every field with decoded values, for `smsgw pdu decode`.
        pub fn to_json(&self) -> Value {
            let mut m = match self {
                Pdu::Bind(b) => {
                    let mut m = Map::new();
                    m.insert(
                        "login_type".into(),
                        named(b.login_type.0, b.login_type.name()),
                    );
                    m.insert("login_name".into(), s(&b.login_name));
                    m.insert("login_password".into(), s(&b.login_password));
                    m.insert("reserve".into(), s(&b.reserve));
                    m
                }
                Pdu::BindResp(r)
                | Pdu::SubmitResp(r)
                | Pdu::DeliverResp(r)
                | Pdu::ReportResp(r)
                | Pdu::UserRptResp(r) => resp(r),
                Pdu::Unbind | Pdu::UnbindResp => Map::new(),
                Pdu::Submit(v) => {
                    let mut m = Map::new();
                    m.insert("sp_number".into(), s(&v.sp_number));
                    m.insert("charge_number".into(), s(&v.charge_number));
                    m.insert("user_count".into(), json!(v.user_numbers.len()));
                    m.insert(
                        "user_numbers".into(),
                        Value::Array(v.user_numbers.iter().map(s).collect()),
                    );
                    m.insert("corp_id".into(), s(&v.corp_id));
                    m.insert("service_type".into(), s(&v.service_type));
                    m.insert("fee_type".into(), named(v.fee_type.0, v.fee_type.name()));
                    m.insert("fee_value".into(), s(&v.fee_value));
                    m.insert("given_value".into(), s(&v.given_value));
                    m.insert("agent_flag".into(), json!(v.agent_flag));
                    m.insert(
                        "morelateto_mt_flag".into(),
                        named(v.morelateto_mt_flag.0, v.morelateto_mt_flag.name()),
                    );
                    m.insert("priority".into(), json!(v.priority));
                    m.insert("expire_time".into(), s(&v.expire_time));
                    m.insert("schedule_time".into(), s(&v.schedule_time));
                    m.insert(
                        "report_flag".into(),
                        named(v.report_flag.0, v.report_flag.name()),
                    );
                    m.insert("tp_pid".into(), json!(v.tp_pid));
                    m.insert("tp_udhi".into(), json!(v.tp_udhi));
                    m.insert("message_coding".into(), coding(v.message_coding));
                    m.insert("message_type".into(), json!(v.message_type));
                    m.insert("message_length".into(), json!(v.message_content.len()));
                    m.insert(
                        "message_content".into(),
                        content(
                            udh::udhi_set(v.tp_udhi),
                            v.message_coding,
                            &v.message_content,
                        ),
                    );
                    m.insert("reserve".into(), s(&v.reserve));
                    m
                }
                Pdu::Deliver(v) => {
                    let mut m = Map::new();
                    m.insert("user_number".into(), s(&v.user_number));
                    m.insert("sp_number".into(), s(&v.sp_number));
                    m.insert("tp_pid".into(), json!(v.tp_pid));
                    m.insert("tp_udhi".into(), json!(v.tp_udhi));
                    m.insert("message_coding".into(), coding(v.message_coding));
                    m.insert("message_length".into(), json!(v.message_content.len()));
                    m.insert(
                        "message_content".into(),
                        content(
                            udh::udhi_set(v.tp_udhi),
                            v.message_coding,
                            &v.message_content,
                        ),
                    );
                    m.insert("reserve".into(), s(&v.reserve));
                    m
                }
                Pdu::Report(v) => {
                    let mut m = Map::new();
                    m.insert(
                        "submit_sequence_number".into(),
                        v.submit_sequence_number.to_json(),
                    );
                    m.insert(
                        "report_type".into(),
                        named(v.report_type.0, v.report_type.name()),
                    );
                    m.insert("user_number".into(), s(&v.user_number));
                    m.insert("state".into(), named(v.state.0, v.state.name()));
                    m.insert("error_code".into(), result(v.error_code));
                    m.insert("reserve".into(), s(&v.reserve));
                    m
                }
                Pdu::UserRpt(v) => {
                    let mut m = Map::new();
                    m.insert("sp_number".into(), s(&v.sp_number));
                    m.insert("user_number".into(), s(&v.user_number));
                    m.insert(
                        "user_condition".into(),
                        named(v.user_condition.0, v.user_condition.name()),
                    );
                    m.insert("reserve".into(), s(&v.reserve));
                    m
                }
                Pdu::Trace(v) => {
                    let mut m = Map::new();
                    m.insert(
                        "submit_sequence_number".into(),
                        v.submit_sequence_number.to_json(),
                    );
                    m.insert("user_number".into(), s(&v.user_number));
                    m.insert("reserve".into(), s(&v.reserve));
                    m
                }
                Pdu::TraceResp(v) => {
                    let mut m = Map::new();
                    m.insert("count".into(), json!(v.nodes.len()));
                    let nodes = v
                        .nodes
                        .iter()
                        .map(|n| {
                            json!({
                                "result": n.result,
                                "node_id": s(&n.node_id),
                                "receive_time": s(&n.receive_time),
                                "send_time": s(&n.send_time),
                                "reserve": s(&n.reserve),
                            })
                        })
                        .collect();
                    m.insert("nodes".into(), Value::Array(nodes));
                    m
                }
                Pdu::Unknown { body, .. } => {
                    let mut m = Map::new();
                    m.insert("body_hex".into(), json!(hex(body)));
                    m
                }
            };
            let id = self.command_id();
            let mut out = Map::new();
            out.insert("protocol".into(), json!("sgip"));
            out.insert("command".into(), json!(self.name()));
            out.insert("command_id".into(), json!(format!("{:#010x}", id.0)));
            out.append(&mut m);
            Value::Object(out)
        }
    }

    /// A packet as JSON: the PDU's fields plus `"sequence"` broken into
    /// node id, time and counter.
    pub fn packet_to_json(seq: SeqNo, pdu: &Pdu) -> Value {
        let mut v = pdu.to_json();
        if let Value::Object(m) = &mut v {
            m.insert("sequence".into(), seq.to_json());
        }
        v
    }
}

#[cfg(feature = "json")]
pub use json::packet_to_json;
