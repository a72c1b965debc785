//! SMGP 3.0 golden fixtures, malformed input, long messages and property
//! tests.

#![cfg(all(feature = "json", feature = "tokio-codec"))]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use smallvec::{smallvec, SmallVec};
use smsgw_codecs::smgp::{
    self, authenticator_client, authenticator_server, submits_for, CommandId, Deliver,
    DeliverContent, DeliverResp, Login, LoginMode, LoginResp, MsgId, MsgType, Pdu, Query,
    QueryResp, Report, ReportLabels, Smgp, Status, Submit, SubmitResp, Tag, Tlvs,
};
use smsgw_codecs::text::{self, DataCoding, Family, Segment};
use smsgw_codecs::udh::{Concat, ConcatRef, UdhError};
use smsgw_codecs::wire::{FixedStr, Timestamp};
use smsgw_codecs::{DecodeError, FrameError, Framer, Inbound, Packet, Protocol, StatusClass};

// ---------------------------------------------------------------------------
// Fixture loader and the five checks

fn load(rel: &str) -> Vec<u8> {
    let path = format!("{}/../fixtures/smgp/{rel}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let hex: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    hex::decode(&hex).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn framer() -> Framer<Smgp> {
    Framer::new(Smgp)
}

fn check(rel: &str, seq: u32, expected: Pdu) {
    let wire = load(rel);
    let f = framer();
    let want = Inbound::Packet(Packet::new(seq, expected.clone()));

    // (1) decode equals the expected value
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(
        f.decode(&mut buf).unwrap().as_ref(),
        Some(&want),
        "{rel}: decode"
    );
    assert!(buf.is_empty());

    // (2) encoding the value gives the same bytes
    assert_eq!(
        &f.to_bytes(seq, &expected).unwrap()[..],
        &wire[..],
        "{rel}: encode"
    );

    // (3) split at every offset: nothing until complete, then the value
    for cut in 0..wire.len() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&wire[..cut]);
        assert_eq!(f.decode(&mut buf).unwrap(), None, "{rel}: cut at {cut}");
        buf.extend_from_slice(&wire[cut..]);
        assert_eq!(
            f.decode(&mut buf).unwrap().as_ref(),
            Some(&want),
            "{rel}: cut at {cut}"
        );
        assert!(buf.is_empty());
    }

    // (4) two frames back to back decode as two
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&wire);
    buf.extend_from_slice(&wire);
    assert_eq!(f.decode(&mut buf).unwrap().as_ref(), Some(&want));
    assert_eq!(f.decode(&mut buf).unwrap().as_ref(), Some(&want));
    assert_eq!(f.decode_eof(&mut buf).unwrap(), None);

    // (5) through tokio_util's Framed over an in-memory duplex
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use futures::{SinkExt, StreamExt};
        use tokio_util::codec::Framed;
        let (a, b) = tokio::io::duplex(8192);
        let mut tx = Framed::new(a, framer());
        let mut rx = Framed::new(b, framer());
        tx.send(Packet::new(seq, expected.clone())).await.unwrap();
        tx.send(Packet::new(seq.wrapping_add(1), expected.clone()))
            .await
            .unwrap();
        drop(tx);
        assert_eq!(rx.next().await.unwrap().unwrap(), want);
        let second = rx.next().await.unwrap().unwrap();
        assert_eq!(
            second,
            Inbound::Packet(Packet::new(seq.wrapping_add(1), expected.clone()))
        );
        assert!(rx.next().await.is_none());
    });

    // and to_json never fails on it
    let j = expected.to_json();
    assert_eq!(j["command"], expected.name());
}

fn fs<const N: usize>(s: &str) -> FixedStr<N> {
    FixedStr::new(s.as_bytes()).unwrap()
}

fn id(s: &str) -> MsgId {
    s.parse().unwrap()
}

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

/// The Submit shared by `submit.ucs2` and the long-message segments.
fn submit_template() -> Submit {
    Submit {
        msg_type: MsgType::MT,
        need_report: 1,
        priority: 1,
        service_id: fs("TEST"),
        fee_type: fs("00"),
        fee_code: fs("000000"),
        fixed_fee: fs("000000"),
        msg_format: DataCoding::UCS2,
        valid_time: FixedStr::EMPTY,
        at_time: FixedStr::EMPTY,
        src_term_id: fs("10690001"),
        charge_term_id: FixedStr::EMPTY,
        dest_term_ids: smallvec![fs("13800138000")],
        msg_content: Bytes::new(),
        reserve: [0; 8],
        tlvs: Tlvs::new(),
    }
}

fn long_payloads() -> [Bytes; 3] {
    let long = "长短信测试".repeat(30);
    let b = ucs2(&long);
    let seg = |i: u8, part: &[u8]| {
        let mut v = vec![0x05, 0x00, 0x03, 0x2a, 0x03, i];
        v.extend_from_slice(part);
        Bytes::from(v)
    };
    [seg(1, &b[..134]), seg(2, &b[134..268]), seg(3, &b[268..])]
}

