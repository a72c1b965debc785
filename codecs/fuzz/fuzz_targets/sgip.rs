#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;
use smsgw_codecs::sgip::Sgip;
use smsgw_codecs::Framer;

fuzz_target!(|data: &[u8]| {
    common::run(Framer::new(Sgip), data, |pdu| {
        let _ = pdu.to_json();
    });
});
