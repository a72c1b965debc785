//! The carrier session layer: login, heartbeats, the sans-IO send window,
//! rate control, and one async driver per connection grouped into links.
//!
//! Knows the codecs and nothing above it (no Kafka, SQL or engine types).

pub mod backoff;
pub mod rate;
pub mod window;
