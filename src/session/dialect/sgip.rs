//! SGIP 1.2 (China Unicom) as a [`Dialect`], plus the SP-side server the
//! SMG connects to for reports and MO (shared/protocols/sgip.md §1: "whoever
//! has a command to send is the client").
//!
//! SGIP has no heartbeat; the carrier message id is the 12-byte sequence of
//! our Submit (a Report names it in SubmitSequenceNumber).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use smsgw_codecs::sgip::{
    self, Bind, LoginType, Pdu, ReportState, Resp, ResultCode, SeqGen, SeqNo, Sgip,
};
use smsgw_codecs::text::DataCoding;
use smsgw_codecs::wire::{FixedStr, HexFmt, Timestamp};
use smsgw_codecs::{DecodeError, EncodeError, Framer, Inbound, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, info_span, warn, Instrument};

use super::{Classified, Credentials, Dialect, LoginVerdict, SubmitOutcome};
use crate::session::link::{MoAssembler, SgipServerConfig};
use crate::session::types::{CarrierMsgId, LinkEvent, Mo, MoSegment, Report, ReportAck, Segment};

/// SGIP client side (Bind login type 1).
#[derive(Debug, Clone)]
pub struct SgipDialect {
    seq: SeqGen,
}

impl SgipDialect {
    pub fn new(node_id: u32) -> Self {
        SgipDialect {
            seq: SeqGen::new(node_id),
        }
    }
}

/// The carrier id of a Submit: its 12-byte sequence.
pub fn carrier_id(seq: SeqNo) -> CarrierMsgId {
    CarrierMsgId::from_u32x3(seq.node_id, seq.timestamp.0, seq.counter)
}

impl Dialect for SgipDialect {
    type P = Sgip;

    fn protocol(&self) -> Sgip {
        Sgip
    }

    fn name(&self) -> &'static str {
        "sgip"
    }

    fn next_seq(&mut self, ts: Timestamp) -> SeqNo {
        self.seq.next(ts)
    }

    fn login(&mut self, creds: &Credentials, _ts: Timestamp) -> Result<Pdu, EncodeError> {
        Ok(Pdu::Bind(Bind::new(
            LoginType::SP_TO_SMG,
            &creds.account,
            &creds.secret,
        )?))
    }

    fn submit(&self, _creds: &Credentials, seg: &Segment) -> Result<Pdu, EncodeError> {
        Ok(Pdu::Submit(sgip::Submit {
            sp_number: FixedStr::new(seg.src_id.as_bytes())?,
            user_numbers: std::iter::once(FixedStr::new(seg.dest.as_bytes())?).collect(),
            service_type: FixedStr::new(seg.service_id.as_bytes())?,
            report_flag: if seg.need_report {
                sgip::ReportFlag::ALWAYS
            } else {
                sgip::ReportFlag::NEVER
            },
            tp_udhi: u8::from(seg.udhi),
            message_coding: DataCoding(seg.msg_fmt),
            message_content: seg.content.clone(),
            ..Default::default()
        }))
    }

    fn heartbeat(&self) -> Option<Pdu> {
        None
    }

    fn terminate(&self) -> Pdu {
        Pdu::Unbind
    }

    fn classify(&self, _creds: &Credentials, pkt: Packet<Sgip>) -> Classified<Sgip> {
        let seq = pkt.seq;
        match pkt.pdu {
            // SGIP's Bind_Resp carries no authenticator.
            Pdu::BindResp(r) => Classified::LoginResp {
                verdict: if r.result.is_ok() {
                    LoginVerdict::Ok
                } else {
                    LoginVerdict::Refused {
                        code: r.result.0 as u32,
                        class: r.result.class(),
                    }
                },
                auth_mismatch: false,
            },
            Pdu::SubmitResp(r) => Classified::SubmitResp {
                seq,
                outcome: if r.result.is_ok() {
                    SubmitOutcome::Accepted(carrier_id(seq))
                } else {
                    SubmitOutcome::Rejected {
                        code: r.result.0 as u32,
                        class: r.result.class(),
                    }
                },
            },
            other => classify_server_side(seq, other),
        }
    }

    fn malformed_reply(
        &self,
        _command_id: u32,
        _seq: SeqNo,
        _error: &DecodeError,
        _frame: &Bytes,
    ) -> Option<Packet<Sgip>> {
        // Spec §3.7.2: an illegal or unparseable command drops the connection.
        None
    }
}

