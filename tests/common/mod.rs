//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

pub mod ismg;
#[cfg(feature = "sql")]
pub mod pg;
#[cfg(feature = "kafka")]
pub mod tansu;

use std::process::Command;

/// Runs the built `smsgw` against `store`; panics with its stderr on failure.
pub fn smsgw(store: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_smsgw"))
        .args(args)
        .args(["--store", store])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `smsgw stats --json`.
pub fn stats(store: &str) -> serde_json::Value {
    serde_json::from_str(&smsgw(store, &["stats", "--json"])).unwrap()
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
