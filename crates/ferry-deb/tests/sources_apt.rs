//! APT itself as the oracle for reading sources: `apt-get indextargets
//! --no-release-info` lists every (type, URI, suite, component) target apt
//! derives from a sources configuration, named by the entry it came from
//! (`Sourcesentry: file:line` or `file:stanza`), and
//! `Debug::GetListOfFilesInDir` shows which files of `sources.list.d` apt
//! accepts. Each test compares ferry's reading with apt's on the fixtures,
//! on deb822 text converted from one-line files, and on this machine's own
//! `/etc/apt`. apt runs with a binary cache of its own (never the host's),
//! fresh or kept from an earlier run, since a kept cache makes apt list
//! `sources.list.d` a second time. Skipped (with a message) where apt-get is
//! not installed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_deb::deb822::{self, Syntax};
use ferry_deb::sources::{
    read_sources_file, read_system_sources, Edit, Matcher, SourceEntry, SystemSources,
    SOURCES_LIST, SOURCES_PARTS,
};

type Record = BTreeMap<String, String>;
type Target = (String, String, String, String, String);

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sources")
        .join(path)
}

fn have_apt() -> bool {
    let found = Command::new("apt-get")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        ferry_testkit::note_skip!("apt-get is not installed, so there is no oracle");
    }
    found
}

/// Runs `apt-get indextargets --no-release-info` with `options` and a fresh
/// binary cache, and returns its records, or apt's error output.
fn apt_records(options: &[String], stderr_out: Option<&mut String>) -> Result<Vec<Record>, String> {
    let cache = tempfile::tempdir().unwrap();
    apt_records_with_cache(options, cache.path(), stderr_out)
}

/// [`apt_records`] with apt's binary caches kept in `cache`: apt writes them
/// there, and reads them on the next run. Pointing them at the test's own
/// directory keeps the host's cache out of the test, and the test out of
/// the host's cache (as root, apt would rewrite it from the fixtures).
fn apt_records_with_cache(
    options: &[String],
    cache: &Path,
    stderr_out: Option<&mut String>,
) -> Result<Vec<Record>, String> {
    let mut command = Command::new("apt-get");
    command.args(["indextargets", "--no-release-info"]);
    command
        .arg("-o")
        .arg(format!(
            "Dir::Cache::pkgcache={}",
            cache.join("pkgcache.bin").display()
        ))
        .arg("-o")
        .arg(format!(
            "Dir::Cache::srcpkgcache={}",
            cache.join("srcpkgcache.bin").display()
        ));
    for option in options {
        command.arg("-o").arg(option);
    }
    let output = command.output().map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(stderr);
    }
    if let Some(out) = stderr_out {
        *out = stderr;
    }
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let paragraphs = deb822::parse(&stdout, Syntax::INDEX).map_err(|e| e.to_string())?;
    Ok(paragraphs
        .iter()
        .map(|p| {
            p.fields
                .iter()
                .map(|f| (f.name.to_string(), f.value.to_string()))
                .collect()
        })
        .collect())
}

/// Options pointing apt at a sources configuration, with an empty lists dir.
fn dir_options(list: &Path, parts: &Path, lists: &Path) -> Vec<String> {
    vec![
        format!("Dir::Etc::SourceList={}", list.display()),
        format!("Dir::Etc::SourceParts={}", parts.display()),
        format!("Dir::State::Lists={}", lists.display()),
    ]
}

fn empty_lists_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("partial")).unwrap();
    dir
}

fn apt_targets(records: &[Record]) -> BTreeSet<Target> {
    records
        .iter()
        .map(|r| {
            let field = |name: &str| r.get(name).cloned().unwrap_or_default();
            (
                field("Sourcesentry"),
                field("Target-Of"),
                field("Repo-URI"),
                field("Release"),
                field("Component"),
            )
        })
        .collect()
}

