//! Version parsing never panics, and ordering is a total order on what
//! parses: antisymmetric and consistent with equality of the text.
//! The body is ferry_fuzz_entry::version, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::version(data));
