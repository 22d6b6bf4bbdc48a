//! Relation parsing never panics, and what it parses prints back to text
//! that parses to the same relations.
#![no_main]
use ferry_deb::Relations;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(relations) = Relations::parse(text) {
        let printed = relations.to_string();
        let again = Relations::parse(&printed).expect("printed relations parse");
        assert_eq!(again.to_string(), printed);
    }
});
