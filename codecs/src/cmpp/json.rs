//! `to_json()` for the `smsgw pdu decode` operator tool.

use serde_json::{json, Map, Value};

use super::*;
use crate::json::{coding, content, hex};

fn fixed<const N: usize>(s: &FixedStr<N>) -> Value {
    Value::String(s.to_str_lossy().into_owned())
}

fn msg_id(id: MsgId) -> Value {
    json!({
        "u64": id.0,
        "hex": format!("{:016X}", id.0),
        "month": id.month(),
        "day": id.day(),
        "hour": id.hour(),
        "minute": id.minute(),
        "second": id.second(),
        "gateway": id.gateway(),
        "sequence": id.sequence(),
    })
}

fn opt<T: Into<Value>>(v: Option<T>) -> Value {
    v.map_or(Value::Null, Into::into)
}

fn report(r: &Report) -> Value {
    json!({
        "Msg_Id": msg_id(r.msg_id),
        "Stat": fixed(&r.stat),
        "stat_outcome": format!("{:?}", r.outcome()),
        "stat_description": Stat::description(r.stat.as_bytes()),
        "Submit_time": fixed(&r.submit_time),
        "Done_time": fixed(&r.done_time),
        "Dest_terminal_Id": fixed(&r.dest_terminal_id),
        "SMSC_sequence": r.smsc_sequence,
    })
}

