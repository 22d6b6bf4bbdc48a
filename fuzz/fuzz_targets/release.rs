//! Release files and clear-signed InRelease files: parsing and splitting
//! never panic on any text.
//! The body is ferry_fuzz_entry::release, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::release(data));
