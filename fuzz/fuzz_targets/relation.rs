//! Relation parsing never panics, and what it parses prints back to text
//! that parses to the same relations.
//! The body is ferry_fuzz_entry::relation, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::relation(data));
