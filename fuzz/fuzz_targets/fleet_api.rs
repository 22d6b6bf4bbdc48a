//! The fleet server's request decoders never panic and refuse bad input
//! with a 4xx. The body is ferry_fuzz_entry::fleet_api, which the stable
//! test crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::fleet_api(data));
