//! Message text: the data codings the three protocols share (CMPP Msg_Fmt,
//! SMGP MsgFormat, SGIP MessageCoding), and splitting long messages into
//! concatenated segments with a user data header (see `long-sms.md` §2).
//!
//! * [`encode`] turns text into the bytes of one coding and fails when the
//!   text cannot be represented; [`decode`] is lossy and never fails.
//! * [`split`] / [`split_bytes`] produce the segment contents of a message:
//!   one segment without header if it fits in a single SMS, else up to 255
//!   segments, each starting with the concatenation UDH for the reference.
//!   A segment never ends inside a character: a UCS2 surrogate pair, a GBK
//!   double-byte (or GB18030 four-byte) character and, for text sent as
//!   binary, a UTF-8 sequence always stay in one segment.
//! * [`ReferenceAllocator`] hands out concatenation references per
//!   recipient so two long messages to one handset do not share one.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::error::EncodeError;
use crate::udh::{Concat, ConcatRef};

/// The data coding of a message: CMPP `Msg_Fmt`, SMGP `MsgFormat`, SGIP
/// `MessageCoding` (1 byte each). The values the protocols name are consts;
/// any other value survives as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataCoding(pub u8);

impl DataCoding {
    /// 0: ASCII, one byte per character.
    pub const ASCII: Self = DataCoding(0);
    /// 3: SIM card write instruction (handled as binary).
    pub const SIM_WRITE: Self = DataCoding(3);
    /// 4: binary (8-bit data).
    pub const BINARY: Self = DataCoding(4);
    /// 8: UCS2, carried as UTF-16BE (surrogate pairs for non-BMP text).
    pub const UCS2: Self = DataCoding(8);
    /// 15: GBK (decoded as GB18030, its superset).
    pub const GBK: Self = DataCoding(15);

    /// The spec name of the coding, or `"UNKNOWN"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ASCII => "ASCII",
            Self::SIM_WRITE => "SIM_WRITE",
            Self::BINARY => "BINARY",
            Self::UCS2 => "UCS2",
            Self::GBK => "GBK",
            _ => "UNKNOWN",
        }
    }

    /// Whether the coding carries opaque bytes rather than text
    /// (BINARY, SIM_WRITE and GSM-style 8-bit data codings).
    pub fn is_binary(self) -> bool {
        self.kind() == Kind::Binary
    }

    /// Whether the coding is UCS2 (8, or a GSM data coding scheme that
    /// names the UCS2 alphabet together with a message class, e.g. 0x18).
    pub fn is_ucs2(self) -> bool {
        self.kind() == Kind::Ucs2
    }

    /// How the bytes are treated. Besides the five named values, GSM 03.38
    /// data coding schemes that some gateways pass through are honoured:
    /// general data coding (0x00–0x3F) with alphabet bits 01 (8-bit) or
    /// 10 (UCS2), and group 0xF_ with bit 2 set (8-bit). Anything else is
    /// Latin-1.
    fn kind(self) -> Kind {
        match self.0 {
            0 => Kind::Ascii,
            3 | 4 => Kind::Binary,
            8 => Kind::Ucs2,
            15 => Kind::Gbk,
            v if v & 0xC0 == 0 && v & 0x0C == 0x04 => Kind::Binary,
            v if v & 0xC0 == 0 && v & 0x0C == 0x08 => Kind::Ucs2,
            v if v & 0xF0 == 0xF0 && v & 0x04 != 0 => Kind::Binary,
            _ => Kind::Latin1,
        }
    }
}

impl Default for DataCoding {
    fn default() -> Self {
        Self::ASCII
    }
}

impl From<u8> for DataCoding {
    fn from(v: u8) -> Self {
        DataCoding(v)
    }
}

impl std::fmt::Display for DataCoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ascii,
    Binary,
    Ucs2,
    Gbk,
    Latin1,
}

