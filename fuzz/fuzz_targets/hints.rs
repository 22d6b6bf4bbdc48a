//! britney hints files given to `ferry archive excuses --hints`: parsing
//! never panics, and every refusal points at a line and column inside the
//! text.
//! The body is ferry_fuzz_entry::hints, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::hints(data));
