//! The deb822 paragraph reader never panics, with or without comments, and
//! every field it returns lies inside the input.
#![no_main]
use ferry_deb::deb822::{paragraphs, Syntax};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for syntax in [Syntax::INDEX, Syntax::WITH_COMMENTS] {
        for paragraph in paragraphs(text, syntax).flatten() {
            for field in &paragraph.fields {
                assert!(field.line >= paragraph.line);
                let _ = field.lines().count();
            }
        }
    }
});
