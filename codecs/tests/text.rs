//! Text codings, long-message splitting and MO reassembly.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use smsgw_codecs::reassembly::{join, segment_of, ExpiryReason, Pushed, Reassembler};
use smsgw_codecs::text::{
    self, decode, encode, segment_count, segment_limit, single_limit, split, split_bytes,
    DataCoding, Family, RefWidth, ReferenceAllocator, Segment,
};
use smsgw_codecs::udh::{self, Concat, ConcatRef};
use smsgw_codecs::EncodeError;

const FAMILIES: [Family; 3] = [Family::Cmpp, Family::Smgp, Family::Sgip];
const E: ConcatRef = ConcatRef::Eight(0x2a);
const S: ConcatRef = ConcatRef::Sixteen(0x1234);

/// `derived.long_segments_payload_hex` from the reference vectors.
const LONG_SEGMENTS_HEX: [&str; 3] = [
    "0500032a0301957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed",
    "0500032a03024fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b",
    "0500032a03038bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5957f77ed4fe16d4b8bd5",
];

fn long_text() -> String {
    "长短信测试".repeat(30)
}

/// Payloads joined and decoded.
fn rejoin(segs: &[Segment], coding: DataCoding) -> String {
    let parts: Vec<Bytes> = segs.iter().map(Segment::payload).collect();
    decode(&join(&parts), coding)
}

/// Structural checks every split must pass.
fn check_segments(segs: &[Segment], coding: DataCoding, family: Family, reference: ConcatRef) {
    assert!(!segs.is_empty());
    if segs.len() == 1 && segs[0].concat.is_none() {
        assert!(segs[0].content.len() <= single_limit(coding, family));
        assert_eq!(
            (segs[0].udhi(), segs[0].pk_total(), segs[0].pk_number()),
            (0, 1, 1)
        );
        return;
    }
    let total = segs.len();
    assert!((2..=255).contains(&total));
    for (i, s) in segs.iter().enumerate() {
        let c = s
            .concat
            .expect("segment of a long message has a concat element");
        assert_eq!(
            c,
            Concat {
                reference,
                total: total as u8,
                seq: i as u8 + 1
            }
        );
        assert_eq!(
            (s.udhi(), s.pk_total(), s.pk_number()),
            (1, total as u8, i as u8 + 1)
        );
        // The UDH really is what `udh::parse` reads back.
        let h = udh::parse(&s.content).unwrap();
        assert_eq!(h.concat, Some(c));
        assert_eq!(h.header_len, reference.udh_len());
        let payload = s.payload();
        assert!(!payload.is_empty());
        assert!(payload.len() <= segment_limit(coding, family, reference));
        assert!(s.content.len() <= single_limit(coding, family));
        if coding == DataCoding::UCS2 {
            assert_eq!(payload.len() % 2, 0);
            let last_hi = payload[payload.len() - 2];
            assert!(
                !(0xd8..=0xdb).contains(&last_hi),
                "segment ends in a high surrogate"
            );
            let first_hi = payload[0];
            assert!(
                !(0xdc..=0xdf).contains(&first_hi),
                "segment starts with a low surrogate"
            );
        }
        if coding == DataCoding::UCS2 || coding == DataCoding::GBK {
            // Each segment decodes on its own: no character was cut.
            assert!(
                !decode(&payload, coding).contains('\u{fffd}'),
                "character split at segment {i}"
            );
        }
    }
}

#[test]
fn vector_long_segments_byte_for_byte() {
    let text = long_text();
    assert_eq!(text.chars().count(), 150);
    for family in FAMILIES {
        let segs = split(&text, DataCoding::UCS2, family, ConcatRef::Eight(0x2a)).unwrap();
        let hex: Vec<String> = segs.iter().map(|s| hex::encode(&s.content)).collect();
        assert_eq!(hex, LONG_SEGMENTS_HEX);
        let lens: Vec<usize> = segs.iter().map(|s| s.content.len()).collect();
        assert_eq!(lens, [140, 140, 38]);
        check_segments(&segs, DataCoding::UCS2, family, E);
        assert_eq!(rejoin(&segs, DataCoding::UCS2), text);
        assert_eq!(
            segment_count(&text, DataCoding::UCS2, family, E).unwrap(),
            3
        );
    }
}

