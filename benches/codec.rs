//! Codec benchmarks: per-PDU decode and encode time of the hot PDUs of each
//! protocol, plus the `smpp34` crate's `submit_sm` as a comparator in the
//! same binary.
//!
//! Run: `cargo bench --bench codec -- --warm-up-time 1 --measurement-time 3`
//! (filter with a regex, e.g. `-- 'cmpp3_submit|smpp34_submit_sm'`).
//!
//! Every group reports `Throughput::Elements(1)`, so criterion prints
//! PDUs/s next to the time per PDU.
//!
//! Fairness rules, applied to both sides of the comparison:
//! * decode refills a reused buffer from a template with `extend_from_slice`
//!   each iteration (one 190–340-byte memcpy on each side), frames it, checks
//!   the declared length, dispatches on the command id, decodes, and drops
//!   the decoded value inside the timed loop (a real consumer pays for that).
//! * encode writes a whole frame (header included) from a prepared value.
//!   Ours appends to a reused `BytesMut` cleared each iteration (the API is
//!   built for that). `smpp34`'s `encode(self) -> Vec<u8>` consumes the PDU,
//!   so its input is cloned in the untimed `iter_batched` setup, and the
//!   returned `Vec` is dropped outside the timing: only its own encode is
//!   measured.
//!
//! The payload is the same everywhere: 70 CJK characters as UCS2 (Msg_Fmt /
//! data_coding 8), 140 bytes, to one recipient, delivery report requested.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use smsgw_codecs::cmpp::{self, Cmpp, Version};
use smsgw_codecs::sgip::{self, SeqNo, Sgip};
use smsgw_codecs::smgp::{self, Smgp};
use smsgw_codecs::text::{self, DataCoding};
use smsgw_codecs::wire::{FixedStr, Timestamp};
use smsgw_codecs::{Framer, Inbound, Packet, Protocol};

/// The one recipient of every submit.
const RECIPIENT: &str = "13800138000";
/// The sender (SP access number) of every submit.
const SENDER: &str = "10690001";
/// Largest frame either side accepts (ours: `DEFAULT_MAX_FRAME_LEN`).
const MAX_FRAME: usize = smsgw_codecs::DEFAULT_MAX_FRAME_LEN;

/// 70 characters of UCS2: exactly one full 140-byte short message.
fn ucs2_payload() -> Bytes {
    let text: String = "短信网关性能基准测试，".chars().cycle().take(70).collect();
    let bytes = text::encode(&text, DataCoding::UCS2).expect("UCS2 never fails");
    assert_eq!(bytes.len(), 140);
    Bytes::from(bytes)
}

fn fixed<const N: usize>(s: &str) -> FixedStr<N> {
    FixedStr::new(s.as_bytes()).expect("fits")
}

fn cmpp3_submit(payload: &Bytes) -> cmpp::Pdu {
    let mut s = cmpp::Submit {
        registered_delivery: 1,
        service_id: fixed("TEST"),
        msg_fmt: DataCoding::UCS2,
        msg_src: fixed("901234"),
        fee_type: fixed("01"),
        fee_code: fixed("000000"),
        src_id: fixed(SENDER),
        dest_terminal_ids: [fixed(RECIPIENT)].into_iter().collect(),
        msg_content: payload.clone(),
        ..Default::default()
    };
    s.normalize(Version::V30);
    cmpp::Pdu::Submit(s)
}

fn smgp_submit(payload: &Bytes) -> smgp::Pdu {
    smgp::Pdu::Submit(smgp::Submit {
        need_report: 1,
        priority: 1,
        service_id: fixed("TEST"),
        fee_type: fixed("01"),
        fee_code: fixed("000000"),
        fixed_fee: fixed("000000"),
        msg_format: DataCoding::UCS2,
        src_term_id: fixed(SENDER),
        dest_term_ids: [fixed(RECIPIENT)].into_iter().collect(),
        msg_content: payload.clone(),
        ..Default::default()
    })
}

fn sgip_submit(payload: &Bytes) -> sgip::Pdu {
    sgip::Pdu::Submit(sgip::Submit {
        sp_number: fixed(SENDER),
        charge_number: fixed("000000000000000000000"),
        user_numbers: [fixed("8613800138000")].into_iter().collect(),
        corp_id: fixed("12345"),
        service_type: fixed("TEST"),
        fee_type: sgip::FeeType::FREE,
        fee_value: fixed("0"),
        given_value: fixed("0"),
        report_flag: sgip::ReportFlag::ALWAYS,
        message_coding: DataCoding::UCS2,
        message_content: payload.clone(),
        ..Default::default()
    })
}

/// The CMPP 3.0 status-report DELIVER from the golden fixtures.
fn cmpp3_deliver_report_wire() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/cmpp/3.0/deliver_status_report.hex"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let digits: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    hex::decode(digits).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn expect_packet<P: Protocol>(item: Option<Inbound<P>>) -> Packet<P> {
    match item {
        Some(Inbound::Packet(p)) => p,
        other => panic!("expected a packet, got {other:?}"),
    }
}

