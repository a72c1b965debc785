//! One framer for all three protocols.
//!
//! CMPP, SMGP and SGIP all start every PDU with a 4-byte big-endian total
//! length that includes the header, followed by a 4-byte command id and a
//! sequence (4 bytes for CMPP and SMGP, 12 for SGIP). [`Framer`] owns the
//! framing; a [`Protocol`] supplies only the header layout and the bodies.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt::Debug;
use std::hash::Hash;

use crate::error::{DecodeError, EncodeError, FrameError};

/// Default cap on a declared frame length. The largest legal PDU of the
/// three protocols (a CMPP 3.0 SUBMIT to 99 recipients) is 3,491 bytes.
pub const DEFAULT_MAX_FRAME_LEN: usize = 4096;

/// What a protocol module supplies to the generic [`Framer`].
///
/// A protocol value may carry parameters (CMPP carries its version); the
/// bodies are decoded with it.
pub trait Protocol: Clone + Debug + Send + Sync + 'static {
    /// Short name used in errors ("cmpp3", "smgp", "sgip").
    fn name(&self) -> &'static str;
    /// Header length, including the 4-byte total length.
    const HEADER_LEN: usize;
    /// The sequence carried in the header; a response copies its request's.
    type Seq: Copy + Eq + Hash + Debug + Send + Sync + 'static;
    /// Every PDU of the protocol, with an `Unknown` variant for vendor ids.
    type Pdu: Clone + PartialEq + Debug + Send + Sync + 'static;

    /// Reads the command id and sequence from a complete header
    /// (`header.len() == HEADER_LEN`, total length included).
    fn read_header(&self, header: &[u8]) -> (u32, Self::Seq);
    /// Appends the sequence in its wire form.
    fn write_seq(&self, seq: Self::Seq, dst: &mut BytesMut);
    /// Decodes a body. `body` holds exactly the bytes after the header.
    fn decode_body(&self, command_id: u32, body: Bytes) -> Result<Self::Pdu, DecodeError>;
    /// The command id of a PDU, derived from its variant.
    fn command_id(&self, pdu: &Self::Pdu) -> u32;
    /// Appends the body of `pdu`.
    fn encode_body(&self, pdu: &Self::Pdu, dst: &mut BytesMut) -> Result<(), EncodeError>;
}

/// A PDU and the sequence it travels under.
#[derive(Debug, Clone)]
pub struct Packet<P: Protocol> {
    pub seq: P::Seq,
    pub pdu: P::Pdu,
}

impl<P: Protocol> Packet<P> {
    pub fn new(seq: P::Seq, pdu: P::Pdu) -> Self {
        Packet { seq, pdu }
    }
}

// Comparisons bound only the sequence and PDU types, not the protocol
// value (a derive would demand `P: PartialEq`).
impl<P: Protocol> PartialEq for Packet<P> {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq && self.pdu == other.pdu
    }
}

impl<P: Protocol> PartialEq for Inbound<P> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Inbound::Packet(a), Inbound::Packet(b)) => a == b,
            (
                Inbound::Malformed {
                    command_id: c1,
                    seq: s1,
                    error: e1,
                    frame: f1,
                },
                Inbound::Malformed {
                    command_id: c2,
                    seq: s2,
                    error: e2,
                    frame: f2,
                },
            ) => c1 == c2 && s1 == s2 && e1 == e2 && f1 == f2,
            _ => false,
        }
    }
}

/// One item read off the wire.
#[derive(Debug, Clone)]
pub enum Inbound<P: Protocol> {
    /// A well-formed PDU.
    Packet(Packet<P>),
    /// A well-framed PDU whose body did not decode. The stream is still in
    /// sync; the session answers it with the protocol's error status.
    Malformed {
        command_id: u32,
        seq: P::Seq,
        error: DecodeError,
        /// The whole frame, header included, for logging.
        frame: Bytes,
    },
}

/// The length-prefixed framer shared by all protocols.
#[derive(Debug, Clone)]
pub struct Framer<P: Protocol> {
    proto: P,
    max_len: usize,
}

