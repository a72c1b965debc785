//! The operators' CLI, run as the built binary against a temp SQLite store.
#![cfg(feature = "sql")]

use std::process::{Command, Output};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn store(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("cli.db").display())
    }

    /// Runs smsgw with `--store` placed after the subcommand (it is global).
    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_smsgw"))
            .args(args)
            .args(["--store", &self.store()])
            .current_dir(self.dir.path())
            .env_remove("SMSGW_STORE")
            .env_remove("SMSGW_CONFIG")
            .env_remove("SMSGW_LINK_SECRET")
            .output()
            .unwrap();
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

#[test]
fn link_add_list_remove_masks_the_secret() {
    let e = Env::new();
    let out = e.ok(&[
        "link",
        "add",
        "cmcc-1",
        "--protocol",
        "cmpp3",
        "--addr",
        "127.0.0.1:7890",
        "--account",
        "901234",
        "--secret",
        "hunter2-secret",
        "--connections",
        "2",
        "--window",
        "32",
        "--tps",
        "200",
    ]);
    assert!(out.contains("cmcc-1"));
    assert!(!out.contains("hunter2"));
    let err = e.fails(&[
        "link",
        "add",
        "cmcc-1",
        "--protocol",
        "cmpp3",
        "--addr",
        "127.0.0.1:7890",
        "--account",
        "9",
        "--secret",
        "x",
    ]);
    assert!(err.contains("already exists"), "{err}");
    assert!(e
        .fails(&[
            "link",
            "add",
            "bad",
            "--protocol",
            "x25",
            "--addr",
            "h:1",
            "--account",
            "9",
            "--secret",
            "x"
        ])
        .contains("protocol"));
    assert!(e
        .fails(&[
            "link",
            "add",
            "bad",
            "--protocol",
            "sgip",
            "--addr",
            "nohost",
            "--account",
            "9",
            "--secret",
            "x"
        ])
        .contains("port"));

    let table = e.ok(&["link", "list"]);
    assert!(
        table.contains("cmcc-1") && table.contains("********"),
        "{table}"
    );
    assert!(!table.contains("hunter2"));
    let json: serde_json::Value = serde_json::from_str(&e.ok(&["link", "list", "--json"])).unwrap();
    assert_eq!(json[0]["name"], "cmcc-1");
    assert_eq!(json[0]["carrier"], "mobile");
    assert_eq!(json[0]["connections"], 2);
    assert_eq!(json[0]["tps"], 200);
    assert_eq!(json[0]["secret"], "********");

    e.ok(&["link", "remove", "cmcc-1"]);
    assert!(e.fails(&["link", "remove", "cmcc-1"]).contains("no link"));
    assert!(e.ok(&["link", "list"]).contains("no links"));
}

#[test]
fn send_serve_stats_and_msg_show() {
    let e = Env::new();
    e.ok(&[
        "send",
        "--to",
        "13800138000",
        "--text",
        "验证码 1234",
        "--priority",
        "otp",
        "--id",
        "otp-1",
    ]);
    e.ok(&[
        "send",
        "--to",
        "18612345678,13300001111",
        "--text",
        &"x".repeat(200),
        "--id",
        "bulk-1",
        "--priority",
        "marketing",
    ]);
    let err = e.fails(&["send", "--to", "123", "--text", "x"]);
    assert!(err.contains("bad number"), "{err}");
    assert!(e
        .fails(&["send", "--to", "13800138000", "--text", " "])
        .contains("empty text"));
    assert!(e
        .fails(&[
            "send",
            "--to",
            "13800138000",
            "--text",
            "x",
            "--priority",
            "vip"
        ])
        .contains("priority"));

    let stats: serde_json::Value = serde_json::from_str(&e.ok(&["stats", "--json"])).unwrap();
    assert_eq!(stats["queued"], 2);
    assert_eq!(stats["by_state"]["accepted"], 0);

    // serve ingests the embedded queue; --drain exits once it is empty
    e.ok(&["serve", "--drain"]);
    let stats: serde_json::Value = serde_json::from_str(&e.ok(&["stats", "--json"])).unwrap();
    assert_eq!(stats["queued"], 0);
    assert_eq!(stats["by_state"]["accepted"], 3);
    assert_eq!(stats["messages"], 3);
    assert_eq!(stats["segments"], 1 + 2 * 2);
    assert_eq!(stats["by_biz"][""]["messages"], 3);
    assert!(stats["by_link"].is_object());

    let show = e.ok(&["msg", "show", "otp-1"]);
    assert!(
        show.contains("accepted") && show.contains("138****8000"),
        "{show}"
    );
    let hist: serde_json::Value =
        serde_json::from_str(&e.ok(&["msg", "show", "bulk-1", "--json"])).unwrap();
    let hist = hist.as_array().unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0]["state"], "accepted");
    assert_eq!(hist[0]["segments"], 2);
    assert!(e.fails(&["msg", "show", "nope"]).contains("no message"));
}

#[test]
fn store_option_is_global_and_config_file_is_honoured() {
    let e = Env::new();
    let db = e.dir.path().join("from-config.db");
    let cfg = e.dir.path().join("smsgw.toml");
    std::fs::write(
        &cfg,
        format!("[store]\nurl = \"sqlite://{}\"\n", db.display()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smsgw"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "send",
            "--to",
            "13800138000",
            "--text",
            "hi",
        ])
        .current_dir(e.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists());
    std::fs::write(&cfg, "[store]\nurl = \"sqlite://x.db\"\nbogus = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smsgw"))
        .args(["stats", "--config", cfg.to_str().unwrap()])
        .current_dir(e.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}
