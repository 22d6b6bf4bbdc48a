//! Version parsing never panics, and ordering is a total order on what
//! parses: antisymmetric and consistent with equality of the text.
#![no_main]
use ferry_deb::VersionRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (a, b) = text.split_at(text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i));
    let _ = VersionRef::parse(text);
    if let (Ok(x), Ok(y)) = (VersionRef::split(a), VersionRef::split(b)) {
        assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
        assert_eq!(x.cmp(&x), std::cmp::Ordering::Equal);
    }
});
