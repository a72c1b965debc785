//! Field helpers shared by every protocol: a body reader built on nom's
//! `complete` parsers that reports the failing field and offset, fixed-width
//! octet strings stored inline (no allocation), and writers that pad.

use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::{be_u16, be_u32, be_u64, be_u8};
use nom::Parser;
use std::fmt;

use crate::error::{DecodeError, EncodeError};

type NomErr<'a> = nom::error::Error<&'a [u8]>;

/// A cursor over a complete body. Every read names its field so a failure
/// says exactly where the PDU went wrong.
pub struct Reader<'a> {
    pdu: &'static str,
    body: &'a Bytes,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline]
    pub fn new(pdu: &'static str, body: &'a Bytes) -> Self {
        Reader {
            pdu,
            body,
            rest: &body[..],
        }
    }

    /// Offset of the next unread byte within the body.
    #[inline(always)]
    pub fn offset(&self) -> usize {
        self.body.len() - self.rest.len()
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    #[inline]
    pub fn pdu(&self) -> &'static str {
        self.pdu
    }

    #[inline(always)]
    fn run<O>(
        &mut self,
        field: &'static str,
        mut parser: impl Parser<&'a [u8], Output = O, Error = NomErr<'a>>,
    ) -> Result<O, DecodeError> {
        match parser.parse(self.rest) {
            Ok((rest, out)) => {
                self.rest = rest;
                Ok(out)
            }
            Err(_) => Err(self.truncated(field)),
        }
    }

    /// The error for `field` not being complete at the current offset.
    /// Kept out of line: the hot paths only branch to it.
    #[cold]
    #[inline(never)]
    pub fn truncated(&self, field: &'static str) -> DecodeError {
        DecodeError::Truncated {
            pdu: self.pdu,
            field,
            offset: self.offset(),
        }
    }

    /// An invalid-value error for `field` starting at `offset`.
    #[cold]
    #[inline(never)]
    pub fn invalid(&self, field: &'static str, offset: usize, reason: &'static str) -> DecodeError {
        DecodeError::Field {
            pdu: self.pdu,
            field,
            offset,
            reason,
        }
    }

    #[inline(always)]
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.run(field, be_u8)
    }

    #[inline]
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.run(field, be_u16)
    }

    #[inline(always)]
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.run(field, be_u32)
    }

    #[inline(always)]
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.run(field, be_u64)
    }

    /// Reads `n` raw bytes as a borrowed slice.
    #[inline(always)]
    pub fn slice(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        // A plain split: nom's generic `take` went through an out-of-line
        // `Input::take_from` on every fixed field.
        match self.rest.split_at_checked(n) {
            Some((s, rest)) => {
                self.rest = rest;
                Ok(s)
            }
            None => Err(self.truncated(field)),
        }
    }

    /// Reads exactly `N` bytes into an array.
    #[inline(always)]
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.slice(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// Reads `n` bytes as a zero-copy `Bytes` view of the frame.
    #[inline(always)]
    pub fn bytes(&mut self, field: &'static str, n: usize) -> Result<Bytes, DecodeError> {
        let start = self.offset();
        self.slice(field, n)?;
        Ok(self.body.slice(start..start + n))
    }

    /// Reads everything that is left as a zero-copy `Bytes`.
    #[inline]
    pub fn rest(&mut self) -> Bytes {
        let start = self.offset();
        self.rest = &[];
        self.body.slice(start..)
    }

    /// Reads a fixed-width octet string of `width` bytes (`width <= N`).
    #[inline(always)]
    pub fn fixed<const N: usize>(
        &mut self,
        field: &'static str,
        width: usize,
    ) -> Result<FixedStr<N>, DecodeError> {
        debug_assert!(width <= N);
        let s = self.slice(field, width)?;
        Ok(FixedStr::from_padded(s))
    }

    /// Fails if bytes are left over after a fixed layout.
    #[inline]
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.trailing())
        }
    }

    #[cold]
    #[inline(never)]
    fn trailing(&self) -> DecodeError {
        DecodeError::TrailingBytes {
            pdu: self.pdu,
            offset: self.offset(),
            extra: self.rest.len(),
        }
    }
}