impl Pdu {
    /// Every field with decoded values, for the operator tool. Version-only
    /// fields absent from the decoded layout are `null`.
    pub fn to_json(&self) -> Value {
        let id = self.command_id();
        let mut m = Map::new();
        m.insert("command".into(), self.name().into());
        m.insert("command_id".into(), format!("{:#010x}", id.0).into());
        let fields = match self {
            Pdu::Connect(p) => json!({
                "Source_Addr": fixed(&p.source_addr),
                "AuthenticatorSource": hex(&p.authenticator_source),
                "Version": format!("{:#04x}", p.version),
                "layout": match p.layout() { Version::V20 => "2.0", Version::V30 => "3.0" },
                "Timestamp": p.timestamp.0,
                "timestamp_digits": String::from_utf8_lossy(&p.timestamp.digits()),
            }),
            Pdu::ConnectResp(p) => json!({
                "Status": p.status.0,
                "status_description": p.status.description(),
                "status_class": p.status.class().as_str(),
                "AuthenticatorISMG": hex(&p.authenticator_ismg),
                "Version": format!("{:#04x}", p.version),
            }),
            Pdu::Submit(p) => json!({
                "Msg_Id": msg_id(p.msg_id),
                "Pk_total": p.pk_total,
                "Pk_number": p.pk_number,
                "Registered_Delivery": p.registered_delivery,
                "Msg_level": p.msg_level,
                "Service_Id": fixed(&p.service_id),
                "Fee_UserType": p.fee_user_type,
                "Fee_terminal_Id": fixed(&p.fee_terminal_id),
                "Fee_terminal_type": opt(p.fee_terminal_type),
                "TP_pId": p.tp_pid,
                "TP_udhi": p.tp_udhi,
                "Msg_Fmt": coding(p.msg_fmt),
                "Msg_src": fixed(&p.msg_src),
                "FeeType": fixed(&p.fee_type),
                "FeeCode": fixed(&p.fee_code),
                "ValId_Time": fixed(&p.valid_time),
                "At_Time": fixed(&p.at_time),
                "Src_Id": fixed(&p.src_id),
                "DestUsr_tl": p.dest_terminal_ids.len(),
                "Dest_terminal_Id": p.dest_terminal_ids.iter().map(fixed).collect::<Vec<_>>(),
                "Dest_terminal_type": opt(p.dest_terminal_type),
                "Msg_Length": p.msg_content.len(),
                "Msg_Content": content(udh::udhi_set(p.tp_udhi), p.msg_fmt, &p.msg_content),
                "Reserve": p.reserve.as_ref().map_or(Value::Null, fixed),
                "LinkID": p.link_id.as_ref().map_or(Value::Null, fixed),
            }),
            Pdu::SubmitResp(SubmitResp { msg_id: id, result })
            | Pdu::DeliverResp(DeliverResp { msg_id: id, result }) => json!({
                "Msg_Id": msg_id(*id),
                "Result": result.0,
                "result_description": result.description(),
                "result_class": result.class().as_str(),
            }),
            Pdu::Deliver(p) => {
                let body = if p.is_report() {
                    match p.report(Version::V30) {
                        Ok(Some(r)) => report(&r),
                        Ok(None) => Value::Null,
                        Err(e) => {
                            json!({ "hex": hex(&p.msg_content), "report_error": e.to_string() })
                        }
                    }
                } else {
                    content(udh::udhi_set(p.tp_udhi), p.msg_fmt, &p.msg_content)
                };
                json!({
                    "Msg_Id": msg_id(p.msg_id),
                    "Dest_Id": fixed(&p.dest_id),
                    "Service_Id": fixed(&p.service_id),
                    "TP_pid": p.tp_pid,
                    "TP_udhi": p.tp_udhi,
                    "Msg_Fmt": coding(p.msg_fmt),
                    "Src_terminal_Id": fixed(&p.src_terminal_id),
                    "Src_terminal_type": opt(p.src_terminal_type),
                    "Registered_Delivery": p.registered_delivery,
                    "Msg_Length": p.msg_content.len(),
                    "Msg_Content": body,
                    "Reserved": p.reserved.as_ref().map_or(Value::Null, fixed),
                    "LinkID": p.link_id.as_ref().map_or(Value::Null, fixed),
                })
            }
            Pdu::Query(p) => json!({
                "Time": fixed(&p.time),
                "Query_Type": p.query_type,
                "Query_Code": fixed(&p.query_code),
                "Reserve": fixed(&p.reserve),
            }),
            Pdu::QueryResp(p) => json!({
                "Time": fixed(&p.time),
                "Query_Type": p.query_type,
                "Query_Code": fixed(&p.query_code),
                "MT_TLMsg": p.mt_tlmsg,
                "MT_Tlusr": p.mt_tlusr,
                "MT_Scs": p.mt_scs,
                "MT_WT": p.mt_wt,
                "MT_FL": p.mt_fl,
                "MO_Scs": p.mo_scs,
                "MO_WT": p.mo_wt,
                "MO_FL": p.mo_fl,
            }),
            Pdu::Cancel(p) => json!({ "Msg_Id": msg_id(p.msg_id) }),
            Pdu::CancelResp(p) => json!({ "Success_Id": p.success_id }),
            Pdu::ActiveTestResp(p) => json!({ "Reserved": opt(p.reserved) }),
            Pdu::Terminate | Pdu::TerminateResp | Pdu::ActiveTest => json!({}),
            Pdu::Unknown { body, .. } => {
                json!({ "body_hex": hex(body), "body_length": body.len() })
            }
        };
        if let Value::Object(f) = fields {
            m.extend(f);
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_json() {
        let rep = Report {
            msg_id: MsgId(0xC23C778003E90001),
            stat: FixedStr::new(b"DELIVRD").unwrap_or_default(),
            submit_time: FixedStr::new(b"2512041507").unwrap_or_default(),
            done_time: FixedStr::new(b"2512041508").unwrap_or_default(),
            dest_terminal_id: FixedStr::new(b"13800138000").unwrap_or_default(),
            smsc_sequence: 1,
        };
        let mut d = Deliver::default();
        d.set_report(&rep, Version::V20).unwrap();
        let j = Pdu::Deliver(d).to_json();
        assert_eq!(j["command"], "CMPP_DELIVER");
        assert_eq!(j["Msg_Content"]["Stat"], "DELIVRD");
        assert_eq!(j["Msg_Content"]["Msg_Id"]["gateway"], 1001);
        assert_eq!(j["Msg_Content"]["SMSC_sequence"], 1);
    }
}
