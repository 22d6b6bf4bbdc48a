//! Typed records of binary packages (Packages files, dpkg status) and source
//! packages (Sources files), borrowed from the index text.
//!
//! Parse once here; the solver and the archive tools work on these types and
//! never look at field strings again. Not for reading files: see `index`.

use rayon::prelude::*;

use crate::deb822::{self, Field, Paragraph, Syntax, SyntaxError};
use crate::relation::{MultiArch, RelationError, Relations};
use crate::version::{VersionError, VersionRef};

/// A paragraph that is not a valid package record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    #[error("line {line}: missing field `{field}`")]
    Missing { line: usize, field: &'static str },
    #[error("line {line}: field `{field}`: {error}")]
    Version {
        line: usize,
        field: &'static str,
        error: VersionError,
    },
    #[error("line {line}, column {column}: field `{field}`: {error}")]
    Relation {
        line: usize,
        column: usize,
        field: &'static str,
        error: RelationError,
    },
    #[error("line {line}: field `{field}`: `{value}` is not one of {expected}")]
    Value {
        line: usize,
        field: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl RecordError {
    /// The 1-based line of the input the error is about.
    pub fn line(&self) -> usize {
        match self {
            RecordError::Syntax(e) => e.line,
            RecordError::Missing { line, .. }
            | RecordError::Version { line, .. }
            | RecordError::Relation { line, .. }
            | RecordError::Value { line, .. } => *line,
        }
    }
}

/// dpkg's installation state of a package in a status file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstallState {
    /// Not from a status file (a repository's Packages file).
    #[default]
    Available,
    NotInstalled,
    ConfigFiles,
    HalfInstalled,
    Unpacked,
    HalfConfigured,
    TriggersAwaited,
    TriggersPending,
    Installed,
}

/// dpkg's selection (what the admin wants) of a package in a status file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    #[default]
    Unknown,
    Install,
    Hold,
    Deinstall,
    Purge,
}

/// One binary package stanza.
#[derive(Debug, Clone)]
pub struct BinaryPackage<'a> {
    pub name: &'a str,
    pub version: VersionRef<'a>,
    pub architecture: &'a str,
    /// The source name, and its version when it differs from the binary's.
    pub source: &'a str,
    pub source_version: Option<VersionRef<'a>>,
    pub multi_arch: MultiArch,
    pub essential: bool,
    pub depends: Relations<'a>,
    pub pre_depends: Relations<'a>,
    pub recommends: Relations<'a>,
    pub suggests: Relations<'a>,
    pub conflicts: Relations<'a>,
    pub breaks: Relations<'a>,
    pub replaces: Relations<'a>,
    pub provides: Relations<'a>,
    pub enhances: Relations<'a>,
    pub section: Option<&'a str>,
    pub priority: Option<&'a str>,
    pub filename: Option<&'a str>,
    pub size: Option<u64>,
    pub installed_size_kib: Option<u64>,
    pub sha256: Option<&'a str>,
    pub selection: Selection,
    pub state: InstallState,
    /// dpkg's `reinstreq` flag: an interrupted unpack left the package
    /// broken, and only a reinstall (or a forced purge) clears it.
    pub reinstall_required: bool,
    /// 1-based line of the stanza in its file.
    pub line: usize,
}

impl<'a> BinaryPackage<'a> {
    /// Builds a record from a paragraph in one pass over its fields (a
    /// lookup per wanted field was the reader's largest cost on sid).
    pub fn from_paragraph(p: &Paragraph<'a>) -> Result<Self, RecordError> {
        Self::from_paragraph_with(p, RelationFields::All)
    }

