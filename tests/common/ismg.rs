//! A minimal CMPP 3.0 ISMG on 127.0.0.1:0, built on the codecs: accepts
//! logins, answers every submit with a status report written *before* the
//! submit response, and counts submits per (recipient, part, text) so tests
//! can see real duplicates.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use smsgw_codecs::cmpp::{
    Cmpp, ConnectResp, ConnectStatus, Deliver, MsgId, Pdu, Report, SubmitResp, SubmitResult,
    Version,
};
use smsgw_codecs::wire::FixedStr;
use smsgw_codecs::{Framer, Inbound, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const SECRET: &str = "secret";

/// (recipient, part, text bytes without UDH)
pub type SubmitKey = (String, u8, Vec<u8>);

#[derive(Default)]
pub struct Seen {
    pub submits: AtomicU32,
    /// (recipient, part, text bytes without UDH) → times submitted
    pub by_key: Mutex<HashMap<SubmitKey, u32>>,
}

impl Seen {
    /// Keys submitted more than once.
    pub fn duplicates(&self) -> Vec<(SubmitKey, u32)> {
        self.by_key
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    }
}

pub async fn start(seen: Arc<Seen>) -> String {
    start_on(seen, 0).await
}

pub async fn start_on(seen: Arc<Seen>, port: u16) -> String {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(conn(sock, seen.clone()));
        }
    });
    addr
}

async fn conn(mut sock: TcpStream, seen: Arc<Seen>) {
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
                Pdu::Submit(sub) => {
                    let n = seen.submits.fetch_add(1, Ordering::SeqCst);
                    let content = &sub.msg_content[..];
                    let text = if sub.tp_udhi != 0 && !content.is_empty() {
                        content[(content[0] as usize + 1).min(content.len())..].to_vec()
                    } else {
                        content.to_vec()
                    };
                    let to = format!("{:?}", sub.dest_terminal_ids);
                    *seen
                        .by_key
                        .lock()
                        .unwrap()
                        .entry((to, sub.pk_number, text))
                        .or_default() += 1;
                    let msg_id = MsgId(0x2000_0000 + u64::from(n));
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
