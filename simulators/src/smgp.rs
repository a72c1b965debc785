//! China Telecom SMGW (SMGP 3.0) behaviour.

use smsgw_codecs::smgp::{
    self, CommandId, Deliver, DeliverContent, Login, LoginMode, LoginResp, Pdu, Report, Smgp,
    Status, SubmitResp, Tag, Tlvs,
};
use smsgw_codecs::text::DataCoding;
use smsgw_codecs::wire::FixedStr;
use smsgw_codecs::DecodeError;

use crate::behavior::{
    Accounts, Behavior, Event, LoginAttempt, MoSegment, MsgId, Refusal, ReportJob, SubmitInfo,
    SubmitStatus, Terminal,
};
use crate::clock::Civil;

/// The SMGW side: verifies Login, answers Submit with BCD MsgIDs, sends
/// Deliver (reports and MO) on connections logged in to receive.
#[derive(Debug, Clone)]
pub struct SmgpSim {
    pub gateway_code: u32,
}

pub struct SmgpLoginCtx {
    login: Login,
    secret: Option<String>,
}

fn to_id(id: MsgId) -> smgp::MsgId {
    match id {
        MsgId::Smgp(b) => smgp::MsgId(b),
        _ => smgp::MsgId::default(),
    }
}

fn term<const N: usize>(t: &Terminal) -> FixedStr<N> {
    FixedStr::from_padded(&t.as_bytes()[..t.len().min(N)])
}

fn widen<const N: usize>(t: &FixedStr<N>) -> Terminal {
    FixedStr::from_padded(t.as_bytes())
}

impl Behavior for SmgpSim {
    type P = Smgp;
    type LoginCtx = SmgpLoginCtx;

    fn protocol(&self) -> Smgp {
        Smgp
    }

    fn login(&self, pdu: &Pdu, accounts: &dyn Accounts) -> LoginAttempt<SmgpLoginCtx> {
        let Pdu::Login(login) = pdu else {
            return LoginAttempt::NotLogin;
        };
        let id = login.client_id.to_str_lossy();
        let Some(account) = accounts.get(&id) else {
            return LoginAttempt::Refused {
                refusal: Refusal::UnknownAccount,
                ctx: SmgpLoginCtx {
                    login: *login,
                    secret: None,
                },
                account: None,
            };
        };
        let ctx = SmgpLoginCtx {
            login: *login,
            secret: Some(account.cfg.secret.clone()),
        };
        let refusal = if !login.verify(account.cfg.secret.as_bytes()) {
            Some(Refusal::BadSecret)
        } else if login.client_version >> 4 != smgp::VERSION >> 4 {
            Some(Refusal::BadVersion)
        } else if login.login_mode.0 > LoginMode::TRANSMIT.0 {
            Some(Refusal::BadLoginType)
        } else {
            None
        };
        match refusal {
            Some(refusal) => LoginAttempt::Refused {
                refusal,
                ctx,
                account: Some(account),
            },
            None => LoginAttempt::Accepted {
                can_receive: login.login_mode != LoginMode::SEND,
                account,
                ctx,
            },
        }
    }

    fn login_resp(&self, ctx: &SmgpLoginCtx, result: Result<(), Refusal>) -> Pdu {
        let status = match result {
            Ok(()) => Status::OK,
            Err(Refusal::UnknownAccount | Refusal::BadSecret) => Status::AUTHENTICATION_ERROR,
            Err(Refusal::BadVersion) => Status::VERSION_TOO_HIGH,
            Err(Refusal::TooManyConnections) => Status::TOO_MANY_CONNECTIONS,
            Err(Refusal::BadLoginType | Refusal::Malformed) => Status::BAD_MESSAGE_STRUCTURE,
        };
        let secret = ctx.secret.as_deref().unwrap_or("");
        Pdu::LoginResp(LoginResp::for_login(&ctx.login, status, secret.as_bytes()))
    }

    fn refuse_before_login(&self, pdu: &Pdu) -> Option<Pdu> {
        match pdu {
            Pdu::Submit(_) => Some(Pdu::SubmitResp(SubmitResp {
                msg_id: smgp::MsgId::default(),
                status: Status::AUTHENTICATION_ERROR,
            })),
            Pdu::ActiveTest => Some(Pdu::ActiveTestResp),
            Pdu::Exit => Some(Pdu::ExitResp),
            _ => None,
        }
    }

