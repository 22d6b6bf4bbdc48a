//! Meta-release indices (fetched from a server): parsing and choosing an
//! offer never panic, and the demoted list of a bundle neither.
//! The body is ferry_fuzz_entry::meta_release, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::meta_release(data));