fn long_segment(i: usize) -> Submit {
    let mut s = submit_template();
    s.msg_content = long_payloads()[i].clone();
    s.tlvs = Tlvs::builder()
        .put_u8(Tag::TP_UDHI, 1)
        .put_u8(Tag::PK_TOTAL, 3)
        .put_u8(Tag::PK_NUMBER, i as u8 + 1)
        .build()
        .unwrap();
    s
}

const AUTH_CLIENT: &str = "50595d8799d4ff643ce37ecf5af2482e";
const AUTH_SERVER: &str = "cff4aabed4e8764cfbecce777ef8c2c1";

fn arr16(h: &str) -> [u8; 16] {
    hex::decode(h).unwrap().try_into().unwrap()
}

// ---------------------------------------------------------------------------
// Golden fixtures from vectors.json (smgp30)

#[test]
fn fixture_login() {
    check(
        "3.0/login.hex",
        1,
        Pdu::Login(Login {
            client_id: fs("10690001"),
            authenticator_client: arr16(AUTH_CLIENT),
            login_mode: LoginMode::TRANSMIT,
            timestamp: Timestamp(1204150730),
            client_version: 0x30,
        }),
    );
}

#[test]
fn fixture_login_resp() {
    check(
        "3.0/login_resp.hex",
        1,
        Pdu::LoginResp(LoginResp {
            status: Status::OK,
            authenticator_server: arr16(AUTH_SERVER),
            server_version: 0x30,
        }),
    );
}

#[test]
fn fixture_submit_ucs2() {
    let mut s = submit_template();
    s.msg_content = Bytes::from(ucs2("你好，世界"));
    check("3.0/submit.ucs2.hex", 2, Pdu::Submit(s));
}

#[test]
fn fixture_submit_resp() {
    check(
        "3.0/submit_resp.hex",
        2,
        Pdu::SubmitResp(SubmitResp {
            msg_id: id("75506112041507000001"),
            status: Status::OK,
        }),
    );
}

fn vector_report() -> Report {
    Report {
        id: id("75506112041507000001"),
        sub: fs("001"),
        dlvrd: fs("001"),
        submit_date: fs("2512041507"),
        done_date: fs("2512041508"),
        stat: fs("DELIVRD"),
        err: fs("000"),
        txt: fs("000"),
        labels: ReportLabels::Lower,
    }
}

#[test]
fn fixture_deliver_report() {
    check(
        "3.0/deliver.report.hex",
        7,
        Pdu::Deliver(Deliver {
            msg_id: id("75506112041508000002"),
            is_report: 1,
            msg_format: DataCoding::ASCII,
            recv_time: fs("20251204150830"),
            src_term_id: fs("13800138000"),
            dest_term_id: fs("10690001"),
            content: DeliverContent::Report(vector_report()),
            reserve: [0; 8],
            tlvs: Tlvs::new(),
        }),
    );
}

#[test]
fn fixture_deliver_resp() {
    check(
        "3.0/deliver_resp.hex",
        7,
        Pdu::DeliverResp(DeliverResp {
            msg_id: id("75506112041508000002"),
            status: Status::OK,
        }),
    );
}

#[test]
fn fixture_active_test() {
    check("3.0/active_test.hex", 3, Pdu::ActiveTest);
}

#[test]
fn fixture_active_test_resp() {
    check("3.0/active_test_resp.hex", 3, Pdu::ActiveTestResp);
}

#[test]
fn fixture_exit() {
    check("3.0/exit.hex", 4, Pdu::Exit);
}

#[test]
fn fixture_exit_resp() {
    check("3.0/exit_resp.hex", 4, Pdu::ExitResp);
}

#[test]
fn fixture_submit_long_seg1() {
    check("3.0/submit.long_seg1.hex", 10, Pdu::Submit(long_segment(0)));
}

#[test]
fn fixture_submit_long_seg2() {
    check("3.0/submit.long_seg2.hex", 11, Pdu::Submit(long_segment(1)));
}

#[test]
fn fixture_submit_long_seg3() {
    check("3.0/submit.long_seg3.hex", 12, Pdu::Submit(long_segment(2)));
}

// ---------------------------------------------------------------------------
// Hand-built fixtures

#[test]
fn fixture_deliver_mo_ucs2() {
    let d = Deliver {
        msg_id: id("75506112041509000003"),
        is_report: 0,
        msg_format: DataCoding::UCS2,
        recv_time: fs("20251204150930"),
        src_term_id: fs("13800138000"),
        dest_term_id: fs("10690001"),
        content: DeliverContent::Message(Bytes::from(ucs2("你好"))),
        reserve: [0; 8],
        tlvs: Tlvs::builder()
            .put_padded(Tag::LINK_ID, b"LINK0001", 20)
            .put_u8(Tag::SRC_TERM_TYPE, 0)
            .build()
            .unwrap(),
    };
    assert_eq!(d.text(), "你好");
    assert_eq!(d.tlvs.link_id(), Some(&b"LINK0001"[..]));
    assert!(!d.udhi());
    assert_eq!(d.report(), None);
    check("3.0/deliver.mo_ucs2.hex", 21, Pdu::Deliver(d));
}

