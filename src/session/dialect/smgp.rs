//! SMGP 3.0 (China Telecom) as a [`Dialect`]. See shared/protocols/smgp.md:
//! Login §4/§5, Submit_Resp §7, Deliver §8, Exit and Active_Test §12.

use bytes::Bytes;
use smsgw_codecs::smgp::{
    self, CommandId, Deliver, DeliverResp, Login, LoginMode, MsgId, Pdu, Smgp, Status, Tag, Tlvs,
};
use smsgw_codecs::text::DataCoding;
use smsgw_codecs::wire::{FixedStr, Timestamp};
use smsgw_codecs::{DecodeError, EncodeError, Packet};

use super::{Classified, Credentials, Dialect, LoginVerdict, SubmitOutcome};
use crate::session::types::{CarrierMsgId, Mo, MoSegment, Report, ReportAck, Segment};

/// SMGP as seen from the SP (login mode 2: submit and receive on one link).
#[derive(Debug, Clone, Default)]
pub struct SmgpDialect {
    next: u32,
    auth_client: [u8; 16],
}

impl SmgpDialect {
    pub fn new() -> Self {
        SmgpDialect::default()
    }
}

fn carrier_id(id: &MsgId) -> CarrierMsgId {
    // 10 bytes always fit.
    CarrierMsgId::from_slice(id.as_bytes()).unwrap_or_else(|| CarrierMsgId::from_u64(0))
}

fn deliver_resp(msg_id: MsgId, status: Status) -> Pdu {
    Pdu::DeliverResp(DeliverResp { msg_id, status })
}

impl Dialect for SmgpDialect {
    type P = Smgp;

    fn protocol(&self) -> Smgp {
        Smgp
    }

    fn name(&self) -> &'static str {
        "smgp"
    }

    fn next_seq(&mut self, _ts: Timestamp) -> u32 {
        self.next = self.next.wrapping_add(1);
        if self.next == 0 {
            self.next = 1;
        }
        self.next
    }

    fn login(&mut self, creds: &Credentials, ts: Timestamp) -> Result<Pdu, EncodeError> {
        let l = Login::new(
            &creds.account,
            creds.secret.as_bytes(),
            LoginMode::TRANSMIT,
            ts,
        )?;
        self.auth_client = l.authenticator_client;
        Ok(Pdu::Login(l))
    }

    fn submit(&self, _creds: &Credentials, seg: &Segment) -> Result<Pdu, EncodeError> {
        let dests = std::iter::once(FixedStr::new(seg.dest.as_bytes())?).collect();
        let tlvs = if seg.udhi || seg.pk_total > 1 {
            Tlvs::builder()
                .put_u8(Tag::TP_UDHI, u8::from(seg.udhi))
                .put_u8(Tag::PK_TOTAL, seg.pk_total)
                .put_u8(Tag::PK_NUMBER, seg.pk_number)
                .build()?
        } else {
            Tlvs::new()
        };
        Ok(Pdu::Submit(smgp::Submit {
            need_report: u8::from(seg.need_report),
            service_id: FixedStr::new(seg.service_id.as_bytes())?,
            msg_format: DataCoding(seg.msg_fmt),
            src_term_id: FixedStr::new(seg.src_id.as_bytes())?,
            dest_term_ids: dests,
            msg_content: seg.content.clone(),
            tlvs,
            ..Default::default()
        }))
    }

    fn heartbeat(&self) -> Option<Pdu> {
        Some(Pdu::ActiveTest)
    }

    fn terminate(&self) -> Pdu {
        Pdu::Exit
    }

    fn classify(&self, creds: &Credentials, pkt: Packet<Smgp>) -> Classified<Smgp> {
        let seq = pkt.seq;
        match pkt.pdu {
            Pdu::LoginResp(r) => {
                let verdict = if r.status.is_ok() {
                    LoginVerdict::Ok
                } else {
                    LoginVerdict::Refused {
                        code: r.status.0,
                        class: r.status.class(),
                    }
                };
                let auth_mismatch =
                    r.status.is_ok() && !r.verify(&self.auth_client, creds.secret.as_bytes());
                Classified::LoginResp {
                    verdict,
                    auth_mismatch,
                }
            }
            Pdu::SubmitResp(r) => {
                let outcome = if r.status.is_ok() {
                    SubmitOutcome::Accepted(carrier_id(&r.msg_id))
                } else {
                    SubmitOutcome::Rejected {
                        code: r.status.0,
                        class: r.status.class(),
                    }
                };
                Classified::SubmitResp { seq, outcome }
            }
            Pdu::Deliver(d) => classify_deliver(seq, d),
            Pdu::ActiveTest => Classified::HeartbeatReq {
                reply: Packet::new(seq, Pdu::ActiveTestResp),
            },
            Pdu::ActiveTestResp => Classified::HeartbeatResp,
            Pdu::Exit => Classified::CloseReq {
                reply: Packet::new(seq, Pdu::ExitResp),
            },
            Pdu::ExitResp => Classified::CloseResp,
            Pdu::Login(_) | Pdu::Submit(_) | Pdu::Query(_) => Classified::Other { reply: None },
            Pdu::Unknown { command_id, .. } if !command_id.is_response() => {
                Classified::Other { reply: None }
            }
            Pdu::Unknown { .. } | Pdu::DeliverResp(_) | Pdu::QueryResp(_) => Classified::Ignore,
        }
    }

    fn malformed_reply(
        &self,
        command_id: u32,
        seq: u32,
        _error: &DecodeError,
        frame: &Bytes,
    ) -> Option<Packet<Smgp>> {
        match CommandId(command_id) {
            CommandId::DELIVER => {
                let id = frame
                    .get(12..22)
                    .and_then(|b| <[u8; 10]>::try_from(b).ok())
                    .map_or(MsgId::default(), MsgId);
                Some(Packet::new(
                    seq,
                    deliver_resp(id, Status::BAD_MESSAGE_STRUCTURE),
                ))
            }
            CommandId::ACTIVE_TEST => Some(Packet::new(seq, Pdu::ActiveTestResp)),
            CommandId::EXIT => Some(Packet::new(seq, Pdu::ExitResp)),
            _ => None,
        }
    }
}

