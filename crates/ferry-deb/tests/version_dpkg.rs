//! ferry's version ordering against the real `dpkg --compare-versions`.
//!
//! Versions come from the committed fixture (sampled from real Debian
//! indices), from every Packages file of `shared/data/debian/` when it is
//! present (or `FERRY_DEBIAN_DATA`), and from this machine's dpkg status.
//! Pairs are random ones plus neighbours in ferry's own sorted order (the
//! pairs where a subtle ordering bug shows). For each pair ferry's verdict
//! (lt, eq or gt) is asked of dpkg, which must agree: zero disagreements.
//! `FERRY_DPKG_PAIRS` sets how many pairs of each kind (default 10,000).

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_deb::package::parse_binary_packages;
use ferry_deb::VersionRef;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn data_dir() -> PathBuf {
    std::env::var_os("FERRY_DEBIAN_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/debian"),
        PathBuf::from,
    )
}

fn versions_of_index(path: &Path, into: &mut BTreeSet<String>) {
    let text = ferry_deb::index::read_to_string(path).unwrap();
    for package in parse_binary_packages(&text).unwrap() {
        into.insert(package.version.to_string());
        for relations in [
            &package.depends,
            &package.pre_depends,
            &package.breaks,
            &package.conflicts,
        ] {
            for atom in relations.atoms() {
                if let Some(c) = atom.constraint {
                    into.insert(c.version.to_string());
                }
            }
        }
    }
}

fn collect_versions() -> Vec<String> {
    let mut versions = BTreeSet::new();
    let fixture = include_str!("fixtures/versions.txt");
    versions.extend(
        fixture
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(str::to_string),
    );
    let dir = data_dir();
    let mut indices = 0;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.to_string_lossy().ends_with("-Packages.xz") {
                versions_of_index(&path, &mut versions);
                indices += 1;
            }
        }
    }
    if indices == 0 {
        eprintln!(
            "note: no Packages files in {} (set FERRY_DEBIAN_DATA); using the committed fixture only",
            dir.display()
        );
    }
    let status = Path::new("/var/lib/dpkg/status");
    if status.exists() {
        versions_of_index(status, &mut versions);
    }
    // Only versions dpkg itself accepts without complaint are fair questions.
    versions
        .into_iter()
        .filter(|v| VersionRef::parse(v).is_ok())
        .collect()
}

fn dpkg_agrees(a: &str, b: &str, ours: Ordering) -> bool {
    let op = match ours {
        Ordering::Less => "lt",
        Ordering::Equal => "eq",
        Ordering::Greater => "gt",
    };
    Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn ordering_agrees_with_dpkg_compare_versions() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        ferry_testkit::skip!("dpkg is not installed");
    }
    let versions = collect_versions();
    let per_kind: usize = std::env::var("FERRY_DPKG_PAIRS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let parsed: Vec<VersionRef> = versions
        .iter()
        .map(|v| VersionRef::parse(v).unwrap())
        .collect();

    let mut rng = StdRng::seed_from_u64(0xf3e7);
    let mut pairs: Vec<(usize, usize)> = (0..per_kind)
        .map(|_| {
            (
                rng.gen_range(0..parsed.len()),
                rng.gen_range(0..parsed.len()),
            )
        })
        .collect();
    let mut sorted: Vec<usize> = (0..parsed.len()).collect();
    sorted.sort_by(|&a, &b| parsed[a].cmp(&parsed[b]));
    let step = (sorted.len() / per_kind).max(1);
    pairs.extend(
        sorted
            .windows(2)
            .step_by(step)
            .take(per_kind)
            .map(|w| (w[1], w[0])),
    );

    let threads = 4;
    let disagreements: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = pairs
            .chunks(pairs.len().div_ceil(threads))
            .map(|chunk| {
                let (versions, parsed) = (&versions, &parsed);
                scope.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|&(a, b)| {
                            let ours = parsed[a].cmp(&parsed[b]);
                            (!dpkg_agrees(&versions[a], &versions[b], ours))
                                .then(|| format!("{} {:?} {}", versions[a], ours, versions[b]))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    eprintln!(
        "dpkg oracle: {} distinct versions, {} pairs compared, {} disagreements",
        versions.len(),
        pairs.len(),
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "dpkg disagrees: {disagreements:#?}"
    );
}
