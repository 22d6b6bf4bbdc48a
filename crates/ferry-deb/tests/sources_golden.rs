//! Golden tests of APT sources on real-world layouts (fixtures under
//! `tests/fixtures/sources/<system>/etc/apt`): parsing and rendering without
//! edits is byte-identical, each edit changes exactly the expected lines
//! (compared with files under `expected/`), one-line files convert to the
//! expected deb822 text. `FERRY_BLESS=1 cargo test` rewrites the expected
//! files after an intended change; review their diff before committing.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use ferry_deb::sources::{
    parse_sources_file, read_sources_file, read_system_sources, unified_diff, ComponentsChange,
    Edit, IgnoreReason, Matcher, SignedBy, SignedByChange, SourceType, SourcesDocument,
    SourcesError, SuiteChange, UriChange,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sources")
}

fn fixture(path: &str) -> PathBuf {
    fixtures().join(path)
}

fn read(path: &str) -> SourcesDocument {
    read_sources_file(&fixture(path)).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_golden(name: &str, actual: &str) {
    let path = fixture("expected").join(name);
    if std::env::var_os("FERRY_BLESS").is_some() {
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        actual == expected,
        "{name} differs from the expected file:\n{}",
        unified_diff(&expected, actual, "expected", "actual")
    );
}

/// 1-based numbers of the lines of `old` that differ in `new` (same number
/// of lines on both sides).
fn changed_lines(old: &str, new: &str) -> Vec<usize> {
    assert_eq!(old.lines().count(), new.lines().count(), "{new}");
    old.lines()
        .zip(new.lines())
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i + 1)
        .collect()
}

fn rewrite(document: &SourcesDocument, matcher: Matcher, edit: Edit) -> SourcesDocument {
    document
        .rewrite(&matcher, &edit)
        .unwrap_or_else(|e| panic!("{e}"))
        .document
}

fn all_fixture_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for item in fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.is_dir() {
            all_fixture_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "list" || e == "sources")
        {
            out.push(path);
        }
    }
}

#[test]
fn every_fixture_round_trips_byte_identical() {
    let mut files = Vec::new();
    all_fixture_files(&fixtures(), &mut files);
    assert!(files.len() >= 10, "{files:?}");
    for path in files {
        let original = fs::read_to_string(&path).unwrap();
        let document = read_sources_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(document.text(), original);
        let unchanged = document
            .rewrite(&Matcher::default(), &Edit::default())
            .unwrap();
        assert_eq!(unchanged.document.text(), original, "{}", path.display());
        assert!(unchanged.changed.is_empty());
        let nothing_matches = Matcher {
            uri_prefix: Some("http://nowhere.example.invalid".into()),
            ..Matcher::default()
        };
        let edit = Edit {
            suite: Some(SuiteChange::Set("x".into())),
            enabled: Some(false),
            ..Edit::default()
        };
        assert_eq!(
            document
                .rewrite(&nothing_matches, &edit)
                .unwrap()
                .document
                .text(),
            original
        );
    }
}

#[test]
fn a_release_upgrade_renames_the_codename_in_entries_only() {
    let document = read("bookworm/etc/apt/sources.list");
    let edit = Edit {
        suite: Some(SuiteChange::ReplaceCodename {
            from: "bookworm".into(),
            to: "trixie".into(),
        }),
        ..Edit::default()
    };
    let rewritten = document.rewrite(&Matcher::default(), &edit).unwrap();
    let text = rewritten.document.text();
    assert_golden("bookworm-to-trixie.list", text);
    // Line 9, a comment naming bookworm-updates, stays; the disabled cdrom
    // and backports entries change with the rest.
    assert_eq!(
        changed_lines(document.text(), text),
        [1, 3, 4, 6, 7, 11, 12, 18]
    );
    assert_eq!(rewritten.changed.len(), 8);
    assert!(rewritten
        .document
        .entries()
        .iter()
        .all(|e| e.suites[0].starts_with("trixie")));
}

