//! `smsgw serve` against the bundled simulator over real TCP, as an operator
//! runs it: link added with the CLI, messages sent with the CLI, metrics
//! scraped from `--metrics`, SIGTERM to stop. Covers SMGP end to end (the
//! CMPP path is in e2e_cmpp / e2e_kafka).
#![cfg(feature = "sql")]

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use smsgw_simulators::{start, AccountConfig, ProtocolKind, SimConfig};

fn smsgw(store: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smsgw"))
        .args(args)
        .env("SMSGW_STORE", store)
        .env("SMSGW_LINK_SECRET", "s3cret")
        .output()
        .expect("run smsgw")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_smgp_through_the_simulator_with_metrics() {
    let sim = start(
        SimConfig::new(ProtocolKind::Smgp, "127.0.0.1:0".parse().unwrap())
            .account(AccountConfig::new("10690001", "s3cret")),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/s.db", dir.path().display());
    let addr = sim.addr().to_string();
    let metrics_port = free_port();

    let store2 = store.clone();
    let out = tokio::task::spawn_blocking(move || {
        let add = smsgw(
            &store2,
            &[
                "link",
                "add",
                "ctc",
                "--protocol",
                "smgp",
                "--addr",
                &addr,
                "--account",
                "10690001",
                "--window",
                "8",
            ],
        );
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        for i in 0..30 {
            let id = format!("m{i}");
            // 133/153/173/177/180/181/189/199: China Telecom segments.
            let to = format!("1330000{i:04}");
            let text = if i == 0 {
                "电信长短信".repeat(20)
            } else {
                format!("hello {i}")
            };
            let s = smsgw(
                &store2,
                &[
                    "send", "--id", &id, "--to", &to, "--text", &text, "--biz", "t",
                ],
            );
            assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
        }
        let mut serve = Command::new(env!("CARGO_BIN_EXE_smsgw"))
            .args(["serve", "--metrics", &format!("127.0.0.1:{metrics_port}")])
            .env("SMSGW_STORE", &store2)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir_log(&store2)).unwrap(),
            ))
            .spawn()
            .unwrap();
        // Wait until every message is delivered (the simulator reports DELIVRD).
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stats = serde_json::Value::Null;
        while Instant::now() < deadline {
            let o = smsgw(&store2, &["stats", "--json"]);
            stats = serde_json::from_slice(&o.stdout).unwrap_or_default();
            if stats["by_state"]["delivered"] == 30 {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let metrics = scrape(metrics_port).unwrap_or_default();
        unsafe { libc_kill(serve.id() as i32) };
        let status = serve.wait().unwrap();
        let err = std::fs::read_to_string(dir_log(&store2)).unwrap_or_default();
        (stats, metrics, status, err)
    })
    .await
    .unwrap();
    let (stats, metrics, status, err) = out;
    assert_eq!(
        stats["by_state"]["delivered"], 30,
        "stats: {stats}\nserve log:\n{err}"
    );
    assert!(status.success(), "serve exit {status:?}\n{err}");
    // The long message went out as several segments; each got its report.
    let s = sim.stats();
    assert_eq!(s.totals.submits_received as usize, 29 + 2, "{s:?}");
    assert_eq!(s.totals.reports_acknowledged, s.totals.reports_sent);
    // Metrics are served and carry the session and engine families.
    for name in [
        "smsgw_submit_results_total",
        "smsgw_window_capacity",
        "smsgw_accept_to_submit_seconds",
        "smsgw_build_info",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    // One metric name, one label schema: a family that two layers both
    // feed with different labels double-counts in every dashboard sum.
    let mut schema: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        let name = name
            .trim_end_matches("_sum")
            .trim_end_matches("_count")
            .trim_end_matches("_bucket");
        let mut keys: Vec<&str> = rest
            .split(',')
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.trim_start_matches('}')))
            .filter(|k| *k != "quantile" && *k != "le")
            .collect();
        keys.sort_unstable();
        let known = schema.entry(name).or_insert_with(|| keys.clone());
        assert_eq!(*known, keys, "{name} exported with two label sets");
    }
    // Phone numbers are masked in logs; the secret never appears.
    assert!(!err.contains("13300000001"), "unmasked number in the log");
    assert!(!err.contains("s3cret"), "secret in the log");
}

/// SIGTERM without pulling in a signals crate.
unsafe fn libc_kill(pid: i32) {
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    kill(pid, 15);
}

/// Where a test's `smsgw serve` writes its log: a file beside the store (a
/// pipe nobody reads would fill up and block the gateway).
fn dir_log(store: &str) -> std::path::PathBuf {
    let db = store.trim_start_matches("sqlite://");
    std::path::Path::new(db).with_extension("serve.log")
}
