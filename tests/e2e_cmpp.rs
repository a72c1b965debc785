//! End to end through the binary: `smsgw send` → embedded queue → `smsgw
//! serve` → CMPP 3.0 over real TCP to a minimal in-test ISMG (built on the
//! codecs, 127.0.0.1:0) that writes each status report *before* the submit
//! response → reports correlated → `stats` / `msg show`.
#![cfg(feature = "sql")]

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ismg::{self, Seen, SECRET};

fn smsgw(store: &str, args: &[&str]) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_delivered_with_reports_before_responses() {
    let seen = Arc::new(Seen::default());
    let addr = ismg::start(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("e2e.db").display());
    smsgw(
        &store,
        &[
            "link",
            "add",
            "m1",
            "--protocol",
            "cmpp3",
            "--addr",
            &addr,
            "--account",
            "901234",
            "--secret",
            SECRET,
        ],
    );
    for i in 0..20 {
        let prio = ["otp", "notify", "marketing"][i % 3];
        smsgw(
            &store,
            &[
                "send",
                "--to",
                "13800138000",
                "--text",
                "hello",
                "--priority",
                prio,
                "--id",
                &format!("m{i}"),
            ],
        );
    }
    let long = "长".repeat(100); // 2 segments
    smsgw(
        &store,
        &[
            "send",
            "--to",
            "13900139000",
            "--text",
            &long,
            "--id",
            "long",
            "--biz",
            "billing",
        ],
    );

    let mut serve = Command::new(env!("CARGO_BIN_EXE_smsgw"))
        .args(["serve", "--store", &store])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let s: serde_json::Value =
            serde_json::from_str(&smsgw(&store, &["stats", "--json"])).unwrap();
        if s["by_state"]["delivered"] == 21 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let pid = serve.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = serve.wait().unwrap();
    assert_eq!(stats["by_state"]["delivered"], 21, "{stats}");
    assert!(status.success(), "serve exits 0 on SIGTERM: {status:?}");
    assert_eq!(
        seen.submits.load(Ordering::SeqCst),
        22,
        "one submit per segment, none twice"
    );
    assert_eq!(stats["segments"], 22);
    assert_eq!(stats["by_link"]["m1"]["messages"], 21);
    assert_eq!(stats["by_biz"]["billing"]["segments"], 2);
    assert_eq!(stats["reports_unmatched"], 0);
    assert_eq!(stats["possible_duplicates"], 0);
    let h: serde_json::Value =
        serde_json::from_str(&smsgw(&store, &["msg", "show", "long", "--json"])).unwrap();
    let states: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["accepted", "submitted", "delivered"]);
    assert_eq!(h[2]["code"], "DELIVRD");
    assert_eq!(h[2]["link"], "m1");
}
