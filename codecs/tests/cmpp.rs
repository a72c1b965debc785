//! CMPP 2.0 / 3.0 codec: golden fixtures, malformed input, authenticators,
//! long messages and property tests. Needs the `tokio-codec` feature (the
//! `json` checks also need `json`).
#![cfg(feature = "tokio-codec")]

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Framed;

use smsgw_codecs::cmpp::*;
use smsgw_codecs::text::{DataCoding, Segment};
use smsgw_codecs::udh::{Concat, ConcatRef, UdhError};
use smsgw_codecs::wire::{FixedStr, Timestamp};
use smsgw_codecs::{DecodeError, FrameError, Framer, Inbound, Packet};

// ---------------------------------------------------------------------------
// fixture loader and the five checks

fn load_hex(path: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let hex: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    hex::decode(hex).unwrap_or_else(|e| panic!("{path}: {e}"))
}

macro_rules! fixture {
    ($p:literal) => {
        load_hex(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/cmpp/",
            $p
        ))
    };
}

fn framer(v: Version) -> Framer<Cmpp> {
    Framer::new(Cmpp::new(v))
}

fn expect_packet(item: Option<Inbound<Cmpp>>) -> Packet<Cmpp> {
    match item {
        Some(Inbound::Packet(p)) => p,
        other => panic!("expected a packet, got {other:?}"),
    }
}

/// The five checks every positive fixture gets.
fn check(v: Version, wire: &[u8], seq: u32, expected: Pdu) {
    let f = framer(v);
    let want = Packet::new(seq, expected.clone());

    // (1) decode equals the expected value
    let mut buf = BytesMut::from(wire);
    let got = expect_packet(f.decode(&mut buf).expect("decode"));
    assert_eq!(got, want, "decoded value");
    assert!(buf.is_empty());

    // (2) encode gives the same bytes
    let enc = f.to_bytes(seq, &expected).expect("encode");
    assert_eq!(hex::encode(&enc), hex::encode(wire), "encoded bytes");

    // (3) split at every offset: Ok(None) until complete
    let mut buf = BytesMut::new();
    for (i, b) in wire.iter().enumerate() {
        assert!(
            f.decode(&mut buf).expect("partial").is_none(),
            "early item at {i}"
        );
        buf.put_u8(*b);
    }
    assert_eq!(expect_packet(f.decode(&mut buf).expect("complete")), want);
    assert!(buf.is_empty());

    // (4) two frames back to back
    let mut buf = BytesMut::from(wire);
    buf.extend_from_slice(wire);
    assert_eq!(expect_packet(f.decode(&mut buf).unwrap()), want);
    assert_eq!(expect_packet(f.decode(&mut buf).unwrap()), want);
    assert!(f.decode(&mut buf).unwrap().is_none());
    assert!(buf.is_empty());

    // (5) through tokio_util's Framed over a duplex pipe, both directions
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (a, mut b) = tokio::io::duplex(8192);
        let mut framed = Framed::new(a, f.clone());
        framed.send(want.clone()).await.expect("send");
        let mut out = vec![0u8; wire.len()];
        b.read_exact(&mut out).await.expect("read");
        assert_eq!(out, wire, "Framed encode");
        b.write_all(wire).await.expect("write");
        let item = framed.next().await.expect("item").expect("frame ok");
        assert_eq!(item, Inbound::Packet(want.clone()));
    });
}

// ---------------------------------------------------------------------------
// expected values

fn fs<const N: usize>(s: &str) -> FixedStr<N> {
    FixedStr::new(s.as_bytes()).expect("fits")
}

const HELLO_UCS2: &[u8] = &[0x4f, 0x60, 0x59, 0x7d, 0xff, 0x0c, 0x4e, 0x16, 0x75, 0x4c];
const SUBMIT_ID: MsgId = MsgId(0xC23C_7780_03E9_0001);
const DELIVER_ID: MsgId = MsgId(0xC23C_87C0_03E9_0002);
const AUTH_SOURCE: [u8; 16] = [
    0xb3, 0x35, 0xa4, 0x7a, 0x2b, 0xd7, 0x74, 0xca, 0xe4, 0x9b, 0xbf, 0x5b, 0xea, 0xf5, 0xf3, 0xf1,
];
const AUTH_ISMG_1: [u8; 16] = [
    0xc8, 0x8b, 0x55, 0xe6, 0x9c, 0xab, 0xdd, 0x15, 0x1d, 0x1d, 0x04, 0xdb, 0x51, 0x1a, 0x36, 0x43,
];
const AUTH_ISMG_4: [u8; 16] = [
    0x55, 0xf9, 0xb9, 0x6a, 0x88, 0x7a, 0xea, 0x82, 0xbe, 0xfe, 0x3e, 0x25, 0xf4, 0x6d, 0x77, 0xb7,
];

fn connect(v: Version) -> Pdu {
    Pdu::Connect(Connect {
        source_addr: fs("901234"),
        authenticator_source: AUTH_SOURCE,
        version: v.wire(),
        timestamp: Timestamp(1204150730),
    })
}

fn connect_resp(v: Version) -> Pdu {
    Pdu::ConnectResp(ConnectResp {
        status: ConnectStatus::OK,
        authenticator_ismg: match v {
            Version::V20 => AUTH_ISMG_1,
            Version::V30 => AUTH_ISMG_4,
        },
        version: v.wire(),
    })
}