#[test]
fn fixture_deliver_mo_long_seg1() {
    let mut content = vec![0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01];
    content.extend(ucs2("长短信"));
    let d = Deliver {
        msg_id: id("75506112041510000004"),
        is_report: 0,
        msg_format: DataCoding::UCS2,
        recv_time: fs("20251204151000"),
        src_term_id: fs("13800138000"),
        dest_term_id: fs("106900011"),
        content: DeliverContent::Message(Bytes::from(content)),
        reserve: [0; 8],
        tlvs: Tlvs::builder().put_u8(Tag::TP_UDHI, 0x40).build().unwrap(),
    };
    assert!(d.udhi(), "bit 6 counts as udhi");
    assert_eq!(
        d.udh().unwrap().unwrap().concat,
        Some(Concat {
            reference: ConcatRef::Sixteen(0x1234),
            total: 2,
            seq: 1
        })
    );
    assert_eq!(d.text(), "长短信");
    check("3.0/deliver.mo_long_seg1.hex", 22, Pdu::Deliver(d));
}

#[test]
fn fixture_deliver_report_spec_labels() {
    let rep = Report {
        id: id("75506112041507000009"),
        sub: fs("001"),
        dlvrd: fs("000"),
        submit_date: fs("2512041507"),
        done_date: fs("2512041509"),
        stat: fs("UNDELIV"),
        err: fs("004"),
        txt: fs("012"),
        labels: ReportLabels::Spec,
    };
    assert_eq!(rep.err_code(), Some(4));
    assert!(!rep.is_delivered());
    check(
        "3.0/deliver.report_spec_labels.hex",
        23,
        Pdu::Deliver(Deliver {
            msg_id: id("75506112041509000005"),
            is_report: 1,
            msg_format: DataCoding::ASCII,
            recv_time: fs("20251204150931"),
            src_term_id: fs("13800138000"),
            dest_term_id: fs("10690001"),
            content: DeliverContent::Report(rep),
            reserve: [0; 8],
            tlvs: Tlvs::new(),
        }),
    );
}

#[test]
fn fixture_submit_two_recipients_tlvs() {
    let s = Submit {
        msg_type: MsgType::MT,
        need_report: 0,
        priority: 3,
        service_id: fs("HELP"),
        fee_type: fs("01"),
        fee_code: fs("000010"),
        fixed_fee: fs("000000"),
        msg_format: DataCoding::GBK,
        valid_time: fs("251205150730032+"),
        at_time: FixedStr::EMPTY,
        src_term_id: fs("1069000188"),
        charge_term_id: fs("13800138000"),
        dest_term_ids: smallvec![fs("13800138000"), fs("13900139000")],
        msg_content: Bytes::from_static(&[0xb2, 0xe2, 0xca, 0xd4]),
        reserve: [0; 8],
        tlvs: Tlvs::builder()
            .put_u8(Tag::TP_PID, 0)
            .put_padded(Tag::MSG_SRC, b"SP0001", 8)
            .put_padded(Tag::M_SERVICE_ID, b"PID123", 21)
            .put(Tag(0x0F01), &[1, 2, 3])
            .build()
            .unwrap(),
    };
    assert_eq!(s.text(), "测试");
    assert_eq!(s.tlvs.get(Tag(0x0F01)), Some(&[1u8, 2, 3][..]));
    assert_eq!(s.tlvs.get_str(Tag::MSG_SRC), Some(&b"SP0001"[..]));
    assert_eq!(s.tlvs.iter().count(), 4);
    check("3.0/submit.two_recipients_tlvs.hex", 30, Pdu::Submit(s));
}

#[test]
fn fixture_submit_resp_system_busy() {
    let p = Pdu::SubmitResp(SubmitResp {
        msg_id: MsgId([0; 10]),
        status: Status::SYSTEM_BUSY,
    });
    assert_eq!(p.status().map(Status::class), Some(StatusClass::Throttled));
    check("3.0/submit_resp.system_busy.hex", 30, p);
}

#[test]
fn fixture_query() {
    check(
        "3.0/query.hex",
        40,
        Pdu::Query(Query {
            query_time: fs("20251204"),
            query_type: 1,
            query_code: fs("TEST"),
        }),
    );
}

#[test]
fn fixture_query_resp() {
    check(
        "3.0/query_resp.hex",
        40,
        Pdu::QueryResp(QueryResp {
            query_time: fs("20251204"),
            query_type: 1,
            query_code: fs("TEST"),
            mt_tl_msg: 100,
            mt_tl_usr: 80,
            mt_scs: 95,
            mt_wt: 3,
            mt_fl: 2,
            mo_scs: 10,
            mo_wt: 0,
            mo_fl: 1,
            reserve: [0; 8],
        }),
    );
}

#[test]
fn fixture_login_resp_auth_error() {
    let p = Pdu::LoginResp(LoginResp {
        status: Status::AUTHENTICATION_ERROR,
        authenticator_server: [0; 16],
        server_version: 0x30,
    });
    assert_eq!(p.status().map(Status::class), Some(StatusClass::Permanent));
    check("3.0/login_resp.auth_error.hex", 1, p);
}

