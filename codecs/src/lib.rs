//! Sans-IO wire codecs for the Chinese carrier SMS protocols:
//! CMPP 2.0/3.0 (China Mobile), SMGP 3.0 (China Telecom) and SGIP 1.2
//! (China Unicom).
//!
//! Bytes in, PDUs out. There are no sockets, clocks or logs in this crate.
//! One generic [`Framer`] handles the length-prefixed framing of all three
//! protocols; each protocol module supplies only its header and bodies
//! through the [`Protocol`] trait. The tokio-util `Decoder`/`Encoder`
//! adapter lives behind the `tokio-codec` feature.

pub mod cmpp;
pub mod error;
pub mod frame;
#[cfg(feature = "json")]
mod json;
pub mod reassembly;
pub mod sgip;
pub mod smgp;
pub mod status;
pub mod text;
pub mod udh;
pub mod wire;

#[cfg(feature = "tokio-codec")]
pub mod codec;

pub use error::{DecodeError, EncodeError, FrameError};
pub use frame::{Framer, Inbound, Packet, Protocol, DEFAULT_MAX_FRAME_LEN};
pub use status::StatusClass;
