//! SGIP 1.2 codec: golden fixtures, malformed input, long messages and
//! property tests.

use bytes::{Bytes, BytesMut};
#[cfg(feature = "tokio-codec")]
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use smallvec::{smallvec, SmallVec};
use smsgw_codecs::sgip::*;
use smsgw_codecs::text::{self, DataCoding, Family};
use smsgw_codecs::udh::{Concat, ConcatRef, UdhError};
use smsgw_codecs::wire::{FixedStr, Timestamp};
use smsgw_codecs::{DecodeError, FrameError, Framer, Inbound, Packet, StatusClass};
#[cfg(feature = "tokio-codec")]
use tokio::io::AsyncWriteExt;
#[cfg(feature = "tokio-codec")]
use tokio_util::codec::Framed;

// ---------------------------------------------------------------------------
// Fixture loader

fn load(rel: &str) -> Vec<u8> {
    let path = format!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/sgip/{}"),
        rel
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let hex: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    hex::decode(&hex).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn framer() -> Framer<Sgip> {
    Framer::new(Sgip)
}

fn fs<const N: usize>(s: &str) -> FixedStr<N> {
    FixedStr::new(s.as_bytes()).unwrap()
}

const TS: Timestamp = Timestamp(1204150730);
const SP_NODE: u32 = 3075512345;
const SMG_NODE: u32 = 107551;

fn sp(counter: u32) -> SeqNo {
    SeqNo::new(SP_NODE, TS, counter)
}

fn smg(counter: u32) -> SeqNo {
    SeqNo::new(SMG_NODE, TS, counter)
}

/// The five checks every positive fixture gets.
fn check(rel: &str, seq: SeqNo, pdu: Pdu) {
    let wire = load(rel);
    let f = framer();
    let expected = Inbound::Packet(Packet::new(seq, pdu.clone()));

    // (1) decode equals the expected value
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(
        f.decode(&mut buf).unwrap(),
        Some(expected.clone()),
        "{rel}: decode"
    );
    assert!(buf.is_empty());

    // (2) encode gives the same bytes
    assert_eq!(
        &f.to_bytes(seq, &pdu).unwrap()[..],
        &wire[..],
        "{rel}: encode"
    );

    // (3) split at every offset
    for cut in 0..=wire.len() {
        let mut buf = BytesMut::from(&wire[..cut]);
        if cut < wire.len() {
            assert_eq!(f.decode(&mut buf).unwrap(), None, "{rel}: cut {cut}");
            buf.extend_from_slice(&wire[cut..]);
        }
        assert_eq!(
            f.decode(&mut buf).unwrap(),
            Some(expected.clone()),
            "{rel}: cut {cut}"
        );
        assert!(buf.is_empty(), "{rel}: cut {cut} left bytes");
    }

    // (4) two frames back to back
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&wire);
    buf.extend_from_slice(&wire);
    assert_eq!(f.decode(&mut buf).unwrap(), Some(expected.clone()));
    assert_eq!(f.decode(&mut buf).unwrap(), Some(expected.clone()));
    assert_eq!(f.decode(&mut buf).unwrap(), None);
    assert!(buf.is_empty());

    // (5) tokio Framed over a duplex: raw bytes in, and Packet through the sink
    #[cfg(feature = "tokio-codec")]
    framed_roundtrip(rel, &wire, seq, &pdu, &expected);
}

/// Check (5): `tokio_util::codec::Framed` over `tokio::io::duplex`.
#[cfg(feature = "tokio-codec")]
fn framed_roundtrip(rel: &str, wire: &[u8], seq: SeqNo, pdu: &Pdu, expected: &Inbound<Sgip>) {
    let expected = expected.clone();
    let wire = wire.to_vec();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut raw, b) = tokio::io::duplex(64);
        let mut rx = Framed::new(b, framer());
        let w = wire.clone();
        let writer = tokio::spawn(async move {
            raw.write_all(&w).await.unwrap();
            raw.shutdown().await.unwrap();
        });
        assert_eq!(rx.next().await.unwrap().unwrap(), expected, "{rel}: framed");
        assert!(rx.next().await.is_none());
        writer.await.unwrap();

        let (a, b) = tokio::io::duplex(64);
        let mut tx = Framed::new(a, framer());
        let mut rx = Framed::new(b, framer());
        let pkt = Packet::new(seq, pdu.clone());
        let sender = tokio::spawn(async move {
            tx.send(pkt).await.unwrap();
        });
        assert_eq!(rx.next().await.unwrap().unwrap(), expected, "{rel}: framed");
        sender.await.unwrap();
    });
}

