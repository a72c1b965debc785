//! CMPP 2.0 / 3.0 (China Mobile) as a [`Dialect`]. See
//! shared/protocols/cmpp.md: CONNECT §5/§6, SUBMIT_RESP §10, DELIVER §11,
//! ACTIVE_TEST §8, TERMINATE §7.

use bytes::Bytes;
pub use smsgw_codecs::cmpp::Version as CmppVersion;
use smsgw_codecs::cmpp::{
    self, ActiveTestResp, Cmpp, CommandId, Connect, Deliver, DeliverResp, MsgId, Pdu,
    ReportOutcome, SubmitResult,
};
use smsgw_codecs::text::DataCoding;
use smsgw_codecs::wire::{FixedStr, Timestamp};
use smsgw_codecs::{DecodeError, EncodeError, Packet, StatusClass};

use super::{Classified, Credentials, Dialect, LoginVerdict, SubmitOutcome};
use crate::session::types::{CarrierMsgId, Mo, MoSegment, Report, ReportAck, Segment};

/// CMPP as seen from the SP.
#[derive(Debug, Clone)]
pub struct CmppDialect {
    version: CmppVersion,
    next: u32,
    /// AuthenticatorSource of our CONNECT, to verify AuthenticatorISMG.
    auth_source: [u8; 16],
}

impl CmppDialect {
    pub fn new(version: CmppVersion) -> Self {
        CmppDialect {
            version,
            next: 0,
            auth_source: [0; 16],
        }
    }
}

fn deliver_resp(msg_id: MsgId, result: SubmitResult) -> Pdu {
    Pdu::DeliverResp(DeliverResp { msg_id, result })
}

impl Dialect for CmppDialect {
    type P = Cmpp;

    fn protocol(&self) -> Cmpp {
        Cmpp::new(self.version)
    }

