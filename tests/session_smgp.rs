//! SMGP 3.0 over real TCP against a minimal in-test SMGW: login (digest
//! verified both ways), submit → 10-byte BCD MsgID, report Deliver, Exit on
//! shutdown, and a refused login.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use smsgw::session::{
    Credentials, DownReason, Link, LinkConfig, LinkEvent, ProtocolKind, Segment, SubmitRequest,
};
use smsgw_codecs::smgp::{
    Deliver, DeliverContent, LoginResp, MsgId, Pdu, Report, Smgp, Status, SubmitResp,
};
use smsgw_codecs::{Framer, Inbound, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
struct Stats {
    exits: AtomicU32,
    logins: AtomicU32,
}

async fn smgw(secret: &'static str, stats: Arc<Stats>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let stats = stats.clone();
            tokio::spawn(async move {
                let framer = Framer::new(Smgp);
                let (mut rbuf, mut wbuf) = (BytesMut::new(), BytesMut::new());
                let mut n = 0u32;
                loop {
                    match sock.read_buf(&mut rbuf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    while let Ok(Some(Inbound::Packet(Packet { seq, pdu }))) =
                        framer.decode(&mut rbuf)
                    {
                        match pdu {
                            Pdu::Login(l) => {
                                stats.logins.fetch_add(1, Ordering::SeqCst);
                                let ok = l.verify(secret.as_bytes());
                                let status = if ok {
                                    Status::OK
                                } else {
                                    Status::AUTHENTICATION_ERROR
                                };
                                let resp = LoginResp::for_login(&l, status, secret.as_bytes());
                                framer
                                    .encode(seq, &Pdu::LoginResp(resp), &mut wbuf)
                                    .unwrap();
                            }
                            Pdu::Submit(_) => {
                                n += 1;
                                let id = MsgId::from_parts(123456, 12041507, n).unwrap();
                                let resp = SubmitResp {
                                    msg_id: id,
                                    status: Status::OK,
                                };
                                framer
                                    .encode(seq, &Pdu::SubmitResp(resp), &mut wbuf)
                                    .unwrap();
                                let d = Deliver {
                                    is_report: 1,
                                    content: DeliverContent::Report(Report::new(
                                        id,
                                        "DELIVRD",
                                        0,
                                        "2612041507",
                                        "2612041508",
                                    )),
                                    ..Default::default()
                                };
                                framer.encode(900 + n, &Pdu::Deliver(d), &mut wbuf).unwrap();
                            }
                            Pdu::ActiveTest => {
                                framer.encode(seq, &Pdu::ActiveTestResp, &mut wbuf).unwrap()
                            }
                            Pdu::Exit => {
                                stats.exits.fetch_add(1, Ordering::SeqCst);
                                framer.encode(seq, &Pdu::ExitResp, &mut wbuf).unwrap();
                            }
                            _ => {}
                        }
                    }
                    if sock.write_all(&wbuf).await.is_err() {
                        return;
                    }
                    wbuf.clear();
                }
            });
        }
    });
    addr
}

fn cfg(addr: &str, secret: &str) -> LinkConfig {
    let mut c = LinkConfig::new(
        "telecom",
        ProtocolKind::Smgp,
        addr,
        Credentials {
            account: "sp0001".into(),
            secret: secret.into(),
            node_id: 0,
        },
    );
    c.timers.shutdown_grace = Duration::from_secs(1);
    c
}

#[tokio::test]
async fn smgp_submit_accept_and_report() {
    let stats = Arc::new(Stats::default());
    let addr = smgw("pw", stats.clone()).await;
    let (link, mut rx) = Link::start(cfg(&addr, "pw")).await.unwrap();
    for token in 0..20 {
        let segment = Segment::single(
            "1065",
            "13300000000",
            "svc",
            8,
            Bytes::from_static(&[0, 0x41]),
        );
        link.submit(SubmitRequest { token, segment }).await.unwrap();
    }
    let (mut accepted, mut reports) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while accepted.len() < 20 || reports.len() < 20 {
        let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        match ev {
            LinkEvent::Accepted { carrier_id, .. } => accepted.push(carrier_id),
            LinkEvent::Report(r) => {
                assert!(r.delivered);
                reports.push(r.carrier_id)
            }
            LinkEvent::Down { reason, .. } => panic!("down: {reason}"),
            _ => {}
        }
    }
    assert_eq!(accepted.len(), 20);
    assert!(accepted.iter().all(|id| id.as_bytes().len() == 10));
    accepted.sort();
    reports.sort();
    assert_eq!(accepted, reports);
    link.shutdown().await;
    assert_eq!(stats.exits.load(Ordering::SeqCst), 1, "graceful Exit");
}

#[tokio::test]
async fn smgp_wrong_secret_is_refused() {
    let stats = Arc::new(Stats::default());
    let addr = smgw("pw", stats.clone()).await;
    let (link, mut rx) = Link::start(cfg(&addr, "wrong")).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            ev,
            LinkEvent::Down {
                reason: DownReason::LoginRefused { code: 21, .. },
                ..
            }
        ),
        "{ev:?}"
    );
    link.shutdown().await;
}