/// The vectors' SUBMIT: SP 901234, service TEST, SP pays, UCS2, report wanted.
fn submit_template(v: Version) -> Submit {
    let mut s = Submit {
        registered_delivery: 1,
        service_id: fs("TEST"),
        fee_user_type: 2,
        msg_fmt: DataCoding::UCS2,
        msg_src: fs("901234"),
        fee_type: fs("01"),
        fee_code: fs("000000"),
        src_id: fs("10690001"),
        dest_terminal_ids: [fs("13800138000")].into_iter().collect(),
        ..Submit::default()
    };
    s.normalize(v);
    s
}

fn submit_ucs2(v: Version) -> Pdu {
    Pdu::Submit(Submit {
        msg_content: Bytes::from_static(HELLO_UCS2),
        ..submit_template(v)
    })
}

fn submit_multi(v: Version) -> Pdu {
    let mut s = Submit {
        registered_delivery: 1,
        msg_level: 2,
        service_id: fs("HELP"),
        fee_user_type: 3,
        fee_terminal_id: fs("8613900139000"),
        msg_fmt: DataCoding::ASCII,
        msg_src: fs("901234"),
        fee_type: fs("02"),
        fee_code: fs("10"),
        valid_time: fs("251205150730032+"),
        src_id: fs("1069000188"),
        dest_terminal_ids: [fs("13800138000"), fs("+8613800138001"), fs("8613800138002")]
            .into_iter()
            .collect(),
        msg_content: Bytes::from_static(b"hello world"),
        ..Submit::default()
    };
    s.normalize(v);
    if v == Version::V30 {
        s.dest_terminal_type = Some(1);
        s.link_id = Some(fs("LINK42"));
    }
    Pdu::Submit(s)
}

/// The three UCS2 segments of the vectors' long text, built independently
/// of the text module: "长短信测试" × 30, 67 characters per segment.
fn long_segments() -> Vec<Segment> {
    let text: String = "长短信测试".repeat(30);
    let ucs2: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let chunks: Vec<&[u8]> = ucs2.chunks(134).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let concat = Concat {
                reference: ConcatRef::Eight(0x2a),
                total: 3,
                seq: i as u8 + 1,
            };
            let mut b = BytesMut::new();
            concat.put(&mut b);
            b.extend_from_slice(c);
            Segment {
                concat: Some(concat),
                content: b.freeze(),
            }
        })
        .collect()
}

fn submit_long(v: Version, i: usize) -> Pdu {
    let seg = &long_segments()[i - 1];
    Pdu::Submit(Submit {
        pk_total: 3,
        pk_number: i as u8,
        tp_udhi: 1,
        msg_content: seg.content.clone(),
        ..submit_template(v)
    })
}

fn report(v: Version) -> Report {
    let _ = v;
    Report {
        msg_id: SUBMIT_ID,
        stat: fs("DELIVRD"),
        submit_time: fs("2512041507"),
        done_time: fs("2512041508"),
        dest_terminal_id: fs("13800138000"),
        smsc_sequence: 1,
    }
}

fn deliver_base(v: Version) -> Deliver {
    let mut d = Deliver {
        msg_id: DELIVER_ID,
        dest_id: fs("10690001"),
        service_id: fs("TEST"),
        src_terminal_id: fs("13800138000"),
        ..Deliver::default()
    };
    d.normalize(v);
    d
}

fn deliver_report(v: Version) -> Pdu {
    let mut d = deliver_base(v);
    d.set_report(&report(v), v).expect("report fits");
    Pdu::Deliver(d)
}

fn deliver_mo(v: Version) -> Pdu {
    let mut d = Deliver {
        msg_fmt: DataCoding::UCS2,
        msg_content: Bytes::from_static(HELLO_UCS2),
        ..deliver_base(v)
    };
    if v == Version::V30 {
        d.link_id = Some(fs("LNK0000000000000001"));
    }
    Pdu::Deliver(d)
}

fn deliver_mo_concat(v: Version) -> Pdu {
    Pdu::Deliver(Deliver {
        tp_udhi: 1,
        msg_fmt: DataCoding::UCS2,
        msg_content: Bytes::from_static(&[
            0x05, 0x00, 0x03, 0x2a, 0x02, 0x01, 0x95, 0x7f, 0x77, 0xed,
        ]),
        ..deliver_base(v)
    })
}

fn query() -> Pdu {
    Pdu::Query(Query {
        time: fs("20251204"),
        query_type: 1,
        query_code: fs("TEST"),
        reserve: FixedStr::EMPTY,
    })
}

fn query_resp() -> Pdu {
    Pdu::QueryResp(QueryResp {
        time: fs("20251204"),
        query_type: 1,
        query_code: fs("TEST"),
        mt_tlmsg: 100,
        mt_tlusr: 40,
        mt_scs: 95,
        mt_wt: 3,
        mt_fl: 2,
        mo_scs: 7,
        mo_wt: 0,
        mo_fl: 1,
    })
}

// ---------------------------------------------------------------------------
// one test per positive fixture

macro_rules! fixture_tests {
    ($( $name:ident: $ver:expr, $path:literal, $seq:expr, $pdu:expr; )*) => {$(
        #[test]
        fn $name() {
            check($ver, &fixture!($path), $seq, $pdu);
        }
    )*};
}

use Version::{V20, V30};