fn classify_deliver(seq: u32, d: Deliver) -> Classified<Smgp> {
    let ok = Packet::new(seq, deliver_resp(d.msg_id, Status::OK));
    if d.is_report == 1 {
        return match d.report() {
            Some(r) => Classified::Report {
                report: Report {
                    carrier_id: carrier_id(&r.id),
                    stat: r.stat.trimmed().into_owned(),
                    delivered: r.is_delivered(),
                    dest: d.src_term_id.trimmed().into_owned(),
                    submit_time: r.submit_date.trimmed().into_owned(),
                    done_time: r.done_date.trimmed().into_owned(),
                    ack: ReportAck::none(),
                },
                reply: ok,
            },
            None => Classified::Other {
                reply: Some(Packet::new(
                    seq,
                    deliver_resp(d.msg_id, Status::BAD_MESSAGE_STRUCTURE),
                )),
            },
        };
    }
    let udhi = d.udhi();
    let link_id = d
        .tlvs
        .link_id()
        .map(|b| String::from_utf8_lossy(b).trim_end_matches('\0').to_owned())
        .unwrap_or_default();
    let content = d.payload().cloned().unwrap_or_default();
    Classified::Mo {
        mo: MoSegment {
            udhi,
            mo: Mo {
                src: d.src_term_id.trimmed().into_owned(),
                dest: d.dest_term_id.trimmed().into_owned(),
                service_id: String::new(),
                msg_fmt: d.msg_format.0,
                content,
                link_id,
            },
        },
        reply: ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsgw_codecs::smgp::{LoginResp, SubmitResp};
    use smsgw_codecs::StatusClass;

    fn creds() -> Credentials {
        Credentials {
            account: "sp0001".into(),
            secret: "pw".into(),
            node_id: 0,
        }
    }

    #[test]
    fn login_verdict_and_submit_resp() {
        let mut d = SmgpDialect::new();
        let Pdu::Login(l) = d.login(&creds(), Timestamp(1204150730)).unwrap() else {
            panic!()
        };
        assert!(l.verify(b"pw"));
        let ok = LoginResp::for_login(&l, Status::OK, b"pw");
        assert!(matches!(
            d.classify(&creds(), Packet::new(1, Pdu::LoginResp(ok))),
            Classified::LoginResp {
                verdict: LoginVerdict::Ok,
                auth_mismatch: false
            }
        ));
        let refused = LoginResp::for_login(&l, Status::AUTHENTICATION_ERROR, b"pw");
        assert!(matches!(
            d.classify(&creds(), Packet::new(1, Pdu::LoginResp(refused))),
            Classified::LoginResp {
                verdict: LoginVerdict::Refused { code: 21, .. },
                ..
            }
        ));
        let resp = Pdu::SubmitResp(SubmitResp {
            msg_id: MsgId([1; 10]),
            status: Status::OK,
        });
        assert!(matches!(
            d.classify(&creds(), Packet::new(3, resp)),
            Classified::SubmitResp { seq: 3, outcome: SubmitOutcome::Accepted(id) } if id.as_bytes() == [1; 10]
        ));
        let busy = Pdu::SubmitResp(SubmitResp {
            msg_id: MsgId::default(),
            status: Status::SYSTEM_BUSY,
        });
        let Classified::SubmitResp {
            outcome: SubmitOutcome::Rejected { code: 1, class },
            ..
        } = d.classify(&creds(), Packet::new(4, busy))
        else {
            panic!()
        };
        assert_ne!(class, StatusClass::Ok);
    }

    #[test]
    fn long_segment_carries_tlvs() {
        let d = SmgpDialect::new();
        let mut seg = Segment::single(
            "1065",
            "13300000000",
            "svc",
            8,
            Bytes::from_static(&[5, 0, 3, 9, 2, 1, 0, 65]),
        );
        seg.udhi = true;
        seg.pk_total = 2;
        let Pdu::Submit(s) = d.submit(&creds(), &seg).unwrap() else {
            panic!()
        };
        assert!(s.udhi());
        assert_eq!(s.tlvs.pk_total(), Some(2));
    }
}
