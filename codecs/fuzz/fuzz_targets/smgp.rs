#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;
use smsgw_codecs::smgp::Smgp;
use smsgw_codecs::Framer;

fuzz_target!(|data: &[u8]| {
    common::run(Framer::new(Smgp), data, |pdu| {
        let _ = pdu.to_json();
    });
});
