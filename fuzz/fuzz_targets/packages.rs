//! Reading typed binary and source records from any text never panics.
//! The body is ferry_fuzz_entry::packages, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::packages(data));
