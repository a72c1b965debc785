//! Domain types of the sender engine. Plain data: no I/O, no clocks.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A wall-clock instant in milliseconds since the Unix epoch (UTC).
///
/// Stored as a plain integer so every SQL backend keeps it the same way and
/// the engine's state machines can be driven with synthetic time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time. Only drivers call this; logic takes `now` as an argument.
    pub fn now() -> Self {
        Timestamp(chrono::Utc::now().timestamp_millis())
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }

    /// Time from `self` until `later` (zero if `later` is earlier).
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0).max(0) as u64)
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-12-04T15:57:27.123Z`.
    pub fn to_rfc3339(self) -> String {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            None => String::from("invalid-time"),
        }
    }

    /// Parses RFC 3339 with any offset (`Z`, `+08:00`, ...).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        chrono::DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|t| Timestamp(t.timestamp_millis()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

macro_rules! closed_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($s => Ok($name::$var),)+
                    _ => Err(UnknownValue { kind: stringify!($name), value: s.to_owned() }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A string that is not one of a closed set's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

closed_enum!(
    /// Priority lane. Order matters: `Otp < Notify < Marketing` (lower is more urgent).
    Priority {
        /// One-time passwords and other interactive codes.
        Otp => "otp",
        /// Transactional notifications; the default.
        Notify => "notify",
        /// Bulk marketing.
        Marketing => "marketing",
    }
);

#[allow(clippy::derivable_impls)] // the enum comes from `closed_enum!`
impl Default for Priority {
    fn default() -> Self {
        Priority::Notify
    }
}

impl Priority {
    pub fn index(self) -> usize {
        self as usize
    }
}

closed_enum!(
    /// The delivery channel a message goes out on.
    ChannelKind {
        Sms => "sms",
        Email => "email",
        Push => "push",
    }
);

#[allow(clippy::derivable_impls)]
impl Default for ChannelKind {
    fn default() -> Self {
        ChannelKind::Sms
    }
}

closed_enum!(
    /// Lifecycle state of one message (one recipient).
    ///
    /// `Accepted`, `Submitted`, `Delivered`, `Failed` and `Expired` are the
    /// published states; `Retryable` is internal: the message used up its
    /// immediate attempts and waits for the sweeper (published as no event).
    MessageState {
        Accepted => "accepted",
        Submitted => "submitted",
        Delivered => "delivered",
        Failed => "failed",
        Expired => "expired",
        Retryable => "retryable",
    }
);

impl MessageState {
    /// No further transitions happen from a final state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageState::Delivered | MessageState::Failed | MessageState::Expired
        )
    }

    /// Whether a change into this state is published as a status event.
    pub fn is_published(self) -> bool {
        !matches!(self, MessageState::Retryable)
    }
}

closed_enum!(
    /// Mobile network operator a number belongs to.
    Carrier {
        Mobile => "mobile",
        Unicom => "unicom",
        Telecom => "telecom",
    }
);

/// Protocol names are shared crate vocabulary (`cmpp2`, `cmpp3`, `smgp`, `sgip`).
pub use crate::protocol::ProtocolKind;

/// The carrier that speaks a protocol natively.
pub fn carrier_of(p: ProtocolKind) -> Carrier {
    match p {
        ProtocolKind::Cmpp2 | ProtocolKind::Cmpp3 => Carrier::Mobile,
        ProtocolKind::Smgp => Carrier::Telecom,
        ProtocolKind::Sgip => Carrier::Unicom,
    }
}

/// serde for [`ProtocolKind`] as its lowercase name.
pub mod protocol_serde {
    use super::ProtocolKind;

    pub fn serialize<S: serde::Serializer>(p: &ProtocolKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(p.as_str())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ProtocolKind, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Store-assigned identity of one message row (one recipient of one upstream record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub i64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One segment (SMS part) of a message; `part` counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentRef {
    pub message: MessageId,
    pub part: u16,
}

/// The id a carrier (or email/push provider) gave one submitted part; reports
/// are correlated by it.
///
/// Normalised on construction so format differences between the submit
/// response and the report (padding NULs, spaces, letter case of hex ids,
/// leading zeros of decimal ids) do not break correlation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderMsgId(String);

impl ProviderMsgId {
    pub fn new(raw: &str) -> Self {
        let t = raw.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        let t = if t.bytes().all(|b| b.is_ascii_digit()) && t.len() > 1 {
            let s = t.trim_start_matches('0');
            if s.is_empty() {
                "0"
            } else {
                s
            }
        } else {
            t
        };
        ProviderMsgId(t.to_ascii_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderMsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated upstream request for one recipient, ready for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Upstream idempotency key (shared by all recipients of one record).
    pub upstream_id: String,
    /// Recipient, normalised (national number for SMS).
    pub to: String,
    pub text: String,
    pub priority: Priority,
    pub biz: Option<String>,
    pub channel: ChannelKind,
    pub expire_at: Timestamp,
    /// Number of billable parts (SMS segments); 1 for email/push.
    pub segments: u16,
    /// Carrier by number segment, if known (SMS only).
    pub carrier: Option<Carrier>,
    pub accepted_at: Timestamp,
    /// Accept it already claimed until this time (the caller dispatches it
    /// right away): stored exactly as [`MessageStore::claim_due`] leaves a
    /// claimed message (attempt 1 in flight, due again when the lease runs
    /// out). `None`: accepted due now, for `claim_due` to pick up.
    ///
    /// [`MessageStore::claim_due`]: crate::engine::ports::MessageStore::claim_due
    pub claimed_until: Option<Timestamp>,
}

/// A record that failed validation, kept with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Where it came from, e.g. `queue:17` or `sms-in/3@1234`.
    pub origin: String,
    /// Upstream id if it could be read.
    pub upstream_id: Option<String>,
    /// The raw record (lossy UTF-8).
    pub payload: String,
    pub reason: String,
    pub at: Timestamp,
}

/// A message claimed for dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatchable {
    pub id: MessageId,
    pub upstream_id: String,
    pub to: String,
    pub text: String,
    pub priority: Priority,
    pub channel: ChannelKind,
    pub carrier: Option<Carrier>,
    pub segments: u16,
    pub attempts: u32,
    pub expire_at: Timestamp,
    pub possible_duplicate: bool,
}

/// One status change, as published and as kept in the history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusEvent {
    /// Upstream id.
    pub id: String,
    pub to: String,
    pub state: MessageState,
    /// Carrier status if any (e.g. `DELIVRD`, `UNDELIV`, a submit result code).
    pub code: Option<String>,
    pub segments: u16,
    pub link: Option<String>,
    /// RFC 3339.
    pub at: String,
    /// Set when the message may have reached the handset more than once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub possible_duplicate: bool,
}

/// A carrier link as operators configure it.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    pub name: String,
    #[serde(with = "protocol_serde")]
    pub protocol: ProtocolKind,
    /// `host:port`.
    pub addr: String,
    pub account: String,
    /// Never printed: `Debug` and [`LinkSpec::masked_secret`] mask it.
    pub secret: String,
    #[serde(default = "default_connections")]
    pub connections: u32,
    #[serde(default = "default_window")]
    pub window: u32,
    /// Submits per second across all connections; `None` = unlimited.
    #[serde(default)]
    pub tps: Option<u32>,
    /// Routing weight among links of the same carrier.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_connections() -> u32 {
    1
}
fn default_window() -> u32 {
    16
}
fn default_weight() -> u32 {
    1
}

impl LinkSpec {
    pub fn carrier(&self) -> Carrier {
        carrier_of(self.protocol)
    }

    pub fn masked_secret(&self) -> &'static str {
        "********"
    }
}

impl fmt::Debug for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkSpec")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("addr", &self.addr)
            .field("account", &self.account)
            .field("secret", &self.masked_secret())
            .field("connections", &self.connections)
            .field("window", &self.window)
            .field("tps", &self.tps)
            .field("weight", &self.weight)
            .finish()
    }
}

/// Aggregate counters for `smsgw stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Lowercase state → message count.
    pub by_state: std::collections::BTreeMap<String, u64>,
    /// Link name → counts.
    pub by_link: std::collections::BTreeMap<String, GroupStats>,
    /// `biz` tag (empty string when none) → counts.
    pub by_biz: std::collections::BTreeMap<String, GroupStats>,
    pub messages: u64,
    pub segments: u64,
    pub dead_letters: u64,
    pub queued: u64,
    pub reports_unmatched: u64,
    pub possible_duplicates: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GroupStats {
    pub messages: u64,
    pub segments: u64,
    pub by_state: std::collections::BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_msg_id_normalises_formats() {
        assert_eq!(ProviderMsgId::new(" 00123\0\0"), ProviderMsgId::new("123"));
        assert_eq!(
            ProviderMsgId::new("ABCDEF01"),
            ProviderMsgId::new("abcdef01")
        );
        assert_eq!(ProviderMsgId::new("0").as_str(), "0");
        assert_ne!(ProviderMsgId::new("12"), ProviderMsgId::new("120"));
    }

    #[test]
    fn timestamp_rfc3339_round_trip_with_offset() {
        let t = Timestamp::parse_rfc3339("2026-12-04T23:57:27.5+08:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-04T15:57:27.500Z");
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
    }

    #[test]
    fn closed_enums_parse_case_insensitively() {
        assert_eq!("OTP".parse::<Priority>().unwrap(), Priority::Otp);
        assert!("urgent".parse::<Priority>().is_err());
        assert!(Priority::Otp < Priority::Marketing);
        assert_eq!(MessageState::Delivered.as_str(), "delivered");
    }

    #[test]
    fn link_debug_masks_secret() {
        let l = LinkSpec {
            name: "m1".into(),
            protocol: ProtocolKind::Cmpp3,
            addr: "127.0.0.1:7890".into(),
            account: "901234".into(),
            secret: "hunter2".into(),
            connections: 1,
            window: 16,
            tps: None,
            weight: 1,
        };
        assert!(!format!("{l:?}").contains("hunter2"));
    }
}
