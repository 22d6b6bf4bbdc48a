//! os-release parsing never panics, and every accessor works on what parses.
#![no_main]
use ferry_deb::os_release::OsRelease;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(os) = OsRelease::parse(text) {
        let _ = (os.id(), os.id_like(), os.version_id(), os.version_codename());
        let _ = os.entries().count();
    }
});
