//! End to end through the binary: `smsgw send` → embedded queue → `smsgw
//! serve` → CMPP 3.0 over real TCP to a minimal in-test ISMG (built on the
//! codecs, 127.0.0.1:0) that writes each status report *before* the submit
//! response → reports correlated → `stats` / `msg show`.
#![cfg(feature = "sql")]

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use smsgw_codecs::cmpp::{
    Cmpp, ConnectResp, ConnectStatus, Deliver, MsgId, Pdu, Report, SubmitResp, SubmitResult,
    Version,
};
use smsgw_codecs::wire::FixedStr;
use smsgw_codecs::{Framer, Inbound, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SECRET: &str = "secret";

async fn ismg(submits: Arc<AtomicU32>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(conn(sock, submits.clone()));
        }
    });
    addr
}

async fn conn(mut sock: TcpStream, submits: Arc<AtomicU32>) {
    let framer = Framer::new(Cmpp::new(Version::V30));
    let (mut rbuf, mut wbuf) = (BytesMut::new(), BytesMut::new());
    let mut seq = 5000u32;
    loop {
        match sock.read_buf(&mut rbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while let Ok(Some(item)) = framer.decode(&mut rbuf) {
            let Inbound::Packet(Packet { seq: s, pdu }) = item else {
                continue;
            };
            match pdu {
                Pdu::Connect(c) => {
                    let resp = ConnectResp::new(
                        Version::V30,
                        ConnectStatus::OK,
                        &c.authenticator_source,
                        SECRET.as_bytes(),
                        0x30,
                    );
                    framer
                        .encode(s, &Pdu::ConnectResp(resp), &mut wbuf)
                        .unwrap();
                }
                Pdu::Submit(_) => {
                    let n = submits.fetch_add(1, Ordering::SeqCst);
                    let msg_id = MsgId(0x2000_0000 + u64::from(n));
                    // the report first: it beats the submit response
                    let report = Report {
                        msg_id,
                        stat: FixedStr::new(b"DELIVRD").unwrap(),
                        submit_time: FixedStr::new(b"2612041507").unwrap(),
                        done_time: FixedStr::new(b"2612041508").unwrap(),
                        dest_terminal_id: FixedStr::new(b"13800138000").unwrap(),
                        smsc_sequence: 1,
                    };
                    let mut d = Deliver {
                        msg_id: MsgId(99),
                        ..Default::default()
                    };
                    d.set_report(&report, Version::V30).unwrap();
                    d.normalize(Version::V30);
                    seq += 1;
                    framer.encode(seq, &Pdu::Deliver(d), &mut wbuf).unwrap();
                    framer
                        .encode(
                            s,
                            &Pdu::SubmitResp(SubmitResp {
                                msg_id,
                                result: SubmitResult::OK,
                            }),
                            &mut wbuf,
                        )
                        .unwrap();
                }
                Pdu::ActiveTest => {
                    framer
                        .encode(s, &Pdu::ActiveTestResp(Default::default()), &mut wbuf)
                        .unwrap();
                }
                Pdu::Terminate => {
                    framer.encode(s, &Pdu::TerminateResp, &mut wbuf).unwrap();
                    let _ = sock.write_all(&wbuf).await;
                    return;
                }
                _ => {}
            }
        }
        if !wbuf.is_empty() {
            if sock.write_all(&wbuf).await.is_err() {
                return;
            }
            wbuf.clear();
        }
    }
}

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
    let submits = Arc::new(AtomicU32::new(0));
    let addr = ismg(submits.clone()).await;
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
        submits.load(Ordering::SeqCst),
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
