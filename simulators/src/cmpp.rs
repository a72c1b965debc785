//! China Mobile ISMG (CMPP 2.0 / 3.0) behaviour. The simulator speaks one
//! version, chosen at start (`cmpp2` accepts Version 0x20/0x21, `cmpp3`
//! accepts 0x3x); a CONNECT asking for the other is refused with status 4.

use smsgw_codecs::cmpp::{
    self, ActiveTestResp, CancelResp, Cmpp, CommandId, Connect, ConnectResp, ConnectStatus,
    Deliver, Pdu, QueryResp, Report, SubmitResp, SubmitResult, Version,
};
use smsgw_codecs::text::DataCoding;
use smsgw_codecs::udh::udhi_set;
use smsgw_codecs::wire::FixedStr;
use smsgw_codecs::DecodeError;

use crate::behavior::{
    Accounts, Behavior, Event, LoginAttempt, MoSegment, MsgId, Refusal, ReportJob, SubmitInfo,
    SubmitStatus, Terminal,
};
use crate::clock::Civil;

/// The ISMG side of CMPP.
#[derive(Debug, Clone)]
pub struct CmppSim {
    pub version: Version,
    /// ISMG code in Msg_Id (22 bits).
    pub gateway_code: u32,
}

pub struct CmppLoginCtx {
    connect: Connect,
    secret: Option<String>,
}

fn to_id(id: MsgId) -> cmpp::MsgId {
    match id {
        MsgId::Cmpp(v) => cmpp::MsgId(v),
        _ => cmpp::MsgId(0),
    }
}

fn term<const N: usize>(t: &Terminal) -> FixedStr<N> {
    FixedStr::from_padded(&t.as_bytes()[..t.len().min(N)])
}

fn widen<const N: usize>(t: &FixedStr<N>) -> Terminal {
    FixedStr::from_padded(t.as_bytes())
}

impl Behavior for CmppSim {
    type P = Cmpp;
    type LoginCtx = CmppLoginCtx;

    fn protocol(&self) -> Cmpp {
        Cmpp::new(self.version)
    }