    fn classify(&self, pdu: Pdu) -> Event<Smgp> {
        match pdu {
            Pdu::Submit(s) => {
                let udhi = s.udhi();
                Event::Submit(Box::new(SubmitInfo {
                    recipients: s.dest_term_ids.iter().map(widen).collect(),
                    src: widen(&s.src_term_id),
                    service_id: s.service_id,
                    wants_report: s.need_report == 1,
                    report_failures_only: false,
                    coding: s.msg_format.0,
                    udhi,
                    pk_total: s.tlvs.pk_total().unwrap_or(1),
                    pk_number: s.tlvs.pk_number().unwrap_or(1),
                    content: s.msg_content,
                }))
            }
            Pdu::ActiveTest => Event::ActiveTest,
            Pdu::ActiveTestResp => Event::ActiveTestResp,
            Pdu::DeliverResp(_) => Event::Ack,
            Pdu::Exit => Event::Terminate,
            Pdu::ExitResp => Event::TerminateResp,
            Pdu::Login(_) => Event::Other(Some(Pdu::LoginResp(LoginResp {
                status: Status::BAD_MESSAGE_STRUCTURE,
                authenticator_server: [0; 16],
                server_version: smgp::VERSION,
            }))),
            Pdu::Query(q) => Event::Other(Some(Pdu::QueryResp(smgp::QueryResp {
                query_time: q.query_time,
                query_type: q.query_type,
                query_code: q.query_code,
                ..Default::default()
            }))),
            Pdu::Unknown { command_id, .. } if !command_id.is_response() => {
                // No generic NACK in SMGP: answer the response id with an
                // empty body is not defined either, so say nothing.
                Event::Other(None)
            }
            _ => Event::Other(None),
        }
    }

    fn submit_id(&self, _seq: u32, counter: u32, at: &Civil) -> MsgId {
        MsgId::smgp(at, self.gateway_code, counter)
    }

    fn id_space(&self) -> (u32, u64) {
        (1_000_000, 60)
    }

    fn submit_resp(&self, id: MsgId, status: SubmitStatus) -> Pdu {
        let status = match status {
            SubmitStatus::Ok => Status::OK,
            // SMGP has no dedicated flow-control status; "system busy" is
            // what SMGWs answer when an SP exceeds its rate.
            SubmitStatus::Throttled => Status::SYSTEM_BUSY,
            SubmitStatus::Code(c) => Status(c),
        };
        Pdu::SubmitResp(SubmitResp {
            msg_id: to_id(id),
            status,
        })
    }

    fn malformed_resp(&self, command_id: u32, _error: &DecodeError) -> Option<Pdu> {
        let status = Status::BAD_MESSAGE_STRUCTURE;
        match CommandId(command_id) {
            CommandId::SUBMIT => Some(Pdu::SubmitResp(SubmitResp {
                msg_id: smgp::MsgId::default(),
                status,
            })),
            CommandId::LOGIN => Some(Pdu::LoginResp(LoginResp {
                status,
                authenticator_server: [0; 16],
                server_version: smgp::VERSION,
            })),
            _ => None,
        }
    }

    fn report_pdu(&self, job: &ReportJob, deliver_id: MsgId, now: &Civil) -> Pdu {
        let submit_date = job.submit_time.yymmddhhmm();
        let done_date = now.yymmddhhmm();
        let err = job.outcome.smgp_err();
        let err_n =
            (err[0] - b'0') as u16 * 100 + (err[1] - b'0') as u16 * 10 + (err[2] - b'0') as u16;
        let report = Report::new(
            to_id(job.msg_id),
            std::str::from_utf8(job.outcome.stat()).unwrap_or("UNKNOWN"),
            err_n,
            std::str::from_utf8(&submit_date).unwrap_or(""),
            std::str::from_utf8(&done_date).unwrap_or(""),
        );
        Pdu::Deliver(Deliver {
            msg_id: to_id(deliver_id),
            is_report: 1,
            msg_format: DataCoding(0),
            recv_time: FixedStr::from_padded(&now.yyyymmddhhmmss()),
            src_term_id: term(&job.dest),
            dest_term_id: term(&job.src),
            content: DeliverContent::Report(report),
            reserve: [0; 8],
            tlvs: Tlvs::new(),
        })
    }

    fn mo_pdu(&self, seg: &MoSegment, deliver_id: MsgId, now: &Civil) -> Pdu {
        let tlvs = if seg.udhi {
            Tlvs::builder()
                .put_u8(Tag::TP_UDHI, 1)
                .build()
                .unwrap_or_default()
        } else {
            Tlvs::new()
        };
        Pdu::Deliver(Deliver {
            msg_id: to_id(deliver_id),
            is_report: 0,
            msg_format: DataCoding(seg.coding),
            recv_time: FixedStr::from_padded(&now.yyyymmddhhmmss()),
            src_term_id: term(&seg.src),
            dest_term_id: term(&seg.dest),
            content: DeliverContent::Message(seg.content.clone()),
            reserve: [0; 8],
            tlvs,
        })
    }

    fn deliver_id(&self, counter: u32, at: &Civil) -> MsgId {
        MsgId::smgp(at, self.gateway_code, counter)
    }

    fn active_test(&self) -> Option<Pdu> {
        Some(Pdu::ActiveTest)
    }

    fn active_test_resp(&self) -> Pdu {
        Pdu::ActiveTestResp
    }

    fn terminate_resp(&self) -> Pdu {
        Pdu::ExitResp
    }

    fn seq(&self, counter: u32, _at: &Civil) -> u32 {
        counter
    }

    fn deliver_command_id(&self) -> u32 {
        CommandId::DELIVER.0
    }
}
