//! `smsgw serve` (embedded queue, SQLite) against the CMPP 3.0 simulator on
//! its bad days: every report written *before* the submit response and on
//! the *other* connection of the account, and a per-account TPS limit the
//! link's own rate exceeds (throttle results). Every message must still be
//! delivered exactly once on the carrier side, with reports correlated.
#![cfg(feature = "sql")]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use smsgw_simulators::{start, AccountConfig, Faults, ProtocolKind, SimConfig};

const SIM_TPS: u32 = 150;

fn smsgw(store: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smsgw"))
        .args(args)
        .env("SMSGW_STORE", store)
        .env("SMSGW_LINK_SECRET", "secret")
        .output()
        .expect("run smsgw")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_early_on_other_connection_and_throttling_lose_nothing() {
    let mut cfg = SimConfig::new(ProtocolKind::Cmpp3, "127.0.0.1:0".parse().unwrap())
        .account(AccountConfig::new("901234", "secret").with_tps(SIM_TPS));
    cfg.faults = Faults {
        report_before_response: true,
        report_on_other_connection: true,
        ..Faults::default()
    };
    let sim = start(cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/f.db", dir.path().display());
    let addr = sim.addr().to_string();

    let store2 = store.clone();
    let (stats, log) = tokio::task::spawn_blocking(move || {
        let add = smsgw(
            &store2,
            &[
                "link",
                "add",
                "cmcc",
                "--protocol",
                "cmpp3",
                "--addr",
                &addr,
                "--account",
                "901234",
                "--connections",
                "2",
                "--window",
                "16",
                "--tps",
                "400",
            ],
        );
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        let to: Vec<String> = (0..300).map(|i| format!("1380000{i:04}")).collect();
        let s = smsgw(
            &store2,
            &[
                "send",
                "--id",
                "bulk",
                "--to",
                &to.join(","),
                "--priority",
                "marketing",
                "--text",
                "sale",
            ],
        );
        assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
        let s = smsgw(
            &store2,
            &[
                "send",
                "--id",
                "long",
                "--to",
                "13900000000",
                "--text",
                &"长短信".repeat(50),
            ],
        );
        assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));

        let mut serve = Command::new(env!("CARGO_BIN_EXE_smsgw"))
            .arg("serve")
            .env("SMSGW_STORE", &store2)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir_log(&store2)).unwrap(),
            ))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut stats = serde_json::Value::Null;
        while Instant::now() < deadline {
            let o = smsgw(&store2, &["stats", "--json"]);
            stats = serde_json::from_slice(&o.stdout).unwrap_or_default();
            if stats["by_state"]["delivered"] == 301 {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &serve.id().to_string()])
            .status();
        serve.wait().unwrap();
        (
            stats,
            std::fs::read_to_string(dir_log(&store2)).unwrap_or_default(),
        )
    })
    .await
    .unwrap();

    let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
    assert_eq!(
        stats["by_state"]["delivered"], 301,
        "stats: {stats}\nlog tail:\n{tail}"
    );
    let s = sim.stats().totals;
    // The carrier throttled some submits; the rest went through once each:
    // 300 single-segment messages + 3 segments of the long one.
    assert!(s.throttled > 0, "the TPS limit never fired: {s:?}");
    assert_eq!(s.submits_received - s.throttled, 303, "{s:?}");
    assert_eq!(s.reports_sent, 303);
    assert!(
        s.faults_report_early > 0 && s.faults_report_other_conn > 0,
        "{s:?}"
    );
}

/// Where a test's `smsgw serve` writes its log: a file beside the store (a
/// pipe nobody reads would fill up and block the gateway).
fn dir_log(store: &str) -> std::path::PathBuf {
    let db = store.trim_start_matches("sqlite://");
    std::path::Path::new(db).with_extension("serve.log")
}
