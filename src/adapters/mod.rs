//! Adapters: implementations of the engine's ports.

#[cfg(feature = "sql")]
pub mod sql;
