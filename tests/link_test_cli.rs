//! `smsgw link test` against the bundled simulator over real TCP.

use std::process::Command;

use smsgw_simulators::{start, AccountConfig, ProtocolKind, SimConfig};

fn smsgw(store: &str, args: &[&str], secret: Option<&str>) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smsgw"));
    c.args(args)
        .env("SMSGW_STORE", store)
        .env_remove("SMSGW_LINK_SECRET");
    if let Some(s) = secret {
        c.env("SMSGW_LINK_SECRET", s);
    }
    c.output().expect("run smsgw")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_test_reports_login_latency_or_the_refusal() {
    let sim = start(
        SimConfig::new(ProtocolKind::Smgp, "127.0.0.1:0".parse().unwrap())
            .account(AccountConfig::new("10690001", "s3cret")),
    )
    .await
    .unwrap();
    let addr = sim.addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/t.db", dir.path().display());
    let store = store.as_str();

    let run = |args: Vec<String>, secret: Option<&'static str>| {
        let store = store.to_owned();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            smsgw(&store, &args, secret)
        })
    };
    let add = |name: &str, addr: &str| {
        vec![
            "link",
            "add",
            name,
            "--protocol",
            "smgp",
            "--addr",
            addr,
            "--account",
            "10690001",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    assert!(run(add("good", &addr), Some("s3cret"))
        .await
        .unwrap()
        .status
        .success());
    assert!(run(add("bad", &addr), Some("wrong"))
        .await
        .unwrap()
        .status
        .success());

    let out = run(vec!["link".into(), "test".into(), "good".into()], None)
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("link good: logged in to") && stdout.contains(" ms"),
        "{stdout}"
    );

    let out = run(vec!["link".into(), "test".into(), "bad".into()], None)
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    // SMGP status 21: authentication error.
    assert!(
        stderr.contains("link bad: smgp") && stderr.contains("login refused: status 21"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong"),
        "the secret must never be printed: {stderr}"
    );

    let out = run(vec!["link".into(), "test".into(), "nope".into()], None)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no link named \"nope\""));
    assert_eq!(sim.stats().totals.logins_ok, 1);
    assert_eq!(sim.stats().totals.logins_refused, 1);
}