// ---------------------------------------------------------------------------
// Malformed input

fn decode_one(rel: &str) -> Result<Option<Inbound<Smgp>>, FrameError> {
    let mut buf = BytesMut::from(&load(rel)[..]);
    framer().decode(&mut buf)
}

fn malformed_error(rel: &str) -> DecodeError {
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
            protocol: "smgp",
            len: 0,
            min: 12
        })
    ));
}

#[test]
fn malformed_len_short() {
    assert!(matches!(
        decode_one("malformed/len_short.hex"),
        Err(FrameError::FrameTooShort { len: 8, .. })
    ));
}

#[test]
fn malformed_len_huge() {
    assert!(matches!(
        decode_one("malformed/len_huge.hex"),
        Err(FrameError::FrameTooLarge {
            len: 0x0010_0000,
            max: 4096,
            ..
        })
    ));
}

#[test]
fn malformed_unknown_command_survives() {
    let got = decode_one("malformed/unknown_command.hex")
        .unwrap()
        .unwrap();
    let Inbound::Packet(Packet {
        seq: 9,
        pdu: Pdu::Unknown { command_id, body },
    }) = &got
    else {
        panic!("{got:?}")
    };
    assert_eq!(*command_id, CommandId(0xFF));
    assert_eq!(&body[..], &[0xde, 0xad, 0xbe, 0xef]);
    // re-encodes byte for byte
    let Inbound::Packet(p) = got else {
        unreachable!()
    };
    assert_eq!(
        &framer().to_bytes(p.seq, &p.pdu).unwrap()[..],
        &load("malformed/unknown_command.hex")[..]
    );
    assert_eq!(p.pdu.to_json()["command"], "Unknown");
}

#[test]
fn malformed_truncated_body() {
    assert!(matches!(
        malformed_error("malformed/truncated_body.hex"),
        DecodeError::Truncated {
            pdu: "Login",
            field: "AuthenticatorClient",
            offset: 8
        }
    ));
}

#[test]
fn malformed_bad_udh() {
    assert!(matches!(
        malformed_error("malformed/bad_udh.hex"),
        DecodeError::Udh(UdhError::HeaderTooLong {
            udhl: 5,
            content: 4
        })
    ));
}

#[test]
fn malformed_bad_tlv() {
    assert!(matches!(
        malformed_error("malformed/bad_tlv.hex"),
        DecodeError::Field {
            pdu: "Submit",
            field: "TLV",
            offset: 139,
            ..
        }
    ));
}

#[test]
fn malformed_trailing_bytes() {
    assert!(matches!(
        malformed_error("malformed/trailing_bytes.hex"),
        DecodeError::TrailingBytes {
            pdu: "Submit_Resp",
            offset: 14,
            extra: 1
        }
    ));
}

#[test]
fn malformed_active_test_with_body() {
    assert!(matches!(
        malformed_error("malformed/active_test_with_body.hex"),
        DecodeError::TrailingBytes {
            pdu: "Active_Test",
            extra: 1,
            ..
        }
    ));
}

#[test]
fn malformed_keeps_stream_in_sync() {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&load("malformed/bad_udh.hex"));
    buf.extend_from_slice(&load("3.0/active_test.hex"));
    let f = framer();
    assert!(matches!(
        f.decode(&mut buf).unwrap(),
        Some(Inbound::Malformed {
            command_id: 2,
            seq: 5,
            ..
        })
    ));
    assert_eq!(
        f.decode(&mut buf).unwrap(),
        Some(Inbound::Packet(Packet::new(3, Pdu::ActiveTest)))
    );
}

// ---------------------------------------------------------------------------
// Authenticators, MsgID, reports, long messages, JSON

#[test]
fn authenticator_client_matches_vector() {
    let a = authenticator_client(b"10690001", b"secret", Timestamp(1204150730));
    assert_eq!(hex::encode(a), AUTH_CLIENT);
    let login = Login::new(
        "10690001",
        b"secret",
        LoginMode::TRANSMIT,
        Timestamp(1204150730),
    )
    .unwrap();
    assert_eq!(login.authenticator_client, a);
    assert!(login.verify(b"secret"));
    assert!(!login.verify(b"secreT"));
    let Pdu::Login(from_wire) = decode_pdu("3.0/login.hex") else {
        panic!()
    };
    assert_eq!(from_wire, login);
}

#[test]
fn authenticator_server_matches_vector() {
    let a = arr16(AUTH_CLIENT);
    assert_eq!(
        hex::encode(authenticator_server(Status::OK, &a, b"secret")),
        AUTH_SERVER
    );
    let login = Login::new(
        "10690001",
        b"secret",
        LoginMode::TRANSMIT,
        Timestamp(1204150730),
    )
    .unwrap();
    let resp = LoginResp::for_login(&login, Status::OK, b"secret");
    assert!(resp.verify(&a, b"secret"));
    let Pdu::LoginResp(from_wire) = decode_pdu("3.0/login_resp.hex") else {
        panic!()
    };
    assert_eq!(from_wire, resp);
    let failed = LoginResp::for_login(&login, Status::AUTHENTICATION_ERROR, b"secret");
    assert_eq!(failed.authenticator_server, [0; 16]);
}