/// Classification shared by the client and the SP-side server: Deliver,
/// Report, UserRpt, Unbind and friends.
fn classify_server_side(seq: SeqNo, pdu: Pdu) -> Classified<Sgip> {
    let ok = |p: Pdu| Packet::new(seq, p);
    match pdu {
        Pdu::Report(r) => {
            let stat = match r.state {
                ReportState::DELIVERED => "DELIVRD".to_owned(),
                ReportState::WAITING => "WAITING".to_owned(),
                _ => format!("ERR:{:03}", r.error_code.0),
            };
            Classified::Report {
                report: Report {
                    carrier_id: carrier_id(r.submit_sequence_number),
                    stat,
                    delivered: r.state == ReportState::DELIVERED,
                    dest: r.user_number.trimmed().into_owned(),
                    submit_time: String::new(),
                    done_time: String::new(),
                    ack: ReportAck::none(),
                },
                reply: ok(Pdu::ReportResp(Resp::ok())),
            }
        }
        Pdu::Deliver(d) => Classified::Mo {
            mo: MoSegment {
                udhi: d.udhi(),
                mo: Mo {
                    src: d.user_number.trimmed().into_owned(),
                    dest: d.sp_number.trimmed().into_owned(),
                    service_id: String::new(),
                    msg_fmt: d.message_coding.0,
                    content: d.message_content,
                    link_id: d.reserve.trimmed().into_owned(),
                },
            },
            reply: ok(Pdu::DeliverResp(Resp::ok())),
        },
        Pdu::UserRpt(_) => Classified::Other {
            reply: Some(ok(Pdu::UserRptResp(Resp::ok()))),
        },
        Pdu::Unbind => Classified::CloseReq {
            reply: ok(Pdu::UnbindResp),
        },
        Pdu::UnbindResp => Classified::CloseResp,
        // Requests an SP does not serve: answer with "bad command id".
        p @ (Pdu::Bind(_) | Pdu::Submit(_)) => Classified::Other {
            reply: p.response(ResultCode::BAD_COMMAND_ID).map(ok),
        },
        Pdu::Trace(_) => Classified::Other { reply: None },
        Pdu::Unknown { command_id, .. } if !command_id.is_response() => {
            Classified::Other { reply: None }
        }
        _ => Classified::Ignore,
    }
}

