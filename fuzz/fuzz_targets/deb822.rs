//! The deb822 paragraph reader never panics, with or without comments, and
//! every field it returns lies inside the input.
//! The body is ferry_fuzz_entry::deb822, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::deb822(data));
