//! `smsgw pdu` as an operator runs it: the built binary, real fixture bytes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn smsgw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smsgw"))
        .args(args)
        .output()
        .expect("run smsgw")
}

fn fixture_hex(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
}

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hex"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn decode_every_golden_fixture() {
    for (dir, proto) in [
        ("cmpp/2.0", "cmpp2"),
        ("cmpp/3.0", "cmpp3"),
        ("smgp/3.0", "smgp"),
        ("sgip/1.2", "sgip"),
    ] {
        for path in fixtures(dir) {
            let hex = fixture_hex(&path);
            let out = smsgw(&["pdu", "decode", "--protocol", proto, &hex]);
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let lines = json_lines(&out);
            assert_eq!(lines.len(), 1, "{}", path.display());
            let bytes = hex.split_whitespace().collect::<String>().len() / 2;
            assert_eq!(lines[0]["length"], bytes, "{}", path.display());
            assert_eq!(lines[0]["protocol"], proto);
            assert!(lines[0]["command"].is_string(), "{}", path.display());
        }
    }
}

#[test]
fn decode_back_to_back_pdus_with_offsets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cmpp/3.0");
    let a = fixture_hex(&dir.join("submit_resp.hex"));
    let b = fixture_hex(&dir.join("deliver_status_report.hex"));
    let out = smsgw(&["pdu", "decode", "-p", "cmpp3", &a, &b]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["offset"], 0);
    assert_eq!(lines[1]["offset"], 24);
    assert_eq!(lines[1]["command"], "CMPP_DELIVER");
    // The status report inside the DELIVER is parsed, its Msg_Id broken up.
    let report = &lines[1]["Msg_Content"];
    assert_eq!(report["Stat"], "DELIVRD");
    assert_eq!(report["Msg_Id"]["gateway"], 1001);
    assert_eq!(report["Msg_Id"]["month"], 12);
}

#[test]
fn malformed_input_exits_nonzero_with_one_line() {
    for (dir, proto) in [
        ("cmpp/malformed", "cmpp3"),
        ("smgp/malformed", "smgp"),
        ("sgip/malformed", "sgip"),
    ] {
        for path in fixtures(dir) {
            if path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("unknown_command")
            {
                // Unknown command ids survive as Unknown PDUs (vendor codes).
                let out = smsgw(&["pdu", "decode", "-p", proto, &fixture_hex(&path)]);
                assert!(out.status.success());
                assert!(
                    json_lines(&out)[0]["command"]
                        .as_str()
                        .unwrap()
                        .contains("nknown")
                        || json_lines(&out)[0]["command_id"].is_string()
                );
                continue;
            }
            let out = smsgw(&["pdu", "decode", "-p", proto, &fixture_hex(&path)]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{} decoded", path.display());
            assert_eq!(stderr.lines().count(), 1, "{}: {stderr}", path.display());
            assert!(
                stderr.contains(&format!("{proto}: offset ")),
                "{}: {stderr}",
                path.display()
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}

#[test]
fn truncated_and_garbage_input() {
    let out = smsgw(&[
        "pdu",
        "decode",
        "-p",
        "cmpp3",
        "00000018 80000004 00000007 c23c778003e90001 000000",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cmpp3: offset 0: truncated PDU: Total_Length declares 24 bytes, 23 present"),
        "{err}"
    );

    let out = smsgw(&["pdu", "decode", "-p", "sgip", "zz"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a hex byte"));

    let out = smsgw(&["pdu", "decode", "-p", "smgp", "7fffffff00000001"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("Total_Length: declared length 2147483647 exceeds"));
}

#[test]
fn encode_long_submit_then_decode_it() {
    let text = "长短信测试".repeat(30); // 150 chars → 3 UCS2 segments
    for proto in ["cmpp2", "cmpp3", "smgp", "sgip"] {
        let out = smsgw(&[
            "pdu",
            "encode",
            "-p",
            proto,
            "submit",
            "--to",
            "13800138000",
            "--text",
            &text,
            "--ref",
            "42",
        ]);
        assert!(
            out.status.success(),
            "{proto}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hex = String::from_utf8(out.stdout).unwrap();
        assert_eq!(hex.lines().count(), 3, "{proto}");
        let out = smsgw(&["pdu", "decode", "-p", proto, &hex]);
        assert!(
            out.status.success(),
            "{proto}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 3);
        let all = serde_json::to_string(&lines).unwrap();
        // Each segment's UDH is parsed (reference 42 = 0x2a, 3 segments).
        assert!(all.contains("\"reference\":42"), "{proto}: {all}");
    }
}