fn decode_pdu(rel: &str) -> Pdu {
    match decode_one(rel).unwrap().unwrap() {
        Inbound::Packet(p) => p.pdu,
        other => panic!("{other:?}"),
    }
}

#[test]
fn msg_id_vectors() {
    let sub = MsgId::from_parts(755061, 12041507, 1).unwrap();
    assert_eq!(sub.0, hex::decode("75506112041507000001").unwrap()[..]);
    let dlv = MsgId::from_parts(755061, 12041508, 2).unwrap();
    assert_eq!(dlv.to_string(), "75506112041508000002");
    assert_eq!(
        (dlv.smgw_code(), dlv.time(), dlv.sequence()),
        (755061, 12041508, 2)
    );
    // spec example: gateway 010061, 16 Jan 17:00, seq 012345
    let spec = MsgId::from_parts(10061, 1161700, 12345).unwrap();
    assert_eq!(
        spec.0,
        [0x01, 0x00, 0x61, 0x01, 0x16, 0x17, 0x00, 0x01, 0x23, 0x45]
    );
    assert_eq!(MsgId::from_digits(b"7550611204150700000"), None);
    assert_eq!(MsgId::from_digits(b"75506112041507x00001"), None);
}

#[test]
fn report_correlates_with_submit_resp() {
    let Pdu::SubmitResp(resp) = decode_pdu("3.0/submit_resp.hex") else {
        panic!()
    };
    let Pdu::Deliver(d) = decode_pdu("3.0/deliver.report.hex") else {
        panic!()
    };
    let rep = d.report().unwrap();
    assert_eq!(rep.id, resp.msg_id);
    assert!(rep.is_delivered());
    assert_eq!(rep.err_code(), Some(0));
    assert_eq!(rep.to_bytes().len(), 122);

    // A gateway that writes the id as 20 text digits: keyword parse.
    let text = b"id:75506112041507000001 sub:001 dlvrd:001 Submit_Date:2512041507 done_date:2512041508 stat:EXPIRED err:001 text:000";
    let mut d2 = d.clone();
    d2.content = DeliverContent::Message(Bytes::from_static(text));
    let r2 = d2.report().unwrap();
    assert_eq!(r2.id, resp.msg_id);
    assert_eq!(r2.stat.as_bytes(), b"EXPIRED");
    assert_eq!(r2.submit_date.as_bytes(), b"2512041507");
    assert_eq!(r2.done_date.as_bytes(), b"2512041508");
    assert_eq!(r2.err_code(), Some(1));
    assert_eq!(Report::parse(text), Some(r2));

    // gosmgp's underscore labels at the standard offsets parse exactly.
    let mut under = rep;
    under.labels = ReportLabels::Underscore;
    let bytes = under.to_bytes();
    assert_eq!(&bytes[31..44], b" submit_date:");
    assert_eq!(Report::parse_exact(&bytes), Some(under));

    // Odd casing at the standard offsets: still parsed, by offset.
    let mut odd = rep.to_bytes();
    odd[75..81].copy_from_slice(b" STAT:");
    assert_eq!(Report::parse_exact(&odd), None);
    assert_eq!(Report::parse(&odd).map(|r| r.stat), Some(rep.stat));

    // A report Deliver with an odd layout stays raw and re-encodes as is.
    let mut raw = d.clone();
    raw.content = DeliverContent::Message(Bytes::copy_from_slice(&odd));
    let wire = framer().to_bytes(7, &Pdu::Deliver(raw.clone())).unwrap();
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(
        framer().decode(&mut buf).unwrap(),
        Some(Inbound::Packet(Packet::new(7, Pdu::Deliver(raw))))
    );
}

#[test]
fn report_builder_matches_vector() {
    let rep = Report::new(
        id("75506112041507000001"),
        "DELIVRD",
        0,
        "2512041507",
        "2512041508",
    );
    assert_eq!(rep, vector_report());
    let Pdu::Deliver(d) = decode_pdu("3.0/deliver.report.hex") else {
        panic!()
    };
    let DeliverContent::Report(r) = d.content else {
        panic!()
    };
    assert_eq!(r.to_bytes(), rep.to_bytes());
}

#[test]
fn mass_send_range() {
    let first = id("75506112041507999999");
    assert_eq!(first.nth_in_range(1).to_string(), "75506112041507000000");
    assert_eq!(first.nth_in_range(0), first);
}

fn vector_segments() -> Vec<Segment> {
    long_payloads()
        .into_iter()
        .enumerate()
        .map(|(i, content)| Segment {
            concat: Some(Concat {
                reference: ConcatRef::Eight(0x2a),
                total: 3,
                seq: i as u8 + 1,
            }),
            content,
        })
        .collect()
}

