//! Random small archives, checked by ferry-solve and by dose-distcheck (the
//! oracle): the broken sets must be identical. The archives mix every rule
//! the resolver knows — Multi-Arch, a foreign architecture, `:any`,
//! `:native` and `:arch` qualifiers, versioned and unversioned Provides
//! (of the package's own name too), Essential packages, several versions
//! of a name, Pre-Depends, Conflicts and Breaks — over a small pool of names
//! so that relations collide often. `FERRY_RANDOM_ROUNDS` sets the number
//! of archives (default 600); skipped when dose-distcheck is absent.

mod common;

use common::{broken_set, dose, dose_available, ours, ours_with_budget, stanza};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NAMES: usize = 9;

fn name(rng: &mut StdRng) -> String {
    // Mostly real names, sometimes a virtual one.
    if rng.gen_bool(0.2) {
        format!("v{}", rng.gen_range(0..3))
    } else {
        format!("p{}", rng.gen_range(0..NAMES))
    }
}

fn constraint(rng: &mut StdRng) -> &'static str {
    [
        "", "", "", " (>= 2)", " (<< 2)", " (= 1)", " (= 2)", " (<= 1)", " (>> 1)",
    ][rng.gen_range(0..9)]
}

fn qualifier(rng: &mut StdRng, foreign: bool) -> &'static str {
    match rng.gen_range(0..10) {
        0 | 1 => ":any",
        2 => ":native",
        3 if foreign => ":i386",
        4 => ":amd64",
        _ => "",
    }
}

fn atom(rng: &mut StdRng, foreign: bool) -> String {
    format!(
        "{}{}{}",
        name(rng),
        qualifier(rng, foreign),
        constraint(rng)
    )
}

