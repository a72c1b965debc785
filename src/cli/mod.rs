//! The `smsgw` subcommands. Each module holds a clap `Args` struct and the
//! function that runs it; `main.rs` only dispatches.

pub mod bench;
pub mod pdu;
pub mod sim;
