//! os-release parsing never panics, and every accessor works on what parses.
//! The body is ferry_fuzz_entry::os_release, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::os_release(data));
