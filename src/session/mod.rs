//! The carrier session layer: login, heartbeats, the sans-IO send window,
//! rate control, and one async driver per connection grouped into links.
//!
//! Knows the codecs and nothing above it (no Kafka, SQL or engine types).

pub mod backoff;
pub mod bench;
pub mod conn;
pub mod dialect;
pub mod link;
pub mod metrics;
pub mod rate;
pub mod types;
pub mod window;

pub use bench::{run_bench, BenchArgs, BenchReport};
pub use conn::{ConnTimers, ThrottleRetry};
pub use dialect::{Credentials, ProtocolKind};
pub use link::{Link, LinkConfig, LinkError, LinkHandle, SgipServerConfig, SubmitError, Submitter};
pub use types::{
    CarrierMsgId, DownReason, LinkEvent, Mo, Report, ReportAck, Segment, SubmitRequest,
};
