//! Disk images given to `ferry image inspect` and `flash`: reading the
//! partition table and probing filesystems never panics.
//! The body is ferry_fuzz_entry::disk_image, which the stable test
//! crates/ferry-fuzz-entry/tests/replay.rs runs on every corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz_entry::disk_image(data));