    fn login(&self, pdu: &Pdu, accounts: &dyn Accounts) -> LoginAttempt<CmppLoginCtx> {
        let Pdu::Connect(connect) = pdu else {
            return LoginAttempt::NotLogin;
        };
        let id = connect.source_addr.to_str_lossy();
        let Some(account) = accounts.get(&id) else {
            return LoginAttempt::Refused {
                refusal: Refusal::UnknownAccount,
                ctx: CmppLoginCtx {
                    connect: *connect,
                    secret: None,
                },
                account: None,
            };
        };
        let ctx = CmppLoginCtx {
            connect: *connect,
            secret: Some(account.cfg.secret.clone()),
        };
        let refusal = if !connect.verify(account.cfg.secret.as_bytes()) {
            Some(Refusal::BadSecret)
        } else if connect.layout() != self.version {
            Some(Refusal::BadVersion)
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
                account,
                ctx,
                can_receive: true,
            },
        }
    }

    fn login_resp(&self, ctx: &CmppLoginCtx, result: Result<(), Refusal>) -> Pdu {
        let status = match result {
            Ok(()) => ConnectStatus::OK,
            Err(Refusal::UnknownAccount) => ConnectStatus::ILLEGAL_SOURCE,
            Err(Refusal::BadSecret) => ConnectStatus::AUTH_FAILED,
            Err(Refusal::BadVersion) => ConnectStatus::VERSION_TOO_HIGH,
            Err(Refusal::TooManyConnections) => ConnectStatus::TOO_MANY_ACCOUNT_CONNECTIONS,
            Err(Refusal::BadLoginType | Refusal::Malformed) => ConnectStatus::BAD_STRUCTURE,
        };
        let secret = ctx.secret.as_deref().unwrap_or("");
        Pdu::ConnectResp(ConnectResp::new(
            self.version,
            status,
            &ctx.connect.authenticator_source,
            secret.as_bytes(),
            self.version.wire(),
        ))
    }

    fn refuse_before_login(&self, pdu: &Pdu) -> Option<Pdu> {
        match pdu {
            Pdu::Submit(_) => Some(Pdu::SubmitResp(SubmitResp {
                msg_id: cmpp::MsgId(0),
                result: SubmitResult::NOT_SERVED,
            })),
            Pdu::Terminate => Some(Pdu::TerminateResp),
            _ => None,
        }
    }

    fn classify(&self, pdu: Pdu) -> Event<Cmpp> {
        match pdu {
            Pdu::Submit(s) => Event::Submit(Box::new(SubmitInfo {
                recipients: s.dest_terminal_ids.iter().map(widen).collect(),
                src: widen(&s.src_id),
                service_id: s.service_id,
                wants_report: s.registered_delivery == 1,
                report_failures_only: false,
                coding: s.msg_fmt.0,
                udhi: udhi_set(s.tp_udhi),
                pk_total: s.pk_total,
                pk_number: s.pk_number,
                content: s.msg_content,
            })),
            Pdu::ActiveTest => Event::ActiveTest,
            Pdu::ActiveTestResp(_) => Event::ActiveTestResp,
            Pdu::DeliverResp(_) => Event::Ack,
            Pdu::Terminate => Event::Terminate,
            Pdu::TerminateResp => Event::TerminateResp,
            Pdu::Connect(_) => Event::Other(Some(Pdu::ConnectResp(ConnectResp {
                status: ConnectStatus(5),
                authenticator_ismg: [0; 16],
                version: self.version.wire(),
            }))),
            Pdu::Query(q) => Event::Other(Some(Pdu::QueryResp(QueryResp {
                time: q.time,
                query_type: q.query_type,
                query_code: q.query_code,
                ..Default::default()
            }))),
            // Nothing is ever cancellable here.
            Pdu::Cancel(_) => Event::Other(Some(Pdu::CancelResp(CancelResp { success_id: 1 }))),
            _ => Event::Other(None),
        }
    }

    fn submit_id(&self, _seq: u32, counter: u32, at: &Civil) -> MsgId {
        MsgId::cmpp(at, self.gateway_code, counter as u16)
    }

    fn id_space(&self) -> (u32, u64) {
        (65_536, 1)
    }

    fn submit_resp(&self, id: MsgId, status: SubmitStatus) -> Pdu {
        let result = match status {
            SubmitStatus::Ok => SubmitResult::OK,
            SubmitStatus::Throttled => SubmitResult::FLOW_CONTROL,
            SubmitStatus::Code(c) => SubmitResult(c),
        };
        Pdu::SubmitResp(SubmitResp {
            msg_id: to_id(id),
            result,
        })
    }

    fn malformed_resp(&self, command_id: u32, _error: &DecodeError) -> Option<Pdu> {
        match CommandId(command_id) {
            CommandId::SUBMIT => Some(Pdu::SubmitResp(SubmitResp {
                msg_id: cmpp::MsgId(0),
                result: SubmitResult::BAD_STRUCTURE,
            })),
            CommandId::CONNECT => Some(Pdu::ConnectResp(ConnectResp {
                status: ConnectStatus::BAD_STRUCTURE,
                authenticator_ismg: [0; 16],
                version: self.version.wire(),
            })),
            _ => None,
        }
    }

    fn report_pdu(&self, job: &ReportJob, deliver_id: MsgId, now: &Civil) -> Pdu {
        let report = Report {
            msg_id: to_id(job.msg_id),
            stat: FixedStr::from_padded(job.outcome.stat()),
            submit_time: FixedStr::from_padded(&job.submit_time.yymmddhhmm()),
            done_time: FixedStr::from_padded(&now.yymmddhhmm()),
            dest_terminal_id: job.dest,
            smsc_sequence: match deliver_id {
                MsgId::Cmpp(v) => v as u32,
                _ => 0,
            },
        };
        let mut d = Deliver {
            msg_id: to_id(deliver_id),
            dest_id: term(&job.src),
            service_id: job.service_id,
            src_terminal_id: job.dest,
            ..Deliver::default()
        };
        if let Err(e) = d.set_report(&report, self.version) {
            tracing::warn!(error = %e, "cannot build report");
        }
        d.normalize(self.version);
        Pdu::Deliver(d)
    }

    fn mo_pdu(&self, seg: &MoSegment, deliver_id: MsgId, _now: &Civil) -> Pdu {
        let mut d = Deliver {
            msg_id: to_id(deliver_id),
            dest_id: term(&seg.dest),
            service_id: seg.service_id,
            tp_udhi: u8::from(seg.udhi),
            msg_fmt: DataCoding(seg.coding),
            src_terminal_id: seg.src,
            registered_delivery: 0,
            msg_content: seg.content.clone(),
            ..Deliver::default()
        };
        d.normalize(self.version);
        Pdu::Deliver(d)
    }

    fn deliver_id(&self, counter: u32, at: &Civil) -> MsgId {
        MsgId::cmpp(at, self.gateway_code, counter as u16)
    }

    fn active_test(&self) -> Option<Pdu> {
        Some(Pdu::ActiveTest)
    }

    fn active_test_resp(&self) -> Pdu {
        Pdu::ActiveTestResp(ActiveTestResp::default())
    }

    fn terminate_resp(&self) -> Pdu {
        Pdu::TerminateResp
    }

    fn seq(&self, counter: u32, _at: &Civil) -> u32 {
        counter
    }

    fn deliver_command_id(&self) -> u32 {
        CommandId::DELIVER.0
    }
}
