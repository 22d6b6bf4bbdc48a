//! Installed packages after a switch of repositories: which would have no
//! installable version, from the repositories alone (`ferry check
//! --installed`, checked against dose-distcheck) or with the installed
//! copies still there (the migration gate).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::dose_available;
use ferry_deb::package::parse_binary_packages;
use ferry_solve::{
    add_installed, check_installed, installed_packages, installed_without_installable_version,
    Reason, Report, Universe,
};

const REPOSITORY: &str = "\
Package: base
Version: 2
Architecture: amd64
Essential: yes
Breaks: oldtool (<< 2)

Package: newer
Version: 2
Architecture: all
";

const STATUS: &str = "\
Package: oldtool
Status: install ok installed
Version: 1
Architecture: amd64

Package: newer
Status: install ok installed
Version: 1
Architecture: amd64

Package: app
Status: install ok installed
Version: 1
Architecture: amd64
Depends: helper

Package: helper
Status: install ok installed
Version: 1
Architecture: amd64

Package: removed
Status: deinstall ok config-files
Version: 1
Architecture: amd64
Depends: nothing-at-all
";

#[test]
fn installed_packages_without_an_installable_version_are_found_and_explained() {
    let mut packages = parse_binary_packages(REPOSITORY).unwrap();
    let status = parse_binary_packages(STATUS).unwrap();
    // `helper` goes with the migration: it can no longer satisfy `app`.
    let installed = add_installed(&mut packages, status, |name| name == "helper");
    assert_eq!(
        installed.len(),
        3,
        "only installed packages, minus what leaves"
    );
    let universe = Universe::new(&packages, "amd64", &[]);

    let findings = installed_without_installable_version(&universe, &installed);
    let names: Vec<&str> = findings
        .iter()
        .map(|f| f.installed.package.as_str())
        .collect();
    assert_eq!(names, ["oldtool", "app"], "newer 1 has newer 2 (arch:all)");

    match &findings[0].reasons[0] {
        Reason::Conflict {
            pkg1,
            pkg2,
            chain2,
            unsat_conflict,
            ..
        } => {
            assert_eq!(
                (pkg1.package.as_str(), pkg2.package.as_str()),
                ("base", "oldtool")
            );
            assert_eq!(unsat_conflict, "oldtool (<< 2)");
            assert!(chain2.is_empty(), "oldtool is the package itself");
        }
        other => panic!("expected the essential package's Breaks, got {other:?}"),
    }
    match &findings[1].reasons[0] {
        Reason::Missing {
            chain,
            unsat_dependency,
        } => {
            assert_eq!(unsat_dependency, "helper");
            assert_eq!(chain[0].package.package, "app");
        }
        other => panic!("expected a missing dependency, got {other:?}"),
    }
}

/// Repositories a system switches to, for the question `ferry check
/// --installed` asks. Each installed package below is there for one rule.
const TARGET: &str = "\
Package: base
Version: 2
Architecture: amd64
Essential: yes

Package: app
Version: 2
Architecture: amd64
Depends: lib (>= 2)

Package: lib
Version: 1
Architecture: amd64

Package: tool
Version: 1
Architecture: amd64
Depends: helper

Package: viewer
Version: 2
Architecture: amd64
Depends: codec

Package: codec
Version: 2
Architecture: amd64
Depends: libold

Package: fine
Version: 2
Architecture: all
Depends: lib

Package: choice
Version: 1
Architecture: amd64
Depends: gone-alternative | lib

Package: rival
Version: 2
Architecture: amd64
Depends: rival-data

Package: rival-data
Version: 2
Architecture: all
Conflicts: rival

Package: multi
Version: 1
Architecture: amd64

Package: multi
Version: 2
Architecture: amd64
Depends: nowhere

Package: libx
Version: 1
Architecture: amd64
Multi-Arch: same
";

/// The system: every dependency is met by what is installed, so a check
/// that lets installed copies count finds nothing.
const SYSTEM: &str = "\
Package: base
Status: install ok installed
Version: 2
Architecture: amd64
Essential: yes

Package: app
Status: install ok installed
Version: 1
Architecture: amd64
Depends: lib (>= 2)

Package: lib
Status: install ok installed
Version: 2
Architecture: amd64

Package: tool
Status: install ok installed
Version: 1
Architecture: amd64
Depends: helper

Package: helper
Status: install ok installed
Version: 1
Architecture: amd64

Package: viewer
Status: install ok installed
Version: 1
Architecture: amd64
Depends: codec

Package: codec
Status: install ok installed
Version: 1
Architecture: amd64
Depends: libold

Package: libold
Status: install ok installed
Version: 1
Architecture: amd64

