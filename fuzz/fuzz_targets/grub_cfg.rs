//! A new OS's grub.cfg and an old OS's grubenv, read by `ferry takeover`
//! (strategy flasher): never a panic; a grubenv set stays 1024 bytes.
//! The body is ferry_fuzz_entry::grub_cfg, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::grub_cfg(data));