/// Runs the SP-side server until shutdown: accepts the SMG's connections
/// (Bind login type 2 with the configured credentials) and turns their
/// Reports and Delivers into link events.
pub(crate) async fn serve(
    listener: TcpListener,
    cfg: SgipServerConfig,
    link: Arc<str>,
    events: mpsc::Sender<LinkEvent>,
    mut shutdown: watch::Receiver<bool>,
    mo: MoAssembler,
    max_frame: usize,
) {
    let cfg = Arc::new(cfg);
    let mut next_id = 0u32;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    next_id = next_id.wrapping_add(1);
                    let span = info_span!("sgip_server", carrier = %link, peer = %peer, conn_id = next_id);
                    tokio::spawn(
                        serve_conn(stream, cfg.clone(), events.clone(), shutdown.clone(), mo.clone(), max_frame)
                            .instrument(span),
                    );
                }
                Err(e) => {
                    warn!(carrier = %link, error = %e, "sgip server accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn serve_conn(
    mut stream: TcpStream,
    cfg: Arc<SgipServerConfig>,
    events: mpsc::Sender<LinkEvent>,
    mut shutdown: watch::Receiver<bool>,
    mo: MoAssembler,
    max_frame: usize,
) {
    let framer = Framer::new(Sgip).with_max_len(max_frame);
    let mut rbuf = BytesMut::with_capacity(4096);
    let mut wbuf = BytesMut::with_capacity(1024);
    let mut bound = false;
    let idle = Duration::from_secs(120);
    let mut idle_at = tokio::time::Instant::now() + idle;
    // Report_Resps released by `ReportAck::ack` (after the report is stored).
    let (acks_tx, mut acks_rx) = mpsc::unbounded_channel::<Bytes>();
    loop {
        let mut close = false;
        let mut pending = Vec::new();
        loop {
            let item = match framer.decode(&mut rbuf) {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %e, "framing error on the sgip server connection");
                    debug!(hex = %HexFmt(&rbuf[..rbuf.len().min(64)]), "bytes at the framing error");
                    return;
                }
            };
            let pkt = match item {
                Inbound::Packet(p) => p,
                Inbound::Malformed {
                    command_id, error, ..
                } => {
                    warn!(command_id = format_args!("{command_id:#010x}"), error = %error, "malformed sgip command; dropping the connection");
                    return;
                }
            };
            let seq = pkt.seq;
            if !bound {
                let Pdu::Bind(b) = &pkt.pdu else {
                    warn!("command before bind; dropping the connection");
                    return;
                };
                let ok =
                    b.login_type == LoginType::SMG_TO_SP && b.verify(&cfg.account, &cfg.secret);
                let result = if ok {
                    ResultCode::OK
                } else {
                    ResultCode::ILLEGAL_LOGIN
                };
                let _ = framer.encode(seq, &Pdu::BindResp(Resp::new(result)), &mut wbuf);
                if ok {
                    info!("smg bound");
                    bound = true;
                    continue;
                }
                warn!(login_type = b.login_type.0, name = %b.login_name.to_str_lossy(), "smg bind refused");
                close = true;
                break;
            }
            match classify_server_side(seq, pkt.pdu) {
                Classified::Report { mut report, reply } => {
                    let mut frame = BytesMut::new();
                    match framer.encode_packet(&reply, &mut frame) {
                        Ok(()) => report.ack = ReportAck::new(acks_tx.clone(), frame.freeze()),
                        Err(e) => warn!(error = %e, "could not encode a report reply"),
                    }
                    pending.push(LinkEvent::Report(report));
                }
                Classified::Mo { mo: seg, reply } => {
                    let _ = framer.encode_packet(&reply, &mut wbuf);
                    pending.extend(
                        mo.push(seg, tokio::time::Instant::now().into_std())
                            .into_iter()
                            .map(LinkEvent::Mo),
                    );
                }
                Classified::CloseReq { reply } => {
                    let _ = framer.encode_packet(&reply, &mut wbuf);
                    close = true;
                    break;
                }
                Classified::Other { reply: Some(reply) } => {
                    let _ = framer.encode_packet(&reply, &mut wbuf);
                }
                _ => {}
            }
        }
        if !wbuf.is_empty() {
            if stream.write_all(&wbuf).await.is_err() {
                return;
            }
            wbuf.clear();
        }
        for ev in pending {
            let _ = events.send(ev).await;
        }
        if close {
            info!("sgip server connection closed");
            return;
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            Some(frame) = acks_rx.recv() => {
                wbuf.extend_from_slice(&frame);
                while let Ok(frame) = acks_rx.try_recv() {
                    wbuf.extend_from_slice(&frame);
                }
            }
            r = tokio::time::timeout_at(idle_at, stream.read_buf(&mut rbuf)) => match r {
                Ok(Ok(n)) if n > 0 => idle_at = tokio::time::Instant::now() + idle,
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_resp_id_is_the_submit_sequence() {
        let mut d = SgipDialect::new(3_075_512_345);
        let seq = d.next_seq(Timestamp(1204150730));
        let c = Credentials {
            account: "a".into(),
            secret: "b".into(),
            node_id: 3_075_512_345,
        };
        let Classified::SubmitResp {
            outcome: SubmitOutcome::Accepted(id),
            ..
        } = d.classify(&c, Packet::new(seq, Pdu::SubmitResp(Resp::ok())))
        else {
            panic!()
        };
        assert_eq!(id, carrier_id(seq));
        let report = sgip::Report {
            submit_sequence_number: seq,
            ..Default::default()
        };
        let Classified::Report { report, .. } =
            d.classify(&c, Packet::new(seq, Pdu::Report(report)))
        else {
            panic!()
        };
        assert_eq!(report.carrier_id, id);
        assert!(report.delivered);
    }
}
