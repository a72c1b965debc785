//! The sender engine: domain types, ports (traits) and the pure logic that
//! decides what happens to a message. Imports no adapter, database, broker
//! or session internals; adapters implement [`ports`] and `main` wires them.

pub mod correlate;
pub mod dispatch;
pub mod ingest;
pub mod lanes;
pub mod metrics;
pub mod ports;
pub mod retry;
pub mod routing;
pub mod run;
pub mod sweeper;
pub mod types;
pub mod validate;

pub use ports::*;
pub use types::*;