    /// As `from_paragraph`, parsing only the relation fields `which` asks for.
    pub fn from_paragraph_with(
        p: &Paragraph<'a>,
        which: RelationFields,
    ) -> Result<Self, RecordError> {
        let all = which == RelationFields::All;
        let mut name = None;
        let mut version_field = None;
        let mut architecture = None;
        let mut source_field = None;
        let mut multi_arch_field = None;
        let mut status_field = None;
        let mut package = BinaryPackage::empty(p.line);
        for f in &p.fields {
            match canonical_field(f.name) {
                "Package" => name = Some(f.value),
                "Version" => version_field = Some(f),
                "Architecture" => architecture = Some(f.value),
                "Source" => source_field = Some(f),
                "Multi-Arch" => multi_arch_field = Some(f),
                "Status" => status_field = Some(f),
                "Essential" => package.essential = f.value.eq_ignore_ascii_case("yes"),
                "Depends" => package.depends = relations(f, "Depends")?,
                "Pre-Depends" => package.pre_depends = relations(f, "Pre-Depends")?,
                "Recommends" if all => package.recommends = relations(f, "Recommends")?,
                "Suggests" if all => package.suggests = relations(f, "Suggests")?,
                "Conflicts" => package.conflicts = relations(f, "Conflicts")?,
                "Breaks" => package.breaks = relations(f, "Breaks")?,
                "Replaces" if all => package.replaces = relations(f, "Replaces")?,
                "Provides" => package.provides = relations(f, "Provides")?,
                "Enhances" if all => package.enhances = relations(f, "Enhances")?,
                "Section" => package.section = Some(f.value),
                "Priority" => package.priority = Some(f.value),
                "Filename" => package.filename = Some(f.value),
                "SHA256" => package.sha256 = Some(f.value),
                "Size" => package.size = Some(number(f, "Size")?),
                "Installed-Size" => package.installed_size_kib = Some(number(f, "Installed-Size")?),
                _ => {}
            }
        }
        let missing = |field| RecordError::Missing {
            line: p.line,
            field,
        };
        package.name = name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| missing("Package"))?;
        package.version = version_of(version_field.ok_or_else(|| missing("Version"))?, "Version")?;
        package.architecture = architecture
            .filter(|a| !a.is_empty())
            .ok_or_else(|| missing("Architecture"))?;
        (package.source, package.source_version) = match source_field {
            Some(f) => parse_source_field(f)?,
            None => (package.name, None),
        };
        if let Some(f) = multi_arch_field {
            package.multi_arch = MultiArch::parse(f.value).ok_or_else(|| RecordError::Value {
                line: f.line,
                field: "Multi-Arch",
                value: f.value.to_string(),
                expected: "no, same, foreign, allowed",
            })?;
        }
        if let Some(f) = status_field {
            (package.selection, package.reinstall_required, package.state) = parse_status(f)?;
        }
        Ok(package)
    }

    fn empty(line: usize) -> Self {
        BinaryPackage {
            name: "",
            version: VersionRef {
                text: "0",
                epoch: 0,
                upstream: "0",
                revision: "",
            },
            architecture: "",
            source: "",
            source_version: None,
            multi_arch: MultiArch::No,
            essential: false,
            depends: Relations::default(),
            pre_depends: Relations::default(),
            recommends: Relations::default(),
            suggests: Relations::default(),
            conflicts: Relations::default(),
            breaks: Relations::default(),
            replaces: Relations::default(),
            provides: Relations::default(),
            enhances: Relations::default(),
            section: None,
            priority: None,
            filename: None,
            size: None,
            installed_size_kib: None,
            sha256: None,
            selection: Selection::Unknown,
            state: InstallState::Available,
            reinstall_required: false,
            line,
        }
    }

    /// Whether dpkg has this package unpacked or better (it occupies its
    /// name on the system, and its relations count).
    pub fn is_installed(&self) -> bool {
        !matches!(
            self.state,
            InstallState::Available | InstallState::NotInstalled | InstallState::ConfigFiles
        )
    }
}

/// Which relation fields to parse into a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationFields {
    All,
    /// Depends, Pre-Depends, Conflicts, Breaks and Provides only: all an
    /// installability check reads; sid's records then take a third less
    /// memory (the check's 300 MB bar).
    Installability,
}