Package: fine
Status: install ok installed
Version: 1
Architecture: all
Depends: lib

Package: choice
Status: install ok installed
Version: 1
Architecture: amd64
Depends: gone-alternative | lib

Package: rival
Status: install ok installed
Version: 1
Architecture: amd64
Depends: rival-data

Package: rival-data
Status: install ok installed
Version: 1
Architecture: all

Package: multi
Status: install ok installed
Version: 1
Architecture: amd64

Package: libx
Status: install ok installed
Version: 1
Architecture: i386
Multi-Arch: same

Package: purged
Status: deinstall ok config-files
Version: 1
Architecture: amd64
";

const FOREIGN: &[&str] = &["i386"];

/// `ferry check --installed`: the target repositories alone make the
/// universe; the system's packages are only the list to check.
fn after_switching(explain: bool) -> Vec<Report> {
    let target = parse_binary_packages(TARGET).unwrap();
    let status = parse_binary_packages(SYSTEM).unwrap();
    let installed = installed_packages(&status, |_| false);
    let foreign: Vec<String> = FOREIGN.iter().map(|a| a.to_string()).collect();
    let universe = Universe::new(&target, "amd64", &foreign);
    check_installed(&universe, &installed, explain)
}

fn report<'r>(reports: &'r [Report], name: &str) -> &'r Report {
    reports
        .iter()
        .find(|r| r.package.package == name)
        .unwrap_or_else(|| panic!("no report for {name}"))
}

/// (names along the chain, the dependency nothing satisfies) of a
/// report's first reason, which must be a missing dependency.
fn missing(report: &Report) -> (Vec<&str>, &str) {
    match report.reasons.first() {
        Some(Reason::Missing {
            chain,
            unsat_dependency,
        }) => (
            chain.iter().map(|s| s.package.package.as_str()).collect(),
            unsat_dependency.as_str(),
        ),
        other => panic!(
            "{}: expected a missing dependency, got {other:?}",
            report.package.package
        ),
    }
}

#[test]
fn an_installed_package_no_repository_offers_is_broken_as_not_offered() {
    let reports = after_switching(true);
    assert_eq!(
        reports.len(),
        14,
        "every installed package, not the purged one"
    );
    for (name, request) in [
        ("helper", "helper:amd64"),
        ("libold", "libold:amd64"),
        // Only the amd64 libx is offered; the i386 one has no version.
        ("libx", "libx:i386"),
    ] {
        let r = report(&reports, name);
        assert_eq!(r.status, ferry_solve::Status::Broken, "{name}");
        assert_eq!(missing(r), (vec![], request), "{name}");
    }
    assert_eq!(report(&reports, "libx").package.architecture, "i386");
}

#[test]
fn an_installed_package_whose_dependency_is_gone_is_broken_with_the_chain() {
    let reports = after_switching(true);
    // The installed lib 2, helper and libold would satisfy these; only
    // what the repositories offer may.
    for (name, chain, unsat) in [
        ("app", vec!["app"], "lib (>= 2)"),
        ("tool", vec!["tool"], "helper"),
        ("viewer", vec!["viewer", "codec"], "libold"),
    ] {
        let r = report(&reports, name);
        assert_eq!(r.status, ferry_solve::Status::Broken, "{name}");
        assert_eq!(missing(r), (chain, unsat), "{name}");
    }
    // The reasons are those of the version offered, not the installed one.
    match &report(&reports, "app").reasons[0] {
        Reason::Missing { chain, .. } => assert_eq!(chain[0].package.version, "2"),
        other => panic!("{other:?}"),
    }
    match &report(&reports, "rival").reasons[..] {
        [Reason::Conflict { pkg1, pkg2, .. }, ..] => assert_eq!(
            (pkg1.package.as_str(), pkg2.package.as_str()),
            ("rival-data", "rival")
        ),
        other => panic!("rival: expected a conflict, got {other:?}"),
    }
}

#[test]
fn an_installed_package_the_repositories_offer_and_can_install_is_ok() {
    let reports = after_switching(false);
    let ok: Vec<&str> = reports
        .iter()
        .filter(|r| r.status == ferry_solve::Status::Ok)
        .map(|r| r.package.package.as_str())
        .collect();
    // lib: version 1 will do; fine: arch:all; choice: its second
    // alternative; multi: version 1, though version 2 is broken.
    assert_eq!(ok, ["base", "lib", "fine", "choice", "rival-data", "multi"]);
    assert!(
        reports.iter().all(|r| r.reasons.is_empty()),
        "not asked to explain"
    );
}

