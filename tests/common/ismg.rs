//! A minimal CMPP 3.0 ISMG on 127.0.0.1:0, built on the codecs: accepts
//! logins, answers every submit with a status report written *before* the
//! submit response, and counts submits per (recipient, part, text) so tests
//! can see real duplicates.
//!
//! Like a real ISMG it keeps every report until a DELIVER_RESP answers it:
//! an unanswered report is sent again on the same connection after
//! [`REPORT_RESEND`], and, once its connection is gone, on the account's
//! next (or another live) connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

pub const SECRET: &str = "secret";

/// An unanswered report is sent again after this long.
pub const REPORT_RESEND: Duration = Duration::from_secs(2);

/// A report sent and not answered yet.
pub struct PendingReport {
    /// Source_Addr of the login it belongs to.
    pub account: String,
    deliver: Deliver,
    /// The connection it was last sent on; `None` once that one closed.
    owner: Option<u64>,
    sent_at: Instant,
}

/// (recipient, part, text bytes without UDH)
pub type SubmitKey = (String, u8, Vec<u8>);

#[derive(Default)]
pub struct Seen {
    pub submits: AtomicU32,
    /// (recipient, part, text bytes without UDH) → times submitted
    pub by_key: Mutex<HashMap<SubmitKey, u32>>,
    /// Reports sent (first sends), sent again, and answered.
    pub reports: AtomicU32,
    pub report_resends: AtomicU32,
    pub report_acks: AtomicU32,
    /// Report Msg_Id → the unanswered report.
    pub pending: Mutex<HashMap<u64, PendingReport>>,
    conns: AtomicU64,
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

    /// Reports sent and not answered yet.
    pub fn unanswered(&self) -> usize {
        self.pending.lock().unwrap().len()
    }

    /// Writes again every report of `account` that is due: unanswered on
    /// connection `me` for [`REPORT_RESEND`], or orphaned by a closed
    /// connection. Records seq → Msg_Id in `sent`.
    fn resend_due(
        &self,
        account: &str,
        me: u64,
        seq: &mut u32,
        sent: &mut HashMap<u32, u64>,
        wbuf: &mut BytesMut,
    ) {
        let framer = Framer::new(Cmpp::new(Version::V30));
        let now = Instant::now();
        let mut pending = self.pending.lock().unwrap();
        for (id, p) in pending.iter_mut() {
            let due = p.account == account
                && match p.owner {
                    None => true,
                    Some(o) => o == me && now.duration_since(p.sent_at) >= REPORT_RESEND,
                };
            if !due {
                continue;
            }
            *seq += 1;
            framer
                .encode(*seq, &Pdu::Deliver(p.deliver.clone()), wbuf)
                .unwrap();
            sent.insert(*seq, *id);
            p.owner = Some(me);
            p.sent_at = now;
            self.report_resends.fetch_add(1, Ordering::SeqCst);
        }
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
    let me = seen.conns.fetch_add(1, Ordering::SeqCst) + 1;
    serve_conn(&mut sock, &seen, me).await;
    // Whatever this connection left unanswered goes out on the next one.
    for p in seen.pending.lock().unwrap().values_mut() {
        if p.owner == Some(me) {
            p.owner = None;
        }
    }
}

async fn serve_conn(sock: &mut TcpStream, seen: &Seen, me: u64) {
    let framer = Framer::new(Cmpp::new(Version::V30));
    let (mut rbuf, mut wbuf) = (BytesMut::new(), BytesMut::new());
    let mut seq = 5000u32;
    let mut account: Option<String> = None;
    // DELIVER seq → report Msg_Id, to match DELIVER_RESPs.
    let mut sent: HashMap<u32, u64> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            read = sock.read_buf(&mut rbuf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = tick.tick() => {
                if let Some(acc) = &account {
                    seen.resend_due(acc, me, &mut seq, &mut sent, &mut wbuf);
                }
            }
        }
        while let Ok(Some(item)) = framer.decode(&mut rbuf) {
            let Inbound::Packet(Packet { seq: s, pdu }) = item else {
                continue;
            };
            match pdu {
                Pdu::Connect(c) => {
                    account = Some(c.source_addr.trimmed().into_owned());
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
                    framer
                        .encode(seq, &Pdu::Deliver(d.clone()), &mut wbuf)
                        .unwrap();
                    sent.insert(seq, msg_id.0);
                    seen.reports.fetch_add(1, Ordering::SeqCst);
                    seen.pending.lock().unwrap().insert(
                        msg_id.0,
                        PendingReport {
                            account: account.clone().unwrap_or_default(),
                            deliver: d,
                            owner: Some(me),
                            sent_at: Instant::now(),
                        },
                    );
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
                Pdu::DeliverResp(_) => {
                    // Any answer settles it (a late answer to an earlier
                    // send of a report sent again included).
                    if let Some(id) = sent.remove(&s) {
                        if seen.pending.lock().unwrap().remove(&id).is_some() {
                            seen.report_acks.fetch_add(1, Ordering::SeqCst);
                        }
                    }
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