    fn name(&self) -> &'static str {
        match self.version {
            CmppVersion::V20 => "cmpp2",
            CmppVersion::V30 => "cmpp3",
        }
    }

    fn next_seq(&mut self, _ts: Timestamp) -> u32 {
        // 1..=u32::MAX, wrapping past 0.
        self.next = self.next.wrapping_add(1);
        if self.next == 0 {
            self.next = 1;
        }
        self.next
    }

    fn login(&mut self, creds: &Credentials, ts: Timestamp) -> Result<Pdu, EncodeError> {
        let c = Connect::new(&creds.account, creds.secret.as_bytes(), self.version, ts)?;
        self.auth_source = c.authenticator_source;
        Ok(Pdu::Connect(c))
    }

    fn submit(&self, creds: &Credentials, seg: &Segment) -> Result<Pdu, EncodeError> {
        let mut dests = cmpp::Recipients::new();
        dests.push(FixedStr::new(seg.dest.as_bytes())?);
        let mut s = cmpp::Submit {
            pk_total: seg.pk_total,
            pk_number: seg.pk_number,
            registered_delivery: u8::from(seg.need_report),
            service_id: FixedStr::new(seg.service_id.as_bytes())?,
            tp_udhi: u8::from(seg.udhi),
            msg_fmt: DataCoding(seg.msg_fmt),
            msg_src: FixedStr::new(creds.account.as_bytes())?,
            src_id: FixedStr::new(seg.src_id.as_bytes())?,
            dest_terminal_ids: dests,
            msg_content: seg.content.clone(),
            ..Default::default()
        };
        s.normalize(self.version);
        Ok(Pdu::Submit(s))
    }

    fn heartbeat(&self) -> Option<Pdu> {
        Some(Pdu::ActiveTest)
    }

    fn terminate(&self) -> Pdu {
        Pdu::Terminate
    }

    fn classify(&self, creds: &Credentials, pkt: Packet<Cmpp>) -> Classified<Cmpp> {
        let seq = pkt.seq;
        match pkt.pdu {
            Pdu::ConnectResp(r) => {
                let verdict = if r.status.is_ok() {
                    LoginVerdict::Ok
                } else {
                    LoginVerdict::Refused {
                        code: r.status.0,
                        class: r.status.class(),
                    }
                };
                let auth_mismatch = r.status.is_ok()
                    && !r.verify(self.version, &self.auth_source, creds.secret.as_bytes());
                Classified::LoginResp {
                    verdict,
                    auth_mismatch,
                }
            }
            Pdu::SubmitResp(r) => {
                let outcome = if r.result.is_ok() {
                    SubmitOutcome::Accepted(CarrierMsgId::from_u64(r.msg_id.0))
                } else {
                    SubmitOutcome::Rejected {
                        code: r.result.0,
                        class: r.result.class(),
                    }
                };
                Classified::SubmitResp { seq, outcome }
            }
            Pdu::Deliver(d) => classify_deliver(self.version, seq, d),
            Pdu::ActiveTest => Classified::HeartbeatReq {
                reply: Packet::new(seq, Pdu::ActiveTestResp(ActiveTestResp::default())),
            },
            Pdu::ActiveTestResp(_) => Classified::HeartbeatResp,
            Pdu::Terminate => Classified::CloseReq {
                reply: Packet::new(seq, Pdu::TerminateResp),
            },
            Pdu::TerminateResp => Classified::CloseResp,
            // Requests an SP does not serve. CMPP has no generic error
            // response; answering an unknown command with a made-up body
            // would be worse than the peer's timeout, so log and skip.
            Pdu::Connect(_) | Pdu::Submit(_) | Pdu::Query(_) | Pdu::Cancel(_) => {
                Classified::Other { reply: None }
            }
            Pdu::Unknown { command_id, .. } if !command_id.is_response() => {
                Classified::Other { reply: None }
            }
            Pdu::Unknown { .. } | Pdu::DeliverResp(_) | Pdu::QueryResp(_) | Pdu::CancelResp(_) => {
                Classified::Ignore
            }
        }
    }

    fn malformed_reply(
        &self,
        command_id: u32,
        seq: u32,
        _error: &DecodeError,
        frame: &Bytes,
    ) -> Option<Packet<Cmpp>> {
        match CommandId(command_id) {
            // Answer a broken DELIVER with Result 1 so the ISMG stops resending.
            CommandId::DELIVER => {
                let msg_id = frame
                    .get(cmpp::HEADER_LEN..cmpp::HEADER_LEN + 8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(MsgId(0), |b| MsgId(u64::from_be_bytes(b)));
                Some(Packet::new(
                    seq,
                    deliver_resp(msg_id, SubmitResult::BAD_STRUCTURE),
                ))
            }
            CommandId::ACTIVE_TEST => Some(Packet::new(
                seq,
                Pdu::ActiveTestResp(ActiveTestResp::default()),
            )),
            CommandId::TERMINATE => Some(Packet::new(seq, Pdu::TerminateResp)),
            // Other malformed requests: not ours to serve; keep the session.
            _ => None,
        }
    }
}

fn classify_deliver(version: CmppVersion, seq: u32, d: Deliver) -> Classified<Cmpp> {
    let ok = Packet::new(seq, deliver_resp(d.msg_id, SubmitResult::OK));
    if d.is_report() {
        return match d.report(version) {
            Ok(Some(r)) => Classified::Report {
                report: Report {
                    carrier_id: CarrierMsgId::from_u64(r.msg_id.0),
                    stat: r.stat.trimmed().into_owned(),
                    delivered: r.outcome() == ReportOutcome::Delivered,
                    dest: r.dest_terminal_id.trimmed().into_owned(),
                    submit_time: r.submit_time.trimmed().into_owned(),
                    done_time: r.done_time.trimmed().into_owned(),
                    ack: ReportAck::none(),
                },
                reply: ok,
            },
            // A report we cannot read: still acknowledge with an error so
            // the ISMG does not resend it forever.
            _ => Classified::Other {
                reply: Some(Packet::new(
                    seq,
                    deliver_resp(d.msg_id, SubmitResult::BAD_STRUCTURE),
                )),
            },
        };
    }
    Classified::Mo {
        mo: MoSegment {
            udhi: smsgw_codecs::udh::udhi_set(d.tp_udhi),
            mo: Mo {
                src: d.src_terminal_id.trimmed().into_owned(),
                dest: d.dest_id.trimmed().into_owned(),
                service_id: d.service_id.trimmed().into_owned(),
                msg_fmt: d.msg_fmt.0,
                content: d.msg_content,
                link_id: d
                    .link_id
                    .map(|l| l.trimmed().into_owned())
                    .unwrap_or_default(),
            },
        },
        reply: ok,
    }
}

