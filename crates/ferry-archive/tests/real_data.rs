//! `nbs` and `coverage` on the real Debian indices of `../shared/data/debian/`
//! (or `FERRY_DEBIAN_DATA`), laid out as a mirror's suite directories with
//! symlinks; skipped with a message when the data is absent.
//!
//! Oracle: dose-distcheck. Every package `nbs` says still needs a binary
//! not built from source is installable in sid as it is, and is not once
//! the NBS binaries are removed — both asked of dose. Skipped (with a
//! message) when dose-distcheck is not installed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_archive::{coverage, not_built_from_source, NameMap, Suite};

fn data_dir() -> PathBuf {
    std::env::var_os("FERRY_DEBIAN_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/debian"),
        PathBuf::from,
    )
}

/// `dir/SUITE/main/{binary-amd64/Packages.xz,source/Sources.xz}` as links.
fn mirror_suite(dir: &Path, suite: &str) -> Option<PathBuf> {
    let data = data_dir();
    let packages = data.join(format!("{suite}-main-amd64-Packages.xz"));
    let sources = data.join(format!("{suite}-main-Sources.xz"));
    if !packages.is_file() || !sources.is_file() {
        return None;
    }
    let root = dir.join(suite);
    std::fs::create_dir_all(root.join("main/binary-amd64")).ok()?;
    std::fs::create_dir_all(root.join("main/source")).ok()?;
    std::os::unix::fs::symlink(&packages, root.join("main/binary-amd64/Packages.xz")).ok()?;
    std::os::unix::fs::symlink(&sources, root.join("main/source/Sources.xz")).ok()?;
    Some(root)
}

/// The packages dose-distcheck reports broken among `names` of `packages`
/// (its whole report is read: without `-e` it lists only the broken
/// packages themselves, at two spaces' indent).
fn dose_broken(packages: &Path, names: &[String]) -> HashSet<String> {
    let out = Command::new("dose-distcheck")
        .args(["--deb-native-arch=amd64", "-f"])
        .arg(format!("deb://{}", packages.display()))
        .output()
        .expect("dose-distcheck runs");
    let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("  package: "))
        .filter(|name| wanted.contains(name))
        .map(str::to_string)
        .collect()
}

