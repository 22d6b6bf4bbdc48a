//! Migration profiles (TOML from the operator): checking never panics, and
//! every refusal points inside the text.
//! The body is ferry_fuzz_entry::profile, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::profile(data));