impl<P: Protocol> Framer<P> {
    pub fn new(proto: P) -> Self {
        Framer {
            proto,
            max_len: DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// Sets the largest declared length accepted (and produced).
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len.max(P::HEADER_LEN);
        self
    }

    pub fn protocol(&self) -> &P {
        &self.proto
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Checks the declared length of the frame at the start of `buf`.
    /// Returns the total length once at least 4 bytes are present.
    #[inline]
    fn declared_len(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if (len as usize) < P::HEADER_LEN {
            return Err(FrameError::FrameTooShort {
                protocol: self.proto.name(),
                len,
                min: P::HEADER_LEN,
            });
        }
        if len as usize > self.max_len {
            return Err(FrameError::FrameTooLarge {
                protocol: self.proto.name(),
                len,
                max: self.max_len,
            });
        }
        Ok(Some(len as usize))
    }

    /// Splits one whole frame off `buf`, or returns `Ok(None)` after
    /// reserving exactly what the frame still needs.
    #[inline]
    pub fn split_frame(&self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(len) = self.declared_len(buf)? else {
            return Ok(None);
        };
        if buf.len() < len {
            buf.reserve(len - buf.len());
            return Ok(None);
        }
        Ok(Some(buf.split_to(len)))
    }

    /// Decodes a complete frame (header included) into an item.
    #[inline]
    pub fn decode_frame(&self, frame: Bytes) -> Inbound<P> {
        let (command_id, seq) = self.proto.read_header(&frame[..P::HEADER_LEN]);
        let body = frame.slice(P::HEADER_LEN..);
        match self.proto.decode_body(command_id, body) {
            Ok(pdu) => Inbound::Packet(Packet { seq, pdu }),
            Err(error) => Inbound::Malformed {
                command_id,
                seq,
                error,
                frame,
            },
        }
    }

    /// Reads the next item from `buf`. Partial input gives `Ok(None)`;
    /// several frames in one buffer come out one call at a time.
    #[inline]
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Inbound<P>>, FrameError> {
        let Some(frame) = self.split_frame(buf)? else {
            return Ok(None);
        };
        Ok(Some(self.decode_frame(frame.freeze())))
    }

    /// Like [`Framer::decode`] at end of stream: leftover bytes are an error.
    pub fn decode_eof(&self, buf: &mut BytesMut) -> Result<Option<Inbound<P>>, FrameError> {
        match self.decode(buf)? {
            Some(item) => Ok(Some(item)),
            None if buf.is_empty() => Ok(None),
            None => {
                let need = self.declared_len(buf)?.unwrap_or(P::HEADER_LEN);
                Err(FrameError::Eof {
                    protocol: self.proto.name(),
                    have: buf.len(),
                    need,
                })
            }
        }
    }

    /// Appends one frame. The length is computed, never stored.
    pub fn encode(&self, seq: P::Seq, pdu: &P::Pdu, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let start = dst.len();
        dst.reserve(P::HEADER_LEN + 64);
        dst.put_u32(0);
        dst.put_u32(self.proto.command_id(pdu));
        self.proto.write_seq(seq, dst);
        debug_assert_eq!(dst.len() - start, P::HEADER_LEN);
        if let Err(e) = self.proto.encode_body(pdu, dst) {
            dst.truncate(start);
            return Err(e);
        }
        let len = dst.len() - start;
        if len > self.max_len {
            dst.truncate(start);
            return Err(EncodeError::FrameTooLarge {
                len,
                max: self.max_len,
            });
        }
        dst[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }

    /// Encodes a packet.
    pub fn encode_packet(&self, pkt: &Packet<P>, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode(pkt.seq, &pkt.pdu, dst)
    }

    /// Encodes a packet into a fresh buffer (convenience for tests and tools).
    pub fn to_bytes(&self, seq: P::Seq, pdu: &P::Pdu) -> Result<Bytes, EncodeError> {
        let mut dst = BytesMut::new();
        self.encode(seq, pdu, &mut dst)?;
        Ok(dst.freeze())
    }
}

/// Reads a big-endian u32 at `at` of a header slice the framer has already
/// length-checked.
#[allow(dead_code)]
pub(crate) fn header_u32(header: &[u8], at: usize) -> u32 {
    let mut b = &header[at..at + 4];
    b.get_u32()
}
