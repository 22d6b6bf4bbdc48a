//! Release files and clear-signed InRelease files: parsing and splitting
//! never panic on any text.
#![no_main]
use ferry_deb::release::{split_clearsigned, Release};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Release::parse(text);
    let _ = Release::parse_inrelease(text);
    if let Ok(signed) = split_clearsigned(text) {
        let _ = Release::parse(&signed.text);
    }
});