#[test]
fn short_text_vector_is_one_segment() {
    let segs = split("你好，世界", DataCoding::UCS2, Family::Cmpp, E).unwrap();
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].concat, None);
    assert_eq!(hex::encode(&segs[0].content), "4f60597dff0c4e16754c");
}

/// (coding, family, reference, unit text, units per single SMS, units per segment)
fn limit_cases() -> Vec<(DataCoding, Family, ConcatRef, &'static str, usize, usize)> {
    let mut v = Vec::new();
    for f in FAMILIES {
        v.push((DataCoding::UCS2, f, E, "中", 70, 67));
        v.push((DataCoding::UCS2, f, S, "中", 70, 66));
        v.push((DataCoding::GBK, f, E, "中", 70, 67));
        // 133 bytes: 66 two-byte characters, a character is never cut.
        v.push((DataCoding::GBK, f, S, "中", 70, 66));
        v.push((DataCoding::BINARY, f, E, "x", 140, 134));
        v.push((DataCoding::BINARY, f, S, "x", 140, 133));
    }
    v.push((DataCoding::ASCII, Family::Cmpp, E, "a", 159, 153));
    v.push((DataCoding::ASCII, Family::Cmpp, S, "a", 159, 152));
    for f in [Family::Smgp, Family::Sgip] {
        v.push((DataCoding::ASCII, f, E, "a", 140, 134));
        v.push((DataCoding::ASCII, f, S, "a", 140, 133));
        v.push((DataCoding::GBK, f, E, "a", 140, 134));
    }
    v
}

#[test]
fn every_limit_exactly_fits_and_one_over() {
    for (coding, family, reference, unit, single, per) in limit_cases() {
        let ctx = format!("{coding} {family:?} {reference:?} {unit}");
        // Exactly one SMS.
        let segs = split(&unit.repeat(single), coding, family, reference).unwrap();
        assert_eq!(segs.len(), 1, "{ctx}");
        assert_eq!(segs[0].concat, None, "{ctx}");
        // One over: two segments, the first full.
        let text = unit.repeat(single + 1);
        let segs = split(&text, coding, family, reference).unwrap();
        assert_eq!(segs.len(), 2, "{ctx}");
        check_segments(&segs, coding, family, reference);
        let first = decode(&segs[0].payload(), coding);
        assert_eq!(first.chars().count(), per, "{ctx}");
        assert_eq!(rejoin(&segs, coding), text, "{ctx}");
        // Exactly n full segments, then one more unit needs n + 1.
        for n in [2usize, 3, 7] {
            let segs = split(&unit.repeat(per * n), coding, family, reference).unwrap();
            assert_eq!(segs.len(), n, "{ctx} n={n}");
            let segs = split(&unit.repeat(per * n + 1), coding, family, reference).unwrap();
            assert_eq!(segs.len(), n + 1, "{ctx} n={n}+1");
        }
    }
}

#[test]
fn sixteen_bit_reference_sizes() {
    let text = "中".repeat(71);
    let segs = split(&text, DataCoding::UCS2, Family::Cmpp, S).unwrap();
    assert_eq!(segs.len(), 2);
    assert_eq!(
        &segs[0].content[..7],
        &[0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01]
    );
    assert_eq!(
        &segs[1].content[..7],
        &[0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02]
    );
    assert_eq!(segs[0].content.len(), 7 + 132);
    assert_eq!(segs[1].content.len(), 7 + 10);
    let segs = split(&"a".repeat(160), DataCoding::ASCII, Family::Cmpp, S).unwrap();
    assert_eq!(segs[0].content.len(), 7 + 152);
    let segs = split(&"a".repeat(141), DataCoding::ASCII, Family::Sgip, S).unwrap();
    assert_eq!(segs[0].content.len(), 7 + 133);
}