/// Encodes `text` in `coding`.
///
/// * ASCII: fails with [`EncodeError::Text`] on any non-ASCII character.
/// * UCS2: UTF-16BE; never fails.
/// * GBK: fails on characters GBK cannot represent.
/// * BINARY / SIM_WRITE: the UTF-8 bytes of `text` as they are (use
///   [`split_bytes`] for real binary payloads).
/// * Any other value: Latin-1; fails on characters above U+00FF.
pub fn encode(text: &str, coding: DataCoding) -> Result<Vec<u8>, EncodeError> {
    let err = |reason| EncodeError::Text {
        coding: coding.name(),
        reason,
    };
    match coding.kind() {
        Kind::Ascii => {
            if text.is_ascii() {
                Ok(text.as_bytes().to_vec())
            } else {
                Err(err("non-ASCII character"))
            }
        }
        Kind::Binary => Ok(text.as_bytes().to_vec()),
        Kind::Ucs2 => {
            let mut out = Vec::with_capacity(text.len() * 2);
            for unit in text.encode_utf16() {
                out.extend_from_slice(&unit.to_be_bytes());
            }
            Ok(out)
        }
        Kind::Gbk => {
            let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
            if unmappable {
                Err(err("character not representable in GBK"))
            } else {
                Ok(bytes.into_owned())
            }
        }
        Kind::Latin1 => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).map_err(|_| err("character above U+00FF")))
            .collect(),
    }
}

/// Decodes `bytes` of `coding` to text. Lossy, never fails: undecodable
/// input becomes U+FFFD.
///
/// * ASCII, BINARY, SIM_WRITE: UTF-8, lossy (plain ASCII is unchanged).
/// * UCS2: UTF-16BE; lone surrogates and an odd trailing byte become U+FFFD.
/// * GBK: GB18030 (superset of GBK and GB2312).
/// * Any other value: Latin-1.
pub fn decode(bytes: &[u8], coding: DataCoding) -> String {
    match coding.kind() {
        Kind::Ascii | Kind::Binary => String::from_utf8_lossy(bytes).into_owned(),
        Kind::Ucs2 => {
            let units = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            let mut out: String = char::decode_utf16(units)
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            if bytes.len() % 2 == 1 {
                out.push(char::REPLACEMENT_CHARACTER);
            }
            out
        }
        Kind::Gbk => encoding_rs::GB18030
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
        Kind::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The protocol a message goes out on: the ASCII limits differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Cmpp,
    Smgp,
    Sgip,
}

/// Maximum number of segments of one concatenated message.
pub const MAX_SEGMENTS: usize = 255;

/// Bytes of content a single (unsegmented) SMS may carry: 159 for ASCII in
/// CMPP (SMSGate: "< 160"), 140 for everything else.
pub fn single_limit(coding: DataCoding, family: Family) -> usize {
    match (coding.kind(), family) {
        (Kind::Ascii, Family::Cmpp) => 159,
        _ => 140,
    }
}

/// Payload bytes per segment after the UDH of `reference` (long-sms.md §2):
/// the single limit minus the 6- or 7-byte header, rounded down to even for
/// UCS2. UCS2 134/132, ASCII in CMPP 153/152, everything else 134/133.
pub fn segment_limit(coding: DataCoding, family: Family, reference: ConcatRef) -> usize {
    let room = single_limit(coding, family) - reference.udh_len();
    if coding.kind() == Kind::Ucs2 {
        room & !1
    } else {
        room
    }
}

/// One SMS of a message, as the content field of a SUBMIT carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The concatenation element; `None` for a message sent as one SMS.
    pub concat: Option<Concat>,
    /// The content field: the UDH (when `concat` is `Some`) then the payload.
    pub content: Bytes,
}

impl Segment {
    /// The value for the TP_udhi field / TLV: 1 when a UDH leads the content.
    pub fn udhi(&self) -> u8 {
        u8::from(self.concat.is_some())
    }

    /// CMPP `Pk_total` / SMGP `PkTotal`: the segment count (1 when single).
    pub fn pk_total(&self) -> u8 {
        self.concat.map_or(1, |c| c.total)
    }

    /// CMPP `Pk_number` / SMGP `PkNumber`: 1-based index (1 when single).
    pub fn pk_number(&self) -> u8 {
        self.concat.map_or(1, |c| c.seq)
    }

    /// The payload after the UDH (zero-copy).
    pub fn payload(&self) -> Bytes {
        let skip = self.concat.map_or(0, |c| c.reference.udh_len());
        self.content.slice(skip.min(self.content.len())..)
    }
}

/// How a payload may be cut: the byte length of the character at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Units {
    /// Any byte boundary.
    Byte,
    /// UTF-8 sequences stay together (text sent as binary).
    Utf8,
    /// UTF-16BE code units; surrogate pairs stay together.
    Ucs2,
    /// GBK double-byte and GB18030 four-byte characters stay together.
    Gbk,
}

impl Units {
    fn for_text(coding: DataCoding) -> Self {
        match coding.kind() {
            Kind::Ucs2 => Units::Ucs2,
            Kind::Gbk => Units::Gbk,
            Kind::Binary => Units::Utf8,
            Kind::Ascii | Kind::Latin1 => Units::Byte,
        }
    }