#[test]
fn submits_for_matches_long_vectors() {
    let subs = submits_for(&submit_template(), &vector_segments());
    assert_eq!(subs.len(), 3);
    let f = framer();
    for (i, s) in subs.iter().enumerate() {
        assert!(s.udhi());
        assert_eq!(s.tlvs.pk_total(), Some(3));
        assert_eq!(s.tlvs.pk_number(), Some(i as u8 + 1));
        let wire = f.to_bytes(10 + i as u32, &Pdu::Submit(s.clone())).unwrap();
        assert_eq!(
            &wire[..],
            &load(&format!("3.0/submit.long_seg{}.hex", i + 1))[..]
        );
    }
    // A template that already has segment TLVs and others keeps the others.
    let mut t = submit_template();
    t.tlvs = Tlvs::builder()
        .put_u8(Tag::PK_TOTAL, 9)
        .put_u8(Tag::TP_PID, 0)
        .build()
        .unwrap();
    let subs = submits_for(&t, &vector_segments());
    let tags: Vec<_> = subs[1].tlvs.iter().map(|(t, v)| (t, v.to_vec())).collect();
    assert_eq!(
        tags,
        vec![
            (Tag::TP_PID, vec![0]),
            (Tag::TP_UDHI, vec![1]),
            (Tag::PK_TOTAL, vec![3]),
            (Tag::PK_NUMBER, vec![2]),
        ]
    );
    // One segment without UDH: segment TLVs removed.
    let single = submits_for(
        &t,
        &[Segment {
            concat: None,
            content: Bytes::from_static(b"hi"),
        }],
    );
    assert_eq!(single[0].tlvs.iter().count(), 1);
    assert!(!single[0].udhi());
}

#[test]
fn submits_for_with_text_split() {
    let long = "长短信测试".repeat(30);
    let segs = text::split(
        &long,
        DataCoding::UCS2,
        Family::Smgp,
        ConcatRef::Eight(0x2a),
    )
    .unwrap();
    let subs = submits_for(&submit_template(), &segs);
    let f = framer();
    for (i, s) in subs.iter().enumerate() {
        let wire = f.to_bytes(10 + i as u32, &Pdu::Submit(s.clone())).unwrap();
        assert_eq!(
            &wire[..],
            &load(&format!("3.0/submit.long_seg{}.hex", i + 1))[..]
        );
    }
    let joined: String = subs.iter().map(Submit::text).collect();
    assert_eq!(joined, long);
}

#[test]
fn json_fields() {
    let j = decode_pdu("3.0/submit.ucs2.hex").to_json();
    assert_eq!(j["command"], "Submit");
    assert_eq!(j["command_id"], "0x00000002");
    assert_eq!(j["msg_content"]["text"], "你好，世界");
    assert_eq!(j["msg_content"]["hex"], "4f60597dff0c4e16754c");
    assert_eq!(j["dest_term_ids"][0], "13800138000");

    let j = decode_pdu("3.0/submit.long_seg2.hex").to_json();
    assert_eq!(j["msg_content"]["udh"]["concat"]["reference"], 0x2a);
    assert_eq!(j["msg_content"]["udh"]["concat"]["total"], 3);
    assert_eq!(j["msg_content"]["udh"]["concat"]["seq"], 2);
    assert_eq!(j["tlvs"][2]["name"], "PkNumber");
    assert_eq!(j["tlvs"][2]["value"], 2);

    let j = decode_pdu("3.0/deliver.report.hex").to_json();
    let r = &j["msg_content"]["report"];
    assert_eq!(r["id"]["digits"], "75506112041507000001");
    assert_eq!(r["id"]["smgw_code"], "755061");
    assert_eq!(r["id"]["time"], "12041507");
    assert_eq!(r["id"]["sequence"], "000001");
    assert_eq!(r["stat"], "DELIVRD");
    assert_eq!(j["msg_id"]["sequence"], "000002");

    let j = decode_pdu("3.0/login.hex").to_json();
    assert_eq!(j["timestamp"], "1204150730");
    assert_eq!(j["login_mode"]["name"], "transmit");

    let j = decode_pdu("3.0/submit_resp.system_busy.hex").to_json();
    assert_eq!(j["status"]["class"], "throttled");

    let j = decode_pdu("3.0/deliver.mo_ucs2.hex").to_json();
    assert_eq!(j["tlvs"][0]["name"], "LinkID");
    assert_eq!(j["tlvs"][0]["value"], "LINK0001");
}

#[test]
fn encode_rejects_bad_values() {
    let mut s = submit_template();
    s.msg_content = Bytes::from(vec![0u8; 256]);
    assert!(framer().to_bytes(1, &Pdu::Submit(s)).is_err());
    let mut s = submit_template();
    s.dest_term_ids = (0..101).map(|_| fs("1")).collect();
    assert!(framer().to_bytes(1, &Pdu::Submit(s)).is_err());
    assert!(Login::new("123456789", b"x", LoginMode::SEND, Timestamp(0)).is_err());
}