#[test]
fn cmpp_ascii_segments_are_159_bytes() {
    let segs = split(&"a".repeat(400), DataCoding::ASCII, Family::Cmpp, E).unwrap();
    let lens: Vec<usize> = segs.iter().map(|s| s.content.len()).collect();
    assert_eq!(lens, [159, 159, 6 + 94]);
}

#[test]
fn surrogate_pair_never_split_at_any_position() {
    for family in FAMILIES {
        for reference in [E, S] {
            for prefix in 0..150 {
                let text = format!("{}😀{}", "a".repeat(prefix), "b".repeat(150));
                let segs = split(&text, DataCoding::UCS2, family, reference).unwrap();
                check_segments(&segs, DataCoding::UCS2, family, reference);
                assert_eq!(rejoin(&segs, DataCoding::UCS2), text);
            }
            // Only emoji: each segment holds whole pairs.
            let text = "😀".repeat(100);
            let segs = split(&text, DataCoding::UCS2, family, reference).unwrap();
            check_segments(&segs, DataCoding::UCS2, family, reference);
            assert_eq!(rejoin(&segs, DataCoding::UCS2), text);
        }
    }
    // 35 emoji = 140 bytes fit one SMS; 36 do not.
    assert_eq!(
        split(&"😀".repeat(35), DataCoding::UCS2, Family::Cmpp, E)
            .unwrap()
            .len(),
        1
    );
    let segs = split(&"😀".repeat(36), DataCoding::UCS2, Family::Cmpp, E).unwrap();
    assert_eq!(segs.len(), 2);
    // 134 bytes hold 33 pairs (132 bytes); the 34th would straddle.
    assert_eq!(segs[0].payload().len(), 132);
}

#[test]
fn surrogate_pair_kept_by_split_bytes() {
    let payload = encode(
        &format!("{}😀{}", "a".repeat(66), "b".repeat(80)),
        DataCoding::UCS2,
    )
    .unwrap();
    let segs = split_bytes(&payload, DataCoding::UCS2, Family::Smgp, E).unwrap();
    check_segments(&segs, DataCoding::UCS2, Family::Smgp, E);
    assert_eq!(segs[0].payload().len(), 132);
}

#[test]
fn gbk_boundaries() {
    for family in FAMILIES {
        for reference in [E, S] {
            for prefix in 0..8 {
                let text = format!("{}{}", "a".repeat(prefix), "中文短信".repeat(50));
                let segs = split(&text, DataCoding::GBK, family, reference).unwrap();
                check_segments(&segs, DataCoding::GBK, family, reference);
                assert_eq!(rejoin(&segs, DataCoding::GBK), text);
            }
        }
    }
    // A GB18030 four-byte character is a unit in split_bytes.
    let mut payload = vec![b'a'; 133];
    payload.extend_from_slice(&[0x94, 0x39, 0xfc, 0x36]);
    payload.extend_from_slice(&[b'b'; 10]);
    let segs = split_bytes(&payload, DataCoding::GBK, Family::Cmpp, E).unwrap();
    assert_eq!(segs[0].payload().len(), 133);
    assert_eq!(
        decode(&segs[1].payload(), DataCoding::GBK),
        format!("😀{}", "b".repeat(10))
    );
}

#[test]
fn binary_split_bytes_cuts_anywhere() {
    let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let segs = split_bytes(&payload, DataCoding::BINARY, Family::Sgip, E).unwrap();
    let lens: Vec<usize> = segs.iter().map(|s| s.payload().len()).collect();
    assert_eq!(lens, [134, 134, 32]);
    let joined = join(&segs.iter().map(Segment::payload).collect::<Vec<_>>());
    assert_eq!(&joined[..], &payload[..]);
    let segs = split_bytes(&payload[..140], DataCoding::SIM_WRITE, Family::Sgip, E).unwrap();
    assert_eq!(segs.len(), 1);
}

#[test]
fn binary_text_keeps_utf8_sequences() {
    let text = format!("a{}", "中".repeat(100));
    let segs = split(&text, DataCoding::BINARY, Family::Cmpp, E).unwrap();
    for s in &segs {
        assert!(std::str::from_utf8(&s.payload()).is_ok());
    }
    assert_eq!(rejoin(&segs, DataCoding::BINARY), text);
}