fixture_tests! {
    v20_connect: V20, "2.0/connect.hex", 1, connect(V20);
    v20_connect_resp: V20, "2.0/connect_resp.hex", 1, connect_resp(V20);
    v20_connect_resp_auth_failed: V20, "2.0/connect_resp.auth_failed.hex", 1,
        Pdu::ConnectResp(ConnectResp { status: ConnectStatus::AUTH_FAILED, authenticator_ismg: [0; 16], version: 0x20 });
    v20_submit_ucs2: V20, "2.0/submit_ucs2.hex", 2, submit_ucs2(V20);
    v20_submit_multi: V20, "2.0/submit.multi.hex", 30, submit_multi(V20);
    v20_submit_long_1: V20, "2.0/submit_long.1.hex", 10, submit_long(V20, 1);
    v20_submit_long_2: V20, "2.0/submit_long.2.hex", 11, submit_long(V20, 2);
    v20_submit_long_3: V20, "2.0/submit_long.3.hex", 12, submit_long(V20, 3);
    v20_submit_resp: V20, "2.0/submit_resp.hex", 2,
        Pdu::SubmitResp(SubmitResp { msg_id: SUBMIT_ID, result: SubmitResult::OK });
    v20_deliver_status_report: V20, "2.0/deliver_status_report.hex", 7, deliver_report(V20);
    v20_deliver_mo: V20, "2.0/deliver_mo.hex", 8, deliver_mo(V20);
    v20_deliver_mo_concat: V20, "2.0/deliver_mo.concat.hex", 9, deliver_mo_concat(V20);
    v20_deliver_resp: V20, "2.0/deliver_resp.hex", 7,
        Pdu::DeliverResp(DeliverResp { msg_id: DELIVER_ID, result: SubmitResult::OK });
    v20_query: V20, "2.0/query.hex", 20, query();
    v20_query_resp: V20, "2.0/query_resp.hex", 20, query_resp();
    v20_cancel: V20, "2.0/cancel.hex", 21, Pdu::Cancel(Cancel { msg_id: SUBMIT_ID });
    v20_cancel_resp: V20, "2.0/cancel_resp.hex", 21, Pdu::CancelResp(CancelResp { success_id: 1 });
    v20_active_test: V20, "2.0/active_test.hex", 3, Pdu::ActiveTest;
    v20_active_test_resp: V20, "2.0/active_test_resp.hex", 3, Pdu::ActiveTestResp(ActiveTestResp { reserved: Some(0) });
    v20_active_test_resp_no_body: V20, "2.0/active_test_resp.no_body.hex", 3, Pdu::ActiveTestResp(ActiveTestResp { reserved: None });
    v20_terminate: V20, "2.0/terminate.hex", 4, Pdu::Terminate;
    v20_terminate_resp: V20, "2.0/terminate_resp.hex", 4, Pdu::TerminateResp;

    v30_connect: V30, "3.0/connect.hex", 1, connect(V30);
    v30_connect_resp: V30, "3.0/connect_resp.hex", 1, connect_resp(V30);
    v30_connect_resp_auth_failed: V30, "3.0/connect_resp.auth_failed.hex", 1,
        Pdu::ConnectResp(ConnectResp { status: ConnectStatus::AUTH_FAILED, authenticator_ismg: [0; 16], version: 0x30 });
    v30_submit_ucs2: V30, "3.0/submit_ucs2.hex", 2, submit_ucs2(V30);
    v30_submit_multi: V30, "3.0/submit.multi.hex", 30, submit_multi(V30);
    v30_submit_long_1: V30, "3.0/submit_long.1.hex", 10, submit_long(V30, 1);
    v30_submit_long_2: V30, "3.0/submit_long.2.hex", 11, submit_long(V30, 2);
    v30_submit_long_3: V30, "3.0/submit_long.3.hex", 12, submit_long(V30, 3);
    v30_submit_resp: V30, "3.0/submit_resp.hex", 2,
        Pdu::SubmitResp(SubmitResp { msg_id: SUBMIT_ID, result: SubmitResult::OK });
    v30_deliver_status_report: V30, "3.0/deliver_status_report.hex", 7, deliver_report(V30);
    v30_deliver_mo: V30, "3.0/deliver_mo.hex", 8, deliver_mo(V30);
    v30_deliver_mo_concat: V30, "3.0/deliver_mo.concat.hex", 9, deliver_mo_concat(V30);
    v30_deliver_resp: V30, "3.0/deliver_resp.hex", 7,
        Pdu::DeliverResp(DeliverResp { msg_id: DELIVER_ID, result: SubmitResult::OK });
    v30_query: V30, "3.0/query.hex", 20, query();
    v30_query_resp: V30, "3.0/query_resp.hex", 20, query_resp();
    v30_cancel: V30, "3.0/cancel.hex", 21, Pdu::Cancel(Cancel { msg_id: SUBMIT_ID });
    v30_cancel_resp: V30, "3.0/cancel_resp.hex", 21, Pdu::CancelResp(CancelResp { success_id: 1 });
    v30_active_test: V30, "3.0/active_test.hex", 3, Pdu::ActiveTest;
    v30_active_test_resp: V30, "3.0/active_test_resp.hex", 3, Pdu::ActiveTestResp(ActiveTestResp { reserved: Some(0) });
    v30_active_test_resp_no_body: V30, "3.0/active_test_resp.no_body.hex", 3, Pdu::ActiveTestResp(ActiveTestResp { reserved: None });
    v30_terminate: V30, "3.0/terminate.hex", 4, Pdu::Terminate;
    v30_terminate_resp: V30, "3.0/terminate_resp.hex", 4, Pdu::TerminateResp;
}

// ---------------------------------------------------------------------------
// malformed fixtures

fn decode_one(wire: &[u8]) -> Result<Option<Inbound<Cmpp>>, FrameError> {
    framer(V30).decode(&mut BytesMut::from(wire))
}

