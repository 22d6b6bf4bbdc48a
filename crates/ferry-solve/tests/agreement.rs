//! ferry-solve against dose-distcheck, the peer it must agree with:
//! hand-made fixtures for each rule (expected verdicts written here, and
//! dose asked too when it is installed), random small archives (dose is
//! the oracle), and the real Debian archives of `shared/data/debian/`
//! (skipped with a message when absent), where the broken (package,
//! version, architecture) sets must be identical.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_deb::package::parse_binary_packages;
use ferry_solve::{check, Reason, Universe};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn dose_available() -> bool {
    Command::new("dose-distcheck")
        .arg("--version")
        .output()
        .is_ok()
}

fn ours(text: &str, foreign: &[&str], explain: bool) -> Vec<ferry_solve::Report> {
    let packages = parse_binary_packages(text).unwrap();
    let foreign: Vec<String> = foreign.iter().map(|s| s.to_string()).collect();
    let universe = Universe::new(&packages, "amd64", &foreign);
    check(&universe, None, explain)
}

fn broken_set(reports: &[ferry_solve::Report]) -> BTreeSet<String> {
    reports
        .iter()
        .filter(|r| r.status == "broken")
        .map(|r| {
            format!(
                "{} {} {}",
                r.package.package, r.package.version, r.package.architecture
            )
        })
        .collect()
}

/// dose-distcheck's broken set for a Packages file.
fn dose(path: &Path, foreign: &[&str]) -> BTreeSet<String> {
    let mut command = Command::new("dose-distcheck");
    command.args(["--deb-native-arch=amd64", "-f"]);
    if !foreign.is_empty() {
        command.arg(format!("--deb-foreign-archs={}", foreign.join(",")));
    }
    let output = command
        .arg(format!("deb://{}", path.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let mut set = BTreeSet::new();
    let (mut package, mut version, mut arch) = (String::new(), String::new(), String::new());
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("  package: ") {
            package = v.to_string();
        } else if let Some(v) = line.strip_prefix("  version: ") {
            version = v.to_string();
        } else if let Some(v) = line.strip_prefix("  architecture: ") {
            arch = v.to_string();
        } else if line == "  status: broken" {
            set.insert(format!("{package} {version} {arch}"));
        }
    }
    set
}

fn stanza(name: &str, version: &str, arch: &str, fields: &str) -> String {
    format!("Package: {name}\nVersion: {version}\nArchitecture: {arch}\n{fields}\n")
}

/// (what it shows, Packages text, foreign archs, packages expected broken)
fn fixtures() -> Vec<(&'static str, String, Vec<&'static str>, Vec<&'static str>)> {
    vec![
        (
            "conflict via Provides",
            [
                stanza("app", "1", "amd64", "Depends: mail-transport-agent, tool"),
                stanza("postfix", "1", "amd64", "Provides: mail-transport-agent"),
                stanza("tool", "1", "amd64", "Conflicts: mail-transport-agent"),
            ]
            .join("\n"),
            vec![],
            vec!["app 1 amd64"],
        ),
        (
            "Breaks with a version",
            [
                stanza("new-lib", "2", "amd64", "Breaks: old-app (<< 2)"),
                stanza("old-app", "1", "amd64", "Depends: new-lib"),
                stanza("fixed-app", "2", "amd64", "Depends: new-lib"),
            ]
            .join("\n"),
            vec![],
            vec!["old-app 1 amd64"],
        ),
        (
            "Multi-Arch foreign, same, allowed and :any",
            [
                stanza("tool", "1", "i386", "Multi-Arch: foreign"),
                stanza("plugin", "1", "i386", "Multi-Arch: allowed"),
                stanza("lib", "1", "i386", ""),
                stanza("libsame", "1", "amd64", "Multi-Arch: same"),
                stanza("libsame", "1", "i386", "Multi-Arch: same"),
                stanza("libother", "1", "amd64", ""),
                stanza("libother", "1", "i386", ""),
                stanza("uses-tool", "1", "amd64", "Depends: tool"),
                stanza("uses-plugin-any", "1", "amd64", "Depends: plugin:any"),
                stanza("uses-plugin", "1", "amd64", "Depends: plugin"),
                stanza("uses-lib", "1", "amd64", "Depends: lib"),
                stanza("both-same", "1", "amd64", "Depends: libsame, libsame:i386"),
                stanza("both-other", "1", "amd64", "Depends: libother, libother:i386"),
            ]
            .join("\n"),
            vec!["i386"],
            vec!["uses-plugin 1 amd64", "uses-lib 1 amd64", "both-other 1 amd64"],
        ),
        (
            "self-conflicts are allowed",
            [
                stanza("mta", "1", "amd64", "Provides: mail-transport-agent\nConflicts: mail-transport-agent\nReplaces: mail-transport-agent"),
                stanza("selfish", "1", "amd64", "Conflicts: selfish"),
            ]
            .join("\n"),
            vec![],
            vec![],
        ),
        (
            "virtual packages with several providers",
            [
                stanza("needs-editor", "1", "all", "Depends: editor"),
                stanza("vim", "1", "amd64", "Provides: editor\nDepends: missing-lib"),
                stanza("nano", "1", "amd64", "Provides: editor"),
                stanza("needs-versioned", "1", "all", "Depends: editor (>= 1)"),
            ]
            .join("\n"),
            vec![],
            vec!["vim 1 amd64", "needs-versioned 1 all"],
        ),
        (
            "Pre-Depends loops",
            [
                stanza("a", "1", "amd64", "Pre-Depends: b"),
                stanza("b", "1", "amd64", "Pre-Depends: a"),
                stanza("c", "1", "amd64", "Pre-Depends: d"),
                stanza("d", "1", "amd64", "Depends: c, e"),
            ]
            .join("\n"),
            vec![],
            vec!["c 1 amd64", "d 1 amd64"],
        ),
        (
            "unsatisfiable alternatives and a search that must backtrack",
            [
                stanza("top", "1", "amd64", "Depends: x | y, z"),
                stanza("x", "1", "amd64", "Depends: gone"),
                stanza("y", "1", "amd64", "Conflicts: z"),
                stanza("z", "1", "amd64", ""),
                stanza("top2", "1", "amd64", "Depends: p | q, r"),
                stanza("p", "1", "amd64", "Conflicts: r"),
                stanza("q", "1", "amd64", ""),
                stanza("r", "1", "amd64", ""),
            ]
            .join("\n"),
            vec![],
            vec!["top 1 amd64", "x 1 amd64"],
        ),
        (
            "one version of a name, and :any ignores versions as dose does",
            [
                stanza("lib", "1", "amd64", ""),
                stanza("lib", "2", "amd64", ""),
                stanza("wants-both", "1", "amd64", "Depends: lib (= 1), lib (= 2)"),
                stanza("any-old", "1", "amd64", "Depends: lib:any (>= 9)"),
            ]
            .join("\n"),
            vec![],
            vec!["wants-both 1 amd64"],
        ),
    ]
}

#[test]
fn each_rule_gives_the_expected_verdict_and_dose_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let with_dose = dose_available();
    if !with_dose {
        eprintln!("note: dose-distcheck is not installed; checking the written expectations only");
    }
    for (name, text, foreign, expected) in fixtures() {
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            broken_set(&ours(&text, &foreign, false)),
            expected,
            "{name}"
        );
        if with_dose {
            let path = dir.path().join("Packages");
            std::fs::write(&path, &text).unwrap();
            assert_eq!(dose(&path, &foreign), expected, "dose on {name}");
        }
    }
}