fn field(
    rng: &mut StdRng,
    label: &str,
    groups: usize,
    alternatives: bool,
    foreign: bool,
) -> String {
    let list: Vec<String> = (0..groups)
        .map(|_| {
            let n = if alternatives {
                rng.gen_range(1..=3)
            } else {
                1
            };
            (0..n)
                .map(|_| atom(rng, foreign))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect();
    if list.is_empty() {
        String::new()
    } else {
        format!("{label}: {}\n", list.join(", "))
    }
}

fn random_archive(rng: &mut StdRng, foreign: bool) -> String {
    let mut text = String::new();
    for i in 0..NAMES {
        let pname = format!("p{i}");
        let archs: &[&str] = if foreign && rng.gen_bool(0.4) {
            &["amd64", "i386"]
        } else if rng.gen_bool(0.3) {
            &["all"]
        } else if rng.gen_bool(0.1) {
            &["armhf"]
        } else if rng.gen_bool(0.05) {
            // One package twice: arch:all is the native architecture.
            &["all", "amd64"]
        } else {
            &["amd64"]
        };
        let multi_arch = ["", "", "same", "foreign", "allowed"][rng.gen_range(0..5)];
        let essential = rng.gen_bool(0.03);
        for version in 1..=rng.gen_range(1..=2) {
            for arch in archs {
                let mut fields = String::new();
                if !multi_arch.is_empty() {
                    fields.push_str(&format!("Multi-Arch: {multi_arch}\n"));
                }
                if essential {
                    fields.push_str("Essential: yes\n");
                }
                let n = rng.gen_range(0..3);
                fields.push_str(&field(rng, "Depends", n, true, foreign));
                if rng.gen_bool(0.15) {
                    fields.push_str(&field(rng, "Pre-Depends", 1, true, foreign));
                }
                if rng.gen_bool(0.3) {
                    let n = rng.gen_range(1..3);
                    fields.push_str(&field(rng, "Conflicts", n, false, foreign));
                }
                if rng.gen_bool(0.2) {
                    fields.push_str(&field(rng, "Breaks", 1, false, foreign));
                }
                if rng.gen_bool(0.35) {
                    let provided = if rng.gen_bool(0.15) {
                        pname.clone()
                    } else {
                        name(rng)
                    };
                    let v = ["", "", " (= 1)", " (= 2)"][rng.gen_range(0..4)];
                    fields.push_str(&format!("Provides: {provided}{v}\n"));
                }
                text.push_str(&stanza(
                    &pname,
                    &version.to_string(),
                    arch,
                    fields.trim_end(),
                ));
                text.push('\n');
            }
        }
    }
    text
}

#[test]
fn random_archives_agree_with_dose() {
    if !dose_available() {
        ferry_testkit::skip!("dose-distcheck is not installed");
    }
    let rounds: usize = std::env::var("FERRY_RANDOM_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let seed: u64 = std::env::var("FERRY_RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_122);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Packages");
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut compared, mut packages, mut broken) = (0, 0, 0);
    for round in 0..rounds {
        let foreign_archs: &[&str] = if round % 2 == 0 { &["i386"] } else { &[] };
        let text = random_archive(&mut rng, !foreign_archs.is_empty());
        std::fs::write(&path, &text).unwrap();
        let Some(expected) = dose(&path, foreign_archs) else {
            continue;
        };
        compared += 1;
        let reports = ours(&text, foreign_archs, false);
        let got = broken_set(&reports);
        packages += reports.len();
        broken += got.len();
        assert_eq!(
            got, expected,
            "round {round} (foreign {foreign_archs:?}), left ferry, right dose:\n{text}"
        );
        let by_cdcl = broken_set(&ours_with_budget(&text, foreign_archs, false, 0));
        assert_eq!(
            by_cdcl, expected,
            "round {round} (foreign {foreign_archs:?}), CDCL fallback; left ferry, right dose:\n{text}"
        );
    }
    eprintln!(
        "{compared} of {rounds} random archives compared ({packages} packages, {broken} broken): ferry and dose agree"
    );
}

/// A dense archive: thousands of packages with many alternatives and
/// conflicts, where chronological backtracking alone would take hours;
/// the CDCL fallback must decide it, and agree with dose.
fn dense_archive(rng: &mut StdRng, n: usize) -> String {
    let name = |rng: &mut StdRng| format!("d{}", rng.gen_range(0..n));
    let mut text = String::new();
    for i in 0..n {
        for version in 1..=rng.gen_range(1..=2) {
            let mut fields = String::new();
            let groups: Vec<String> = (0..rng.gen_range(0..5))
                .map(|_| {
                    (0..rng.gen_range(1..4))
                        .map(|_| {
                            format!(
                                "{}{}",
                                name(rng),
                                ["", "", " (>= 2)", " (<< 2)"][rng.gen_range(0..4)]
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .collect();
            if !groups.is_empty() {
                fields.push_str(&format!("Depends: {}\n", groups.join(", ")));
            }
            if rng.gen_bool(0.3) {
                let conflicts: Vec<String> = (0..rng.gen_range(1..4)).map(|_| name(rng)).collect();
                fields.push_str(&format!("Conflicts: {}\n", conflicts.join(", ")));
            }
            let arch = if i % 5 == 0 { "all" } else { "amd64" };
            text.push_str(&stanza(
                &format!("d{i}"),
                &version.to_string(),
                arch,
                fields.trim_end(),
            ));
            text.push('\n');
        }
    }
    text
}

#[test]
fn dense_archives_are_decided_and_agree_with_dose() {
    if !dose_available() {
        ferry_testkit::skip!("dose-distcheck is not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Packages");
    let mut rng = StdRng::seed_from_u64(3);
    for round in 0..2 {
        let text = dense_archive(&mut rng, 2500);
        std::fs::write(&path, &text).unwrap();
        let expected = dose(&path, &[]).expect("dose reads the archive");
        let started = std::time::Instant::now();
        let got = broken_set(&ours(&text, &[], false));
        eprintln!(
            "dense archive {round}: {} broken, {:.2} s",
            got.len(),
            started.elapsed().as_secs_f64()
        );
        assert_eq!(got, expected, "dense archive {round}");
    }
}
