//! APT sources in both formats: parsing never panics, what parses renders
//! back byte-identical, and converting one-line text to deb822 gives text
//! that parses again (or a refusal naming the entry it cannot express).
#![no_main]
use ferry_deb::sources::{parse_sources_text, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::OneLine, Format::Deb822] {
        if let Ok(document) = parse_sources_text(text, format) {
            assert_eq!(document.text(), text);
            if format == Format::OneLine {
                // An entry deb822 cannot express is refused, never mangled.
                let Ok(converted) = document.to_deb822() else {
                    continue;
                };
                assert!(
                    parse_sources_text(&converted, Format::Deb822).is_ok(),
                    "converted text does not parse:\n{converted}"
                );
            }
        }
    }
});
