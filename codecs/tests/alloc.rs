//! "No allocation per decoded PDU beyond the payload `Bytes`": counts heap
//! allocations made by `Framer::decode` on real fixture PDUs.
//!
//! A counting `#[global_allocator]` wraps `System`; the counter is
//! thread-local, so the test threads that cargo runs in parallel do not see
//! each other's allocations.
//!
//! What the numbers are, precisely (bytes 1.x):
//! * A `BytesMut` that has never been split is `KIND_VEC`: it owns a plain
//!   `Vec<u8>` and has no reference count. `Framer::decode` takes the frame
//!   with `split_to`, which makes the buffer and the frame share that one
//!   allocation; to do so it *promotes* the buffer to `KIND_ARC`, boxing a
//!   small `Shared` header (the vec's pointer/capacity and an atomic count).
//!   That `Box` is the one allocation (`promote_to_shared`). `freeze()` of
//!   the now-shared frame and the `Bytes::slice` views taken for the body
//!   and the payload only bump the count: no allocation.
//! * Every later split of the same buffer finds it already `KIND_ARC` and
//!   allocates nothing; nor does refilling it once the earlier frames are
//!   dropped (`reserve` reclaims the unique storage in place).
//! * So a connection's read buffer pays one allocation, once, for its first
//!   frame; the decoders themselves (fixed fields stored inline, one
//!   recipient inline in a `SmallVec`, TLVs and content as `Bytes` views)
//!   allocate nothing. The tests assert exactly that: 1 for the first decode
//!   of a fresh buffer, 0 for every decode after it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::BytesMut;

use smsgw_codecs::cmpp::{self, Cmpp, Version};
use smsgw_codecs::sgip::{self, Sgip};
use smsgw_codecs::smgp::{self, Smgp};
use smsgw_codecs::{Framer, Inbound, Protocol};

// ---------------------------------------------------------------------------
// counting allocator

struct Counting;

thread_local! {
    // `const` init and a `Cell<usize>` (no destructor): reading it never
    // allocates, so it is safe to touch from inside the allocator.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`; the counter has
// no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its value with the allocations it made on this thread.
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCS.with(Cell::get);
    let out = f();
    (out, ALLOCS.with(Cell::get) - before)
}

// ---------------------------------------------------------------------------
// fixtures

fn load_hex(rel: &str) -> Vec<u8> {
    let path = format!("{}/../fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let digits: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    hex::decode(digits).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Decodes `wire` three times from one pre-filled buffer (two copies back
/// to back, then a refill after both frames are dropped) and returns the
/// allocation count of each `framer.decode` call, `check` included.
fn decode_allocs<P: Protocol>(
    framer: &Framer<P>,
    wire: &[u8],
    check: impl Fn(&P::Pdu) -> bool,
) -> [usize; 3] {
    let mut buf = BytesMut::with_capacity(2 * wire.len());
    buf.extend_from_slice(wire);
    buf.extend_from_slice(wire);
    let one = |buf: &mut BytesMut| {
        counted(|| {
            let item = framer.decode(buf).expect("frames").expect("whole frame");
            match &item {
                Inbound::Packet(p) => assert!(check(&p.pdu), "unexpected {:?}", p.pdu),
                Inbound::Malformed { error, .. } => panic!("malformed: {error}"),
            }
            item
        })
    };
    let (first, a) = one(&mut buf);
    let (second, b) = one(&mut buf);
    assert!(buf.is_empty());
    drop((first, second));
    buf.extend_from_slice(wire);
    let (_third, c) = one(&mut buf);
    [a, b, c]
}

/// First decode of a fresh buffer: the one `Shared` header; after: nothing.
const EXPECTED: [usize; 3] = [1, 0, 0];

#[test]
fn allocator_counts() {
    let (v, n) = counted(|| Vec::<u8>::with_capacity(16));
    drop(v);
    assert_eq!(n, 1, "the counting allocator is installed");
}

#[test]
fn cmpp3_submit_decode_allocates_only_the_shared_header() {
    let f = Framer::new(Cmpp::V30);
    for fixture in ["cmpp/3.0/submit_ucs2.hex", "cmpp/3.0/submit_long.1.hex"] {
        let got = decode_allocs(
            &f,
            &load_hex(fixture),
            |p| matches!(p, cmpp::Pdu::Submit(s) if s.dest_terminal_ids.len() == 1),
        );
        assert_eq!(got, EXPECTED, "{fixture}");
    }
}

#[test]
fn cmpp3_deliver_report_decode_allocates_only_the_shared_header() {
    let f = Framer::new(Cmpp::V30);
    let got = decode_allocs(&f, &load_hex("cmpp/3.0/deliver_status_report.hex"), |p| {
        // The inner report is decoded too, inside the counted region.
        matches!(p, cmpp::Pdu::Deliver(d)
            if d.report(Version::V30).ok().flatten().is_some_and(|r| r.stat.as_bytes() == b"DELIVRD"))
    });
    assert_eq!(got, EXPECTED);
}

#[test]
fn smgp_submit_decode_allocates_only_the_shared_header() {
    let f = Framer::new(Smgp);
    for fixture in ["smgp/3.0/submit.ucs2.hex", "smgp/3.0/submit.long_seg1.hex"] {
        let got = decode_allocs(
            &f,
            &load_hex(fixture),
            |p| matches!(p, smgp::Pdu::Submit(s) if s.dest_term_ids.len() == 1),
        );
        assert_eq!(got, EXPECTED, "{fixture}");
    }
}

#[test]
fn sgip_submit_decode_allocates_only_the_shared_header() {
    let f = Framer::new(Sgip);
    for fixture in ["sgip/1.2/submit.ucs2.hex", "sgip/1.2/submit.long_1of3.hex"] {
        let got = decode_allocs(
            &f,
            &load_hex(fixture),
            |p| matches!(p, sgip::Pdu::Submit(s) if s.user_numbers.len() == 1),
        );
        assert_eq!(got, EXPECTED, "{fixture}");
    }
}

/// Not the hot path, but worth knowing: a mass submit spills the
/// one-element inline recipient `SmallVec` to the heap, one allocation per
/// decoded PDU (cmpp/mod.rs `Submit::decode`, `reserve_exact(n)`;
/// smgp.rs and sgip.rs `Submit::decode`, `SmallVec::with_capacity(count)`).
/// This pins the current cost so a change is noticed either way.
#[test]
fn multi_recipient_submit_spills_the_recipient_list_once() {
    let spilled = [EXPECTED[0] + 1, EXPECTED[1] + 1, EXPECTED[2] + 1];
    let got = decode_allocs(
        &Framer::new(Cmpp::V30),
        &load_hex("cmpp/3.0/submit.multi.hex"),
        |p| matches!(p, cmpp::Pdu::Submit(s) if s.dest_terminal_ids.len() == 3),
    );
    assert_eq!(got, spilled, "cmpp3 submit to 3");
    let got = decode_allocs(
        &Framer::new(Smgp),
        &load_hex("smgp/3.0/submit.two_recipients_tlvs.hex"),
        |p| matches!(p, smgp::Pdu::Submit(s) if s.dest_term_ids.len() == 2),
    );
    assert_eq!(got, spilled, "smgp submit to 2");
    let got = decode_allocs(
        &Framer::new(Sgip),
        &load_hex("sgip/1.2/submit.two_users_gbk.hex"),
        |p| matches!(p, sgip::Pdu::Submit(s) if s.user_numbers.len() == 2),
    );
    assert_eq!(got, spilled, "sgip submit to 2");
}
