//! nbs and coverage on hand-made suites laid out as a mirror's
//! `dists/SUITE/`, including the seed's libjpeg1/imageviewer story step
//! by step.

use std::path::Path;

use ferry_archive::{coverage, not_built_from_source, GapKind, NameMap, Suite};

fn stanza(name: &str, version: &str, extra: &str) -> String {
    format!("Package: {name}\nVersion: {version}\nArchitecture: amd64\n{extra}\n")
}

/// Writes `dir/main/binary-amd64/Packages` and `dir/main/source/Sources`.
fn suite(dir: &Path, packages: &[String], sources: &str) -> Suite {
    let binary = dir.join("main/binary-amd64");
    std::fs::create_dir_all(&binary).unwrap();
    std::fs::write(binary.join("Packages"), packages.join("")).unwrap();
    let source = dir.join("main/source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("Sources"), sources).unwrap();
    Suite::read(dir, &[]).unwrap()
}

fn source(name: &str, version: &str, binaries: &str) -> String {
    format!("Package: {name}\nVersion: {version}\nBinary: {binaries}\n\n")
}

#[test]
fn the_seed_story_libjpeg1_stays_until_imageviewer_is_rebuilt() {
    // jpegtools 2.0 now builds libjpeg2; libjpeg1 (from jpegtools 1.0) is
    // still in the suite and imageviewer 8.4 still depends on it.
    let dir = tempfile::tempdir().unwrap();
    let sources = source("jpegtools", "2.0", "jpegtools, libjpeg2")
        + &source("imageviewer", "8.4", "imageviewer")
        + &source("viewer-any", "1.0", "viewer-any");
    let before = suite(
        dir.path(),
        &[
            stanza("jpegtools", "2.0", "Depends: libjpeg2\n"),
            stanza("libjpeg2", "2.0", "Source: jpegtools\n"),
            stanza("libjpeg1", "1.0", "Source: jpegtools (1.0)\n"),
            stanza("imageviewer", "8.4", "Depends: libjpeg1 (>= 1.0)\n"),
            stanza("viewer-any", "1.0", "Depends: libjpeg1 | libjpeg2\n"),
        ],
        &sources,
    );
    let nbs = not_built_from_source(&before).unwrap();
    assert_eq!(nbs.len(), 1, "{nbs:?}");
    assert_eq!(nbs[0].binary.package, "libjpeg1");
    assert_eq!(nbs[0].source, "jpegtools");
    assert_eq!(nbs[0].source_version.as_deref(), Some("2.0"));
    let needers: Vec<&str> = nbs[0]
        .needed_by
        .iter()
        .map(|p| p.package.as_str())
        .collect();
    assert_eq!(
        needers,
        ["imageviewer"],
        "an alternative still satisfied does not hold libjpeg1"
    );
    assert_eq!(nbs[0].rebuild, ["imageviewer"]);

    // The no-change rebuild 8.4ubuntu1 links libjpeg2: libjpeg1 is still
    // NBS but nothing needs it, so it can go.
    let dir = tempfile::tempdir().unwrap();
    let sources = source("jpegtools", "2.0", "jpegtools, libjpeg2")
        + &source("imageviewer", "8.4ubuntu1", "imageviewer");
    let after = suite(
        dir.path(),
        &[
            stanza("jpegtools", "2.0", "Depends: libjpeg2\n"),
            stanza("libjpeg2", "2.0", "Source: jpegtools\n"),
            stanza("libjpeg1", "1.0", "Source: jpegtools (1.0)\n"),
            stanza("imageviewer", "8.4ubuntu1", "Depends: libjpeg2\n"),
        ],
        &sources,
    );
    let nbs = not_built_from_source(&after).unwrap();
    assert_eq!(nbs.len(), 1);
    assert!(nbs[0].needed_by.is_empty() && nbs[0].rebuild.is_empty());
}

#[test]
fn nbs_never_suggests_rebuilding_the_source_that_built_the_binary() {
    // jpegtools 2.0's own tool still needs libjpeg1 (from jpegtools 1.0):
    // rebuilding jpegtools is no answer (it no longer builds libjpeg1);
    // the tool's dependency is the source's own change to make. Rebuilding
    // imageviewer is an answer.
    let dir = tempfile::tempdir().unwrap();
    let sources = source("jpegtools", "2.0", "jpegtools, libjpeg2")
        + &source("imageviewer", "8.4", "imageviewer");
    let s = suite(
        dir.path(),
        &[
            stanza("jpegtools", "2.0", "Depends: libjpeg1\n"),
            stanza("libjpeg2", "2.0", "Source: jpegtools\n"),
            stanza("libjpeg1", "1.0", "Source: jpegtools (1.0)\n"),
            stanza("imageviewer", "8.4", "Depends: libjpeg1 (>= 1.0)\n"),
        ],
        &sources,
    );
    let nbs = not_built_from_source(&s).unwrap();
    assert_eq!(nbs.len(), 1, "{nbs:?}");
    let needers: Vec<&str> = nbs[0]
        .needed_by
        .iter()
        .map(|p| p.package.as_str())
        .collect();
    assert_eq!(needers, ["imageviewer", "jpegtools"]);
    assert_eq!(nbs[0].rebuild, ["imageviewer"]);
}

#[test]
fn a_binary_whose_source_is_gone_is_nbs_and_a_built_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = suite(
        dir.path(),
        &[
            stanza("orphan", "1.0", "Source: removed-src\n"),
            stanza("built", "1.0", ""),
        ],
        &source("built", "1.0", "built"),
    );
    let nbs = not_built_from_source(&s).unwrap();
    assert_eq!(nbs.len(), 1);
    assert_eq!(nbs[0].binary.package, "orphan");
    assert_eq!(nbs[0].source_version, None);
}