/// One source package stanza of a Sources file.
#[derive(Debug, Clone)]
pub struct SourcePackage<'a> {
    pub name: &'a str,
    pub version: VersionRef<'a>,
    /// The binary packages it builds (the `Binary` field).
    pub binaries: Vec<&'a str>,
    pub architecture: Option<&'a str>,
    pub section: Option<&'a str>,
    pub maintainer: Option<&'a str>,
    pub extra_source_only: bool,
    pub build_depends: Relations<'a>,
    pub build_depends_indep: Relations<'a>,
    pub build_depends_arch: Relations<'a>,
    pub build_conflicts: Relations<'a>,
    pub line: usize,
}

impl<'a> SourcePackage<'a> {
    pub fn from_paragraph(p: &Paragraph<'a>) -> Result<Self, RecordError> {
        let name = required(p, "Package")?;
        let version_field = p.field("Version").ok_or(RecordError::Missing {
            line: p.line,
            field: "Version",
        })?;
        Ok(SourcePackage {
            name,
            version: version_of(version_field, "Version")?,
            binaries: p
                .get("Binary")
                .map(|b| {
                    b.split([',', ' ', '\n', '\t'])
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            architecture: p.get("Architecture"),
            section: p.get("Section"),
            maintainer: p.get("Maintainer"),
            extra_source_only: p.get("Extra-Source-Only") == Some("yes"),
            build_depends: field_relations(p, "Build-Depends")?,
            build_depends_indep: field_relations(p, "Build-Depends-Indep")?,
            build_depends_arch: field_relations(p, "Build-Depends-Arch")?,
            build_conflicts: field_relations(p, "Build-Conflicts")?,
            line: p.line,
        })
    }
}

fn required<'a>(p: &Paragraph<'a>, field: &'static str) -> Result<&'a str, RecordError> {
    match p.get(field) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(RecordError::Missing {
            line: p.line,
            field,
        }),
    }
}

fn version_of<'a>(f: &Field<'a>, field: &'static str) -> Result<VersionRef<'a>, RecordError> {
    VersionRef::split(f.value).map_err(|error| RecordError::Version {
        line: f.line,
        field,
        error,
    })
}

/// Field names as dpkg spells them: the exact spelling is the fast path,
/// other capitalisations are matched case-insensitively, as dpkg does.
fn canonical_field(name: &str) -> &str {
    const KNOWN: [&str; 22] = [
        "Package",
        "Version",
        "Architecture",
        "Source",
        "Multi-Arch",
        "Status",
        "Essential",
        "Depends",
        "Pre-Depends",
        "Recommends",
        "Suggests",
        "Conflicts",
        "Breaks",
        "Replaces",
        "Provides",
        "Enhances",
        "Section",
        "Priority",
        "Filename",
        "SHA256",
        "Size",
        "Installed-Size",
    ];
    if name.as_bytes().first().is_some_and(u8::is_ascii_uppercase) && KNOWN.contains(&name) {
        return name;
    }
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or(name)
}

fn number(f: &Field<'_>, field: &'static str) -> Result<u64, RecordError> {
    f.value.trim().parse().map_err(|_| RecordError::Value {
        line: f.line,
        field,
        value: f.value.to_string(),
        expected: "a whole number",
    })
}

fn field_relations<'a>(
    p: &Paragraph<'a>,
    field: &'static str,
) -> Result<Relations<'a>, RecordError> {
    match p.field(field) {
        Some(f) => relations(f, field),
        None => Ok(Relations::default()),
    }
}

fn relations<'a>(f: &Field<'a>, field: &'static str) -> Result<Relations<'a>, RecordError> {
    Relations::parse(f.value).map_err(|error| {
        let (line, column) = position_in_value(f, error.offset);
        RecordError::Relation {
            line,
            column,
            field,
            error,
        }
    })
}