#[test]
fn max_segments() {
    let text = "中".repeat(67 * 255);
    let segs = split(&text, DataCoding::UCS2, Family::Cmpp, E).unwrap();
    assert_eq!(segs.len(), 255);
    assert_eq!(segs[254].concat.unwrap().seq, 255);
    let text = "中".repeat(67 * 255 + 1);
    assert!(matches!(
        split(&text, DataCoding::UCS2, Family::Cmpp, E),
        Err(EncodeError::Invalid {
            field: "segments",
            ..
        })
    ));
}

#[test]
fn empty_and_unencodable_text_rejected() {
    for coding in [
        DataCoding::ASCII,
        DataCoding::UCS2,
        DataCoding::GBK,
        DataCoding::BINARY,
    ] {
        assert!(matches!(
            split("", coding, Family::Cmpp, E),
            Err(EncodeError::Invalid {
                field: "content",
                ..
            })
        ));
    }
    assert!(matches!(
        split_bytes(&[], DataCoding::BINARY, Family::Cmpp, E),
        Err(EncodeError::Invalid { .. })
    ));
    assert!(matches!(
        split("中", DataCoding::ASCII, Family::Cmpp, E),
        Err(EncodeError::Text {
            coding: "ASCII",
            ..
        })
    ));
    assert!(matches!(
        split("😀", DataCoding::GBK, Family::Cmpp, E),
        Err(EncodeError::Text { coding: "GBK", .. })
    ));
}

#[test]
fn codings_round_trip_and_lossy_decode() {
    assert_eq!(
        decode(
            &encode("你好，世界", DataCoding::GBK).unwrap(),
            DataCoding::GBK
        ),
        "你好，世界"
    );
    assert_eq!(
        hex::encode(encode("你好，世界", DataCoding::UCS2).unwrap()),
        "4f60597dff0c4e16754c"
    );
    assert_eq!(decode(&[0xff, b'a'], DataCoding::ASCII), "\u{fffd}a");
    assert_eq!(decode(&[0x00, 0x41, 0x00], DataCoding::UCS2), "A\u{fffd}");
    assert_eq!(
        decode(&[0xdc, 0x00, 0x00, 0x41], DataCoding::UCS2),
        "\u{fffd}A"
    );
    // GSM DCS 0x18 (UCS2, class 0) is treated as UCS2.
    assert_eq!(decode(&[0x4f, 0x60], DataCoding(0x18)), "你");
    assert_eq!(text::MAX_SEGMENTS, 255);
}

#[test]
fn reference_allocator_never_repeats_for_a_handset_within_256() {
    let t0 = Instant::now();
    let mut a: ReferenceAllocator = ReferenceAllocator::new(Duration::from_secs(60), 1000);
    let mut seen = std::collections::HashSet::new();
    for i in 0..256u64 {
        let r = a.allocate(
            "13800138000",
            RefWidth::Eight,
            t0 + Duration::from_millis(i),
        );
        assert!(seen.insert(r), "reference {r:?} repeated");
    }
    // Other recipients do not disturb the first one's counter.
    let r1 = a.allocate("13800138001", RefWidth::Eight, t0);
    let r2 = a.allocate("13800138001", RefWidth::Eight, t0);
    assert_ne!(r1, r2);
    let s1 = a.allocate("13800138002", RefWidth::Sixteen, t0);
    assert!(matches!(s1, ConcatRef::Sixteen(_)));
    assert_eq!(a.len(), 3);
}

#[test]
fn reference_allocator_bounded() {
    let t0 = Instant::now();
    let mut a: ReferenceAllocator = ReferenceAllocator::new(Duration::from_secs(60), 10);
    for i in 0..1000u32 {
        a.allocate(
            i.to_string().as_str(),
            RefWidth::Eight,
            t0 + Duration::from_millis(i as u64),
        );
        assert!(a.len() <= 10);
    }
    // A recipient that is used over and over stays bounded too.
    for i in 0..10_000u64 {
        a.allocate(
            "x",
            RefWidth::Sixteen,
            t0 + Duration::from_secs(1) + Duration::from_micros(i),
        );
    }
    assert!(a.len() <= 10);
    a.expire(t0 + Duration::from_secs(120));
    assert!(a.is_empty());
}

