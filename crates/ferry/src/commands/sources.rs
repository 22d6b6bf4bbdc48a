//! `ferry sources show`: the system's APT sources (under `--root`) as a table
//! or, with `--json`, as objects; files apt skips in `sources.list.d` are
//! listed as notes. A malformed sources file is an error with file, line,
//! column and what was expected (exit 2), as apt would refuse it too.
//!
//! Reading and deciding live in `ferry_deb::sources`; this module only
//! renders.

use std::fmt;

use ferry_apt::SystemRoot;
use ferry_deb::sources::{read_system_sources, SourceEntry, SourcesError, SystemSources};

use serde::Serialize;

use crate::cli::{Global, SourcesCommand};
use crate::exit::Exit;
use crate::render::{self, Failure};

pub fn run(command: SourcesCommand, global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    let SourcesCommand::Show = command;
    let system = read_system_sources(root.path()).map_err(failure_of)?;
    let output = SourcesOutput::of(&system);
    render::output(&output, global);
    if !global.json {
        for note in output.notes() {
            eprintln!("note: {note}");
        }
    }
    Ok(Exit::Ok)
}

/// The system's sources: every entry, and the files of `sources.list.d`
/// apt does not read. People get the entries as a table on stdout and the
/// ignored files as notes on stderr.
#[derive(Debug, Serialize)]
pub struct SourcesOutput<'a> {
    pub entries: Vec<&'a SourceEntry>,
    pub ignored: Vec<Ignored>,
}

/// A file apt skips, and why.
#[derive(Debug, Serialize)]
pub struct Ignored {
    pub path: String,
    pub reason: String,
    /// apt skips it without a notice of its own.
    pub apt_silent: bool,
}

impl<'a> SourcesOutput<'a> {
    fn of(system: &'a SystemSources) -> Self {
        SourcesOutput {
            entries: system.entries().collect(),
            ignored: system
                .ignored
                .iter()
                .map(|file| Ignored {
                    path: file.path.display().to_string(),
                    reason: file.reason.to_string(),
                    apt_silent: file.silently,
                })
                .collect(),
        }
    }

    fn notes(&self) -> Vec<String> {
        self.ignored
            .iter()
            .map(|file| {
                let quiet = if file.apt_silent {
                    " (apt says nothing about it)"
                } else {
                    ""
                };
                format!("apt does not read {}: {}{quiet}", file.path, file.reason)
            })
            .collect()
    }
}

impl fmt::Display for SourcesOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<Vec<String>> = self.entries.iter().map(|e| row(e)).collect();
        f.write_str(&render::table(&HEADER, &rows))
    }
}

const HEADER: [&str; 7] = [
    "LOCATION",
    "TYPE",
    "ENABLED",
    "URI",
    "SUITE",
    "COMPONENTS",
    "SIGNED-BY",
];

fn row(entry: &SourceEntry) -> Vec<String> {
    let types: Vec<&str> = entry.types.iter().map(|t| t.as_str()).collect();
    let or_dash = |text: String| {
        if text.is_empty() {
            "-".to_string()
        } else {
            text
        }
    };
    vec![
        format!("{}:{}", entry.path.display(), entry.line),
        types.join(" "),
        if entry.enabled { "yes" } else { "no" }.to_string(),
        or_dash(entry.uris.join(" ")),
        or_dash(entry.suites.join(" ")),
        or_dash(entry.components.join(" ")),
        entry
            .signed_by
            .as_ref()
            .map_or_else(|| "-".to_string(), |s| s.summary()),
    ]
}