/// The line and column of a byte offset inside a (multi-line) field value.
fn position_in_value(f: &Field<'_>, offset: usize) -> (usize, usize) {
    let before = &f.value.as_bytes()[..offset.min(f.value.len())];
    let newlines = memchr::memchr_iter(b'\n', before).count();
    let column = match memchr::memrchr(b'\n', before) {
        Some(nl) => offset - nl,
        None => f.name.len() + 2 + offset + 1,
    };
    (f.line + newlines, column)
}

/// `Source: name` or `Source: name (version)`.
fn parse_source_field<'a>(f: &Field<'a>) -> Result<(&'a str, Option<VersionRef<'a>>), RecordError> {
    let value = f.value;
    match value.split_once('(') {
        None => Ok((value.trim(), None)),
        Some((name, rest)) => {
            let version = rest
                .trim_end()
                .strip_suffix(')')
                .ok_or_else(|| RecordError::Value {
                    line: f.line,
                    field: "Source",
                    value: value.to_string(),
                    expected: "`name` or `name (version)`",
                })?;
            Ok((
                name.trim(),
                Some(version_of(
                    &Field {
                        value: version,
                        ..*f
                    },
                    "Source",
                )?),
            ))
        }
    }
}

/// `Status: want flag state`, e.g. `install ok installed`.
fn parse_status(f: &Field<'_>) -> Result<(Selection, bool, InstallState), RecordError> {
    let bad = || RecordError::Value {
        line: f.line,
        field: "Status",
        value: f.value.to_string(),
        expected: "`want flag state`, e.g. `install ok installed`",
    };
    let mut words = f.value.split_ascii_whitespace();
    let (Some(want), Some(flag), Some(state), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(bad());
    };
    let selection = match want {
        "unknown" => Selection::Unknown,
        "install" => Selection::Install,
        "hold" => Selection::Hold,
        "deinstall" => Selection::Deinstall,
        "purge" => Selection::Purge,
        _ => return Err(bad()),
    };
    let state = match state {
        "not-installed" => InstallState::NotInstalled,
        "config-files" => InstallState::ConfigFiles,
        "half-installed" => InstallState::HalfInstalled,
        "unpacked" => InstallState::Unpacked,
        "half-configured" => InstallState::HalfConfigured,
        "triggers-awaited" => InstallState::TriggersAwaited,
        "triggers-pending" => InstallState::TriggersPending,
        "installed" => InstallState::Installed,
        _ => return Err(bad()),
    };
    let reinstall_required = match flag {
        "ok" => false,
        "reinstreq" => true,
        _ => return Err(bad()),
    };
    Ok((selection, reinstall_required, state))
}

/// Reads every binary package of a Packages or status text, on all cores.
///
/// Chunks of whole paragraphs are parsed in parallel; the result keeps the
/// file's order and the first error (by position) is returned.
pub fn parse_binary_packages(text: &str) -> Result<Vec<BinaryPackage<'_>>, RecordError> {
    parse_records(text, BinaryPackage::from_paragraph)
}

/// As `parse_binary_packages`, parsing only the relation fields `which` asks for.
pub fn parse_binary_packages_with(
    text: &str,
    which: RelationFields,
) -> Result<Vec<BinaryPackage<'_>>, RecordError> {
    parse_records(text, |p| BinaryPackage::from_paragraph_with(p, which))
}

/// Reads every source package of a Sources text, on all cores.
pub fn parse_source_packages(text: &str) -> Result<Vec<SourcePackage<'_>>, RecordError> {
    parse_records(text, SourcePackage::from_paragraph)
}

const CHUNK_BYTES: usize = 1 << 20;