    fn for_bytes(coding: DataCoding) -> Self {
        match coding.kind() {
            Kind::Ucs2 => Units::Ucs2,
            Kind::Gbk => Units::Gbk,
            _ => Units::Byte,
        }
    }

    /// Length of the unit starting at `at` (`at < b.len()`), never past the
    /// end of `b` and at least 1.
    fn len_at(self, b: &[u8], at: usize) -> usize {
        let left = b.len() - at;
        let want = match self {
            Units::Byte => 1,
            Units::Utf8 => match b[at] {
                0xF0..=0xFF => 4,
                0xE0..=0xEF => 3,
                0xC0..=0xDF => 2,
                _ => 1,
            },
            Units::Ucs2 => {
                let hi = b[at];
                let next_is_low = b.get(at + 2).is_some_and(|&n| (0xDC..=0xDF).contains(&n));
                if (0xD8..=0xDB).contains(&hi) && left >= 4 && next_is_low {
                    4
                } else {
                    2
                }
            }
            Units::Gbk => match b[at] {
                0x81..=0xFE => {
                    let four = left >= 4 && b.get(at + 1).is_some_and(|n| n.is_ascii_digit());
                    if four {
                        4
                    } else {
                        2
                    }
                }
                _ => 1,
            },
        };
        want.min(left)
    }
}

/// Splits `text` into the segments of one message in `coding`.
///
/// Returns one segment without UDH (`concat: None`) when the encoded text
/// fits in a single SMS ([`single_limit`]), else segments of at most
/// [`segment_limit`] payload bytes, each led by the UDH for `reference`,
/// with `seq` 1..=total.
///
/// Errors: the text cannot be encoded in `coding`; the text is empty
/// ([`EncodeError::Invalid`] — an empty SMS is almost always a caller bug;
/// build the segment by hand if one is really wanted); more than 255
/// segments would be needed ([`EncodeError::Invalid`]).
pub fn split(
    text: &str,
    coding: DataCoding,
    family: Family,
    reference: ConcatRef,
) -> Result<Vec<Segment>, EncodeError> {
    let bytes = encode(text, coding)?;
    split_units(&bytes, coding, family, reference, Units::for_text(coding))
}

/// Like [`split`] for a payload already in `coding` (binary data, or text
/// encoded elsewhere). UCS2 payloads are cut between UTF-16 code units but
/// never inside a surrogate pair; GBK payloads never inside a character;
/// anything else at any byte.
pub fn split_bytes(
    payload: &[u8],
    coding: DataCoding,
    family: Family,
    reference: ConcatRef,
) -> Result<Vec<Segment>, EncodeError> {
    split_units(payload, coding, family, reference, Units::for_bytes(coding))
}

/// Number of segments [`split`] would produce, without building them.
pub fn segment_count(
    text: &str,
    coding: DataCoding,
    family: Family,
    reference: ConcatRef,
) -> Result<usize, EncodeError> {
    let bytes = encode(text, coding)?;
    if bytes.is_empty() {
        return Err(empty());
    }
    if bytes.len() <= single_limit(coding, family) {
        return Ok(1);
    }
    let cap = segment_limit(coding, family, reference);
    Ok(cuts(&bytes, cap, Units::for_text(coding)).len())
}

fn empty() -> EncodeError {
    EncodeError::Invalid {
        pdu: "text",
        field: "content",
        reason: "empty message",
    }
}

/// Byte ranges of the segment payloads: greedy, never cutting a unit.
fn cuts(b: &[u8], cap: usize, units: Units) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(b.len() / cap.max(1) + 1);
    let mut start = 0;
    let mut at = 0;
    while at < b.len() {
        let n = units.len_at(b, at);
        if at + n - start > cap {
            out.push((start, at));
            start = at;
        }
        at += n;
    }
    if start < b.len() {
        out.push((start, b.len()));
    }
    out
}

