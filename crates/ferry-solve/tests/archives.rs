//! ferry-solve on real Debian archives (`shared/data/debian/`, or
//! `FERRY_DEBIAN_DATA`; skipped with a message when absent): the broken
//! (package, version, architecture) sets must be dose-distcheck's exactly,
//! and every explanation must be a chain a maintainer can follow.
//! `FERRY_CHECK_SUITES` picks the suites (default: bookworm trixie sid).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{broken_set, data_dir, dose, dose_available, ours};
use ferry_deb::package::parse_binary_packages;
use ferry_deb::relation::Relations;
use ferry_deb::BinaryPackage;
use ferry_solve::{ChainStep, PackageRef, Reason};

fn archive(suite: &str) -> Option<PathBuf> {
    let xz = data_dir().join(format!("{suite}-main-amd64-Packages.xz"));
    if xz.exists() {
        Some(xz)
    } else {
        ferry_testkit::note_skip!(
            "{suite}: {} not found (set FERRY_DEBIAN_DATA to the folder of the Debian indices)",
            xz.display()
        );
        None
    }
}

#[test]
fn real_archives_agree_with_dose() {
    if !dose_available() {
        ferry_testkit::skip!("dose-distcheck is not installed (apt-get install dose-distcheck)");
    }
    let suites = std::env::var("FERRY_CHECK_SUITES").unwrap_or("bookworm trixie sid".into());
    let mut compared = 0;
    for suite in suites.split_whitespace() {
        let Some(xz) = archive(suite) else { continue };
        let text = ferry_deb::index::read_to_string(&xz).unwrap();
        let work = tempfile::tempdir().unwrap();
        let plain = work.path().join("Packages");
        std::fs::write(&plain, &text).unwrap();
        let started = std::time::Instant::now();
        let reports = ours(&text, &[], false);
        let ferry_seconds = started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        let expected = dose(&plain, &[]).expect("dose-distcheck reads the archive");
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
        ferry_testkit::note_skip!("no real archive to compare");
    }
}

/// The records of the archive, by (name, version, architecture).
type Index<'p, 'a> = HashMap<(String, String, String), &'p BinaryPackage<'a>>;

fn index<'p, 'a>(packages: &'p [BinaryPackage<'a>]) -> Index<'p, 'a> {
    packages
        .iter()
        .map(|p| {
            let key = (
                p.name.to_string(),
                p.version.to_string(),
                p.architecture.to_string(),
            );
            (key, p)
        })
        .collect()
}

fn find<'p, 'a>(packages: &Index<'p, 'a>, r: &PackageRef) -> &'p BinaryPackage<'a> {
    let key = (r.package.clone(), r.version.clone(), r.architecture.clone());
    packages
        .get(&key)
        .unwrap_or_else(|| panic!("{r:?} is not in the archive"))
}

/// Each step's dependency is one of its package's dependency groups as
/// written, and the next step's package is named by it (or provides a
/// name it names): a maintainer can walk the chain in the Packages file.
fn followable(packages: &Index<'_, '_>, chain: &[ChainStep], last: Option<&PackageRef>) {
    for (i, step) in chain.iter().enumerate() {
        if step.package.package == ferry_solve::ESSENTIAL {
            continue;
        }
        let p = find(packages, &step.package);
        let written: Vec<String> = [&p.pre_depends, &p.depends]
            .iter()
            .flat_map(|r| r.groups.iter())
            .map(|g| {
                g.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect();
        assert!(
            written.contains(&step.depends),
            "{} has no dependency `{}`",
            p.name,
            step.depends
        );
        let next = chain.get(i + 1).map(|s| &s.package).or(last);
        if let Some(next) = next {
            let q = find(packages, next);
            let group = Relations::parse(&step.depends).unwrap();
            let named = group
                .atoms()
                .any(|a| a.name == q.name || q.provides.atoms().any(|v| v.name == a.name));
            assert!(named, "`{}` does not name {}", step.depends, q.name);
        }
    }
}

#[test]
fn a_real_broken_package_has_a_chain_a_maintainer_can_follow() {
    let Some(xz) = archive("sid") else { return };
    let text = ferry_deb::index::read_to_string(&xz).unwrap();
    let records = parse_binary_packages(&text).unwrap();
    let packages = index(&records);
    let reports = ours(&text, &[], true);
    let broken: Vec<_> = reports.iter().filter(|r| r.status.is_broken()).collect();
    assert!(!broken.is_empty());
    let (mut missing, mut conflicts) = (0, 0);
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
                missing += 1;
                assert_eq!(chain[0].package, report.package, "starts at the package");
                assert_eq!(&chain.last().unwrap().depends, unsat_dependency);
                followable(&packages, chain, None);
            }
            Reason::Conflict {
                pkg1,
                pkg2,
                chain1,
                chain2,
                ..
            } => {
                conflicts += 1;
                for (chain, end) in [(chain1, pkg1), (chain2, pkg2)] {
                    match chain.first() {
                        Some(first) => assert_eq!(first.package, report.package),
                        // Only the package checked needs no chain.
                        None => assert_eq!(end, &report.package),
                    }
                    followable(&packages, chain, Some(end));
                }
                // The pair does conflict: same name, or one's Conflicts or
                // Breaks names the other or something it provides.
                let (a, b) = (find(&packages, pkg1), find(&packages, pkg2));
                let hits = |x: &BinaryPackage, y: &BinaryPackage| {
                    x.conflicts
                        .atoms()
                        .chain(x.breaks.atoms())
                        .any(|c| c.name == y.name || y.provides.atoms().any(|v| v.name == c.name))
                };
                assert!(
                    a.name == b.name || hits(a, b) || hits(b, a),
                    "{} and {} do not conflict",
                    a.name,
                    b.name
                );
            }
        }
    }
    eprintln!(
        "sid: {} broken, {missing} for a missing dependency, {conflicts} for a conflict; every chain followed",
        broken.len()
    );
    let example = broken
        .iter()
        .find(|r| matches!(&r.reasons[0], Reason::Missing { chain, .. } if chain.len() > 2))
        .expect("a broken package whose missing dependency is a few steps away");
    let Reason::Missing {
        chain,
        unsat_dependency,
    } = &example.reasons[0]
    else {
        unreachable!()
    };
    let steps: Vec<String> = chain
        .iter()
        .map(|s| {
            format!(
                "{} {} needs {}",
                s.package.package, s.package.version, s.depends
            )
        })
        .collect();
    eprintln!(
        "for example {}: {} — and nothing provides `{unsat_dependency}`",
        example.package.package,
        steps.join(" -> ")
    );
}
