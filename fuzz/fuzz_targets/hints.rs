//! britney hints files given to `ferry archive excuses --hints`: parsing
//! never panics, and every refusal points at a line and column inside the
//! text.
#![no_main]
use std::path::Path;

use ferry_archive::{ArchiveError, Hints};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(ArchiveError::Hints { line, column, .. }) = Hints::parse(text, Path::new("hints")) {
        let lines: Vec<&str> = text.lines().collect();
        assert!(line >= 1 && line <= lines.len(), "line {line} of {}", lines.len());
        assert!(column >= 1 && column <= lines[line - 1].len().max(1), "column {column}");
    }
});