/// The targets ferry's entries stand for, named as apt names them.
fn ferry_targets<'a>(entries: impl Iterator<Item = &'a SourceEntry>) -> BTreeSet<Target> {
    let mut targets = BTreeSet::new();
    for entry in entries.filter(|e| e.enabled) {
        let components: Vec<&str> = if entry.components.is_empty() {
            vec![""]
        } else {
            entry.components.iter().map(String::as_str).collect()
        };
        for source_type in &entry.types {
            for uri in &entry.uris {
                let uri = if uri.ends_with('/') {
                    uri.clone()
                } else {
                    format!("{uri}/")
                };
                for suite in &entry.suites {
                    for component in &components {
                        targets.insert((
                            entry.apt_location(),
                            source_type.to_string(),
                            uri.clone(),
                            suite.clone(),
                            component.to_string(),
                        ));
                    }
                }
            }
        }
    }
    targets
}

/// Per entry, the architectures of its Packages targets (without `all`).
fn apt_architectures(records: &[Record]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for record in records
        .iter()
        .filter(|r| r.get("Identifier").map(String::as_str) == Some("Packages"))
    {
        if let (Some(entry), Some(arch)) = (record.get("Sourcesentry"), record.get("Architecture"))
        {
            if arch != "all" {
                out.entry(entry.clone()).or_default().insert(arch.clone());
            }
        }
    }
    out
}

