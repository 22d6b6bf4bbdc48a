//! One suite of an archive as a mirror lays it out, read into memory:
//! the Packages text of each architecture (arch:all packages are listed
//! in each) and the Sources texts. Records borrow from these texts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_deb::package::{
    parse_binary_packages_with, parse_source_packages, RelationFields, SourcePackage,
};
use ferry_deb::BinaryPackage;

use ferry_solve::PackageRef;

use crate::ArchiveError;

/// A binary as (name, version, architecture): what identifies it across
/// suites, universes and reports.
pub type Key = (String, String, String);

/// The key of a binary record.
pub(crate) fn key(p: &BinaryPackage<'_>) -> Key {
    (
        p.name.to_string(),
        p.version.to_string(),
        p.architecture.to_string(),
    )
}

/// The key of a package as ferry-solve reports it.
pub(crate) fn key_of(r: &PackageRef) -> Key {
    (r.package.clone(), r.version.clone(), r.architecture.clone())
}

/// Turns a parse error of the index at `path` into an archive error.
fn parse_error(path: &Path) -> impl Fn(ferry_deb::RecordError) -> ArchiveError + '_ {
    move |e| ArchiveError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        message: e.to_string(),
    }
}

/// Index names in the order they are preferred when several are present.
const PACKAGES: [&str; 6] = [
    "Packages",
    "Packages.xz",
    "Packages.gz",
    "Packages.zst",
    "Packages.bz2",
    "Packages.lz4",
];
const SOURCES: [&str; 6] = [
    "Sources",
    "Sources.xz",
    "Sources.gz",
    "Sources.zst",
    "Sources.bz2",
    "Sources.lz4",
];

/// A suite's index texts.
#[derive(Debug)]
pub struct Suite {
    pub dir: PathBuf,
    /// Architecture → its Packages texts (one per component), with paths.
    packages: BTreeMap<String, Vec<(PathBuf, String)>>,
    sources: Vec<(PathBuf, String)>,
    /// Indices that were not UTF-8 throughout, as warnings naming the file
    /// and line: read as bytes, as apt reads them, but never silently.
    pub warnings: Vec<String>,
}

fn first_present(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ArchiveError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn read(path: &Path, warnings: &mut Vec<String>) -> Result<String, ArchiveError> {
    let index = ferry_deb::index::read_text(path).map_err(|e| ArchiveError::Read {
        path: e.path,
        source: e.source,
    })?;
    warnings.extend(index.warning(path));
    Ok(index.text)
}

impl Suite {
    /// Reads the suite at `dir`; `architectures` limits which are read
    /// (empty: every `binary-ARCH` found).
    pub fn read(dir: &Path, architectures: &[String]) -> Result<Suite, ArchiveError> {
        let mut packages: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
        let mut sources = Vec::new();
        let mut warnings = Vec::new();
        for component in sorted_dirs(dir)? {
            for sub in sorted_dirs(&component)? {
                let name = sub
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if let Some(arch) = name.strip_prefix("binary-") {
                    if arch == "all"
                        || (!architectures.is_empty() && !architectures.iter().any(|a| a == arch))
                    {
                        continue;
                    }
                    if let Some(path) = first_present(&sub, &PACKAGES) {
                        let text = read(&path, &mut warnings)?;
                        packages
                            .entry(arch.to_string())
                            .or_default()
                            .push((path, text));
                    }
                } else if name == "source" {
                    if let Some(path) = first_present(&sub, &SOURCES) {
                        let text = read(&path, &mut warnings)?;
                        sources.push((path, text));
                    }
                }
            }
        }
        if packages.is_empty() {
            return Err(ArchiveError::NoIndices {
                dir: dir.to_path_buf(),
            });
        }
        Ok(Suite {
            dir: dir.to_path_buf(),
            packages,
            sources,
            warnings,
        })
    }

    pub fn architectures(&self) -> impl Iterator<Item = &str> {
        self.packages.keys().map(String::as_str)
    }

    /// The binary packages listed for `arch` (arch:all ones included).
    pub fn binaries(&self, arch: &str) -> Result<Vec<BinaryPackage<'_>>, ArchiveError> {
        let mut all = Vec::new();
        for (path, text) in self.packages.get(arch).into_iter().flatten() {
            let records = parse_binary_packages_with(text, RelationFields::Installability)
                .map_err(parse_error(path))?;
            all.extend(records);
        }
        Ok(all)
    }

    /// Every source package of the suite's Sources indices.
    pub fn sources(&self) -> Result<Vec<SourcePackage<'_>>, ArchiveError> {
        let mut all = Vec::new();
        for (path, text) in &self.sources {
            let records = parse_source_packages(text).map_err(parse_error(path))?;
            all.extend(records);
        }
        Ok(all)
    }

    /// Each binary stanza of `arch` as written, keyed by (name, version,
    /// architecture); for writing a suite back.
    pub fn binary_stanzas(&self, arch: &str) -> Vec<(Key, &str)> {
        self.packages
            .get(arch)
            .into_iter()
            .flatten()
            .flat_map(|(_, text)| stanzas(text))
            .filter_map(|stanza| {
                let name = field(stanza, "Package")?;
                let version = field(stanza, "Version")?;
                let architecture = field(stanza, "Architecture")?;
                Some(((name, version, architecture), stanza))
            })
            .collect()
    }

    /// Each source stanza as written, keyed by (name, version).
    pub fn source_stanzas(&self) -> Vec<((String, String), &str)> {
        self.sources
            .iter()
            .flat_map(|(_, text)| stanzas(text))
            .filter_map(|stanza| {
                Some((
                    (field(stanza, "Package")?, field(stanza, "Version")?),
                    stanza,
                ))
            })
            .collect()
    }

    /// Whether the suite has Sources indices at all.
    pub fn has_sources(&self) -> bool {
        !self.sources.is_empty()
    }
}

/// The paragraphs of an index, as written (blank lines separate them).
fn stanzas(text: &str) -> impl Iterator<Item = &str> {
    text.split("\n\n").filter(|s| !s.trim().is_empty())
}

/// A simple field's value in a stanza (first line only).
fn field(stanza: &str, name: &str) -> Option<String> {
    stanza.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}