// ---------------------------------------------------------------------------
// Expected values

fn bind(login_type: LoginType) -> Bind {
    Bind {
        login_type,
        login_name: fs("spuser"),
        login_password: fs("sppass"),
        reserve: FixedStr::EMPTY,
    }
}

const USER: &str = "8613012345678";
const UCS2_HELLO: [u8; 10] = [0x4f, 0x60, 0x59, 0x7d, 0xff, 0x0c, 0x4e, 0x16, 0x75, 0x4c];
const LONG_TEXT: &str = "长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试长短信测试";

/// The Submit of the vectors (sgip12/submit_ucs2 and the long segments).
fn vector_submit(tp_udhi: u8, content: Bytes) -> Submit {
    Submit {
        sp_number: fs("10655000"),
        charge_number: fs("000000000000000000000"),
        user_numbers: smallvec![fs(USER)],
        corp_id: fs("12345"),
        service_type: fs("TEST"),
        fee_type: FeeType::FREE,
        fee_value: fs("0"),
        given_value: fs("0"),
        agent_flag: 0,
        morelateto_mt_flag: MoRelateToMtFlag::NOT_MO_RELATED,
        priority: 0,
        expire_time: FixedStr::EMPTY,
        schedule_time: FixedStr::EMPTY,
        report_flag: ReportFlag::ALWAYS,
        tp_pid: 0,
        tp_udhi,
        message_coding: DataCoding::UCS2,
        message_type: 0,
        message_content: content,
        reserve: FixedStr::EMPTY,
    }
}

fn ok() -> Resp {
    Resp::ok()
}

