//! APT sources in both formats: parsing never panics, what parses renders
//! back byte-identical, and converting one-line text to deb822 gives text
//! that parses again (or a refusal naming the entry it cannot express).
//! The body is ferry_fuzz_entry::sources, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::sources(data));
