//! Meta-release indices (fetched from a server): parsing and choosing an
//! offer never panic, and the demoted list of a bundle neither.
#![no_main]
use ferry_migrate::release::bundle::parse_demoted;
use ferry_migrate::release::meta::MetaRelease;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = MetaRelease::parse(text);
    let _ = parse_demoted(text);
});