/// A fixed-width octet string field, stored inline with its padding removed.
///
/// On the wire such a field is left-aligned and right-padded with 0x00; a
/// field exactly filled has no terminator. Only trailing 0x00 bytes are
/// stripped, so re-encoding reproduces the original bytes exactly.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedStr<const N: usize> {
    len: u8,
    buf: [u8; N],
}

impl<const N: usize> FixedStr<N> {
    pub const EMPTY: Self = FixedStr {
        len: 0,
        buf: [0; N],
    };

    /// Builds the value from wire bytes, stripping trailing 0x00 padding.
    /// Bytes beyond `N` are ignored (callers pass at most `N`).
    #[inline(always)]
    pub fn from_padded(wire: &[u8]) -> Self {
        let wire = &wire[..wire.len().min(N)];
        // The whole field is copied: the bytes after the content are the
        // 0x00 padding, so `buf` still holds zeros past `len` (the derived
        // `PartialEq` / `Hash` rely on that).
        let mut buf = [0u8; N];
        buf[..wire.len()].copy_from_slice(wire);
        FixedStr {
            len: content_len(&buf) as u8,
            buf,
        }
    }

    /// Builds the value from content bytes. Fails when longer than `N`;
    /// trailing 0x00 bytes are dropped as padding would drop them.
    pub fn new(value: &[u8]) -> Result<Self, EncodeError> {
        if value.len() > N {
            return Err(EncodeError::TooLong {
                pdu: "value",
                field: "octet string",
                len: value.len(),
                max: N,
            });
        }
        Ok(Self::from_padded(value))
    }

    /// Like [`FixedStr::new`] for text, truncating nothing.
    pub fn from_str_checked(value: &str) -> Result<Self, EncodeError> {
        Self::new(value.as_bytes())
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The content as text; non-UTF-8 bytes are replaced.
    pub fn to_str_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }

    /// The content as text with trailing spaces removed (some peers pad
    /// with spaces instead of 0x00).
    pub fn trimmed(&self) -> std::borrow::Cow<'_, str> {
        match self.to_str_lossy() {
            std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.trim_end_matches(' ')),
            std::borrow::Cow::Owned(s) => {
                std::borrow::Cow::Owned(s.trim_end_matches(' ').to_owned())
            }
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the value padded with 0x00 to `width` bytes.
    #[inline]
    pub fn put(
        &self,
        dst: &mut BytesMut,
        width: usize,
        pdu: &'static str,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        put_padded(dst, self.as_bytes(), width, pdu, field)
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.as_bytes()) {
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "0x{}", HexFmt(self.as_bytes())),
        }
    }
}

impl<const N: usize> TryFrom<&str> for FixedStr<N> {
    type Error = EncodeError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value.as_bytes())
    }
}

/// Length of `b` without its trailing 0x00 bytes, eight bytes at a time
/// from the end (fixed fields are mostly padding: 32-byte terminal ids,
/// 17-byte times, 20-byte LinkIDs).
#[inline(always)]
fn content_len(b: &[u8]) -> usize {
    let mut chunks = b.rchunks_exact(8);
    let mut end = b.len();
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        if w != 0 {
            // Little-endian: the last byte is the most significant, so
            // the leading zero bytes are the trailing 0x00 bytes.
            return end - (w.leading_zeros() / 8) as usize;
        }
        end -= 8;
    }
    // The 0..7 bytes at the front, zero-extended to a word the same way
    // (an all-zero word gives 8 - 8 = 0).
    let head = chunks.remainder();
    let mut word = [0u8; 8];
    word[..head.len()].copy_from_slice(head);
    8 - (u64::from_le_bytes(word).leading_zeros() / 8) as usize
}

/// Writes `value` left-aligned and 0x00-padded to `width` bytes.
pub fn put_padded(
    dst: &mut BytesMut,
    value: &[u8],
    width: usize,
    pdu: &'static str,
    field: &'static str,
) -> Result<(), EncodeError> {
    if value.len() > width {
        return Err(EncodeError::TooLong {
            pdu,
            field,
            len: value.len(),
            max: width,
        });
    }
    dst.put_slice(value);
    dst.put_bytes(0, width - value.len());
    Ok(())
}

