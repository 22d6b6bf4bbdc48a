//! Reading a system's sources under a root directory, in apt's order:
//! `etc/apt/sources.list` first, then the files of `etc/apt/sources.list.d`
//! that apt reads (`*.list`, `*.sources`, names of letters, digits, `_-:.`),
//! sorted by name. Every other file there is reported as ignored, with why,
//! and whether apt itself mentions it (`Dir::Ignore-Files-Silently`).
//!
//! The root is a value (`/` or a mounted image), never a chroot. Which files
//! count is decided by [`classify_parts_file`], a pure function; only
//! [`read_system_sources`] touches the file system. Not read: apt.conf's
//! `Dir::Etc::SourceList`/`SourceParts` overrides.

use std::path::{Path, PathBuf};

use super::entry::Format;
use super::{read_sources_file, SourceEntry, SourcesDocument, SourcesError};

/// The main list, relative to the root.
pub const SOURCES_LIST: &str = "etc/apt/sources.list";
/// The directory of further sources files, relative to the root.
pub const SOURCES_PARTS: &str = "etc/apt/sources.list.d";

/// One sources file apt reads.
#[derive(Debug, Clone)]
pub struct SourcesFile {
    pub path: PathBuf,
    pub document: SourcesDocument,
}

/// A file of `sources.list.d` apt does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredFile {
    pub path: PathBuf,
    pub reason: IgnoreReason,
    /// apt skips it without a notice (`~`, `.disabled`, `.bak`, `.dpkg-*`,
    /// `.ucf-*`, `.save`, `.orig`, `.distUpgrade` names, hidden files).
    pub silently: bool,
}

/// Why apt does not read a file of `sources.list.d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// The name starts with `.`.
    Hidden,
    NotARegularFile,
    NoExtension,
    /// An extension other than `list` and `sources`.
    OtherExtension(String),
    /// A character other than letters, digits, `_`, `-`, `:` and `.`, or a
    /// final `.`.
    InvalidName,
}

impl std::fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IgnoreReason::Hidden => f.write_str("it is hidden"),
            IgnoreReason::NotARegularFile => f.write_str("it is not a regular file"),
            IgnoreReason::NoExtension => {
                f.write_str("it has no extension; apt reads .list and .sources files")
            }
            IgnoreReason::OtherExtension(ext) => {
                write!(
                    f,
                    "its extension is .{ext}; apt reads .list and .sources files"
                )
            }
            IgnoreReason::InvalidName => f.write_str("its name has characters apt does not accept"),
        }
    }
}

/// Every sources file apt reads on a system, and the files it skips.
#[derive(Debug, Clone, Default)]
pub struct SystemSources {
    pub files: Vec<SourcesFile>,
    pub ignored: Vec<IgnoredFile>,
}

impl SystemSources {
    /// Every entry, in apt's order.
    pub fn entries(&self) -> impl Iterator<Item = &SourceEntry> {
        self.files.iter().flat_map(|file| file.document.entries())
    }
}

/// How apt treats a name in `sources.list.d` (`GetListOfFilesInDir` with the
/// extensions `list` and `sources`), given whether it is a regular file.
pub fn classify_parts_file(name: &str, regular_file: bool) -> Result<Format, IgnoreReason> {
    if name.starts_with('.') {
        return Err(IgnoreReason::Hidden);
    }
    if !regular_file {
        return Err(IgnoreReason::NotARegularFile);
    }
    let format = match name.rsplit_once('.') {
        None => return Err(IgnoreReason::NoExtension),
        Some((_, "list")) => Format::OneLine,
        Some((_, "sources")) => Format::Deb822,
        Some((_, ext)) => return Err(IgnoreReason::OtherExtension(ext.to_string())),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.');
    if !name.chars().all(valid) || name.ends_with('.') {
        return Err(IgnoreReason::InvalidName);
    }
    Ok(format)
}

/// apt's default `Dir::Ignore-Files-Silently` patterns.
fn ignored_silently(name: &str) -> bool {
    let dotted_word = |prefix: &str| {
        name.rsplit_once(prefix).is_some_and(|(_, rest)| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase())
        })
    };
    name.starts_with('.')
        || name.ends_with('~')
        || [".disabled", ".bak", ".save", ".orig", ".distUpgrade"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
        || dotted_word(".dpkg-")
        || dotted_word(".ucf-")
}