fn split_units(
    b: &[u8],
    coding: DataCoding,
    family: Family,
    reference: ConcatRef,
    units: Units,
) -> Result<Vec<Segment>, EncodeError> {
    if b.is_empty() {
        return Err(empty());
    }
    if b.len() <= single_limit(coding, family) {
        return Ok(vec![Segment {
            concat: None,
            content: Bytes::copy_from_slice(b),
        }]);
    }
    let cap = segment_limit(coding, family, reference);
    let ranges = cuts(b, cap, units);
    let total = u8::try_from(ranges.len())
        .ok()
        .filter(|&t| t as usize <= MAX_SEGMENTS)
        .ok_or(EncodeError::Invalid {
            pdu: "text",
            field: "segments",
            reason: "message needs more than 255 segments",
        })?;
    let udh = reference.udh_len();
    let mut buf = BytesMut::with_capacity(b.len() + udh * ranges.len());
    let mut concats = Vec::with_capacity(ranges.len());
    for (i, &(s, e)) in ranges.iter().enumerate() {
        let concat = Concat {
            reference,
            total,
            // i < total <= 255
            seq: (i + 1) as u8,
        };
        concat.put(&mut buf);
        buf.extend_from_slice(&b[s..e]);
        concats.push((concat, udh + e - s));
    }
    let mut all = buf.freeze();
    Ok(concats
        .into_iter()
        .map(|(concat, len)| Segment {
            concat: Some(concat),
            content: all.split_to(len),
        })
        .collect())
}

/// Width of the references a [`ReferenceAllocator`] hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefWidth {
    /// IEI 0x00, 6-byte UDH: what to send (long-sms.md §1).
    Eight,
    /// IEI 0x08, 7-byte UDH.
    Sixteen,
}

#[derive(Debug, Clone, Copy)]
struct RefEntry {
    next: u16,
    last_used: Instant,
}

/// Hands out concatenation references per recipient, sans-IO.
///
/// Each recipient has its own counter, so successive long messages to one
/// handset get successive references: two messages to it share a reference
/// only after 256 (8-bit) or 65,536 (16-bit) more messages to that same
/// handset. A recipient seen for the first time (or again after its entry
/// was dropped) starts from a global counter that advances with every
/// allocation, so a forgotten entry is very unlikely to restart at a value
/// still in flight.
///
/// Memory is bounded: entries unused for `hold` are dropped, and when
/// `max_recipients` entries are held the least recently used is dropped.
#[derive(Debug, Clone)]
pub struct ReferenceAllocator<K: Hash + Eq + Clone = String> {
    hold: Duration,
    max_recipients: usize,
    global: u16,
    entries: HashMap<K, RefEntry>,
    /// Allocation order (recipient, time); stale rows are skipped.
    order: VecDeque<(K, Instant)>,
}

impl<K: Hash + Eq + Clone> ReferenceAllocator<K> {
    /// `hold`: how long a recipient's counter is kept after its last use
    /// (smsj: 60 s; use at least the longest time a long message may stay
    /// incomplete). `max_recipients`: bound on the entries held (min 1).
    pub fn new(hold: Duration, max_recipients: usize) -> Self {
        Self::with_seed(hold, max_recipients, 0)
    }

    /// Like [`ReferenceAllocator::new`], with the global counter starting at
    /// `seed` (e.g. derived from the start time so restarts do not reuse
    /// the references of the previous run).
    pub fn with_seed(hold: Duration, max_recipients: usize, seed: u16) -> Self {
        ReferenceAllocator {
            hold,
            max_recipients: max_recipients.max(1),
            global: seed,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The next reference for `recipient`.
    pub fn allocate<Q>(&mut self, recipient: &Q, width: RefWidth, now: Instant) -> ConcatRef
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.expire(now);
        let global = self.global;
        self.global = self.global.wrapping_add(1);
        let value = match self.entries.get_mut(recipient) {
            Some(e) => {
                let v = e.next;
                e.next = v.wrapping_add(1);
                e.last_used = now;
                v
            }
            None => {
                while self.entries.len() >= self.max_recipients {
                    if !self.pop_oldest() {
                        break;
                    }
                }
                self.entries.insert(
                    recipient.to_owned(),
                    RefEntry {
                        next: global.wrapping_add(1),
                        last_used: now,
                    },
                );
                global
            }
        };
        self.order.push_back((recipient.to_owned(), now));
        self.compact();
        match width {
            RefWidth::Eight => ConcatRef::Eight(value as u8),
            RefWidth::Sixteen => ConcatRef::Sixteen(value),
        }
    }

    /// An 8-bit reference for `recipient` (the usual choice).
    pub fn allocate_eight<Q>(&mut self, recipient: &Q, now: Instant) -> ConcatRef
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.allocate(recipient, RefWidth::Eight, now)
    }

