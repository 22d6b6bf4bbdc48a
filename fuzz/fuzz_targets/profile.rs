//! Migration profiles (TOML from the operator): checking never panics, and
//! every refusal points inside the text.
#![no_main]
use std::path::Path;

use ferry_migrate::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Profile::parse(text, Path::new("/nonexistent/fuzz.toml")) {
        assert!(
            e.line >= 1 && e.line <= text.lines().count().max(1) + 1,
            "line {} of {}",
            e.line,
            text.lines().count()
        );
    }
});