#[test]
fn protocol_basics() {
    assert_eq!(Smgp.name(), "smgp");
    assert_eq!(Smgp::HEADER_LEN, 12);
    assert_eq!(CommandId::FORWARD.name(), Some("Forward"));
    assert_eq!(
        CommandId::PUSH_UPDATE_SP_ROUTE_RESP.name(),
        Some("Push_Update_SP_Route_Resp")
    );
    assert_eq!(CommandId::SUBMIT.response(), CommandId::SUBMIT_RESP);
    assert_eq!(Tag::SP_DEAL_RESULT.name(), Some("SPDealResult"));
    assert_eq!(
        Status::SP_DAILY_VOLUME_EXCEEDED.class(),
        StatusClass::Throttled
    );
    assert_eq!(Status::TOO_MANY_CONNECTIONS.class(), StatusClass::Retryable);
    assert_eq!(Status(255).class(), StatusClass::Permanent);
    assert_eq!(smgp::VERSION, 0x30);
}

// ---------------------------------------------------------------------------
// Property tests

fn fixed<const N: usize>() -> impl Strategy<Value = FixedStr<N>> {
    proptest::collection::vec(any::<u8>(), 0..=N).prop_map(|v| FixedStr::from_padded(&v))
}

fn tlvs() -> impl Strategy<Value = Tlvs> {
    proptest::collection::vec(
        (
            any::<u16>().prop_filter("not TP_udhi", |t| *t != 2),
            proptest::collection::vec(any::<u8>(), 0..24),
        ),
        0..4,
    )
    .prop_map(|els| {
        els.iter()
            .fold(Tlvs::builder(), |b, (t, v)| b.put(Tag(*t), v))
            .build()
            .unwrap()
    })
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn msg_id() -> impl Strategy<Value = MsgId> {
    any::<[u8; 10]>().prop_map(MsgId)
}

prop_compose! {
    fn login()(client_id in fixed::<8>(), auth in any::<[u8; 16]>(), mode in any::<u8>(),
               ts in any::<u32>(), ver in any::<u8>()) -> Login {
        Login { client_id, authenticator_client: auth, login_mode: LoginMode(mode),
                timestamp: Timestamp(ts), client_version: ver }
    }
}

prop_compose! {
    fn login_resp()(status in any::<u32>(), auth in any::<[u8; 16]>(), ver in any::<u8>()) -> LoginResp {
        LoginResp { status: Status(status), authenticator_server: auth, server_version: ver }
    }
}

prop_compose! {
    fn udh_content()(r in any::<u8>(), total in any::<u8>(), seq in any::<u8>(),
                     rest in proptest::collection::vec(any::<u8>(), 0..100)) -> (Bytes, u8) {
        let mut v = vec![5, 0, 3, r, total, seq];
        v.extend(rest);
        (Bytes::from(v), 1)
    }
}

prop_compose! {
    fn submit()(msg_type in any::<u8>(), need_report in any::<u8>(), priority in any::<u8>(),
                service_id in fixed::<10>(), fee_type in fixed::<2>(), fee_code in fixed::<6>(),
                fixed_fee in fixed::<6>(), fmt in any::<u8>(), valid_time in fixed::<17>(),
                at_time in fixed::<17>(), src in fixed::<21>(), charge in fixed::<21>(),
                dests in proptest::collection::vec(fixed::<21>(), 0..4),
                plain in bytes(140), long in proptest::option::of(udh_content()),
                reserve in any::<[u8; 8]>(), tlvs in tlvs()) -> Submit {
        let (msg_content, tlvs) = match long {
            Some((c, _)) => (c, tlvs.replaced(&[], &[(Tag::TP_UDHI, &[1])])),
            None => (plain, tlvs),
        };
        Submit { msg_type: MsgType(msg_type), need_report, priority, service_id, fee_type,
                 fee_code, fixed_fee, msg_format: DataCoding(fmt), valid_time, at_time,
                 src_term_id: src, charge_term_id: charge,
                 dest_term_ids: SmallVec::from_vec(dests), msg_content, reserve, tlvs }
    }
}

fn labels() -> impl Strategy<Value = ReportLabels> {
    prop_oneof![
        Just(ReportLabels::Lower),
        Just(ReportLabels::Spec),
        Just(ReportLabels::Underscore)
    ]
}

prop_compose! {
    fn report()(id in msg_id(), sub in fixed::<3>(), dlvrd in fixed::<3>(),
                submit_date in fixed::<10>(), done_date in fixed::<10>(), stat in fixed::<7>(),
                err in fixed::<3>(), txt in fixed::<20>(), labels in labels()) -> Report {
        Report { id, sub, dlvrd, submit_date, done_date, stat, err, txt, labels }
    }
}

fn deliver_content() -> impl Strategy<Value = (u8, DeliverContent, Option<u8>)> {
    prop_oneof![
        (prop_oneof![Just(0u8), 2u8..], bytes(140)).prop_map(|(r, b)| (
            r,
            DeliverContent::Message(b),
            None
        )),
        report().prop_map(|r| (1u8, DeliverContent::Report(r), None)),
        udh_content().prop_map(|(c, _)| (0u8, DeliverContent::Message(c), Some(0x40u8))),
    ]
}

prop_compose! {
    fn deliver()(msg_id in msg_id(), (is_report, content, udhi) in deliver_content(),
                 fmt in any::<u8>(), recv in fixed::<14>(), src in fixed::<21>(),
                 dest in fixed::<21>(), reserve in any::<[u8; 8]>(), tlvs in tlvs()) -> Deliver {
        let tlvs = match udhi {
            Some(u) => tlvs.replaced(&[], &[(Tag::TP_UDHI, &[u])]),
            None => tlvs,
        };
        Deliver { msg_id, is_report, msg_format: DataCoding(fmt), recv_time: recv,
                  src_term_id: src, dest_term_id: dest, content, reserve, tlvs }
    }
}

prop_compose! {
    fn query_resp()(query_time in fixed::<8>(), query_type in any::<u8>(), query_code in fixed::<10>(),
                    n in any::<[u32; 8]>(), reserve in any::<[u8; 8]>()) -> QueryResp {
        QueryResp { query_time, query_type, query_code, mt_tl_msg: n[0], mt_tl_usr: n[1],
                    mt_scs: n[2], mt_wt: n[3], mt_fl: n[4], mo_scs: n[5], mo_wt: n[6],
                    mo_fl: n[7], reserve }
    }
}

const MODELED: [u32; 12] = [
    1,
    2,
    3,
    4,
    6,
    7,
    0x8000_0001,
    0x8000_0002,
    0x8000_0003,
    0x8000_0004,
    0x8000_0006,
    0x8000_0007,
];

fn pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![
        login().prop_map(Pdu::Login),
        login_resp().prop_map(Pdu::LoginResp),
        submit().prop_map(Pdu::Submit),
        (msg_id(), any::<u32>()).prop_map(|(m, s)| Pdu::SubmitResp(SubmitResp {
            msg_id: m,
            status: Status(s)
        })),
        deliver().prop_map(Pdu::Deliver),
        (msg_id(), any::<u32>()).prop_map(|(m, s)| Pdu::DeliverResp(DeliverResp {
            msg_id: m,
            status: Status(s)
        })),
        Just(Pdu::ActiveTest),
        Just(Pdu::ActiveTestResp),
        Just(Pdu::Exit),
        Just(Pdu::ExitResp),
        (fixed::<8>(), any::<u8>(), fixed::<10>()).prop_map(|(t, q, c)| Pdu::Query(Query {
            query_time: t,
            query_type: q,
            query_code: c
        })),
        query_resp().prop_map(Pdu::QueryResp),
        (
            any::<u32>().prop_filter("unmodeled id", |c| !MODELED.contains(c)),
            bytes(64)
        )
            .prop_map(|(c, body)| Pdu::Unknown {
                command_id: CommandId(c),
                body
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prop_roundtrip(seq in any::<u32>(), pdu in pdu()) {
        let f = framer();
        let wire = f.to_bytes(seq, &pdu).unwrap();
        let mut buf = BytesMut::from(&wire[..]);
        let got = f.decode(&mut buf).unwrap();
        prop_assert_eq!(got, Some(Inbound::Packet(Packet::new(seq, pdu.clone()))));
        prop_assert!(buf.is_empty());
        let _ = pdu.to_json();
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let f = framer().with_max_len(1024);
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(item)) = f.decode(&mut buf) {
            if let Inbound::Packet(p) = item {
                let _ = p.pdu.to_json();
                if let Pdu::Deliver(d) = &p.pdu {
                    let _ = d.report();
                    let _ = d.text();
                }
            }
        }
        let _ = f.decode_eof(&mut buf);
    }

    #[test]
    fn prop_arbitrary_bodies_never_panic(id in prop::sample::select(MODELED.to_vec()),
                                         body in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(pdu) = Smgp.decode_body(id, Bytes::from(body)) {
            let _ = pdu.to_json();
            // anything that decodes re-encodes and decodes to itself
            let wire = framer().to_bytes(1, &pdu).unwrap();
            let mut buf = BytesMut::from(&wire[..]);
            prop_assert_eq!(framer().decode(&mut buf).unwrap(),
                            Some(Inbound::Packet(Packet::new(1, pdu))));
        }
    }

    #[test]
    fn prop_report_bytes_roundtrip(r in report()) {
        prop_assert_eq!(Report::parse_exact(&r.to_bytes()), Some(r));
    }

    #[test]
    fn prop_msg_id_text(id in msg_id()) {
        prop_assert_eq!(MsgId::from_digits(id.to_string().as_bytes()), Some(id));
    }

    #[test]
    fn prop_msg_id_parts(code in 0u32..1_000_000, time in 0u32..100_000_000, seq in 0u32..1_000_000) {
        let id = MsgId::from_parts(code, time, seq).unwrap();
        prop_assert!(id.is_bcd());
        prop_assert_eq!((id.smgw_code(), id.time(), id.sequence()), (code, time, seq));
        prop_assert_eq!(id.to_string(), format!("{code:06}{time:08}{seq:06}"));
    }
}