/// The three segment contents of the long-message vector.
fn long_segments() -> Vec<Bytes> {
    let ucs2: Vec<u8> = LONG_TEXT
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    assert_eq!(ucs2.len(), 300);
    ucs2.chunks(134)
        .enumerate()
        .map(|(i, c)| {
            let mut v = vec![0x05, 0x00, 0x03, 0x2a, 0x03, i as u8 + 1];
            v.extend_from_slice(c);
            Bytes::from(v)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Positive fixtures (vectors.json sgip12)

#[test]
fn fixture_bind_sp_to_smg() {
    check(
        "1.2/bind.sp_to_smg.hex",
        sp(1),
        Pdu::Bind(bind(LoginType::SP_TO_SMG)),
    );
}

#[test]
fn fixture_bind_resp() {
    check("1.2/bind_resp.hex", sp(1), Pdu::BindResp(ok()));
}

#[test]
fn fixture_submit_ucs2() {
    let s = vector_submit(0, Bytes::from_static(&UCS2_HELLO));
    assert_eq!(s.text(), "你好，世界");
    check("1.2/submit.ucs2.hex", sp(2), Pdu::Submit(s));
}

#[test]
fn fixture_submit_resp() {
    check("1.2/submit_resp.hex", sp(2), Pdu::SubmitResp(ok()));
}

#[test]
fn fixture_unbind() {
    check("1.2/unbind.hex", sp(3), Pdu::Unbind);
}

#[test]
fn fixture_unbind_resp() {
    check("1.2/unbind_resp.hex", sp(3), Pdu::UnbindResp);
}

#[test]
fn fixture_bind_smg_to_sp() {
    check(
        "1.2/bind.smg_to_sp.hex",
        smg(1),
        Pdu::Bind(bind(LoginType::SMG_TO_SP)),
    );
}

#[test]
fn fixture_bind_resp_from_sp() {
    check("1.2/bind_resp.from_sp.hex", smg(1), Pdu::BindResp(ok()));
}

#[test]
fn fixture_report_delivered() {
    let r = Report {
        submit_sequence_number: sp(2),
        report_type: ReportType::SUBMIT,
        user_number: fs(USER),
        state: ReportState::DELIVERED,
        error_code: ResultCode::OK,
        reserve: FixedStr::EMPTY,
    };
    check("1.2/report.delivered.hex", smg(2), Pdu::Report(r));
}

#[test]
fn fixture_report_resp() {
    check("1.2/report_resp.hex", smg(2), Pdu::ReportResp(ok()));
}

#[test]
fn fixture_deliver_mo_ucs2() {
    let d = Deliver {
        user_number: fs(USER),
        sp_number: fs("10655000"),
        tp_pid: 0,
        tp_udhi: 0,
        message_coding: DataCoding::UCS2,
        message_content: Bytes::from_static(&UCS2_HELLO),
        reserve: FixedStr::EMPTY,
    };
    assert!(!d.udhi());
    check("1.2/deliver.mo_ucs2.hex", smg(3), Pdu::Deliver(d));
}

#[test]
fn fixture_deliver_resp() {
    check("1.2/deliver_resp.hex", smg(3), Pdu::DeliverResp(ok()));
}

#[test]
fn fixture_submit_long_1of3() {
    check(
        "1.2/submit.long_1of3.hex",
        sp(10),
        Pdu::Submit(vector_submit(1, long_segments()[0].clone())),
    );
}

#[test]
fn fixture_submit_long_2of3() {
    check(
        "1.2/submit.long_2of3.hex",
        sp(11),
        Pdu::Submit(vector_submit(1, long_segments()[1].clone())),
    );
}

#[test]
fn fixture_submit_long_3of3() {
    let s = vector_submit(1, long_segments()[2].clone());
    let udh = s.udh().unwrap().unwrap();
    assert_eq!(
        udh.concat,
        Some(Concat {
            reference: ConcatRef::Eight(0x2a),
            total: 3,
            seq: 3
        })
    );
    check("1.2/submit.long_3of3.hex", sp(12), Pdu::Submit(s));
}

// ---------------------------------------------------------------------------
// Positive fixtures (hand-built from sgip.md)

#[test]
fn fixture_deliver_long_mo_udhi40() {
    let mut content = vec![0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01];
    content.extend_from_slice(&[0xb3, 0xa4, 0xb6, 0xcc, 0xd0, 0xc5]); // GBK 长短信
    let d = Deliver {
        user_number: fs(USER),
        sp_number: fs("10655000"),
        tp_pid: 0,
        tp_udhi: 0x40,
        message_coding: DataCoding::GBK,
        message_content: Bytes::from(content),
        reserve: FixedStr::EMPTY,
    };
    assert!(d.udhi());
    assert_eq!(
        d.udh().unwrap().unwrap().concat,
        Some(Concat {
            reference: ConcatRef::Sixteen(0x1234),
            total: 2,
            seq: 1
        })
    );
    assert_eq!(d.text(), "长短信");
    check("1.2/deliver.long_mo_udhi40.hex", smg(4), Pdu::Deliver(d));
}

#[test]
fn fixture_deliver_mo_ascii() {
    let d = Deliver {
        user_number: fs(USER),
        sp_number: fs("106550001"),
        message_content: Bytes::from_static(b"TD"),
        ..Deliver::default()
    };
    check("1.2/deliver.mo_ascii.hex", smg(5), Pdu::Deliver(d));
}

#[test]
fn fixture_report_failed() {
    let r = Report {
        submit_sequence_number: sp(11),
        report_type: ReportType::SUBMIT,
        user_number: fs(USER),
        state: ReportState::FAILED,
        error_code: ResultCode::USER_UNREACHABLE,
        reserve: FixedStr::EMPTY,
    };
    assert!(r.state.is_final());
    assert_eq!(r.error_code.class(), StatusClass::Retryable);
    assert_eq!(r.key(), (sp(11), fs(USER)));
    check("1.2/report.failed.hex", smg(6), Pdu::Report(r));
}

#[test]
fn fixture_submit_two_users_gbk() {
    let s = Submit {
        sp_number: fs("106550001"),
        charge_number: fs(USER),
        user_numbers: smallvec![fs(USER), fs("8613112345678")],
        corp_id: fs("12345"),
        service_type: fs("NEWS"),
        fee_type: FeeType::PER_MESSAGE,
        fee_value: fs("10"),
        given_value: fs("0"),
        agent_flag: 0,
        morelateto_mt_flag: MoRelateToMtFlag::FIRST_MT_AFTER_MO,
        priority: 9,
        expire_time: fs("121205150730032+"),
        schedule_time: fs("121204160000032+"),
        report_flag: ReportFlag::ALWAYS,
        tp_pid: 0,
        tp_udhi: 0,
        message_coding: DataCoding::GBK,
        message_type: 0,
        message_content: Bytes::from_static(&[0xb2, 0xe2, 0xca, 0xd4]),
        reserve: FixedStr::EMPTY,
    };
    assert_eq!(s.text(), "测试");
    check("1.2/submit.two_users_gbk.hex", sp(20), Pdu::Submit(s));
}

#[test]
fn fixture_submit_resp_node_busy() {
    let r = Resp::new(ResultCode::NODE_BUSY);
    assert_eq!(r.result.class(), StatusClass::Throttled);
    check("1.2/submit_resp.node_busy.hex", sp(20), Pdu::SubmitResp(r));
}

#[test]
fn fixture_user_rpt() {
    let u = UserRpt {
        sp_number: fs("10655000"),
        user_number: fs(USER),
        user_condition: UserCondition::SUSPENDED,
        reserve: FixedStr::EMPTY,
    };
    check("1.2/user_rpt.hex", smg(7), Pdu::UserRpt(u));
}

#[test]
fn fixture_user_rpt_resp() {
    check("1.2/user_rpt_resp.hex", smg(7), Pdu::UserRptResp(ok()));
}

#[test]
fn fixture_bind_test() {
    check(
        "1.2/bind.test.hex",
        sp(30),
        Pdu::Bind(bind(LoginType::TEST)),
    );
}

#[test]
fn fixture_trace() {
    let t = Trace {
        submit_sequence_number: sp(2),
        user_number: fs(USER),
        reserve: FixedStr::EMPTY,
    };
    check("1.2/trace.hex", sp(31), Pdu::Trace(t));
}

#[test]
fn fixture_trace_resp() {
    let t = TraceResp {
        nodes: smallvec![TraceNode {
            result: 0,
            node_id: fs("107551"),
            receive_time: fs("121204150731"),
            send_time: fs("121204150732"),
            reserve: FixedStr::EMPTY,
        }],
    };
    check("1.2/trace_resp.hex", sp(31), Pdu::TraceResp(t));
}

#[test]
fn fixture_check_user_unknown() {
    let wire = load("1.2/check_user.unknown.hex");
    let body = Bytes::copy_from_slice(&wire[20..]);
    check(
        "1.2/check_user.unknown.hex",
        smg(8),
        Pdu::Unknown {
            command_id: CommandId::CHECK_USER,
            body,
        },
    );
}

// ---------------------------------------------------------------------------
// Malformed fixtures

fn decode_one(rel: &str) -> Result<Option<Inbound<Sgip>>, FrameError> {
    framer().decode(&mut BytesMut::from(&load(rel)[..]))
}

fn malformed(rel: &str) -> DecodeError {
    match decode_one(rel) {
        Ok(Some(Inbound::Malformed { error, .. })) => error,
        other => panic!("{rel}: expected Malformed, got {other:?}"),
    }
}

#[test]
fn malformed_len_zero() {
    assert!(matches!(
        decode_one("malformed/len_zero.hex"),
        Err(FrameError::FrameTooShort {
            len: 0,
            min: 20,
            ..
        })
    ));
}

#[test]
fn malformed_len_short() {
    assert!(matches!(
        decode_one("malformed/len_short.hex"),
        Err(FrameError::FrameTooShort {
            len: 19,
            min: 20,
            ..
        })
    ));
}

#[test]
fn malformed_len_huge() {
    assert!(matches!(
        decode_one("malformed/len_huge.hex"),
        Err(FrameError::FrameTooLarge {
            len: 0xffff_ffff,
            ..
        })
    ));
}

#[test]
fn malformed_unknown_command_survives() {
    let got = decode_one("malformed/unknown_command.hex")
        .unwrap()
        .unwrap();
    assert!(matches!(
        got,
        Inbound::Packet(Packet { pdu: Pdu::Unknown { command_id: CommandId(0x99), ref body }, .. })
            if body[..] == [0xde, 0xad, 0xbe, 0xef]
    ));
    assert_eq!(CommandId(0x99).name(), None);
}

#[test]
fn malformed_truncated_body() {
    let e = malformed("malformed/truncated_body.hex");
    assert!(matches!(
        e,
        DecodeError::Truncated {
            pdu: "Submit",
            field: "MessageContent",
            offset: 136
        }
    ));
}

#[test]
fn malformed_truncated_bind() {
    let e = malformed("malformed/truncated_bind.hex");
    assert!(matches!(
        e,
        DecodeError::Truncated {
            pdu: "Bind",
            field: "Reserve",
            offset: 33
        }
    ));
}

#[test]
fn malformed_trailing_bytes() {
    let e = malformed("malformed/trailing_bytes.hex");
    assert!(matches!(
        e,
        DecodeError::TrailingBytes {
            pdu: "Report",
            offset: 44,
            extra: 1
        }
    ));
}

#[test]
fn malformed_bad_udh() {
    let e = malformed("malformed/bad_udh.hex");
    assert!(matches!(
        e,
        DecodeError::Udh(UdhError::HeaderTooLong {
            udhl: 5,
            content: 4
        })
    ));
}

#[test]
fn malformed_keeps_sequence_and_frame() {
    let wire = load("malformed/bad_udh.hex");
    match framer()
        .decode(&mut BytesMut::from(&wire[..]))
        .unwrap()
        .unwrap()
    {
        Inbound::Malformed {
            command_id,
            seq,
            frame,
            ..
        } => {
            assert_eq!(CommandId(command_id), CommandId::DELIVER);
            assert_eq!(seq, smg(9));
            assert_eq!(&frame[..], &wire[..]);
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Long messages, sequences, codes

fn long_vector_wire() -> Vec<Vec<u8>> {
    (1..=3)
        .map(|i| load(&format!("1.2/submit.long_{i}of3.hex")))
        .collect()
}

#[test]
fn submits_for_matches_long_vector_with_manual_segments() {
    let segs: Vec<text::Segment> = long_segments()
        .into_iter()
        .enumerate()
        .map(|(i, content)| text::Segment {
            concat: Some(Concat {
                reference: ConcatRef::Eight(0x2a),
                total: 3,
                seq: i as u8 + 1,
            }),
            content,
        })
        .collect();
    let template = vector_submit(0, Bytes::new());
    let subs = submits_for(&template, &segs);
    let mut gen = SeqGen {
        node_id: SP_NODE,
        counter: 10,
    };
    for (s, wire) in subs.iter().zip(long_vector_wire()) {
        let seq = gen.next(TS);
        assert_eq!(
            &framer().to_bytes(seq, &Pdu::Submit(s.clone())).unwrap()[..],
            &wire[..]
        );
    }
}

#[test]
fn submits_for_matches_long_vector_with_text_split() {
    let segs = text::split(
        LONG_TEXT,
        DataCoding::UCS2,
        Family::Sgip,
        ConcatRef::Eight(0x2a),
    )
    .unwrap();
    assert_eq!(segs.len(), 3);
    let template = vector_submit(0, Bytes::new());
    let subs = submits_for(&template, &segs);
    let mut gen = SeqGen {
        node_id: SP_NODE,
        counter: 10,
    };
    for (s, wire) in subs.iter().zip(long_vector_wire()) {
        let seq = gen.next(TS);
        assert_eq!(
            &framer().to_bytes(seq, &Pdu::Submit(s.clone())).unwrap()[..],
            &wire[..]
        );
    }
}

#[test]
fn submits_for_single_segment_clears_udhi() {
    let segs = vec![text::Segment {
        concat: None,
        content: Bytes::from_static(&UCS2_HELLO),
    }];
    let template = vector_submit(1, Bytes::new());
    let subs = submits_for(&template, &segs);
    assert_eq!(
        subs,
        vec![vector_submit(0, Bytes::from_static(&UCS2_HELLO))]
    );
}

#[test]
fn seq_gen_counts_and_wraps() {
    let mut g = SeqGen::new(SP_NODE);
    assert_eq!(g.next(TS), sp(0));
    assert_eq!(g.next(TS), sp(1));
    g.counter = u32::MAX;
    assert_eq!(g.next(TS).counter, u32::MAX);
    assert_eq!(g.next(TS).counter, 0);
    assert_eq!(sp(2).to_string(), "3075512345/1204150730/2");
    assert_eq!(SeqNo::from_bytes(sp(7).to_bytes()), sp(7));
}

#[test]
fn bind_verify() {
    let b = bind(LoginType::SMG_TO_SP);
    assert!(b.verify("spuser", "sppass"));
    assert!(!b.verify("spuser", "sppas"));
    assert!(!b.verify("spuser", "sppass1"));
    assert!(!b.verify("other", "sppass"));
    assert_eq!(
        Bind::new(LoginType::SMG_TO_SP, "spuser", "sppass").unwrap(),
        b
    );
    assert!(Bind::new(LoginType::SP_TO_SMG, "12345678901234567", "x").is_err());
}

#[test]
fn result_code_classes() {
    assert_eq!(ResultCode::OK.class(), StatusClass::Ok);
    assert_eq!(ResultCode::NODE_BUSY.class(), StatusClass::Throttled);
    assert_eq!(ResultCode::QUEUE_FULL.class(), StatusClass::Throttled);
    assert_eq!(ResultCode::ILLEGAL_LOGIN.class(), StatusClass::Permanent);
    assert_eq!(ResultCode::UNKNOWN_USER.class(), StatusClass::Permanent);
    assert_eq!(ResultCode(200).class(), StatusClass::Permanent);
    assert_eq!(ResultCode(200).description(), "unknown error code");
    assert_eq!(CommandId::MODIFY_SMG_RESP, CommandId(0x8000_000E));
    assert_eq!(CommandId::SUBMIT.response(), CommandId::SUBMIT_RESP);
    assert!(CommandId::TRACE_RESP.is_response());
    assert_eq!(CommandId::USER_RPT.name(), Some("UserRpt"));
}

#[test]
fn responses_for_commands() {
    let sub = Pdu::Submit(vector_submit(0, Bytes::new()));
    assert_eq!(sub.response(ResultCode::OK), Some(Pdu::SubmitResp(ok())));
    assert_eq!(Pdu::Unbind.response(ResultCode::OK), Some(Pdu::UnbindResp));
    assert_eq!(Pdu::SubmitResp(ok()).response(ResultCode::OK), None);
}

#[test]
fn submit_with_too_many_users_fails_to_encode() {
    let mut s = vector_submit(0, Bytes::new());
    s.user_numbers = (0..256).map(|_| fs(USER)).collect();
    assert!(framer().to_bytes(sp(1), &Pdu::Submit(s)).is_err());
}

#[cfg(feature = "json")]
#[test]
fn json_report_and_long_submit() {
    let f = framer();
    let mut buf = BytesMut::from(&load("1.2/report.delivered.hex")[..]);
    let Some(Inbound::Packet(p)) = f.decode(&mut buf).unwrap() else {
        panic!()
    };
    let j = packet_to_json(p.seq, &p.pdu);
    assert_eq!(j["command"], "Report");
    assert_eq!(j["sequence"]["node_id"], 107551);
    assert_eq!(j["submit_sequence_number"]["node_id"], 3075512345u32);
    assert_eq!(j["submit_sequence_number"]["timestamp"], 1204150730);
    assert_eq!(j["submit_sequence_number"]["time"], "12-04 15:07:30");
    assert_eq!(j["submit_sequence_number"]["counter"], 2);
    assert_eq!(j["state"]["name"], "delivered");
    assert_eq!(j["user_number"], USER);

    let mut buf = BytesMut::from(&load("1.2/submit.long_1of3.hex")[..]);
    let Some(Inbound::Packet(p)) = f.decode(&mut buf).unwrap() else {
        panic!()
    };
    let j = p.pdu.to_json();
    assert_eq!(j["command"], "Submit");
    assert_eq!(j["message_length"], 140);
    assert_eq!(j["message_content"]["udh"]["concat"]["reference"], 0x2a);
    assert_eq!(j["message_content"]["udh"]["concat"]["total"], 3);
    assert_eq!(j["message_content"]["udh"]["concat"]["seq"], 1);
    assert!(j["message_content"]["text"]
        .as_str()
        .unwrap()
        .starts_with("长短信测试"));
    assert!(j["message_content"]["hex"]
        .as_str()
        .unwrap()
        .starts_with("0500032a0301"));
    assert_eq!(j["user_numbers"][0], USER);
}

#[cfg(feature = "json")]
#[test]
fn json_every_fixture() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/sgip/1.2");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let mut buf = BytesMut::from(&load(&format!("1.2/{name}"))[..]);
        let Some(Inbound::Packet(p)) = framer().decode(&mut buf).unwrap() else {
            panic!("{name}")
        };
        let j = packet_to_json(p.seq, &p.pdu);
        assert_eq!(j["command"], p.pdu.name(), "{name}");
        assert!(j["command_id"].as_str().unwrap().starts_with("0x"));
        n += 1;
    }
    assert!(n >= 26);
}

// ---------------------------------------------------------------------------
// Property tests

fn fixed<const N: usize>() -> impl Strategy<Value = FixedStr<N>> {
    prop::collection::vec(any::<u8>(), 0..=N).prop_map(|v| FixedStr::from_padded(&v))
}

fn seq_no() -> impl Strategy<Value = SeqNo> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(n, t, c)| SeqNo::new(n, Timestamp(t), c))
}

/// (tp_udhi, content): either no UDH (udhi bits clear) or a valid UDH.
fn udhi_and_content() -> impl Strategy<Value = (u8, Bytes)> {
    let plain = (any::<u8>(), prop::collection::vec(any::<u8>(), 0..200))
        .prop_map(|(f, c)| (f & !0x41, Bytes::from(c)));
    let with_udh = (
        prop_oneof![Just(1u8), Just(0x40u8), Just(0x41u8)],
        any::<bool>(),
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..134),
    )
        .prop_map(|(f, sixteen, r, total, seq, text)| {
            let reference = if sixteen {
                ConcatRef::Sixteen(r)
            } else {
                ConcatRef::Eight(r as u8)
            };
            let mut b = BytesMut::new();
            Concat {
                reference,
                total,
                seq,
            }
            .put(&mut b);
            b.extend_from_slice(&text);
            (f, b.freeze())
        });
    prop_oneof![plain, with_udh]
}

prop_compose! {
    fn arb_bind()(t in any::<u8>(), n in fixed::<16>(), p in fixed::<16>(), r in fixed::<8>()) -> Bind {
        Bind { login_type: LoginType(t), login_name: n, login_password: p, reserve: r }
    }
}

prop_compose! {
    fn arb_resp()(res in any::<u8>(), r in fixed::<8>()) -> Resp {
        Resp { result: ResultCode(res), reserve: r }
    }
}

prop_compose! {
    fn arb_submit_head()(
        sp_number in fixed::<21>(),
        charge_number in fixed::<21>(),
        users in prop::collection::vec(fixed::<21>(), 0..=100),
        corp_id in fixed::<5>(),
        service_type in fixed::<10>(),
        fee_type in any::<u8>(),
        fee_value in fixed::<6>(),
        given_value in fixed::<6>(),
        flags in any::<[u8; 3]>(),
    ) -> Submit {
        Submit {
            sp_number,
            charge_number,
            user_numbers: SmallVec::from_vec(users),
            corp_id,
            service_type,
            fee_type: FeeType(fee_type),
            fee_value,
            given_value,
            agent_flag: flags[0],
            morelateto_mt_flag: MoRelateToMtFlag(flags[1]),
            priority: flags[2],
            ..Submit::default()
        }
    }
}

prop_compose! {
    fn arb_submit()(
        head in arb_submit_head(),
        expire_time in fixed::<16>(),
        schedule_time in fixed::<16>(),
        bytes in any::<[u8; 4]>(),
        (tp_udhi, message_content) in udhi_and_content(),
        reserve in fixed::<8>(),
    ) -> Submit {
        Submit {
            expire_time,
            schedule_time,
            report_flag: ReportFlag(bytes[0]),
            tp_pid: bytes[1],
            tp_udhi,
            message_coding: DataCoding(bytes[2]),
            message_type: bytes[3],
            message_content,
            reserve,
            ..head
        }
    }
}

prop_compose! {
    fn arb_deliver()(
        user_number in fixed::<21>(),
        sp_number in fixed::<21>(),
        tp_pid in any::<u8>(),
        coding in any::<u8>(),
        (tp_udhi, message_content) in udhi_and_content(),
        reserve in fixed::<8>(),
    ) -> Deliver {
        Deliver { user_number, sp_number, tp_pid, tp_udhi, message_coding: DataCoding(coding), message_content, reserve }
    }
}

prop_compose! {
    fn arb_report()(
        s in seq_no(), t in any::<u8>(), u in fixed::<21>(), st in any::<u8>(), e in any::<u8>(), r in fixed::<8>(),
    ) -> Report {
        Report { submit_sequence_number: s, report_type: ReportType(t), user_number: u, state: ReportState(st), error_code: ResultCode(e), reserve: r }
    }
}

prop_compose! {
    fn arb_user_rpt()(s in fixed::<21>(), u in fixed::<21>(), c in any::<u8>(), r in fixed::<8>()) -> UserRpt {
        UserRpt { sp_number: s, user_number: u, user_condition: UserCondition(c), reserve: r }
    }
}

prop_compose! {
    fn arb_trace()(s in seq_no(), u in fixed::<21>(), r in fixed::<8>()) -> Trace {
        Trace { submit_sequence_number: s, user_number: u, reserve: r }
    }
}

prop_compose! {
    fn arb_trace_node()(
        result in any::<u8>(), node_id in fixed::<6>(), receive_time in fixed::<16>(), send_time in fixed::<16>(), reserve in fixed::<8>(),
    ) -> TraceNode {
        TraceNode { result, node_id, receive_time, send_time, reserve }
    }
}

prop_compose! {
    fn arb_trace_resp()(nodes in prop::collection::vec(arb_trace_node(), 0..5)) -> TraceResp {
        TraceResp { nodes: SmallVec::from_vec(nodes) }
    }
}

fn known_ids() -> Vec<u32> {
    vec![
        0x1,
        0x2,
        0x3,
        0x4,
        0x5,
        0x11,
        0x1000,
        0x8000_0001,
        0x8000_0002,
        0x8000_0003,
        0x8000_0004,
        0x8000_0005,
        0x8000_0011,
        0x8000_1000,
    ]
}

prop_compose! {
    fn arb_unknown()(id in any::<u32>().prop_filter("unknown id", |id| !known_ids().contains(id)),
                     body in prop::collection::vec(any::<u8>(), 0..64)) -> Pdu {
        Pdu::Unknown { command_id: CommandId(id), body: Bytes::from(body) }
    }
}

fn arb_pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![
        arb_bind().prop_map(Pdu::Bind),
        arb_resp().prop_map(Pdu::BindResp),
        Just(Pdu::Unbind),
        Just(Pdu::UnbindResp),
        arb_submit().prop_map(Pdu::Submit),
        arb_resp().prop_map(Pdu::SubmitResp),
        arb_deliver().prop_map(Pdu::Deliver),
        arb_resp().prop_map(Pdu::DeliverResp),
        arb_report().prop_map(Pdu::Report),
        arb_resp().prop_map(Pdu::ReportResp),
        arb_user_rpt().prop_map(Pdu::UserRpt),
        arb_resp().prop_map(Pdu::UserRptResp),
        arb_trace().prop_map(Pdu::Trace),
        arb_trace_resp().prop_map(Pdu::TraceResp),
        arb_unknown(),
    ]
}

