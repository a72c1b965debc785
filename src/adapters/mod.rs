//! Adapters: implementations of the engine's ports.

pub mod carrier;
#[cfg(feature = "sql")]
pub mod sql;