// ---------------------------------------------------------------- reassembly

fn seg(r: u8, total: u8, seq: u8) -> Concat {
    Concat {
        reference: ConcatRef::Eight(r),
        total,
        seq,
    }
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[test]
fn reassemble_vector_out_of_order_via_segment_of() {
    let t = Instant::now();
    let segs = split(&long_text(), DataCoding::UCS2, Family::Cmpp, E).unwrap();
    let mut r = Reassembler::new(Duration::from_secs(7200), 100);
    let key = ("13800138000", "10690001");
    let mut out = None;
    for i in [2usize, 0, 1] {
        let (concat, payload) = segment_of(1, &segs[i].content).unwrap();
        match r.push(key, concat.unwrap(), payload, t) {
            Pushed::Complete(parts) => out = Some(parts),
            Pushed::Pending { evicted: None, .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let parts = out.unwrap();
    assert_eq!(decode(&join(&parts), DataCoding::UCS2), long_text());
    assert!(r.is_empty());
}

#[test]
fn reassemble_duplicates() {
    let t = Instant::now();
    let mut r = Reassembler::new(Duration::from_secs(10), 10);
    assert!(matches!(
        r.push(1u32, seg(7, 2, 2), b("B"), t),
        Pushed::Pending {
            received: 1,
            total: 2,
            ..
        }
    ));
    assert_eq!(r.push(1u32, seg(7, 2, 2), b("B"), t), Pushed::Duplicate);
    assert_eq!(
        r.push(1u32, seg(7, 2, 1), b("A"), t),
        Pushed::Complete(vec![b("A"), b("B")])
    );
    // After completion a repeat starts a new set (the reference may be reused).
    assert!(matches!(
        r.push(1u32, seg(7, 2, 1), b("A"), t),
        Pushed::Pending { .. }
    ));
    // A one-part "long" message completes at once; unusable elements are ignored.
    assert_eq!(
        r.push(1u32, seg(9, 1, 1), b("x"), t),
        Pushed::Complete(vec![b("x")])
    );
    assert_eq!(r.push(1u32, seg(9, 0, 0), b("x"), t), Pushed::Ignored);
    assert_eq!(r.push(1u32, seg(9, 3, 4), b("x"), t), Pushed::Ignored);
}

#[test]
fn reassemble_interleaved_senders_and_references() {
    let t = Instant::now();
    let mut r = Reassembler::new(Duration::from_secs(10), 10);
    // Same reference from two senders, and a second reference from one
    // sender, and the same reference with a different total.
    let pushes = [
        ("alice", seg(1, 2, 2), "a2"),
        ("bob", seg(1, 2, 1), "b1"),
        ("alice", seg(2, 2, 1), "x1"),
        ("alice", seg(1, 3, 1), "t1"),
        ("alice", seg(1, 2, 1), "a1"),
        ("bob", seg(1, 2, 2), "b2"),
        ("alice", seg(2, 2, 2), "x2"),
    ];
    let mut done = Vec::new();
    for (k, c, p) in pushes {
        if let Pushed::Complete(parts) = r.push(k, c, b(p), t) {
            done.push((k, String::from_utf8(join(&parts).to_vec()).unwrap()));
        }
    }
    assert_eq!(
        done,
        [
            ("alice", "a1a2".to_string()),
            ("bob", "b1b2".to_string()),
            ("alice", "x1x2".to_string())
        ]
    );
    // The 3-part set with reference 1 is still waiting.
    assert_eq!(r.len(), 1);
    // 16-bit reference 1 is a different set from 8-bit reference 1.
    let c16 = Concat {
        reference: ConcatRef::Sixteen(1),
        total: 3,
        seq: 2,
    };
    assert!(matches!(
        r.push("alice", c16, b("s2"), t),
        Pushed::Pending { received: 1, .. }
    ));
    assert_eq!(r.len(), 2);
}

#[test]
fn reassembly_expiry_with_synthetic_instants() {
    let t0 = Instant::now();
    let ttl = Duration::from_secs(100);
    let mut r = Reassembler::new(ttl, 10);
    assert_eq!(r.poll_timeout(), None);
    r.push("a", seg(1, 3, 1), b("a1"), t0);
    r.push("b", seg(1, 2, 2), b("b2"), t0 + Duration::from_secs(10));
    assert_eq!(r.poll_timeout(), Some(t0 + ttl));
    // A new segment pushes the deadline of its set out.
    r.push("a", seg(1, 3, 3), b("a3"), t0 + Duration::from_secs(50));
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(10) + ttl));
    // A duplicate does not.
    assert_eq!(
        r.push("a", seg(1, 3, 3), b("a3"), t0 + Duration::from_secs(60)),
        Pushed::Duplicate
    );
    assert!(r.expire(t0 + Duration::from_secs(109)).is_empty());
    let gone = r.expire(t0 + Duration::from_secs(110));
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].key, "b");
    assert_eq!(gone[0].reason, ExpiryReason::Timeout);
    assert_eq!(gone[0].parts, vec![None, Some(b("b2"))]);
    assert_eq!(gone[0].missing(), vec![1]);
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(150)));
    let gone = r.expire(t0 + Duration::from_secs(1000));
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].key, "a");
    assert_eq!(gone[0].received(), 2);
    assert_eq!(gone[0].arrived(), vec![b("a1"), b("a3")]);
    assert_eq!(gone[0].missing(), vec![2]);
    assert!(r.is_empty());
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn reassembly_eviction_at_max_sets() {
    let t0 = Instant::now();
    let mut r = Reassembler::new(Duration::from_secs(100), 2);
    r.push(1u8, seg(1, 2, 1), b("1"), t0);
    r.push(2u8, seg(1, 2, 1), b("2"), t0 + Duration::from_secs(1));
    // Same key and reference but another total is a third set: the oldest
    // (key 1, total 2) is evicted.
    match r.push(1u8, seg(1, 3, 1), b("other"), t0 + Duration::from_secs(2)) {
        Pushed::Pending {
            evicted: Some(e), ..
        } => assert_eq!((e.key, e.total), (1, 2)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(r.len(), 2);
    match r.push(3u8, seg(1, 2, 2), b("3"), t0 + Duration::from_secs(3)) {
        Pushed::Pending {
            received: 1,
            total: 2,
            evicted: Some(e),
        } => {
            assert_eq!(e.key, 2);
            assert_eq!(e.reason, ExpiryReason::Evicted);
            assert_eq!(e.parts, vec![Some(b("2")), None]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(r.len(), 2);
    // Adding to an existing set never evicts.
    assert!(matches!(
        r.push(3u8, seg(1, 2, 1), b("3a"), t0 + Duration::from_secs(4)),
        Pushed::Complete(_)
    ));
    assert_eq!(r.len(), 1);
}

#[test]
fn reassembly_eviction_reports_in_pending() {
    let t0 = Instant::now();
    let mut r = Reassembler::new(Duration::from_secs(100), 1);
    r.push("a", seg(1, 2, 1), b("a1"), t0);
    match r.push("b", seg(1, 2, 1), b("b1"), t0) {
        Pushed::Pending {
            evicted: Some(e), ..
        } => assert_eq!(e.key, "a"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(r.len(), 1);
}

// ---------------------------------------------------------------- proptest

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        1 => proptest::char::range(' ', '~'),
        4 => proptest::char::range('\u{4e00}', '\u{9fa5}'),
        2 => proptest::char::range('\u{1F600}', '\u{1F64F}'),
        1 => proptest::char::range('\u{20000}', '\u{2A6DF}'),
        1 => any::<char>().prop_filter("U+FFFD marks a cut", |&c| c != '\u{fffd}'),
    ]
}

fn gbk_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => proptest::char::range('a', 'z'),
        1 => proptest::char::range(' ', '~'),
        4 => proptest::char::range('\u{4e00}', '\u{9fa5}'),
        1 => Just('，'),
        1 => Just('€'),
    ]
}

fn text_of(c: impl Strategy<Value = char>, max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(c, 1..max).prop_map(|v| v.into_iter().collect())
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![Just(Family::Cmpp), Just(Family::Smgp), Just(Family::Sgip)]
}

fn reference() -> impl Strategy<Value = ConcatRef> {
    prop_oneof![
        any::<u8>().prop_map(ConcatRef::Eight),
        any::<u16>().prop_map(ConcatRef::Sixteen)
    ]
}

fn check_split(text: &str, coding: DataCoding, family: Family, reference: ConcatRef) {
    let segs = split(text, coding, family, reference).unwrap();
    check_segments(&segs, coding, family, reference);
    let max = if coding == DataCoding::ASCII && family == Family::Cmpp {
        159
    } else {
        140
    };
    assert!(segs.iter().all(|s| s.content.len() <= max));
    assert_eq!(rejoin(&segs, coding), text);
    assert_eq!(
        segment_count(text, coding, family, reference).unwrap(),
        segs.len()
    );
}

proptest! {
    #[test]
    fn prop_ucs2_split_join(text in text_of(any_char(), 600), f in family(), r in reference()) {
        check_split(&text, DataCoding::UCS2, f, r);
    }

    #[test]
    fn prop_gbk_split_join(text in text_of(gbk_char(), 600), f in family(), r in reference()) {
        check_split(&text, DataCoding::GBK, f, r);
    }

    #[test]
    fn prop_ascii_split_join(text in "[ -~]{1,800}", f in family(), r in reference()) {
        check_split(&text, DataCoding::ASCII, f, r);
    }

    #[test]
    fn prop_binary_text_split_join(text in text_of(any_char(), 400), f in family(), r in reference()) {
        check_split(&text, DataCoding::BINARY, f, r);
    }

    #[test]
    fn prop_binary_bytes_split_join(
        payload in proptest::collection::vec(any::<u8>(), 1..2000),
        f in family(),
        r in reference(),
    ) {
        let segs = split_bytes(&payload, DataCoding::BINARY, f, r).unwrap();
        check_segments(&segs, DataCoding::BINARY, f, r);
        let joined = join(&segs.iter().map(Segment::payload).collect::<Vec<_>>());
        prop_assert_eq!(&joined[..], &payload[..]);
    }

    #[test]
    fn prop_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), coding in any::<u8>()) {
        let _ = decode(&bytes, DataCoding(coding));
    }

    #[test]
    fn prop_any_permutation_reassembles(
        (text, order) in text_of(any_char(), 500).prop_flat_map(|t| {
            let n = split(&t, DataCoding::UCS2, Family::Cmpp, E).map(|s| s.len()).unwrap_or(1);
            (Just(t), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        }),
        dup in any::<prop::sample::Index>(),
    ) {
        let segs = split(&text, DataCoding::UCS2, Family::Cmpp, E).unwrap();
        let t = Instant::now();
        let mut r = Reassembler::new(Duration::from_secs(60), 4);
        let mut result = None;
        let dup_at = dup.index(order.len());
        for (i, &k) in order.iter().enumerate() {
            let (concat, payload) = segment_of(segs[k].udhi(), &segs[k].content).unwrap();
            let Some(concat) = concat else {
                // A single SMS: nothing to reassemble.
                result = Some(payload);
                continue;
            };
            match r.push("sender", concat, payload.clone(), t) {
                Pushed::Complete(parts) => {
                    prop_assert!(result.is_none());
                    prop_assert_eq!(i, order.len() - 1);
                    result = Some(join(&parts));
                }
                Pushed::Pending { evicted, .. } => prop_assert!(evicted.is_none()),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
            // Repeat one segment while the set is still open.
            if i == dup_at && i + 1 < order.len() {
                prop_assert_eq!(r.push("sender", concat, payload, t), Pushed::Duplicate);
            }
        }
        prop_assert_eq!(decode(&result.unwrap(), DataCoding::UCS2), text);
        prop_assert!(r.is_empty());
    }
}