proptest! {
    #[test]
    fn roundtrip_every_pdu(seq in seq_no(), pdu in arb_pdu()) {
        let f = framer();
        let wire = f.to_bytes(seq, &pdu).unwrap();
        prop_assert_eq!(u32::from_be_bytes([wire[0], wire[1], wire[2], wire[3]]) as usize, wire.len());
        let mut buf = BytesMut::from(&wire[..]);
        let got = f.decode(&mut buf).unwrap();
        prop_assert_eq!(got, Some(Inbound::Packet(Packet::new(seq, pdu.clone()))));
        prop_assert!(buf.is_empty());
        #[cfg(feature = "json")]
        {
            let j = pdu.to_json();
            prop_assert_eq!(j["command"].as_str(), Some(pdu.name()));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let f = framer();
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(item)) = f.decode(&mut buf) {
            if let Inbound::Packet(p) = item {
                #[cfg(feature = "json")]
                let _ = p.pdu.to_json();
                let _ = f.to_bytes(p.seq, &p.pdu);
            }
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(
        idx in 0usize..14,
        seq in seq_no(),
        body in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let id = known_ids()[idx];
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&((20 + body.len()) as u32).to_be_bytes());
        wire.extend_from_slice(&id.to_be_bytes());
        wire.extend_from_slice(&seq.to_bytes());
        wire.extend_from_slice(&body);
        let item = framer().decode(&mut wire).unwrap().unwrap();
        match item {
            Inbound::Packet(p) => {
                prop_assert_eq!(p.seq, seq);
                // Whatever decoded re-encodes to the same bytes.
                let mut again = BytesMut::new();
                framer().encode(p.seq, &p.pdu, &mut again).unwrap();
                prop_assert_eq!(&again[20..], &body[..]);
                #[cfg(feature = "json")]
                let _ = p.pdu.to_json();
            }
            Inbound::Malformed { command_id, seq: s, .. } => {
                prop_assert_eq!(command_id, id);
                prop_assert_eq!(s, seq);
            }
        }
    }
}