/// Reads the sources of the system mounted at `root`. A missing
/// `sources.list` or `sources.list.d` is no error (apt only warns when both
/// are missing); the first malformed file is.
pub fn read_system_sources(root: &Path) -> Result<SystemSources, SourcesError> {
    let mut sources = SystemSources::default();
    let main = root.join(SOURCES_LIST);
    if main.is_file() {
        sources.files.push(SourcesFile {
            document: read_sources_file(&main)?,
            path: main,
        });
    }
    let parts = root.join(SOURCES_PARTS);
    if !parts.is_dir() {
        return Ok(sources);
    }
    let listing = std::fs::read_dir(&parts).map_err(|source| SourcesError::Read {
        path: parts.clone(),
        source,
    })?;
    let mut accepted = Vec::new();
    for item in listing {
        let item = item.map_err(|source| SourcesError::Read {
            path: parts.clone(),
            source,
        })?;
        let path = item.path();
        // Follows symlinks, as apt does.
        let is_file = path.is_file();
        let Some(name) = item.file_name().to_str().map(str::to_string) else {
            sources.ignored.push(IgnoredFile {
                path,
                reason: IgnoreReason::InvalidName,
                silently: false,
            });
            continue;
        };
        match classify_parts_file(&name, is_file) {
            Ok(_) => accepted.push(path),
            // apt skips directories without a notice unless they look like
            // sources files.
            Err(IgnoreReason::NotARegularFile)
                if path.is_dir() && !name.ends_with(".list") && !name.ends_with(".sources") => {}
            Err(reason) => sources.ignored.push(IgnoredFile {
                silently: ignored_silently(&name),
                path,
                reason,
            }),
        }
    }
    accepted.sort();
    sources.ignored.sort_by(|a, b| a.path.cmp(&b.path));
    for path in accepted {
        sources.files.push(SourcesFile {
            document: read_sources_file(&path)?,
            path,
        });
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_apt_reads_and_skips() {
        assert_eq!(
            classify_parts_file("debian.sources", true),
            Ok(Format::Deb822)
        );
        assert_eq!(
            classify_parts_file("vendor_1-x:y.list", true),
            Ok(Format::OneLine)
        );
        assert_eq!(
            classify_parts_file(".hidden.list", true),
            Err(IgnoreReason::Hidden)
        );
        assert_eq!(
            classify_parts_file("x.list", false),
            Err(IgnoreReason::NotARegularFile)
        );
        assert_eq!(
            classify_parts_file("README", true),
            Err(IgnoreReason::NoExtension)
        );
        assert_eq!(
            classify_parts_file("x.list.disabled-by-farm", true),
            Err(IgnoreReason::OtherExtension("disabled-by-farm".into()))
        );
        assert_eq!(
            classify_parts_file("my repo.list", true),
            Err(IgnoreReason::InvalidName)
        );
        assert_eq!(
            classify_parts_file("é.list", true),
            Err(IgnoreReason::InvalidName)
        );
    }

    #[test]
    fn apt_is_silent_about_backups() {
        assert!(ignored_silently("x.list.save"));
        assert!(ignored_silently("x.list.dpkg-old"));
        assert!(ignored_silently("x.list~"));
        assert!(ignored_silently("x.sources.distUpgrade"));
        assert!(!ignored_silently("x.list.dpkg-"));
        assert!(!ignored_silently("x.list.disabled-by-farm"));
    }
}
