#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;
use smsgw_codecs::cmpp::{Cmpp, Version};
use smsgw_codecs::Framer;

fuzz_target!(|data: &[u8]| {
    // The low bit of the last byte picks the version.
    let version = if data.last().is_some_and(|b| b & 1 == 1) { Version::V30 } else { Version::V20 };
    common::run(Framer::new(Cmpp { version }), data, |pdu| {
        let _ = pdu.to_json();
    });
});
