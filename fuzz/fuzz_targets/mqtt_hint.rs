//! The MQTT "poll now" hint decoder never panics, and what it accepts
//! round-trips. The body is ferry_fuzz_entry::mqtt_hint, which the stable
//! test crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::mqtt_hint(data));
