//! smsgw: the logical sending layer between business systems and carrier
//! SMS links (CMPP 2.0/3.0, SMGP 3.0, SGIP 1.2).
//!
//! Layers, dependencies pointing inward: `smsgw_codecs` (sans-IO wire
//! codecs) ← `session` (carrier links: login, heartbeat, window,
//! reconnect) ← `adapters` → `engine` (owns its ports); `main` wires them.

pub mod adapters;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod protocol;

pub use protocol::ProtocolKind;
pub mod session;
