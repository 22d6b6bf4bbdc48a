//! ifupdown `interfaces` files carried by `ferry takeover`: parsing never
//! panics, and every connection it accepts reads back from its keyfile.
//! The body is ferry_fuzz_entry::ifupdown, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::ifupdown(data));