/// Converts a length to the `u8` a length field holds.
pub fn len_u8(len: usize, pdu: &'static str, field: &'static str) -> Result<u8, EncodeError> {
    u8::try_from(len).map_err(|_| EncodeError::TooLong {
        pdu,
        field,
        len,
        max: u8::MAX as usize,
    })
}

/// Lower-case hex of a byte slice, without allocating until formatted.
pub struct HexFmt<'a>(pub &'a [u8]);

impl fmt::Display for HexFmt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A timestamp in the `MMDDhhmmss` form all three protocols use, held as the
/// decimal number the wire carries (e.g. 1204150730 for 4 Dec 15:07:30).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Timestamp(pub u32);

impl Timestamp {
    pub fn from_parts(month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Self {
        Timestamp(month * 100_000_000 + day * 1_000_000 + hour * 10_000 + minute * 100 + second)
    }

    /// The 10 ASCII digits, zero-padded, that the login digests hash.
    pub fn digits(self) -> [u8; 10] {
        let mut out = [b'0'; 10];
        let mut v = self.0;
        for i in (0..10).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out
    }

    pub fn month(self) -> u32 {
        self.0 / 100_000_000
    }
    pub fn day(self) -> u32 {
        self.0 / 1_000_000 % 100
    }
    pub fn hour(self) -> u32 {
        self.0 / 10_000 % 100
    }
    pub fn minute(self) -> u32 {
        self.0 / 100 % 100
    }
    pub fn second(self) -> u32 {
        self.0 % 100
    }
}

/// MD5 over the concatenation of `parts` (login authenticators).
pub fn md5(parts: &[&[u8]]) -> [u8; 16] {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_str_strips_only_trailing_nul() {
        let s: FixedStr<8> = FixedStr::from_padded(b"ab\0c\0\0\0\0");
        assert_eq!(s.as_bytes(), b"ab\0c");
        let mut out = BytesMut::new();
        s.put(&mut out, 8, "t", "f").unwrap();
        assert_eq!(&out[..], b"ab\0c\0\0\0\0");
    }

    #[test]
    fn fixed_str_content_len_matches_bytewise_scan() {
        fn naive(b: &[u8]) -> usize {
            b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1)
        }
        // Every length 0..=40 with the last non-zero byte at every place
        // (and none), with zeros and non-zeros inside the content.
        for n in 0..=40usize {
            for last in 0..=n {
                let mut b = vec![0u8; n];
                for (i, x) in b.iter_mut().enumerate().take(last) {
                    *x = if i % 3 == 1 { 0 } else { 0x80 | i as u8 };
                }
                if last > 0 {
                    b[last - 1] = 1;
                }
                assert_eq!(content_len(&b), naive(&b), "{b:?}");
                assert_eq!(content_len(&b), last);
            }
        }
        let s: FixedStr<32> = FixedStr::from_padded(b"13800138000\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(s.as_bytes(), b"13800138000");
        assert_eq!(s, FixedStr::new(b"13800138000").unwrap());
        let s: FixedStr<4> = FixedStr::from_padded(b"abcdef");
        assert_eq!(s.as_bytes(), b"abcd");
    }

    #[test]
    fn fixed_str_rejects_overlong() {
        assert!(FixedStr::<4>::new(b"12345").is_err());
        let s: FixedStr<32> = FixedStr::new(b"1234567890123456789012").unwrap();
        let mut out = BytesMut::new();
        assert!(matches!(
            s.put(&mut out, 21, "SUBMIT", "Dest_terminal_Id"),
            Err(EncodeError::TooLong {
                len: 22,
                max: 21,
                ..
            })
        ));
    }

    #[test]
    fn timestamp_digits_zero_padded() {
        assert_eq!(&Timestamp(101120000).digits(), b"0101120000");
        assert_eq!(&Timestamp(1204150730).digits(), b"1204150730");
        assert_eq!(
            Timestamp::from_parts(12, 4, 15, 7, 30),
            Timestamp(1204150730)
        );
    }

    #[test]
    fn reader_reports_field_and_offset() {
        let body = Bytes::from_static(&[1, 2, 3]);
        let mut r = Reader::new("SUBMIT", &body);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(
            r.u32("b"),
            Err(DecodeError::Truncated {
                pdu: "SUBMIT",
                field: "b",
                offset: 1
            })
        );
    }
}