fn parse_records<'a, T: Send>(
    text: &'a str,
    record: impl Fn(&Paragraph<'a>) -> Result<T, RecordError> + Sync,
) -> Result<Vec<T>, RecordError> {
    let chunks = deb822::split_chunks(text, CHUNK_BYTES);
    let parsed: Vec<Result<Vec<T>, RecordError>> = chunks
        .par_iter()
        .map(|(lines_before, chunk)| {
            let mut reader = deb822::paragraphs_from_line(chunk, Syntax::INDEX, *lines_before);
            let mut paragraph = Paragraph::default();
            let mut records = Vec::with_capacity(chunk.len() / 700);
            while let Some(read) = reader.read_into(&mut paragraph) {
                read?;
                records.push(record(&paragraph)?);
            }
            Ok(records)
        })
        .collect();
    let mut all = Vec::with_capacity(parsed.iter().map(|c| c.as_ref().map_or(0, Vec::len)).sum());
    for chunk in parsed {
        all.extend(chunk?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKAGES: &str = "\
Package: libfoo1
Source: foo (1.2-1)
Version: 1.2-1+b1
Architecture: amd64
Multi-Arch: same
Depends: libc6 (>= 2.36),
 libbar | libbaz
Provides: libfoo (= 1.2)
Size: 1234

Package: tool
Version: 2.0
Architecture: all
Status: hold ok installed
Essential: yes
";

    #[test]
    fn typed_records_from_a_packages_text() {
        let pkgs = parse_binary_packages(PACKAGES).unwrap();
        assert_eq!(pkgs.len(), 2);
        let foo = &pkgs[0];
        assert_eq!(
            (foo.name, foo.architecture, foo.source),
            ("libfoo1", "amd64", "foo")
        );
        assert_eq!(foo.source_version.unwrap().to_string(), "1.2-1");
        assert_eq!(foo.multi_arch, MultiArch::Same);
        assert_eq!(foo.depends.groups.len(), 2);
        assert_eq!(foo.depends.groups[1].len(), 2);
        assert_eq!(foo.size, Some(1234));
        let tool = &pkgs[1];
        assert_eq!(tool.source, "tool");
        assert!(tool.essential);
        assert_eq!(
            (tool.selection, tool.state),
            (Selection::Hold, InstallState::Installed)
        );
        assert_eq!(tool.line, 11);
    }

    #[test]
    fn errors_name_the_line_of_the_field() {
        let text = "Package: a\nVersion: 1\nArchitecture: all\n\nPackage: b\nVersion: 1\nArchitecture: all\nDepends: x,\n y (>= 1\n";
        let err = parse_binary_packages(text).unwrap_err();
        assert_eq!(err.line(), 9);
        let err = parse_binary_packages("Package: a\nArchitecture: all\n").unwrap_err();
        assert!(matches!(
            err,
            RecordError::Missing {
                field: "Version",
                line: 1
            }
        ));
        let err =
            parse_binary_packages("Package: a\nVersion: 1\nArchitecture: all\nMulti-Arch: some\n")
                .unwrap_err();
        assert_eq!(err.line(), 4);
    }

    #[test]
    fn parallel_chunks_keep_order_and_lines() {
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!(
                "Package: p{i}\nVersion: 1.{i}\nArchitecture: amd64\n\n"
            ));
        }
        let pkgs = parse_binary_packages(&text).unwrap();
        assert_eq!(pkgs.len(), 20_000);
        assert_eq!(pkgs[12_345].name, "p12345");
        assert_eq!(pkgs[12_345].line, 12_345 * 4 + 1);
    }

    #[test]
    fn source_records() {
        let text = "Package: foo\nBinary: libfoo1, foo-tools,\n foo-doc\nVersion: 1.2-1\nBuild-Depends: debhelper-compat (= 13), libbar-dev [!hurd-any] <!nocheck>\n";
        let srcs = parse_source_packages(text).unwrap();
        assert_eq!(srcs[0].binaries, ["libfoo1", "foo-tools", "foo-doc"]);
        assert_eq!(srcs[0].build_depends.groups.len(), 2);
    }
}
