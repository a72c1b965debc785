//! Adapters: implementations of the engine's ports.

pub mod carrier;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "sql")]
pub mod outbox;
#[cfg(feature = "sql")]
pub mod sql;
