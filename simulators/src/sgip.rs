//! China Unicom SMG (SGIP 1.2) behaviour. The SP binds with login type 1
//! and submits; reports and MO go over the SMG's own connection to the SP
//! (login type 2), as a real SMG does.

use smsgw_codecs::sgip::{
    Bind, CommandId, Deliver, LoginType, Pdu, Report, ReportFlag, ReportState, ReportType, Resp,
    ResultCode, SeqNo, Sgip,
};
use smsgw_codecs::text::DataCoding;
use smsgw_codecs::wire::{FixedStr, Timestamp};
use smsgw_codecs::DecodeError;

use crate::behavior::{
    Accounts, Behavior, Event, LoginAttempt, MoSegment, MsgId, Refusal, ReportJob, SubmitInfo,
    SubmitStatus, Terminal,
};
use crate::clock::Civil;

/// The SMG side of SGIP.
#[derive(Debug, Clone)]
pub struct SgipSim {
    /// Node id in the sequences the SMG originates.
    pub node_id: u32,
}

fn term<const N: usize>(t: &Terminal) -> FixedStr<N> {
    FixedStr::from_padded(&t.as_bytes()[..t.len().min(N)])
}

fn widen<const N: usize>(t: &FixedStr<N>) -> Terminal {
    FixedStr::from_padded(t.as_bytes())
}

fn resp(code: ResultCode) -> Resp {
    Resp::new(code)
}

impl Behavior for SgipSim {
    type P = Sgip;
    type LoginCtx = ();

    fn protocol(&self) -> Sgip {
        Sgip
    }

    fn login(&self, pdu: &Pdu, accounts: &dyn Accounts) -> LoginAttempt<()> {
        let Pdu::Bind(bind) = pdu else {
            return LoginAttempt::NotLogin;
        };
        let name = bind.login_name.to_str_lossy();
        let Some(account) = accounts.get(&name) else {
            return LoginAttempt::Refused {
                refusal: Refusal::UnknownAccount,
                ctx: (),
                account: None,
            };
        };
        if bind.login_type != LoginType::SP_TO_SMG {
            return LoginAttempt::Refused {
                refusal: Refusal::BadLoginType,
                ctx: (),
                account: Some(account),
            };
        }
        if !bind.verify(&account.cfg.id, &account.cfg.secret) {
            return LoginAttempt::Refused {
                refusal: Refusal::BadSecret,
                ctx: (),
                account: Some(account),
            };
        }
        // Reports and MO never travel on this connection.
        LoginAttempt::Accepted {
            account,
            ctx: (),
            can_receive: false,
        }
    }

    fn login_resp(&self, _ctx: &(), result: Result<(), Refusal>) -> Pdu {
        let code = match result {
            Ok(()) => ResultCode::OK,
            Err(Refusal::UnknownAccount | Refusal::BadSecret | Refusal::BadVersion) => {
                ResultCode::ILLEGAL_LOGIN
            }
            Err(Refusal::BadLoginType) => ResultCode::BAD_LOGIN_TYPE,
            Err(Refusal::TooManyConnections) => ResultCode::TOO_MANY_CONNECTIONS,
            Err(Refusal::Malformed) => ResultCode::BAD_PARAMETER,
        };
        Pdu::BindResp(resp(code))
    }

    fn refuse_before_login(&self, pdu: &Pdu) -> Option<Pdu> {
        match pdu {
            Pdu::Submit(_) => Some(Pdu::SubmitResp(resp(ResultCode::ILLEGAL_LOGIN))),
            Pdu::Unbind => Some(Pdu::UnbindResp),
            _ => None,
        }
    }