fn malformed_error(wire: &[u8]) -> DecodeError {
    match decode_one(wire) {
        Ok(Some(Inbound::Malformed { error, frame, .. })) => {
            assert_eq!(&frame[..], wire, "the whole frame is kept");
            error
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn malformed_len_zero() {
    assert!(matches!(
        decode_one(&fixture!("malformed/len_zero.hex")),
        Err(FrameError::FrameTooShort {
            len: 0,
            min: 12,
            ..
        })
    ));
}

#[test]
fn malformed_len_short() {
    assert!(matches!(
        decode_one(&fixture!("malformed/len_short.hex")),
        Err(FrameError::FrameTooShort {
            len: 11,
            min: 12,
            ..
        })
    ));
}

#[test]
fn malformed_len_huge() {
    assert!(matches!(
        decode_one(&fixture!("malformed/len_huge.hex")),
        Err(FrameError::FrameTooLarge {
            len: 0x0010_0000,
            max: 4096,
            ..
        })
    ));
}

#[test]
fn malformed_unknown_command_survives() {
    let wire = fixture!("malformed/unknown_command.hex");
    let item = decode_one(&wire).unwrap();
    assert!(matches!(
        &item,
        Some(Inbound::Packet(Packet { seq: 5, pdu: Pdu::Unknown { command_id: CommandId(0x99), body } }))
            if &body[..] == b"\xab\xcd"
    ));
    // and re-encodes byte for byte
    let Some(Inbound::Packet(p)) = item else {
        unreachable!()
    };
    assert_eq!(&framer(V30).to_bytes(p.seq, &p.pdu).unwrap()[..], &wire[..]);
}

#[test]
fn malformed_truncated_body() {
    let e = malformed_error(&fixture!("malformed/truncated_body.hex"));
    assert!(
        matches!(
            e,
            DecodeError::Truncated {
                pdu: "CMPP_SUBMIT",
                field: "Msg_Content",
                offset: 163
            }
        ),
        "{e:?}"
    );
}

#[test]
fn malformed_bad_udh() {
    let e = malformed_error(&fixture!("malformed/bad_udh.hex"));
    assert!(
        matches!(
            e,
            DecodeError::Udh(UdhError::HeaderTooLong {
                udhl: 5,
                content: 4
            })
        ),
        "{e:?}"
    );
}

#[test]
fn malformed_trailing_bytes() {
    let e = malformed_error(&fixture!("malformed/trailing_bytes.hex"));
    assert!(
        matches!(
            e,
            DecodeError::TrailingBytes {
                pdu: "CMPP_ACTIVE_TEST_RESP",
                offset: 1,
                extra: 3
            }
        ),
        "{e:?}"
    );
}

#[test]
fn malformed_submit_resp_short() {
    let e = malformed_error(&fixture!("malformed/submit_resp_short.hex"));
    assert!(
        matches!(
            e,
            DecodeError::Truncated {
                pdu: "CMPP_SUBMIT_RESP",
                field: "Result",
                offset: 8
            }
        ),
        "{e:?}"
    );
}

#[test]
fn eof_inside_a_frame() {
    let wire = fixture!("3.0/submit_ucs2.hex");
    let mut buf = BytesMut::from(&wire[..50]);
    assert!(matches!(
        framer(V30).decode_eof(&mut buf),
        Err(FrameError::Eof {
            have: 50,
            need: 205,
            ..
        })
    ));
}

// ---------------------------------------------------------------------------
// authenticators (vectors.json "derived")

#[test]
fn authenticators_match_derived_vectors() {
    let ts = Timestamp(1204150730);
    assert_eq!(authenticator_source("901234", b"secret", ts), AUTH_SOURCE);
    assert_eq!(
        authenticator_ismg(V20, ConnectStatus::OK, &AUTH_SOURCE, b"secret"),
        AUTH_ISMG_1
    );
    assert_eq!(
        authenticator_ismg(V30, ConnectStatus::OK, &AUTH_SOURCE, b"secret"),
        AUTH_ISMG_4
    );
    assert_eq!(
        authenticator_ismg_4byte(ConnectStatus::OK, &AUTH_SOURCE, b"secret"),
        AUTH_ISMG_4
    );
    for v in [V20, V30] {
        let Pdu::Connect(c) = connect(v) else {
            unreachable!()
        };
        assert!(c.verify(b"secret"));
        assert!(!c.verify(b"secreT"));
        assert_eq!(Connect::new("901234", b"secret", v, ts).unwrap(), c);
        assert_eq!(c.layout(), v);
        let Pdu::ConnectResp(r) = connect_resp(v) else {
            unreachable!()
        };
        assert!(r.verify(v, &AUTH_SOURCE, b"secret"));
        assert!(!r.verify(v, &AUTH_SOURCE, b"other"));
        assert_eq!(
            ConnectResp::new(v, ConnectStatus::OK, &AUTH_SOURCE, b"secret", v.wire()),
            r
        );
    }
    // SMSGate's 4-byte variant is accepted on a 2.0 link too
    let smsgate = ConnectResp {
        status: ConnectStatus::OK,
        authenticator_ismg: AUTH_ISMG_4,
        version: 0x20,
    };
    assert!(smsgate.verify(V20, &AUTH_SOURCE, b"secret"));
    // a failed login carries a zero authenticator
    let failed = ConnectResp::new(
        V30,
        ConnectStatus::AUTH_FAILED,
        &AUTH_SOURCE,
        b"secret",
        0x30,
    );
    assert_eq!(failed.authenticator_ismg, [0; 16]);
    assert_eq!(Timestamp(101120000).digits(), *b"0101120000");
}

#[test]
fn msg_id_derived_vectors() {
    let id = MsgId::new(12, 4, 15, 7, 30, 1001, 1);
    assert_eq!(id, SUBMIT_ID);
    assert_eq!(id.0, 13996193133665779713);
    let d = MsgId::new(12, 4, 15, 8, 31, 1001, 2);
    assert_eq!(d, DELIVER_ID);
    assert_eq!(d.0, 13996211000729731074);
    assert_eq!(
        (
            d.month(),
            d.day(),
            d.hour(),
            d.minute(),
            d.second(),
            d.gateway(),
            d.sequence()
        ),
        (12, 4, 15, 8, 31, 1001, 2)
    );
}

// ---------------------------------------------------------------------------
// reports, long messages, accessors

#[test]
fn status_reports_parse_in_both_layouts() {
    for v in [V20, V30] {
        let Pdu::Deliver(d) = deliver_report(v) else {
            unreachable!()
        };
        assert_eq!(d.msg_content.len(), v.report_len());
        let r = d.report(v).unwrap().unwrap();
        assert_eq!(r, report(v));
        assert_eq!(r.outcome(), ReportOutcome::Delivered);
        // a report in the other version's layout is still read (by length)
        assert_eq!(d.report(v.other()).unwrap().unwrap(), r);
        assert_eq!(d.udh(), Ok(None));
    }
    let Pdu::Deliver(mo) = deliver_mo(V30) else {
        unreachable!()
    };
    assert_eq!(mo.report(V30), Ok(None));
    assert_eq!(mo.text(), "你好，世界");
    let mut bad = deliver_base(V30);
    bad.registered_delivery = 1;
    bad.msg_content = Bytes::from_static(b"short");
    assert!(matches!(
        bad.report(V30),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn deliver_concat_accessors() {
    let Pdu::Deliver(d) = deliver_mo_concat(V30) else {
        unreachable!()
    };
    let h = d.udh().unwrap().unwrap();
    assert_eq!(
        h.concat,
        Some(Concat {
            reference: ConcatRef::Eight(0x2a),
            total: 2,
            seq: 1
        })
    );
    assert_eq!(d.user_data(), &[0x95, 0x7f, 0x77, 0xed]);
    assert_eq!(d.text(), "长短");
    // TP_udhi 0x40 (SMPP habit) counts too
    let mut d40 = d.clone();
    d40.tp_udhi = 0x40;
    assert_eq!(d40.udh().unwrap().unwrap().header_len, 6);
}

#[test]
fn long_submit_matches_vectors_byte_for_byte() {
    let wires = [
        [
            fixture!("2.0/submit_long.1.hex"),
            fixture!("2.0/submit_long.2.hex"),
            fixture!("2.0/submit_long.3.hex"),
        ],
        [
            fixture!("3.0/submit_long.1.hex"),
            fixture!("3.0/submit_long.2.hex"),
            fixture!("3.0/submit_long.3.hex"),
        ],
    ];
    for (v, wires) in [V20, V30].into_iter().zip(wires) {
        let f = framer(v);
        let subs = submits_for(&submit_template(v), &long_segments());
        assert_eq!(subs.len(), 3);
        for (i, (s, wire)) in subs.iter().zip(&wires).enumerate() {
            let enc = f.to_bytes(10 + i as u32, &Pdu::Submit(s.clone())).unwrap();
            assert_eq!(
                hex::encode(&enc),
                hex::encode(wire),
                "{v:?} segment {}",
                i + 1
            );
            assert_eq!(s.udh().unwrap().unwrap().concat.unwrap().seq, i as u8 + 1);
        }
        // the same through the text module's splitter
        let text = "长短信测试".repeat(30);
        let mut template = submit_template(v);
        template.msg_fmt = DataCoding::ASCII;
        let via_text =
            submits_for_text(&template, &text, DataCoding::UCS2, ConcatRef::Eight(0x2a)).unwrap();
        assert_eq!(via_text, subs);
    }
    // a single segment keeps TP_udhi 0 and Pk 1/1
    let one = submits_for(
        &submit_template(V30),
        &[Segment {
            concat: None,
            content: Bytes::from_static(HELLO_UCS2),
        }],
    );
    assert_eq!(
        one,
        vec![match submit_ucs2(V30) {
            Pdu::Submit(s) => s,
            _ => unreachable!(),
        }]
    );
}

#[test]
fn encode_errors() {
    let f = framer(V20);
    // a 22-byte terminal id fits 3.0 but not 2.0
    let mut s = submit_template(V20);
    s.dest_terminal_ids = [fs("1234567890123456789012")].into_iter().collect();
    assert!(matches!(
        f.to_bytes(1, &Pdu::Submit(s.clone())),
        Err(smsgw_codecs::EncodeError::TooLong {
            field: "Dest_terminal_Id",
            len: 22,
            max: 21,
            ..
        })
    ));
    assert!(framer(V30).to_bytes(1, &Pdu::Submit(s.clone())).is_ok());
    // recipients: 1..=100
    s.dest_terminal_ids.clear();
    assert!(matches!(
        f.to_bytes(1, &Pdu::Submit(s.clone())),
        Err(smsgw_codecs::EncodeError::Invalid {
            field: "DestUsr_tl",
            ..
        })
    ));
    s.dest_terminal_ids = (0..100).map(|i| fs(&format!("138{i:08}"))).collect();
    let wire = framer(V30).to_bytes(1, &Pdu::Submit(s.clone())).unwrap();
    assert_eq!(wire.len(), 163 + 32 * 100);
    s.dest_terminal_ids.push(fs("13800000000"));
    assert!(framer(V30).to_bytes(1, &Pdu::Submit(s.clone())).is_err());
    // content over 255 bytes
    let mut s = submit_template(V30);
    s.msg_content = Bytes::from(vec![b'a'; 256]);
    assert!(framer(V30).to_bytes(1, &Pdu::Submit(s)).is_err());
    // 1-byte Result in 2.0
    let r = Pdu::SubmitResp(SubmitResp {
        msg_id: SUBMIT_ID,
        result: SubmitResult(300),
    });
    assert!(f.to_bytes(1, &r).is_err());
    assert!(framer(V30).to_bytes(1, &r).is_ok());
}

#[test]
fn responses_in_the_other_layout_are_read_by_length() {
    // a 3.0 client reading a 2.0 CONNECT_RESP (30 bytes) and vice versa
    let p = expect_packet(
        framer(V30)
            .decode(&mut BytesMut::from(&fixture!("2.0/connect_resp.hex")[..]))
            .unwrap(),
    );
    assert_eq!(p.pdu, connect_resp(V20));
    let p = expect_packet(
        framer(V20)
            .decode(&mut BytesMut::from(&fixture!("3.0/submit_resp.hex")[..]))
            .unwrap(),
    );
    assert_eq!(
        p.pdu,
        Pdu::SubmitResp(SubmitResp {
            msg_id: SUBMIT_ID,
            result: SubmitResult::OK
        })
    );
}

#[test]
fn protocol_names_and_versions() {
    use smsgw_codecs::Protocol;
    assert_eq!(Cmpp::V20.name(), "cmpp2");
    assert_eq!(Cmpp::V30.name(), "cmpp3");
    assert_eq!(<Cmpp as Protocol>::HEADER_LEN, 12);
    assert_eq!(Version::from_wire(0x21), V20);
    assert_eq!(Version::from_wire(0x30), V30);
    assert_eq!(submit_ucs2(V30).name(), "CMPP_SUBMIT");
    assert!(connect_resp(V30).is_response());
}

#[cfg(feature = "json")]
#[test]
fn json_output() {
    let j = submit_ucs2(V30).to_json();
    assert_eq!(j["command"], "CMPP_SUBMIT");
    assert_eq!(j["command_id"], "0x00000004");
    assert_eq!(j["Msg_Content"]["text"], "你好，世界");
    assert_eq!(j["Msg_Content"]["hex"], "4f60597dff0c4e16754c");
    assert_eq!(j["Dest_terminal_Id"][0], "13800138000");
    assert_eq!(j["Fee_terminal_type"], 0);
    assert!(j["Reserve"].is_null());
    let j = submit_long(V20, 2).to_json();
    assert_eq!(j["Msg_Content"]["udh"]["concat"]["reference"], 42);
    assert_eq!(j["Msg_Content"]["udh"]["concat"]["total"], 3);
    assert_eq!(j["Msg_Content"]["udh"]["concat"]["seq"], 2);
    let j = deliver_report(V20).to_json();
    assert_eq!(j["Msg_Id"]["sequence"], 2);
    assert_eq!(j["Msg_Content"]["Stat"], "DELIVRD");
    assert_eq!(j["Msg_Content"]["Msg_Id"]["u64"], 13996193133665779713u64);
    assert_eq!(j["Msg_Content"]["Msg_Id"]["hex"], "C23C778003E90001");
    assert_eq!(j["Msg_Content"]["Dest_terminal_Id"], "13800138000");
    let j = Pdu::SubmitResp(SubmitResp {
        msg_id: SUBMIT_ID,
        result: SubmitResult::FLOW_CONTROL,
    })
    .to_json();
    assert_eq!(j["result_class"], "throttled");
    assert_eq!(j["Msg_Id"]["gateway"], 1001);
    let j = connect(V30).to_json();
    assert_eq!(j["AuthenticatorSource"], "b335a47a2bd774cae49bbf5beaf5f3f1");
    assert_eq!(j["timestamp_digits"], "1204150730");
    let mut bad = deliver_base(V30);
    bad.tp_udhi = 1;
    bad.msg_content = Bytes::from_static(&[0x05, 0x00]);
    let j = Pdu::Deliver(bad).to_json();
    assert!(j["Msg_Content"]["udh_error"].is_string());
}

// ---------------------------------------------------------------------------
// property tests

fn arb_fixed<const N: usize>(width: usize) -> impl Strategy<Value = FixedStr<N>> {
    proptest::collection::vec(any::<u8>(), 0..=width).prop_map(|v| FixedStr::from_padded(&v))
}

fn arb_msg_id() -> impl Strategy<Value = MsgId> {
    any::<u64>().prop_map(MsgId)
}

fn arb_result(v: Version) -> BoxedStrategy<u32> {
    match v {
        V20 => (0u32..=255).boxed(),
        V30 => any::<u32>().boxed(),
    }
}

/// (TP_udhi, Msg_Content): with a valid concat UDH when TP_udhi is set.
fn arb_sm() -> impl Strategy<Value = (u8, Bytes)> {
    prop_oneof![
        (
            prop_oneof![Just(0u8), Just(2u8), Just(0x80u8)],
            proptest::collection::vec(any::<u8>(), 0..=200)
        )
            .prop_map(|(u, c)| (u, Bytes::from(c))),
        (
            prop_oneof![Just(1u8), Just(0x40u8)],
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
            any::<(u8, u8)>(),
            proptest::collection::vec(any::<u8>(), 0..=130)
        )
            .prop_map(|(u, r8, r16, wide, (total, seq), text)| {
                let reference = if wide {
                    ConcatRef::Sixteen(r16)
                } else {
                    ConcatRef::Eight(r8)
                };
                let mut b = BytesMut::new();
                Concat {
                    reference,
                    total,
                    seq,
                }
                .put(&mut b);
                b.extend_from_slice(&text);
                (u, b.freeze())
            }),
    ]
}

fn opt_v30<T: std::fmt::Debug + Clone + 'static>(
    v: Version,
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    match v {
        V30 => s.prop_map(Some).boxed(),
        V20 => Just(None).boxed(),
    }
}

fn opt_v20<T: std::fmt::Debug + Clone + 'static>(
    v: Version,
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    match v {
        V20 => s.prop_map(Some).boxed(),
        V30 => Just(None).boxed(),
    }
}

prop_compose! {
    fn arb_connect()(source_addr in arb_fixed(6), authenticator_source in any::<[u8; 16]>(),
                     version in any::<u8>(), ts in any::<u32>()) -> Pdu {
        Pdu::Connect(Connect { source_addr, authenticator_source, version, timestamp: Timestamp(ts) })
    }
}

prop_compose! {
    fn arb_connect_resp(v: Version)(status in arb_result(v), authenticator_ismg in any::<[u8; 16]>(),
                                    version in any::<u8>()) -> Pdu {
        Pdu::ConnectResp(ConnectResp { status: ConnectStatus(status), authenticator_ismg, version })
    }
}

prop_compose! {
    fn arb_submit(v: Version)(
        (msg_id, pk_total, pk_number, registered_delivery, msg_level, fee_user_type, tp_pid, msg_fmt)
            in (arb_msg_id(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()),
        (service_id, fee_terminal_id, msg_src, fee_type, fee_code, valid_time, at_time, src_id)
            in (arb_fixed(10), arb_fixed(v.terminal_id_len()), arb_fixed(6), arb_fixed(2), arb_fixed(6),
                arb_fixed(17), arb_fixed(17), arb_fixed(21)),
        dests in proptest::collection::vec(arb_fixed::<32>(v.terminal_id_len()), 1..=5),
        (tp_udhi, msg_content) in arb_sm(),
        (fee_terminal_type, dest_terminal_type, link_id, reserve)
            in (opt_v30(v, any::<u8>()), opt_v30(v, any::<u8>()), opt_v30(v, arb_fixed::<20>(20)), opt_v20(v, arb_fixed::<8>(8))),
    ) -> Pdu {
        Pdu::Submit(Submit {
            msg_id, pk_total, pk_number, registered_delivery, msg_level, service_id, fee_user_type,
            fee_terminal_id, fee_terminal_type, tp_pid, tp_udhi, msg_fmt: DataCoding(msg_fmt), msg_src,
            fee_type, fee_code, valid_time, at_time, src_id, dest_terminal_ids: dests.into_iter().collect(),
            dest_terminal_type, msg_content, reserve, link_id,
        })
    }
}

prop_compose! {
    fn arb_submit_resp(v: Version)(msg_id in arb_msg_id(), result in arb_result(v)) -> Pdu {
        Pdu::SubmitResp(SubmitResp { msg_id, result: SubmitResult(result) })
    }
}

prop_compose! {
    fn arb_deliver(v: Version)(
        (msg_id, dest_id, service_id, tp_pid, msg_fmt, src_terminal_id, registered_delivery)
            in (arb_msg_id(), arb_fixed(21), arb_fixed(10), any::<u8>(), any::<u8>(),
                arb_fixed(v.terminal_id_len()), prop_oneof![Just(0u8), Just(1u8), any::<u8>()]),
        (tp_udhi, msg_content) in arb_sm(),
        (src_terminal_type, link_id, reserved)
            in (opt_v30(v, any::<u8>()), opt_v30(v, arb_fixed::<20>(20)), opt_v20(v, arb_fixed::<8>(8))),
    ) -> Pdu {
        Pdu::Deliver(Deliver {
            msg_id, dest_id, service_id, tp_pid, tp_udhi, msg_fmt: DataCoding(msg_fmt), src_terminal_id,
            src_terminal_type, registered_delivery, msg_content, reserved, link_id,
        })
    }
}

prop_compose! {
    fn arb_report_deliver(v: Version)(
        base in arb_deliver(v),
        (msg_id, stat, submit_time, done_time, dest_terminal_id, smsc_sequence)
            in (arb_msg_id(), arb_fixed(7), arb_fixed(10), arb_fixed(10), arb_fixed(v.terminal_id_len()), any::<u32>()),
    ) -> (Pdu, Report) {
        let report = Report { msg_id, stat, submit_time, done_time, dest_terminal_id, smsc_sequence };
        let Pdu::Deliver(mut d) = base else { unreachable!() };
        d.set_report(&report, v).expect("fits");
        (Pdu::Deliver(d), report)
    }
}

prop_compose! {
    fn arb_deliver_resp(v: Version)(msg_id in arb_msg_id(), result in arb_result(v)) -> Pdu {
        Pdu::DeliverResp(DeliverResp { msg_id, result: SubmitResult(result) })
    }
}

prop_compose! {
    fn arb_query()(time in arb_fixed(8), query_type in any::<u8>(), query_code in arb_fixed(10),
                   reserve in arb_fixed(8)) -> Pdu {
        Pdu::Query(Query { time, query_type, query_code, reserve })
    }
}

prop_compose! {
    fn arb_query_resp()(time in arb_fixed(8), query_type in any::<u8>(), query_code in arb_fixed(10),
                        c in any::<[u32; 8]>()) -> Pdu {
        Pdu::QueryResp(QueryResp {
            time, query_type, query_code, mt_tlmsg: c[0], mt_tlusr: c[1], mt_scs: c[2], mt_wt: c[3],
            mt_fl: c[4], mo_scs: c[5], mo_wt: c[6], mo_fl: c[7],
        })
    }
}

prop_compose! {
    fn arb_cancel()(msg_id in arb_msg_id()) -> Pdu { Pdu::Cancel(Cancel { msg_id }) }
}

prop_compose! {
    fn arb_cancel_resp(v: Version)(success_id in arb_result(v)) -> Pdu {
        Pdu::CancelResp(CancelResp { success_id })
    }
}

prop_compose! {
    fn arb_active_test_resp()(reserved in proptest::option::of(any::<u8>())) -> Pdu {
        Pdu::ActiveTestResp(ActiveTestResp { reserved })
    }
}

prop_compose! {
    fn arb_unknown()(id in any::<u32>().prop_filter("not a decoded command", |id| {
                         !matches!(id & 0x7fff_ffff, 1 | 2 | 4..=8)
                     }),
                     body in proptest::collection::vec(any::<u8>(), 0..64)) -> Pdu {
        Pdu::Unknown { command_id: CommandId(id), body: Bytes::from(body) }
    }
}

fn arb_pdu(v: Version) -> impl Strategy<Value = Pdu> {
    prop::strategy::Union::new(vec![
        arb_connect().boxed(),
        arb_connect_resp(v).boxed(),
        Just(Pdu::Terminate).boxed(),
        Just(Pdu::TerminateResp).boxed(),
        arb_submit(v).boxed(),
        arb_submit_resp(v).boxed(),
        arb_deliver(v).boxed(),
        arb_report_deliver(v).prop_map(|(p, _)| p).boxed(),
        arb_deliver_resp(v).boxed(),
        arb_query().boxed(),
        arb_query_resp().boxed(),
        arb_cancel().boxed(),
        arb_cancel_resp(v).boxed(),
        Just(Pdu::ActiveTest).boxed(),
        arb_active_test_resp().boxed(),
        arb_unknown().boxed(),
    ])
}

fn roundtrip(v: Version, seq: u32, pdu: &Pdu) -> Result<(), TestCaseError> {
    let f = framer(v);
    let wire = f
        .to_bytes(seq, pdu)
        .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    let mut buf = BytesMut::from(&wire[..]);
    match f.decode(&mut buf) {
        Ok(Some(Inbound::Packet(p))) => {
            prop_assert_eq!(p.seq, seq);
            prop_assert_eq!(&p.pdu, pdu);
        }
        other => return Err(TestCaseError::fail(format!("decode: {other:?}"))),
    }
    prop_assert!(buf.is_empty());
    Ok(())
}

const KNOWN_IDS: [u32; 14] = [
    0x1,
    0x8000_0001,
    0x2,
    0x8000_0002,
    0x4,
    0x8000_0004,
    0x5,
    0x8000_0005,
    0x6,
    0x8000_0006,
    0x7,
    0x8000_0007,
    0x8,
    0x8000_0008,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn prop_roundtrip_v20(pdu in arb_pdu(V20), seq in any::<u32>()) {
        roundtrip(V20, seq, &pdu)?;
    }

    #[test]
    fn prop_roundtrip_v30(pdu in arb_pdu(V30), seq in any::<u32>()) {
        roundtrip(V30, seq, &pdu)?;
    }

    #[test]
    fn prop_report_roundtrip(v in prop_oneof![Just(V20), Just(V30)],
                             (pdu, report) in arb_report_deliver(V20)) {
        let Pdu::Deliver(mut d) = pdu else { unreachable!() };
        d.set_report(&report, v).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(d.report(v), Ok(Some(report)));
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        for v in [V20, V30] {
            let f = framer(v);
            let mut buf = BytesMut::from(&data[..]);
            while let Ok(Some(item)) = f.decode(&mut buf) {
                if let Inbound::Packet(p) = item {
                    #[cfg(feature = "json")]
                    let _ = p.pdu.to_json();
                    let _ = f.to_bytes(p.seq, &p.pdu);
                }
            }
            let _ = f.decode_eof(&mut buf);
        }
    }

    #[test]
    fn prop_random_bodies_never_panic(idx in 0..KNOWN_IDS.len(), seq in any::<u32>(),
                                      body in proptest::collection::vec(any::<u8>(), 0..400)) {
        for v in [V20, V30] {
            let f = framer(v);
            let mut buf = BytesMut::new();
            buf.put_u32(12 + body.len() as u32);
            buf.put_u32(KNOWN_IDS[idx]);
            buf.put_u32(seq);
            buf.extend_from_slice(&body);
            match f.decode(&mut buf) {
                Ok(Some(Inbound::Packet(p))) => {
                    #[cfg(feature = "json")]
                    let _ = p.pdu.to_json();
                    if let Pdu::Deliver(d) = &p.pdu {
                        let _ = d.report(v);
                        let _ = d.text();
                    }
                }
                Ok(Some(Inbound::Malformed { .. })) => {}
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }
}
