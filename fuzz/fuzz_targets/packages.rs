//! Reading typed binary and source records from any text never panics.
#![no_main]
use ferry_deb::package::{parse_binary_packages, parse_source_packages};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_binary_packages(text);
    let _ = parse_source_packages(text);
});