    fn classify(&self, pdu: Pdu) -> Event<Sgip> {
        match pdu {
            Pdu::Submit(s) => {
                let udhi = s.udhi();
                let flag = s.report_flag;
                Event::Submit(Box::new(SubmitInfo {
                    recipients: s.user_numbers.iter().map(widen).collect(),
                    src: widen(&s.sp_number),
                    service_id: FixedStr::from_padded(s.service_type.as_bytes()),
                    wants_report: matches!(
                        flag,
                        ReportFlag::ON_FAILURE | ReportFlag::ALWAYS | ReportFlag::MONTHLY_FEE
                    ),
                    report_failures_only: flag == ReportFlag::ON_FAILURE,
                    coding: s.message_coding.0,
                    udhi,
                    pk_total: 1,
                    pk_number: 1,
                    content: s.message_content,
                }))
            }
            Pdu::ReportResp(_) | Pdu::DeliverResp(_) | Pdu::UserRptResp(_) => Event::Ack,
            Pdu::Unbind => Event::Terminate,
            Pdu::UnbindResp => Event::TerminateResp,
            Pdu::Bind(_) => Event::Other(Some(Pdu::BindResp(resp(ResultCode::REPEATED_LOGIN)))),
            // Deliver / Report / UserRpt sent to the SMG: acknowledge them.
            Pdu::Deliver(_) => Event::Other(Some(Pdu::DeliverResp(Resp::ok()))),
            Pdu::Report(_) => Event::Other(Some(Pdu::ReportResp(Resp::ok()))),
            Pdu::UserRpt(_) => Event::Other(Some(Pdu::UserRptResp(Resp::ok()))),
            _ => Event::Other(None),
        }
    }

    fn submit_id(&self, seq: SeqNo, _counter: u32, _at: &Civil) -> MsgId {
        MsgId::Sgip([seq.node_id, seq.timestamp.0, seq.counter])
    }

    fn id_space(&self) -> (u32, u64) {
        (0, 1)
    }

    fn submit_resp(&self, _id: MsgId, status: SubmitStatus) -> Pdu {
        let code = match status {
            SubmitStatus::Ok => ResultCode::OK,
            // 33: "SMSC queue full" in 1.2, "flow limit exceeded" in 1.3.
            SubmitStatus::Throttled => ResultCode::QUEUE_FULL,
            SubmitStatus::Code(c) => ResultCode(c.min(255) as u8),
        };
        Pdu::SubmitResp(resp(code))
    }

    fn malformed_resp(&self, command_id: u32, _error: &DecodeError) -> Option<Pdu> {
        let r = resp(ResultCode::BAD_PARAMETER);
        match CommandId(command_id) {
            CommandId::SUBMIT => Some(Pdu::SubmitResp(r)),
            CommandId::BIND => Some(Pdu::BindResp(r)),
            CommandId::DELIVER => Some(Pdu::DeliverResp(r)),
            CommandId::REPORT => Some(Pdu::ReportResp(r)),
            _ => None,
        }
    }

    fn report_pdu(&self, job: &ReportJob, _deliver_id: MsgId, _now: &Civil) -> Pdu {
        let seq = match job.msg_id {
            MsgId::Sgip([a, b, c]) => SeqNo::new(a, Timestamp(b), c),
            _ => SeqNo::default(),
        };
        let (state, err) = job.outcome.sgip_state();
        Pdu::Report(Report {
            submit_sequence_number: seq,
            report_type: ReportType::SUBMIT,
            user_number: term(&job.dest),
            state: ReportState(state),
            error_code: ResultCode(err),
            reserve: FixedStr::EMPTY,
        })
    }

    fn mo_pdu(&self, seg: &MoSegment, _deliver_id: MsgId, _now: &Civil) -> Pdu {
        Pdu::Deliver(Deliver {
            user_number: term(&seg.src),
            sp_number: term(&seg.dest),
            tp_pid: 0,
            tp_udhi: u8::from(seg.udhi),
            message_coding: DataCoding(seg.coding),
            message_content: seg.content.clone(),
            reserve: FixedStr::EMPTY,
        })
    }

    fn deliver_id(&self, counter: u32, _at: &Civil) -> MsgId {
        MsgId::Sgip([self.node_id, 0, counter])
    }

    fn active_test(&self) -> Option<Pdu> {
        None
    }

    fn active_test_resp(&self) -> Pdu {
        Pdu::UnbindResp
    }

    fn terminate_resp(&self) -> Pdu {
        Pdu::UnbindResp
    }

    fn seq(&self, counter: u32, at: &Civil) -> SeqNo {
        SeqNo::new(self.node_id, Timestamp(at.mmddhhmmss()), counter)
    }

    fn deliver_command_id(&self) -> u32 {
        CommandId::DELIVER.0
    }

    fn uses_sp_link(&self) -> bool {
        true
    }

    fn sp_bind(&self, name: &str, password: &str) -> Option<Pdu> {
        Bind::new(LoginType::SMG_TO_SP, name, password)
            .ok()
            .map(Pdu::Bind)
    }

    fn sp_bind_result(&self, pdu: &Pdu) -> Option<bool> {
        match pdu {
            Pdu::BindResp(r) => Some(r.result == ResultCode::OK),
            _ => None,
        }
    }
}