#[test]
fn an_organisation_move_changes_uris_and_keys_of_its_entries() {
    let document = read("thirdparty/etc/apt/sources.list.d/vendor.list");
    let rewritten = rewrite(
        &document,
        Matcher {
            uri_prefix: Some("https://apt.example.com/vendor".into()),
            ..Matcher::default()
        },
        Edit {
            uri: Some(UriChange::ReplacePrefix {
                from: "https://apt.example.com/vendor".into(),
                to: "https://packages.example.net/tools".into(),
            }),
            signed_by: Some(SignedByChange::Set(SignedBy::keyring(
                "/usr/share/keyrings/example-net-archive-keyring.gpg",
            ))),
            ..Edit::default()
        },
    );
    assert_golden("vendor-moved.list", rewritten.text());
    assert_eq!(changed_lines(document.text(), rewritten.text()), [2, 3]);
    let entry = &rewritten.entries()[0];
    assert_eq!(entry.uris, ["https://packages.example.net/tools"]);
    assert_eq!(entry.architectures, ["amd64"], "other options stay");
}

#[test]
fn disabled_deb_src_lines_are_re_enabled() {
    let document = read("ubuntu/etc/apt/sources.list");
    let rewritten = rewrite(
        &document,
        Matcher {
            source_type: Some(SourceType::DebSrc),
            enabled: Some(false),
            uri_prefix: Some("http://archive.example.com/ubuntu".into()),
            ..Matcher::default()
        },
        Edit {
            enabled: Some(true),
            ..Edit::default()
        },
    );
    assert_golden("ubuntu-deb-src-enabled.list", rewritten.text());
    assert_eq!(
        changed_lines(document.text(), rewritten.text()),
        [9, 15, 17, 25, 27, 35]
    );
    let disabled: Vec<usize> = rewritten
        .entries()
        .iter()
        .filter(|e| !e.enabled)
        .map(|e| e.line)
        .collect();
    assert_eq!(
        disabled,
        [39, 40, 43, 45, 47],
        "partner and security deb-src stay disabled"
    );
}

#[test]
fn components_are_added_and_removed_word_by_word() {
    let document = read("bookworm/etc/apt/sources.list");
    let security = Matcher {
        suite: Some("bookworm-security".into()),
        ..Matcher::default()
    };
    let added = rewrite(
        &document,
        security.clone(),
        Edit {
            components: Some(ComponentsChange::Add(vec!["contrib".into()])),
            ..Edit::default()
        },
    );
    assert_golden("bookworm-security-contrib.list", added.text());
    assert_eq!(changed_lines(document.text(), added.text()), [6, 7]);
    let removed = rewrite(
        &added,
        security,
        Edit {
            components: Some(ComponentsChange::Remove(vec!["contrib".into()])),
            ..Edit::default()
        },
    );
    assert_eq!(removed.text(), document.text());
}

#[test]
fn deb822_stanzas_are_edited_field_by_field() {
    let document = read("deb822/etc/apt/sources.list.d/debian.sources");
    let upgraded = rewrite(
        &document,
        Matcher::default(),
        Edit {
            suite: Some(SuiteChange::ReplaceCodename {
                from: "bookworm".into(),
                to: "trixie".into(),
            }),
            components: Some(ComponentsChange::Add(vec!["non-free-firmware".into()])),
            ..Edit::default()
        },
    );
    assert_golden("debian-trixie.sources", upgraded.text());
    // The snapshot comments between the fields stay.
    assert_eq!(
        changed_lines(document.text(), upgraded.text()),
        [4, 5, 11, 12]
    );
}