#[test]
fn explanations_name_the_pair_or_the_missing_dependency() {
    let (_, text, _, _) = fixtures().remove(0);
    let reports = ours(&text, &[], true);
    let app = reports.iter().find(|r| r.package.package == "app").unwrap();
    match &app.reasons[0] {
        Reason::Conflict {
            pkg1,
            pkg2,
            chain1,
            chain2,
        } => {
            let pair: BTreeSet<&str> = [pkg1.package.as_str(), pkg2.package.as_str()].into();
            assert_eq!(pair, ["postfix", "tool"].into());
            for chain in [chain1, chain2] {
                assert_eq!(
                    chain[0].package.package, "app",
                    "each chain starts at the package"
                );
            }
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let text = [
        stanza("app", "1", "amd64", "Depends: lib"),
        stanza("lib", "1", "amd64", "Depends: gone (>= 2)"),
    ]
    .join("\n");
    let reports = ours(&text, &[], true);
    match &reports[0].reasons[0] {
        Reason::Missing {
            chain,
            unsat_dependency,
        } => {
            assert_eq!(unsat_dependency, "gone (>= 2)");
            let names: Vec<&str> = chain.iter().map(|s| s.package.package.as_str()).collect();
            assert_eq!(names, ["app", "lib"]);
        }
        other => panic!("expected a missing dependency, got {other:?}"),
    }
}

/// A random archive: names from a small pool so relations collide often.
fn random_archive(rng: &mut StdRng) -> String {
    let names: Vec<String> = (0..12).map(|i| format!("p{i}")).collect();
    let mut text = String::new();
    for (i, name) in names.iter().enumerate() {
        for version in 1..=rng.gen_range(1..=2) {
            let pick = |rng: &mut StdRng| names[rng.gen_range(0..names.len())].clone();
            let op = |rng: &mut StdRng| {
                ["", " (>= 2)", " (<< 2)", " (= 1)"][rng.gen_range(0..4)].to_string()
            };
            let mut fields = String::new();
            let deps: Vec<String> = (0..rng.gen_range(0..3))
                .map(|_| {
                    (0..rng.gen_range(1..3))
                        .map(|_| format!("{}{}", pick(rng), op(rng)))
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .collect();
            if !deps.is_empty() {
                fields.push_str(&format!("Depends: {}\n", deps.join(", ")));
            }
            if rng.gen_bool(0.3) {
                fields.push_str(&format!("Conflicts: {}{}\n", pick(rng), op(rng)));
            }
            if rng.gen_bool(0.2) {
                fields.push_str(&format!("Breaks: {}{}\n", pick(rng), op(rng)));
            }
            if rng.gen_bool(0.3) {
                let v = if rng.gen_bool(0.5) { " (= 2)" } else { "" };
                fields.push_str(&format!("Provides: v{}{v}\n", rng.gen_range(0..3)));
            }
            if rng.gen_bool(0.2) {
                fields.push_str(
                    &format!("Depends: v{}\n", rng.gen_range(0..3))
                        .replace("Depends", "Pre-Depends"),
                );
            }
            let arch = if i % 3 == 0 { "all" } else { "amd64" };
            text.push_str(&stanza(name, &version.to_string(), arch, fields.trim_end()));
            text.push('\n');
        }
    }
    text
}

#[test]
fn random_archives_agree_with_dose() {
    if !dose_available() {
        eprintln!("skipped: dose-distcheck is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Packages");
    let mut rng = StdRng::seed_from_u64(20_261_122);
    let rounds = 1000;
    for round in 0..rounds {
        let text = random_archive(&mut rng);
        std::fs::write(&path, &text).unwrap();
        let expected = dose(&path, &[]);
        assert_eq!(
            broken_set(&ours(&text, &[], false)),
            expected,
            "round {round}:\n{text}"
        );
    }
    eprintln!("{rounds} random archives: ferry and dose agree");
}

fn data_dir() -> PathBuf {
    std::env::var_os("FERRY_DEBIAN_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/debian"),
        PathBuf::from,
    )
}

#[test]
fn real_archives_agree_with_dose() {
    if !dose_available() {
        eprintln!("skipped: dose-distcheck is not installed");
        return;
    }
    let dir = data_dir();
    let mut compared = 0;
    for suite in ["bookworm", "trixie", "sid"] {
        let xz = dir.join(format!("{suite}-main-amd64-Packages.xz"));
        if !xz.exists() {
            eprintln!(
                "skipped {suite}: {} not found (set FERRY_DEBIAN_DATA)",
                xz.display()
            );
            continue;
        }
        let text = ferry_deb::index::read_to_string(&xz).unwrap();
        let work = tempfile::tempdir().unwrap();
        let plain = work.path().join("Packages");
        std::fs::write(&plain, &text).unwrap();
        let started = std::time::Instant::now();
        let reports = ours(&text, &[], false);
        let ferry_seconds = started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        let expected = dose(&plain, &[]);
        let dose_seconds = started.elapsed().as_secs_f64();
        let got = broken_set(&reports);
        let only_ferry: Vec<_> = got.difference(&expected).collect();
        let only_dose: Vec<_> = expected.difference(&got).collect();
        eprintln!(
            "{suite}: {} packages, dose {} broken ({dose_seconds:.1} s), ferry {} broken ({ferry_seconds:.2} s), {} differences",
            reports.len(),
            expected.len(),
            got.len(),
            only_ferry.len() + only_dose.len()
        );
        assert!(
            only_ferry.is_empty() && only_dose.is_empty(),
            "{suite}: ferry only {only_ferry:?}, dose only {only_dose:?}"
        );
        compared += 1;
    }
    if compared == 0 {
        eprintln!("skipped: no real archive to compare");
    }
}

#[test]
fn a_real_broken_package_has_a_chain_a_maintainer_can_follow() {
    let xz = data_dir().join("sid-main-amd64-Packages.xz");
    if !xz.exists() {
        eprintln!(
            "skipped: {} not found (set FERRY_DEBIAN_DATA)",
            xz.display()
        );
        return;
    }
    let text = ferry_deb::index::read_to_string(&xz).unwrap();
    let reports = ours(&text, &[], true);
    let broken: Vec<_> = reports.iter().filter(|r| r.status == "broken").collect();
    assert!(!broken.is_empty());
    for report in &broken {
        let reason = report
            .reasons
            .first()
            .unwrap_or_else(|| panic!("{report:?} has no reason"));
        match reason {
            Reason::Missing {
                chain,
                unsat_dependency,
            } => {
                assert_eq!(
                    chain[0].package, report.package,
                    "the chain starts at the package"
                );
                assert_eq!(&chain.last().unwrap().depends, unsat_dependency);
            }
            Reason::Conflict {
                pkg1, pkg2, chain1, ..
            } => {
                assert_ne!(pkg1, pkg2);
                if let Some(first) = chain1.first() {
                    assert_eq!(
                        first.package, report.package,
                        "the chain starts at the package"
                    );
                }
            }
        }
    }
    let example = broken
        .iter()
        .find(|r| matches!(&r.reasons[0], Reason::Missing { chain, .. } if chain.len() > 1))
        .unwrap_or(&broken[0]);
    eprintln!("{}: {:#?}", example.package.package, example.reasons[0]);
}