/// apt's verdict on each file of a `sources.list.d`: (accepted, refused),
/// from its `Debug::GetListOfFilesInDir` output.
///
/// apt lists the directory once to read the sources, accepting the `list`
/// and `sources` extensions. When a binary cache exists it lists it again
/// per cache, accepting only `list`, to compare modification times — and
/// that listing calls every `.sources` file a `Bad file` though apt read it.
/// Only the listings that read sources count; a refusal there (a bad
/// extension, a bad character) is still a refusal. `None` when apt listed
/// no directory for reading.
fn apt_file_selection(stderr: &str) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let mut accepted = BTreeSet::new();
    let mut refused = BTreeSet::new();
    // Whether the current listing reads sources: its heading is followed by
    // one "\t<ext> extension" line per accepted extension, then its files.
    let mut reading = false;
    let mut reading_seen = false;
    for line in stderr.lines() {
        if line.starts_with("Accept in ") {
            reading = false;
        } else if let Some(extension) = line
            .strip_prefix('\t')
            .and_then(|l| l.strip_suffix(" extension"))
        {
            if extension == "sources" {
                reading = true;
                reading_seen = true;
            }
        } else if let Some(rest) = line.strip_prefix("Accept file: ") {
            if let (true, Some((name, _))) = (reading, rest.split_once(" in ")) {
                accepted.insert(name.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("Bad file: ") {
            if let (true, Some((name, _))) = (reading, rest.split_once(" → ")) {
                refused.insert(name.to_string());
            }
        }
    }
    reading_seen.then_some((accepted, refused))
}

fn ferry_file_selection(
    system: &SystemSources,
    parts: &Path,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let name = |path: &Path| path.file_name().unwrap().to_string_lossy().into_owned();
    let accepted = system
        .files
        .iter()
        .filter(|f| f.path.parent() == Some(parts))
        .map(|f| name(&f.path))
        .collect();
    // apt skips hidden files before it says anything about them.
    let refused = system
        .ignored
        .iter()
        .filter(|f| f.reason != ferry_deb::sources::IgnoreReason::Hidden)
        .map(|f| name(&f.path))
        .collect();
    (accepted, refused)
}

const FIXTURE_ROOTS: [&str; 5] = ["bookworm", "ubuntu", "thirdparty", "deb822", "noble"];

/// Compares ferry's reading of the fixture system `root` with apt's, apt
/// keeping its binary caches in `cache`; returns apt's debug output.
fn fixture_reads_like_apt(root: &Path, cache: &Path) -> String {
    let (list, parts) = (root.join(SOURCES_LIST), root.join(SOURCES_PARTS));
    let lists = empty_lists_dir();
    let mut options = dir_options(&list, &parts, lists.path());
    options.push("Debug::GetListOfFilesInDir=1".into());
    let mut stderr = String::new();
    let records = apt_records_with_cache(&options, cache, Some(&mut stderr))
        .unwrap_or_else(|e| panic!("apt refused {root:?}: {e}"));
    let system = read_system_sources(root).unwrap_or_else(|e| panic!("{e}"));

    assert!(!records.is_empty(), "{}", root.display());
    assert_eq!(
        ferry_targets(system.entries()),
        apt_targets(&records),
        "{}",
        root.display()
    );
    let architectures = apt_architectures(&records);
    for entry in system
        .entries()
        .filter(|e| e.enabled && !e.architectures.is_empty())
    {
        let ours: BTreeSet<String> = entry.architectures.iter().cloned().collect();
        assert_eq!(
            Some(&ours),
            architectures.get(&entry.apt_location()),
            "{}",
            entry.apt_location()
        );
    }
    if parts.is_dir() {
        assert_eq!(
            ferry_file_selection(&system, &parts),
            apt_file_selection(&stderr).expect("apt listed sources.list.d"),
            "{}\n{stderr}",
            root.display()
        );
    }
    stderr
}

#[test]
fn fixtures_read_like_apt() {
    if !have_apt() {
        return;
    }
    for root in FIXTURE_ROOTS {
        let cache = tempfile::tempdir().unwrap();
        fixture_reads_like_apt(&fixture(root), cache.path());
    }
}

/// The machine where the binary cache is on (a fresh Debian, not a
/// container that switches it off): apt lists `sources.list.d` a second
/// time and calls every `.sources` file bad there; ferry must still agree
/// with what apt read, refusals included.
#[test]
fn fixtures_read_like_apt_with_a_kept_binary_cache() {
    if !have_apt() {
        return;
    }
    for root in FIXTURE_ROOTS {
        let cache = tempfile::tempdir().unwrap();
        let first = fixture_reads_like_apt(&fixture(root), cache.path());
        assert!(
            cache.path().join("pkgcache.bin").is_file(),
            "apt kept no binary cache in {}",
            cache.path().display()
        );
        let second = fixture_reads_like_apt(&fixture(root), cache.path());
        // The second run is the case this test is for: apt's listing for
        // the cache calls the .sources files bad.
        if root == "deb822" || root == "noble" {
            assert!(
                !first.contains("bad extension »sources«"),
                "{root}: {first}"
            );
            assert!(
                second.contains("bad extension »sources«"),
                "{root}: apt did not list sources.list.d for its cache:\n{second}"
            );
        }
    }
}

/// apt's output on a system with a kept cache, verbatim but for the
/// directory, with a real refusal in the listing that reads sources.
#[test]
fn only_the_listing_that_reads_sources_counts() {
    let stderr = "\
Accept in /r/etc/apt/sources.list.d/ only files with the following 2 extensions:
\tlist extension
\tsources extension
Accept file: ubuntu.sources in /r/etc/apt/sources.list.d/
Bad file: notes.txt → bad extension »txt«
Bad file: a+b.sources → bad character »+« in filename (period allowed: yes)
Accept in /r/etc/apt/sources.list.d/ only files with the following 1 extensions:
\tlist extension
Bad file: ubuntu.sources → bad extension »sources«
Bad file: notes.txt → bad extension »txt«
Accept in /r/etc/apt/sources.list.d/ only files with the following 1 extensions:
\tlist extension
Bad file: ubuntu.sources → bad extension »sources«
";
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        apt_file_selection(stderr),
        Some((set(&["ubuntu.sources"]), set(&["notes.txt", "a+b.sources"])))
    );
    // Without the listing that reads sources there is no verdict at all,
    // rather than an empty one that would hide a difference.
    let cache_only = &stderr[stderr.find("Bad file: ubuntu.sources →").unwrap()..];
    assert_eq!(apt_file_selection(cache_only), None);
    assert_eq!(apt_file_selection(""), None);
}

/// Records without the entry that made them: what must not change when a
/// `.list` file becomes a `.sources` file.
fn without_entry_names(records: Vec<Record>) -> Vec<Record> {
    let mut records: Vec<Record> = records
        .into_iter()
        .map(|mut r| {
            r.remove("Sourcesentry");
            r
        })
        .collect();
    records.sort();
    records
}

/// apt's records for a one-line text and for its deb822 conversion.
fn records_of_list_and_conversion(list_text: &str) -> (Vec<Record>, Vec<Record>) {
    let work = tempfile::tempdir().unwrap();
    let lists = empty_lists_dir();
    let (list, empty_parts, parts) = (
        work.path().join("x.list"),
        work.path().join("none.d"),
        work.path().join("parts.d"),
    );
    fs::create_dir(&empty_parts).unwrap();
    fs::create_dir(&parts).unwrap();
    fs::write(&list, list_text).unwrap();
    let document = read_sources_file(&list).unwrap_or_else(|e| panic!("{e}"));
    let converted = document.to_deb822().unwrap_or_else(|e| panic!("{e}"));
    fs::write(parts.join("x.sources"), &converted).unwrap();
    let from_list = apt_records(&dir_options(&list, &empty_parts, lists.path()), None).unwrap();
    let from_sources = apt_records(
        &dir_options(&work.path().join("absent"), &parts, lists.path()),
        None,
    )
    .unwrap_or_else(|e| panic!("apt refused the converted text: {e}\n{converted}"));
    (from_list, from_sources)
}

#[test]
fn converted_sources_read_like_the_list_they_came_from() {
    if !have_apt() {
        return;
    }
    for path in [
        "bookworm/etc/apt/sources.list",
        "ubuntu/etc/apt/sources.list",
        "thirdparty/etc/apt/sources.list.d/vendor.list",
        "thirdparty/etc/apt/sources.list.d/multi-arch.list",
        "thirdparty/etc/apt/sources.list.d/local.list",
    ] {
        let text = fs::read_to_string(fixture(path)).unwrap();
        let (list, sources) = records_of_list_and_conversion(&text);
        assert!(!list.is_empty(), "{path}");
        assert_eq!(
            without_entry_names(list),
            without_entry_names(sources),
            "{path}"
        );

        // With every disabled entry switched on (but the cdrom one, which
        // needs a disc), the disabled stanzas must read the same too.
        let document = read_sources_file(&fixture(path)).unwrap();
        let mut enabled = document.clone();
        for entry in document
            .entries()
            .iter()
            .filter(|e| !e.enabled && !e.uris[0].starts_with("cdrom:"))
        {
            let matcher = Matcher {
                uri_prefix: Some(entry.uris[0].clone()),
                suite: Some(entry.suites[0].clone()),
                enabled: Some(false),
                ..Matcher::default()
            };
            let edit = Edit {
                enabled: Some(true),
                ..Edit::default()
            };
            enabled = enabled.rewrite(&matcher, &edit).unwrap().document;
        }
        let (list, sources) = records_of_list_and_conversion(enabled.text());
        let disabled_left = enabled.entries().iter().filter(|e| !e.enabled).count();
        assert!(
            disabled_left <= 1,
            "{path}: {disabled_left} entries still disabled"
        );
        assert_eq!(
            without_entry_names(list),
            without_entry_names(sources),
            "{path}, all enabled"
        );
    }
}

#[test]
fn this_machine_sources_round_trip_and_read_like_apt() {
    let root = Path::new("/");
    if !root.join("etc/apt").is_dir() {
        ferry_testkit::skip!("this machine has no /etc/apt");
    }
    if !have_apt() {
        return;
    }
    let system = match read_system_sources(root) {
        Ok(system) => system,
        Err(e) => panic!("ferry cannot read this machine's sources: {e}"),
    };
    for file in &system.files {
        let bytes = fs::read_to_string(&file.path).unwrap();
        assert_eq!(file.document.text(), bytes, "{}", file.path.display());
        let unchanged = file
            .document
            .rewrite(&Matcher::default(), &Edit::default())
            .unwrap();
        assert_eq!(unchanged.document.text(), bytes);
    }
    let mut stderr = String::new();
    let records = apt_records(
        &["Debug::GetListOfFilesInDir=1".to_string()],
        Some(&mut stderr),
    )
    .unwrap();
    assert_eq!(ferry_targets(system.entries()), apt_targets(&records));
    let apt_entries: BTreeSet<&String> = records
        .iter()
        .filter_map(|r| r.get("Sourcesentry"))
        .collect();
    assert_eq!(
        system.entries().filter(|e| e.enabled).count(),
        apt_entries.len()
    );
    let parts = root.join(SOURCES_PARTS);
    if parts.is_dir() {
        assert_eq!(
            ferry_file_selection(&system, &parts),
            apt_file_selection(&stderr).expect("apt listed sources.list.d")
        );
    }
    eprintln!(
        "this machine: {} files, {} entries, {} ignored files, {} apt targets",
        system.files.len(),
        system.entries().count(),
        system.ignored.len(),
        records.len()
    );
}
