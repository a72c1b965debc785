//! Error types. Framing errors are fatal for a connection; body errors are
//! returned as [`crate::Inbound::Malformed`] items so the session can answer
//! them with the protocol's error status and carry on.

use std::io;

/// A framing error: the byte stream cannot be trusted any more and the
/// connection should be closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The declared total length is below the protocol's header length.
    #[error("{protocol}: declared length {len} is below the {min}-byte header")]
    FrameTooShort {
        protocol: &'static str,
        len: u32,
        min: usize,
    },
    /// The declared total length is above the configured maximum.
    #[error("{protocol}: declared length {len} exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        protocol: &'static str,
        len: u32,
        max: usize,
    },
    /// The peer closed the stream in the middle of a frame.
    #[error("{protocol}: stream ended inside a frame ({have} of {need} bytes)")]
    Eof {
        protocol: &'static str,
        have: usize,
        need: usize,
    },
    /// An I/O error from the transport (required by tokio-util's `Decoder`).
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// A body that could not be decoded inside a well-framed PDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body ended before a field was complete.
    #[error("{pdu}.{field}: truncated at body offset {offset}")]
    Truncated {
        pdu: &'static str,
        field: &'static str,
        offset: usize,
    },
    /// A field holds a value that cannot be accepted.
    #[error("{pdu}.{field}: {reason} at body offset {offset}")]
    Field {
        pdu: &'static str,
        field: &'static str,
        offset: usize,
        reason: &'static str,
    },
    /// Bytes left over after the last field of a fixed layout.
    #[error("{pdu}: {extra} unexpected trailing bytes at body offset {offset}")]
    TrailingBytes {
        pdu: &'static str,
        offset: usize,
        extra: usize,
    },
    /// The command id is not one this codec knows.
    #[error("unknown command id {command_id:#010x}")]
    UnknownCommand { command_id: u32 },
    /// A user data header could not be parsed.
    #[error("udh: {0}")]
    Udh(#[from] crate::udh::UdhError),
}

impl DecodeError {
    /// Offset within the body where decoding failed, when known.
    pub fn offset(&self) -> Option<usize> {
        match self {
            DecodeError::Truncated { offset, .. }
            | DecodeError::Field { offset, .. }
            | DecodeError::TrailingBytes { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

/// A PDU value that cannot be put on the wire as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field value is longer than the wire allows.
    #[error("{pdu}.{field}: {len} bytes do not fit in {max}")]
    TooLong {
        pdu: &'static str,
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// A count or value outside what the wire can express.
    #[error("{pdu}.{field}: {reason}")]
    Invalid {
        pdu: &'static str,
        field: &'static str,
        reason: &'static str,
    },
    /// The whole frame would exceed the maximum frame length.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge { len: usize, max: usize },
    /// Text cannot be represented in the requested coding.
    #[error("text cannot be encoded as {coding}: {reason}")]
    Text {
        coding: &'static str,
        reason: &'static str,
    },
}

impl From<EncodeError> for io::Error {
    fn from(e: EncodeError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}