#[test]
fn coverage_finds_missing_older_and_uninstallable_counterparts() {
    let old_dir = tempfile::tempdir().unwrap();
    let new_dir = tempfile::tempdir().unwrap();
    let old = suite(
        old_dir.path(),
        &[
            stanza("acme-daemon", "1.0", ""),
            stanza("libx", "2.0", ""),
            stanza("tool", "1.0", ""),
            stanza("same", "1.0", ""),
            stanza("dropped", "1.0", ""),
        ],
        "",
    );
    let new = suite(
        new_dir.path(),
        &[
            stanza("acme-core", "1.1", ""),
            stanza("libx", "1.9", ""),
            stanza("tool", "1.0", "Depends: not-here\n"),
            stanza("same", "1.0", "Depends: acme-core\n"),
        ],
        "",
    );
    let map = NameMap::parse("acme-daemon acme-core\n", Path::new("map")).unwrap();
    let report = coverage(&old, &new, &map).unwrap();
    assert_eq!(report.checked, 5);
    let gaps: Vec<(&str, &GapKind)> = report
        .gaps
        .iter()
        .map(|g| (g.old.package.as_str(), &g.kind))
        .collect();
    assert_eq!(gaps.len(), 3, "{gaps:?}");
    assert!(matches!(gaps[0], ("dropped", GapKind::Missing)));
    assert!(matches!(gaps[1], ("libx", GapKind::Older { version }) if version == "1.9"));
    assert!(
        matches!(gaps[2], ("tool", GapKind::Uninstallable { reasons, .. }) if !reasons.is_empty())
    );
    // Without the map, acme-daemon is missing too.
    let unmapped = coverage(&old, &new, &NameMap::default()).unwrap();
    assert!(unmapped.gaps.iter().any(|g| g.old.package == "acme-daemon"));
}

#[test]
fn a_directory_without_indices_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Suite::read(dir.path(), &[]),
        Err(ferry_archive::ArchiveError::NoIndices { .. })
    ));
}