#[test]
fn deb822_inline_keys_enabled_and_suites() {
    let document = read("deb822/etc/apt/sources.list.d/vendor.sources");
    let entries = document.entries();
    assert_eq!(entries.len(), 2);
    assert!(
        matches!(&entries[0].signed_by, Some(SignedBy::Inline(key)) if key.contains("=JzdX\n"))
    );
    assert!(!entries[1].enabled);

    // The inline key is replaced by a keyring, testing becomes unstable, and
    // the nightly stanza is switched on.
    let keyring = rewrite(
        &document,
        Matcher {
            uri_prefix: Some("https://apt.example.com/vendor".into()),
            ..Matcher::default()
        },
        Edit {
            signed_by: Some(SignedByChange::Set(SignedBy::keyring(
                "/usr/share/keyrings/vendor.gpg",
            ))),
            suite: Some(SuiteChange::Rename {
                from: "testing".into(),
                to: "unstable".into(),
            }),
            ..Edit::default()
        },
    );
    let edited = rewrite(
        &keyring,
        Matcher {
            suite: Some("nightly".into()),
            ..Matcher::default()
        },
        Edit {
            enabled: Some(true),
            ..Edit::default()
        },
    );
    assert_golden("vendor-edited.sources", edited.text());
    assert!(edited.entries().iter().all(|e| e.enabled));
    assert_eq!(edited.entries()[0].suites, ["stable", "unstable"]);

    // And back: the inline key as it was, the nightly stanza off again.
    let Some(key @ SignedBy::Inline(_)) = entries[0].signed_by.clone() else {
        unreachable!()
    };
    let restored = rewrite(
        &edited,
        Matcher {
            uri_prefix: Some("https://mirror.example.net/vendor".into()),
            ..Matcher::default()
        },
        Edit {
            signed_by: Some(SignedByChange::Set(key)),
            suite: Some(SuiteChange::Rename {
                from: "unstable".into(),
                to: "testing".into(),
            }),
            ..Edit::default()
        },
    );
    let restored = rewrite(
        &restored,
        Matcher {
            suite: Some("nightly".into()),
            ..Matcher::default()
        },
        Edit {
            enabled: Some(false),
            ..Edit::default()
        },
    );
    let expected_back = document.text().replace("Enabled: no\n", "");
    let expected_back = expected_back.replace(
        "Types: deb\nURIs: https://nightly",
        "Enabled: no\nTypes: deb\nURIs: https://nightly",
    );
    assert_eq!(restored.text(), expected_back);
}

#[test]
fn a_keyring_becomes_an_inline_key() {
    let document = read("noble/etc/apt/sources.list.d/ubuntu.sources");
    let key = fs::read_to_string(fixture("deb822/etc/apt/sources.list.d/vendor.sources")).unwrap();
    let key: String = key
        .lines()
        .skip_while(|l| !l.contains("BEGIN PGP"))
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{}\n", if l.trim() == "." { "" } else { l.trim() }))
        .collect();
    let inline = rewrite(
        &document,
        Matcher {
            suite: Some("noble-security".into()),
            ..Matcher::default()
        },
        Edit {
            signed_by: Some(SignedByChange::Set(SignedBy::Inline(key.clone()))),
            ..Edit::default()
        },
    );
    assert_golden("ubuntu-security-inline-key.sources", inline.text());
    assert_eq!(inline.entries()[1].signed_by, Some(SignedBy::Inline(key)));
    assert_eq!(inline.entries()[0], document.entries()[0]);
}

