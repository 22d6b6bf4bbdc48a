//! NetworkManager keyfiles carried by `ferry takeover`: reading never
//! panics and a keyfile rendered again reads back the same.
//! The body is ferry_fuzz_entry::nm_keyfile, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::nm_keyfile(data));