    /// Drops the counters not used for `hold`.
    pub fn expire(&mut self, now: Instant) {
        while let Some((_, t)) = self.order.front() {
            if now.saturating_duration_since(*t) < self.hold {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Number of recipients whose counters are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes the oldest row of `order`, dropping its entry if the row is
    /// the entry's latest use. False when `order` is empty.
    fn pop_oldest(&mut self) -> bool {
        let Some((k, t)) = self.order.pop_front() else {
            return false;
        };
        if self.entries.get(&k).is_some_and(|e| e.last_used == t) {
            self.entries.remove(&k);
        }
        true
    }

    /// Keeps `order` from growing without bound when one recipient gets
    /// many messages: drop stale front rows.
    fn compact(&mut self) {
        while self.order.len() > 2 * self.entries.len() + 16 {
            match self.order.front() {
                Some((k, t)) if self.entries.get(k).is_some_and(|e| e.last_used == *t) => {
                    // The front row is live: rebuild without stale rows.
                    let entries = &self.entries;
                    self.order
                        .retain(|(k, t)| entries.get(k).is_some_and(|e| e.last_used == *t));
                    break;
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(DataCoding::UCS2.name(), "UCS2");
        assert_eq!(DataCoding(99).name(), "UNKNOWN");
        assert!(DataCoding(0x18).is_ucs2());
        assert!(DataCoding(0xF5).is_binary());
        assert!(DataCoding::SIM_WRITE.is_binary());
    }

    #[test]
    fn ascii_rejects_non_ascii() {
        assert!(matches!(
            encode("héllo", DataCoding::ASCII),
            Err(EncodeError::Text {
                coding: "ASCII",
                ..
            })
        ));
        assert_eq!(encode("hi", DataCoding::ASCII).unwrap(), b"hi");
    }

    #[test]
    fn ucs2_round_trip_with_emoji() {
        let s = "你好😀";
        let b = encode(s, DataCoding::UCS2).unwrap();
        assert_eq!(b, [0x4f, 0x60, 0x59, 0x7d, 0xd8, 0x3d, 0xde, 0x00]);
        assert_eq!(decode(&b, DataCoding::UCS2), s);
        assert_eq!(
            decode(&[0xd8, 0x3d, 0x00], DataCoding::UCS2),
            "\u{fffd}\u{fffd}"
        );
    }

    #[test]
    fn gbk_encode_and_reject() {
        assert_eq!(
            encode("你好", DataCoding::GBK).unwrap(),
            [0xc4, 0xe3, 0xba, 0xc3]
        );
        assert!(matches!(
            encode("😀", DataCoding::GBK),
            Err(EncodeError::Text { coding: "GBK", .. })
        ));
        // GB18030 four-byte sequence decodes.
        assert_eq!(decode(&[0x94, 0x39, 0xfc, 0x36], DataCoding::GBK), "😀");
    }

    #[test]
    fn unknown_is_latin1() {
        assert_eq!(decode(&[0x41, 0xe9], DataCoding(99)), "Aé");
        assert_eq!(encode("Aé", DataCoding(99)).unwrap(), [0x41, 0xe9]);
        assert!(encode("你", DataCoding(99)).is_err());
    }

    #[test]
    fn limits() {
        let e = ConcatRef::Eight(0);
        let s = ConcatRef::Sixteen(0);
        assert_eq!(segment_limit(DataCoding::UCS2, Family::Cmpp, e), 134);
        assert_eq!(segment_limit(DataCoding::UCS2, Family::Cmpp, s), 132);
        assert_eq!(segment_limit(DataCoding::ASCII, Family::Cmpp, e), 153);
        assert_eq!(segment_limit(DataCoding::ASCII, Family::Cmpp, s), 152);
        assert_eq!(segment_limit(DataCoding::ASCII, Family::Sgip, e), 134);
        assert_eq!(segment_limit(DataCoding::ASCII, Family::Smgp, s), 133);
        assert_eq!(segment_limit(DataCoding::GBK, Family::Smgp, s), 133);
        assert_eq!(segment_limit(DataCoding::BINARY, Family::Cmpp, e), 134);
    }

    #[test]
    fn allocator_per_recipient() {
        let t0 = Instant::now();
        let mut a: ReferenceAllocator = ReferenceAllocator::new(Duration::from_secs(60), 2);
        let r1 = a.allocate_eight("138", t0);
        let r2 = a.allocate_eight("138", t0);
        assert_ne!(r1, r2);
        let _ = a.allocate_eight("139", t0);
        let _ = a.allocate_eight("137", t0);
        assert_eq!(a.len(), 2);
        a.expire(t0 + Duration::from_secs(61));
        assert!(a.is_empty());
    }
}