#[test]
fn the_migration_gate_still_counts_installed_copies_as_available() {
    // `add_installed` is the gate's universe: a package the new sources
    // do not reinstall stays as dpkg has it.
    let mut packages = parse_binary_packages(TARGET).unwrap();
    let status = parse_binary_packages(SYSTEM).unwrap();
    let installed = add_installed(&mut packages, status, |_| false);
    let foreign: Vec<String> = FOREIGN.iter().map(|a| a.to_string()).collect();
    let universe = Universe::new(&packages, "amd64", &foreign);
    let findings = installed_without_installable_version(&universe, &installed);
    assert!(findings.is_empty(), "{findings:?}");
}

/// dose-distcheck's reports for the versions of one name on one
/// architecture: (version, status, what the reasons name: `missing PKG`
/// for each package whose dependency is unmet, `conflict P Q`), or
/// `None` when dose finds no package by that name.
fn dose_checkonly(
    file: &Path,
    name: &str,
    arch: &str,
) -> Option<Vec<(String, String, BTreeSet<String>)>> {
    let output = Command::new("dose-distcheck")
        .args(["--deb-native-arch=amd64", "-s", "-f", "-e"])
        .arg(format!("--deb-foreign-archs={}", FOREIGN.join(",")))
        .arg(format!("--checkonly={name}:{arch}"))
        .arg(format!("deb://{}", file.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("Cannot find any package corresponding to the selector") {
        return None;
    }
    assert!(
        output.status.code().is_some_and(|c| c < 64),
        "dose-distcheck failed: {stderr}"
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let mut entries: Vec<(String, String, BTreeSet<String>)> = Vec::new();
    let mut lines = text.lines();
    let mut pkg1 = String::new();
    while let Some(line) = lines.next() {
        if let Some(v) = line.strip_prefix("  version: ") {
            entries.push((v.to_string(), String::new(), BTreeSet::new()));
            continue;
        }
        let Some(entry) = entries.last_mut() else {
            continue;
        };
        if let Some(v) = line.strip_prefix("  status: ") {
            entry.1 = v.to_string();
        } else if matches!(line, "     pkg:" | "     pkg1:" | "     pkg2:") {
            // The package's name is the line after.
            let package = lines
                .next()
                .and_then(|l| l.strip_prefix("      package: "))
                .unwrap_or_default()
                .to_string();
            match line {
                "     pkg:" => {
                    entry.2.insert(format!("missing {package}"));
                }
                "     pkg1:" => pkg1 = package,
                _ => {
                    let mut pair = [pkg1.clone(), package];
                    pair.sort();
                    entry.2.insert(format!("conflict {}", pair.join(" ")));
                }
            }
        }
    }
    Some(entries)
}

/// What our reasons name, in the words of `dose_checkonly`.
fn named(reasons: &[Reason]) -> BTreeSet<String> {
    reasons
        .iter()
        .map(|reason| match reason {
            Reason::Missing { chain, .. } => format!(
                "missing {}",
                chain.last().map_or("", |s| s.package.package.as_str())
            ),
            Reason::Conflict { pkg1, pkg2, .. } => {
                let mut pair = [pkg1.package.as_str(), pkg2.package.as_str()];
                pair.sort();
                format!("conflict {}", pair.join(" "))
            }
        })
        .collect()
}

#[test]
fn installed_verdicts_and_reasons_agree_with_dose_distcheck() {
    if !dose_available() {
        ferry_testkit::skip!("needs dose-distcheck on PATH");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Packages");
    std::fs::write(&file, TARGET).unwrap();
    let reports = after_switching(true);
    for r in &reports {
        let (name, arch) = (&r.package.package, &r.package.architecture);
        let arch = if arch == "all" {
            "amd64"
        } else {
            arch.as_str()
        };
        let Some(versions) = dose_checkonly(&file, name, arch) else {
            assert_eq!(
                r.status,
                ferry_solve::Status::Broken,
                "{name}: dose has no version of it"
            );
            assert_eq!(missing(r).0, Vec::<&str>::new(), "{name}");
            continue;
        };
        let dose_ok = versions.iter().any(|(_, status, _)| status == "ok");
        assert_eq!(
            r.status == ferry_solve::Status::Ok,
            dose_ok,
            "{name}:{arch}: dose says {versions:?}"
        );
        if !dose_ok {
            // Our reasons are those of the highest version.
            let highest = versions
                .iter()
                .max_by(|a, b| {
                    let v = |s: &str| ferry_deb::Version::parse(s).unwrap();
                    v(&a.0).cmp(&v(&b.0))
                })
                .unwrap();
            assert_eq!(named(&r.reasons), highest.2, "{name}:{arch} {}", highest.0);
        }
    }
}