/// The retry class of a CMPP submit result (re-exported for the engine).
pub fn submit_class(result: u32) -> StatusClass {
    SubmitResult(result).class()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsgw_codecs::cmpp::{ConnectResp, ConnectStatus, SubmitResp};

    fn creds() -> Credentials {
        Credentials {
            account: "901234".into(),
            secret: "secret".into(),
            node_id: 0,
        }
    }

    #[test]
    fn login_and_verdicts() {
        let mut d = CmppDialect::new(CmppVersion::V30);
        let ts = Timestamp(1204150730);
        let Pdu::Connect(c) = d.login(&creds(), ts).unwrap() else {
            panic!()
        };
        assert_eq!(
            hex::encode(c.authenticator_source),
            "b335a47a2bd774cae49bbf5beaf5f3f1"
        );
        let good = ConnectResp::new(
            CmppVersion::V30,
            ConnectStatus::OK,
            &c.authenticator_source,
            b"secret",
            0x30,
        );
        assert!(matches!(
            d.classify(&creds(), Packet::new(1, Pdu::ConnectResp(good))),
            Classified::LoginResp {
                verdict: LoginVerdict::Ok,
                auth_mismatch: false
            }
        ));
        let forged = ConnectResp {
            authenticator_ismg: [7; 16],
            ..good
        };
        assert!(matches!(
            d.classify(&creds(), Packet::new(1, Pdu::ConnectResp(forged))),
            Classified::LoginResp {
                verdict: LoginVerdict::Ok,
                auth_mismatch: true
            }
        ));
        let refused = ConnectResp::new(
            CmppVersion::V30,
            ConnectStatus::AUTH_FAILED,
            &c.authenticator_source,
            b"x",
            0x30,
        );
        assert!(matches!(
            d.classify(&creds(), Packet::new(1, Pdu::ConnectResp(refused))),
            Classified::LoginResp {
                verdict: LoginVerdict::Refused { code: 3, .. },
                ..
            }
        ));
    }

    #[test]
    fn submit_resp_classes() {
        let d = CmppDialect::new(CmppVersion::V20);
        let resp = |result| {
            Packet::new(
                9,
                Pdu::SubmitResp(SubmitResp {
                    msg_id: MsgId(42),
                    result: SubmitResult(result),
                }),
            )
        };
        assert!(matches!(
            d.classify(&creds(), resp(0)),
            Classified::SubmitResp { seq: 9, outcome: SubmitOutcome::Accepted(id) } if id == CarrierMsgId::from_u64(42)
        ));
        assert!(matches!(
            d.classify(&creds(), resp(8)),
            Classified::SubmitResp {
                outcome: SubmitOutcome::Rejected {
                    code: 8,
                    class: StatusClass::Throttled
                },
                ..
            }
        ));
    }

    #[test]
    fn seq_wraps_past_zero() {
        let mut d = CmppDialect::new(CmppVersion::V30);
        d.next = u32::MAX - 1;
        assert_eq!(d.next_seq(Timestamp(0)), u32::MAX);
        assert_eq!(d.next_seq(Timestamp(0)), 1);
    }

    #[test]
    fn submit_encodes_for_both_versions() {
        for v in [CmppVersion::V20, CmppVersion::V30] {
            let d = CmppDialect::new(v);
            let seg = Segment::single("1065", "13800138000", "svc", 0, Bytes::from_static(b"hi"));
            let pdu = d.submit(&creds(), &seg).unwrap();
            let framer = smsgw_codecs::Framer::new(Cmpp::new(v));
            let bytes = framer.to_bytes(5, &pdu).unwrap();
            let mut buf = bytes::BytesMut::from(&bytes[..]);
            assert!(
                matches!(framer.decode(&mut buf), Ok(Some(smsgw_codecs::Inbound::Packet(p))) if p.pdu == pdu)
            );
        }
    }
}