#[test]
fn nbs_in_sid_agrees_with_dose_on_what_still_needs_each() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sid) = mirror_suite(dir.path(), "sid") else {
        ferry_testkit::skip!(
            "no sid Packages/Sources in {} (set FERRY_DEBIAN_DATA)",
            data_dir().display()
        );
    };
    let suite = Suite::read(&sid, &[]).unwrap();
    let started = std::time::Instant::now();
    let nbs = not_built_from_source(&suite).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let held: Vec<_> = nbs.iter().filter(|n| !n.needed_by.is_empty()).collect();
    eprintln!(
        "figures: sid nbs {} binaries, {} still needed, {:.1} s",
        nbs.len(),
        held.len(),
        seconds
    );
    assert!(!nbs.is_empty(), "sid always carries some cruft");
    // A rebuild is asked only of a needer's source, and never of the
    // source that dropped the binary (its own old binaries needing it go
    // away with it): needers all from that source leave nothing to rebuild.
    for n in &nbs {
        if n.needed_by.is_empty() {
            assert!(n.rebuild.is_empty(), "{n:?}");
        }
        assert!(!n.rebuild.contains(&n.source), "{n:?}");
    }
    if Command::new("dose-distcheck")
        .arg("--version")
        .output()
        .is_err()
    {
        ferry_testkit::skip!("the dose oracle: dose-distcheck is not installed");
    }
    let needers: Vec<String> = held
        .iter()
        .flat_map(|n| n.needed_by.iter().map(|p| p.package.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // sid as it is: every needer is installable.
    let full = dir.path().join("Packages");
    let text =
        ferry_deb::index::read_to_string(&data_dir().join("sid-main-amd64-Packages.xz")).unwrap();
    std::fs::write(&full, &text).unwrap();
    assert!(dose_broken(&full, &needers).is_empty());
    // Without the NBS binaries: every needer is broken.
    let gone: HashSet<(String, String)> = nbs
        .iter()
        .map(|n| (n.binary.package.clone(), n.binary.version.clone()))
        .collect();
    let kept: String = text
        .split("\n\n")
        .filter(|stanza| {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            !gone.contains(&(field("Package:"), field("Version:")))
        })
        .map(|s| format!("{}\n\n", s.trim_end()))
        .collect();
    let without = dir.path().join("Packages-without-nbs");
    std::fs::write(&without, kept).unwrap();
    let broken = dose_broken(&without, &needers);
    let missing: Vec<&String> = needers.iter().filter(|n| !broken.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "dose finds these installable without the NBS binaries: {missing:?}"
    );
}

#[test]
fn trixie_to_forky_coverage_runs_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (Some(trixie), Some(forky)) = (
        mirror_suite(dir.path(), "trixie"),
        mirror_suite(dir.path(), "forky"),
    ) else {
        ferry_testkit::skip!(
            "no trixie/forky indices in {} (set FERRY_DEBIAN_DATA)",
            data_dir().display()
        );
    };
    let old = Suite::read(&trixie, &[]).unwrap();
    let new = Suite::read(&forky, &[]).unwrap();
    let started = std::time::Instant::now();
    let report = coverage(&old, &new, &NameMap::default()).unwrap();
    eprintln!(
        "figures: trixie -> forky coverage {} checked, {} gaps, {:.1} s",
        report.checked,
        report.gaps.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(report.checked > 60_000);
    // A gap is never a package forky has at the same or a newer version
    // that dose would call installable: spot-check with forky's own list.
    let forky_text =
        ferry_deb::index::read_to_string(&data_dir().join("forky-main-amd64-Packages.xz")).unwrap();
    let forky_names: HashSet<&str> = forky_text
        .lines()
        .filter_map(|l| l.strip_prefix("Package: "))
        .collect();
    for gap in &report.gaps {
        if matches!(gap.kind, ferry_archive::GapKind::Missing) {
            assert!(!forky_names.contains(gap.counterpart.as_str()), "{gap:?}");
        }
    }
}

/// dose-distcheck's count of broken packages in a Packages file.
fn dose_broken_count(packages: &Path) -> usize {
    let out = Command::new("dose-distcheck")
        .args(["--deb-native-arch=amd64", "-f"])
        .arg(format!("deb://{}", packages.display()))
        .output()
        .expect("dose-distcheck runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("broken-packages: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("dose prints broken-packages")
}

#[test]
fn sid_to_forky_excuses_break_nothing_dose_can_see() {
    let dir = tempfile::tempdir().unwrap();
    let (Some(sid), Some(forky)) = (
        mirror_suite(dir.path(), "sid"),
        mirror_suite(dir.path(), "forky"),
    ) else {
        ferry_testkit::skip!(
            "no sid/forky indices in {} (set FERRY_DEBIAN_DATA)",
            data_dir().display()
        );
    };
    let from = Suite::read(&sid, &[]).unwrap();
    let to = Suite::read(&forky, &[]).unwrap();
    let started = std::time::Instant::now();
    let result = ferry_archive::excuses(&from, &to, &ferry_archive::Hints::default()).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let migrate = result.excuses.iter().filter(|e| e.migrates).count();
    eprintln!(
        "figures: sid -> forky excuses {} candidates, {migrate} migrate, {} blocked, {seconds:.1} s",
        result.excuses.len(),
        result.excuses.len() - migrate
    );
    assert!(migrate > 0 && migrate < result.excuses.len());
    assert!(result.broken_after["amd64"] <= result.broken_before["amd64"]);
    let out = dir.path().join("result");
    ferry_archive::write_result(&out, &from, &to, &result).unwrap();
    let written = Suite::read(&out, &[]).unwrap();
    let written_count = written.binaries("amd64").unwrap().len();
    assert_eq!(written_count, result.result_binaries["amd64"].len());
    if Command::new("dose-distcheck")
        .arg("--version")
        .output()
        .is_err()
    {
        ferry_testkit::skip!("the dose oracle: dose-distcheck is not installed");
    }
    let forky_packages = dir.path().join("forky-Packages");
    std::fs::write(
        &forky_packages,
        ferry_deb::index::read_to_string(&data_dir().join("forky-main-amd64-Packages.xz")).unwrap(),
    )
    .unwrap();
    let before = dose_broken_count(&forky_packages);
    let after = dose_broken_count(&out.join("main/binary-amd64/Packages"));
    eprintln!("figures: dose-distcheck broken: forky {before}, forky after the migrations {after}");
    assert!(
        after <= before,
        "the migrations made {after} packages broken against {before}"
    );
}
