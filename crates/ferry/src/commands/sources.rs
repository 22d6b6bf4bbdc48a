//! `ferry sources show`: the system's APT sources (under `--root`) as a table
//! or, with `--json`, as objects; files apt skips in `sources.list.d` are
//! listed as notes. A malformed sources file is an error with file, line,
//! column and what was expected (exit 2), as apt would refuse it too.
//!
//! Reading and deciding live in `ferry_deb::sources`; this module only
//! renders.

use ferry_apt::system::SystemRoot;
use ferry_deb::sources::{read_system_sources, SourceEntry, SourcesError, SystemSources};

use crate::cli::{Global, SourcesCommand};
use crate::exit::Exit;
use crate::render::{self, Failure};

pub fn run(command: SourcesCommand, global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    let SourcesCommand::Show = command;
    let system = read_system_sources(root.path()).map_err(failure_of)?;
    if global.json {
        render::json(&report_json(&system));
    } else {
        print!("{}", render::table(&HEADER, &rows(&system)));
        for note in notes(&system) {
            eprintln!("note: {note}");
        }
    }
    Ok(Exit::Ok)
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

fn rows(system: &SystemSources) -> Vec<Vec<String>> {
    system.entries().map(row).collect()
}

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

fn notes(system: &SystemSources) -> Vec<String> {
    system
        .ignored
        .iter()
        .map(|file| {
            let quiet = if file.silently {
                " (apt says nothing about it)"
            } else {
                ""
            };
            format!(
                "apt does not read {}: {}{quiet}",
                file.path.display(),
                file.reason
            )
        })
        .collect()
}

fn report_json(system: &SystemSources) -> serde_json::Value {
    let entries: Vec<&SourceEntry> = system.entries().collect();
    let ignored: Vec<serde_json::Value> = system
        .ignored
        .iter()
        .map(|file| {
            serde_json::json!({
                "path": file.path.display().to_string(),
                "reason": file.reason.to_string(),
                "apt_silent": file.silently,
            })
        })
        .collect();
    serde_json::json!({ "entries": entries, "ignored": ignored })
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
        let table = render::table(&HEADER, &rows(&system));
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
        let json = report_json(&system);
        let entry = &json["entries"][0];
        assert_eq!(entry["types"], serde_json::json!(["deb", "deb-src"]));
        assert_eq!(entry["enabled"], false);
        assert_eq!(entry["stanza"], 1);
        assert_eq!(entry["format"], "deb822");
        assert_eq!(json["ignored"][0]["apt_silent"], true);
        assert_eq!(notes(&system).len(), 1);
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
}
