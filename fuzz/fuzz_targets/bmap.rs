//! Block maps given to `ferry image flash --bmap`: parsing never panics,
//! and a bmap it accepts has ordered ranges inside the image.
//! The body is ferry_fuzz_entry::bmap, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::bmap(data));
