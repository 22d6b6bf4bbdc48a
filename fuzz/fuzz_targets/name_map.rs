//! Name maps of `ferry archive coverage --map` (a file from the operator):
//! parsing never panics, and every refusal points at a line and column
//! inside the text.
//! The body is ferry_fuzz_entry::name_map, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::name_map(data));