fn failure_of(error: SourcesError) -> Failure {
    match error {
        SourcesError::Parse { path, error } => Failure::bad_input(format!(
            "malformed APT sources: {}",
            error.message
        ))
        .at(&path, Some(error.line), Some(error.column))
        .expected(error.expected)
        .hint(
            "apt refuses this file as well: fix the entry, or move the file out of sources.list.d",
        ),
        SourcesError::Read { path, source } => {
            Failure::failed(format!("cannot read {}: {source}", path.display()))
                .at(&path, None, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use ferry_deb::sources::{parse_sources_file, SourcesFile};

    use super::*;

    fn system(path: &str, text: &str) -> SystemSources {
        let path = Path::new(path);
        SystemSources {
            files: vec![SourcesFile {
                path: path.to_path_buf(),
                document: parse_sources_file(path, text.to_string()).unwrap(),
            }],
            ignored: vec![],
        }
    }

    #[test]
    fn a_row_per_entry_with_location_and_state() {
        let system = system(
            "/r/etc/apt/sources.list",
            "# c\ndeb [signed-by=/k.gpg] http://r.example.org/d s main contrib\n# deb-src http://r.example.org/d s main\n",
        );
        let table = SourcesOutput::of(&system).to_string();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].starts_with("/r/etc/apt/sources.list:2  deb      yes"),
            "{table}"
        );
        assert!(lines[1].ends_with("main contrib  /k.gpg"), "{table}");
        assert!(
            lines[2].contains("deb-src  no") && lines[2].ends_with("  -"),
            "{table}"
        );
    }

    #[test]
    fn json_lists_entries_and_ignored_files() {
        let mut system = system(
            "/r/etc/apt/sources.list.d/x.sources",
            "Types: deb deb-src\nURIs: http://r.example.org/d\nSuites: s\nComponents: main\nEnabled: no\n",
        );
        system.ignored.push(ferry_deb::sources::IgnoredFile {
            path: "/r/etc/apt/sources.list.d/x.list.save".into(),
            reason: ferry_deb::sources::IgnoreReason::OtherExtension("save".into()),
            silently: true,
        });
        let output = SourcesOutput::of(&system);
        let json = serde_json::to_value(&output).unwrap();
        let entry = &json["entries"][0];
        assert_eq!(entry["types"], serde_json::json!(["deb", "deb-src"]));
        assert_eq!(entry["enabled"], false);
        assert_eq!(entry["stanza"], 1);
        assert_eq!(entry["format"], "deb822");
        assert_eq!(json["ignored"][0]["apt_silent"], true);
        assert_eq!(output.notes().len(), 1);
    }

    #[test]
    fn malformed_sources_are_bad_input_with_a_location() {
        let path = Path::new("/r/etc/apt/sources.list");
        let error = parse_sources_file(path, "deb http://r.example.org/d\n".into()).unwrap_err();
        let failure = failure_of(error);
        assert_eq!(failure.exit_code(), Exit::BadInput);
        let location = failure.location.as_ref().unwrap();
        assert_eq!((location.line, location.column), (Some(1), Some(27)));
        assert!(failure.expected.as_deref().unwrap().contains("suite"));
    }

    /// Two files, a one-line entry (and its commented-out deb-src) and a
    /// deb822 stanza with an inline option, and a file apt skips.
    fn two_files() -> SystemSources {
        let list = Path::new("/r/etc/apt/sources.list");
        let stanza = Path::new("/r/etc/apt/sources.list.d/acme.sources");
        SystemSources {
            files: vec![
                SourcesFile {
                    path: list.to_path_buf(),
                    document: parse_sources_file(
                        list,
                        "deb [arch=amd64 signed-by=/usr/share/keyrings/d.gpg] http://r.example.org/debian bookworm main\n# deb-src http://r.example.org/debian bookworm main\n".into(),
                    )
                    .unwrap(),
                },
                SourcesFile {
                    path: stanza.to_path_buf(),
                    document: parse_sources_file(
                        stanza,
                        "Types: deb\nURIs: http://acme.example.org/apt\nSuites: stable/\nSigned-By: /usr/share/keyrings/acme.gpg\nX-Repolib-Name: ACME\n".into(),
                    )
                    .unwrap(),
                },
            ],
            ignored: vec![ferry_deb::sources::IgnoredFile {
                path: "/r/etc/apt/sources.list.d/old.list.save".into(),
                reason: ferry_deb::sources::IgnoreReason::OtherExtension("save".into()),
                silently: true,
            }],
        }
    }

    #[test]
    fn sources_for_people() {
        let system = two_files();
        let output = SourcesOutput::of(&system);
        insta::assert_snapshot!(format!("{output}\n{}", output.notes().join("\n")));
    }

    #[test]
    fn sources_as_json() {
        insta::assert_json_snapshot!(SourcesOutput::of(&two_files()));
    }
}
