//! Versioned JSON documents handed from one stage to the next (a saved apt
//! plan, a takeover's stage-2 plan): written atomically, and read only when
//! their `format` is the one this ferry reads, so a file of another format
//! is refused, never half-understood.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a document could not be written or read. Each kind of document
/// turns these into its own error, with its own name in the message.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not JSON, or JSON that is not the document; where serde_json stopped.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// Another format than the one asked for (`none` when there is none).
    #[error("{}: format {found}", path.display())]
    Format { path: PathBuf, found: String },
}

fn json(path: &Path) -> impl Fn(serde_json::Error) -> DocumentError + '_ {
    move |e| DocumentError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        // serde_json counts the characters read on the line, so 0 means
        // it stopped before the line's first: that is column 1.
        column: e.column().max(1),
        message: e.to_string(),
    }
}

/// Only the format, read before anything else (`null` reads as none).
#[derive(Deserialize)]
struct FormatOnly {
    #[serde(default)]
    format: Option<serde_json::Value>,
}

/// The document's `format`, if it has one (`Ok(None)`: JSON without it).
pub fn document_format(path: &Path, bytes: &[u8]) -> Result<Option<String>, DocumentError> {
    let only: FormatOnly = serde_json::from_slice(bytes).map_err(json(path))?;
    Ok(only.format.map(|v| v.to_string()))
}

/// Reads `bytes` (named `path` in errors) as a document of `format`.
pub fn parse_document<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    format: u32,
) -> Result<T, DocumentError> {
    let found = document_format(path, bytes)?;
    if found.as_deref() != Some(format.to_string().as_str()) {
        return Err(DocumentError::Format {
            path: path.to_path_buf(),
            found: found.unwrap_or_else(|| "none".into()),
        });
    }
    serde_json::from_slice(bytes).map_err(json(path))
}

/// Reads the file at `path` as a document of `format`.
pub fn load_document<T: DeserializeOwned>(path: &Path, format: u32) -> Result<T, DocumentError> {
    let bytes = std::fs::read(path).map_err(|source| DocumentError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_document(path, &bytes, format)
}

/// Writes `value` to `path` atomically, as pretty JSON with a final newline:
/// a reader sees the old file or the whole new one.
pub fn save_document<T: Serialize>(path: &Path, value: &T) -> Result<(), DocumentError> {
    let io = |source| DocumentError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| io(std::io::Error::other(e)))?;
    bytes.push(b'\n');
    crate::write_atomic(path, &bytes).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        format: u32,
        name: String,
    }

    #[test]
    fn a_document_reads_back_and_another_format_is_refused_with_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.json");
        let doc = Doc {
            format: 2,
            name: "x".into(),
        };
        save_document(&path, &doc).unwrap();
        assert_eq!(load_document::<Doc>(&path, 2).unwrap(), doc);
        match load_document::<Doc>(&path, 1) {
            Err(DocumentError::Format { found, .. }) => assert_eq!(found, "2"),
            other => panic!("expected Format, got {other:?}"),
        }
        let none = parse_document::<Doc>(&path, br#"{"name": "x"}"#, 1);
        assert!(matches!(none, Err(DocumentError::Format { found, .. }) if found == "none"));
        let cut = parse_document::<Doc>(&path, b"{\n  \"format\": 1,\n  \"na", 1);
        assert!(
            matches!(cut, Err(DocumentError::Json { line: 3, .. })),
            "{cut:?}"
        );
        // Cut just after a newline: the empty line after it, column 1.
        let at_line_start = parse_document::<Doc>(&path, b"{\n  \"format\": 1,\n", 1);
        assert!(
            matches!(
                at_line_start,
                Err(DocumentError::Json {
                    line: 3,
                    column: 1,
                    ..
                })
            ),
            "{at_line_start:?}"
        );
    }
}