#[test]
fn one_line_files_convert_to_deb822() {
    for (source, expected) in [
        (
            "bookworm/etc/apt/sources.list",
            "bookworm.converted.sources",
        ),
        ("ubuntu/etc/apt/sources.list", "ubuntu.converted.sources"),
        (
            "thirdparty/etc/apt/sources.list.d/vendor.list",
            "vendor.converted.sources",
        ),
        (
            "thirdparty/etc/apt/sources.list.d/multi-arch.list",
            "multi-arch.converted.sources",
        ),
        (
            "thirdparty/etc/apt/sources.list.d/local.list",
            "local.converted.sources",
        ),
    ] {
        let document = read(source);
        let converted = document.to_deb822().unwrap();
        assert_golden(expected, &converted);
        let reread =
            parse_sources_file(Path::new(expected), converted).unwrap_or_else(|e| panic!("{e}"));
        // The same (type, URI, suite, component) tuples, enabled or not.
        let tuples = |document: &SourcesDocument, enabled: bool| -> BTreeSet<String> {
            let mut out = BTreeSet::new();
            for e in document.entries().iter().filter(|e| e.enabled == enabled) {
                for t in &e.types {
                    for u in &e.uris {
                        for s in &e.suites {
                            for c in e
                                .components
                                .iter()
                                .map(String::as_str)
                                .chain(e.components.is_empty().then_some(""))
                            {
                                out.insert(format!(
                                    "{t} {} {s} {c}",
                                    u.trim_end_matches('/').replace(' ', "%20")
                                ));
                            }
                        }
                    }
                }
            }
            out
        };
        for enabled in [true, false] {
            assert_eq!(
                tuples(&document, enabled),
                tuples(&reread, enabled),
                "{source}"
            );
        }
    }
}

#[test]
fn malformed_files_name_file_line_column_and_expectation() {
    let cases: [(&str, &str, (usize, usize), &str); 4] = [
        (
            "x.list",
            "# fine\ndeb http://r.example.org/debian\n",
            (2, 32),
            "suite",
        ),
        (
            "x.list",
            "deb [arch=amd64 http://r.example.org/debian s main\n",
            (1, 17),
            "name=value",
        ),
        (
            "x.sources",
            "Types: deb\nSuites: s\nComponents: main\n",
            (1, 1),
            "URIs",
        ),
        (
            "x.sources",
            "Types: deb debs\nURIs: http://r.example.org/d\nSuites: s\nComponents: main\n",
            (1, 12),
            "deb-src",
        ),
    ];
    for (name, text, (line, column), expected) in cases {
        let path = Path::new("/etc/apt/sources.list.d").join(name);
        let error = parse_sources_file(&path, text.to_string()).unwrap_err();
        let SourcesError::Parse {
            path: at,
            error: parse,
        } = &error
        else {
            panic!("{error}")
        };
        assert_eq!(at, &path);
        assert_eq!((parse.line, parse.column), (line, column), "{error}");
        assert!(
            parse.expected.contains(expected),
            "{error}: {}",
            parse.expected
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}:{line}:{column}: ", path.display())),
            "{error}"
        );
    }
}

#[test]
fn a_system_is_read_in_apt_order_with_ignored_files_reported() {
    let root = fixture("thirdparty");
    let system = read_system_sources(&root).unwrap();
    let names: Vec<String> = system
        .files
        .iter()
        .map(|f| f.path.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "etc/apt/sources.list",
            "etc/apt/sources.list.d/local.list",
            "etc/apt/sources.list.d/multi-arch.list",
            "etc/apt/sources.list.d/vendor.list",
        ]
    );
    let ignored: Vec<(String, IgnoreReason, bool)> = system
        .ignored
        .iter()
        .map(|f| {
            (
                f.path.file_name().unwrap().to_string_lossy().into_owned(),
                f.reason.clone(),
                f.silently,
            )
        })
        .collect();
    assert_eq!(
        ignored,
        [
            (".hidden.list".to_string(), IgnoreReason::Hidden, true),
            (
                "notes.txt".to_string(),
                IgnoreReason::OtherExtension("txt".into()),
                false
            ),
            (
                "vendor+beta.list".to_string(),
                IgnoreReason::InvalidName,
                false
            ),
            (
                "vendor.list.save".to_string(),
                IgnoreReason::OtherExtension("save".into()),
                true
            ),
        ]
    );
    let entries: Vec<String> = system.entries().map(|e| e.apt_location()).collect();
    assert_eq!(entries.len(), 6);
    assert!(entries[0].ends_with("etc/apt/sources.list:1"));
    assert!(read_system_sources(&fixture("no-such-root"))
        .unwrap()
        .files
        .is_empty());
}