/// `decode` and `encode` of one PDU through the shared [`Framer`], in a
/// group named `name`. `inner` runs on every decoded packet inside the
/// timed loop (the DELIVER bench decodes its status report there).
fn bench_framer<P: Protocol, R>(
    c: &mut Criterion,
    name: &str,
    framer: &Framer<P>,
    pkt: &Packet<P>,
    inner: impl Fn(&Packet<P>) -> R,
) {
    let wire = framer.to_bytes(pkt.seq, &pkt.pdu).expect("encodes");
    // The value round-trips, so both directions measure the same PDU.
    let back = expect_packet(
        framer
            .decode(&mut BytesMut::from(&wire[..]))
            .expect("frames"),
    );
    assert!(
        back.seq == pkt.seq && back.pdu == pkt.pdu,
        "{name}: decode(encode(pdu)) != pdu"
    );

    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));

    // One read buffer for the whole run, as a connection has. After the
    // first split it is shared (KIND_ARC); once the previous frame is
    // dropped `extend_from_slice` reclaims the same allocation.
    let mut buf = BytesMut::with_capacity(MAX_FRAME);
    g.bench_function("decode", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(&wire);
            let pkt = expect_packet(framer.decode(black_box(&mut buf)).expect("frames"));
            let extra = inner(&pkt);
            (pkt, extra)
        })
    });

    let mut out = BytesMut::with_capacity(MAX_FRAME);
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            framer
                .encode(black_box(pkt.seq), black_box(&pkt.pdu), &mut out)
                .expect("encodes");
            out.len()
        })
    });
    g.finish();
}

fn bench_cmpp3_submit(c: &mut Criterion) {
    let pkt = Packet::new(2, cmpp3_submit(&ucs2_payload()));
    bench_framer(c, "cmpp3_submit", &Framer::new(Cmpp::V30), &pkt, |_| ());
}

fn bench_cmpp3_deliver_report(c: &mut Criterion) {
    let framer = Framer::new(Cmpp::V30);
    let wire = cmpp3_deliver_report_wire();
    let pkt = expect_packet(
        framer
            .decode(&mut BytesMut::from(&wire[..]))
            .expect("frames"),
    );
    assert_eq!(
        framer.to_bytes(pkt.seq, &pkt.pdu).expect("encodes")[..],
        wire[..],
        "fixture round-trips"
    );
    let report = |p: &Packet<Cmpp>| match &p.pdu {
        cmpp::Pdu::Deliver(d) => d
            .report(Version::V30)
            .expect("report decodes")
            .expect("is a report"),
        other => panic!("expected a DELIVER, got {other:?}"),
    };
    assert_eq!(report(&pkt).stat.as_bytes(), b"DELIVRD");
    bench_framer(c, "cmpp3_deliver_report", &framer, &pkt, report);
}

fn bench_smgp_submit(c: &mut Criterion) {
    let pkt = Packet::new(2, smgp_submit(&ucs2_payload()));
    bench_framer(c, "smgp_submit", &Framer::new(Smgp), &pkt, |_| ());
}

fn bench_sgip_submit(c: &mut Criterion) {
    let seq = SeqNo::new(3_075_512_345, Timestamp(1_204_150_730), 2);
    let pkt = Packet::new(seq, sgip_submit(&ucs2_payload()));
    bench_framer(c, "sgip_submit", &Framer::new(Sgip), &pkt, |_| ());
}

// ---------------------------------------------------------------------------
// Comparator: smpp34 (SMPP 3.4) submit_sm, through its public codec API.

const SMPP_SUBMIT_SM: u32 = 0x0000_0004;

/// Splits one `submit_sm` off the front of `buf` the way a user of smpp34
/// must (its own framer, `frame_first_pdu`, is crate-private): length
/// bounds like ours, `CommandHeader::decode` (which re-checks
/// `command_length` against the slice), dispatch on the command id, then
/// `submit_sm::decode`, and finally consume the frame from the buffer.
fn smpp34_decode(buf: &mut Vec<u8>) -> smpp34::submit_sm {
    let len = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    assert!((16..=MAX_FRAME).contains(&len) && buf.len() >= len);
    let frame = &buf[..len];
    let header = smpp34::CommandHeader::decode(frame).expect("header");
    let pdu = match header.command_id {
        SMPP_SUBMIT_SM => smpp34::submit_sm::decode(header, frame).expect("submit_sm"),
        other => panic!("unexpected command id {other:#x}"),
    };
    buf.drain(..len);
    pdu
}

fn bench_smpp34_submit_sm(c: &mut Criterion) {
    let payload = ucs2_payload();
    let sm = smpp34::submit_sm::new(
        2,                // sequence_number
        String::new(),    // service_type
        0,                // source_addr_ton
        1,                // source_addr_npi
        SENDER.into(),    // source_addr
        1,                // dest_addr_ton
        1,                // dest_addr_npi
        RECIPIENT.into(), // destination_addr
        0,                // esm_class
        0,                // protocol_id
        0,                // priority_flag
        String::new(),    // schedule_delivery_time
        String::new(),    // validity_period
        1,                // registered_delivery
        0,                // replace_if_present_flag
        8,                // data_coding: UCS2
        0,                // sm_default_msg_id
        payload.to_vec(), // short_message
    );
    let wire = sm.clone().encode();
    {
        let mut buf = wire.clone();
        let back = smpp34_decode(&mut buf);
        assert!(buf.is_empty());
        assert_eq!(back.destination_addr, RECIPIENT);
        assert_eq!(back.short_message, &payload[..]);
        assert_eq!((back.data_coding, back.registered_delivery), (8, 1));
        assert_eq!(back.encode(), wire, "smpp34 round-trips");
    }

    let mut g = c.benchmark_group("smpp34_submit_sm");
    g.throughput(Throughput::Elements(1));

    let mut buf: Vec<u8> = Vec::with_capacity(MAX_FRAME);
    g.bench_function("decode", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(&wire);
            smpp34_decode(black_box(&mut buf))
        })
    });

    g.bench_function("encode", |b| {
        b.iter_batched(
            || sm.clone(),
            |p| black_box(p).encode(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_cmpp3_submit,
    bench_smpp34_submit_sm,
    bench_cmpp3_deliver_report,
    bench_smgp_submit,
    bench_sgip_submit
);
criterion_main!(benches);
