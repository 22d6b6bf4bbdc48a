//! One hand-made archive per installability rule, in `tests/fixtures/`:
//! `NAME.Packages` and `NAME.expected`, which says (after `#` comments)
//! the foreign architectures (`foreign: i386`), every broken package
//! (`broken NAME VERSION ARCH`) and, under it, what its explanation must
//! name: `missing: DEPENDENCY` (the dependency nothing satisfies),
//! `conflict: P Q` (the conflicting pair, either order) and `chain: A B`
//! (the packages of the chain to the missing dependency, or of one of the
//! chains that pull the pair in). The verdicts are also checked against
//! dose-distcheck when it is installed.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{broken_set, dose, dose_available, ours};
use ferry_solve::{ChainStep, Reason, Report};

#[derive(Default, Debug)]
struct Expected {
    foreign: Vec<String>,
    /// (`name version arch`, explanation lines)
    broken: Vec<(String, Vec<(String, String)>)>,
}

fn parse_expected(text: &str) -> Expected {
    let mut expected = Expected::default();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(archs) = trimmed.strip_prefix("foreign:") {
            expected.foreign = archs.split_whitespace().map(String::from).collect();
        } else if let Some(package) = trimmed.strip_prefix("broken ") {
            expected.broken.push((package.to_string(), Vec::new()));
        } else {
            let (key, value) = trimmed.split_once(':').expect("`key: value` line");
            let (_, lines) = expected.broken.last_mut().expect("a `broken` line first");
            lines.push((key.to_string(), value.trim().to_string()));
        }
    }
    expected
}

fn names(chain: &[ChainStep]) -> String {
    chain
        .iter()
        .map(|s| s.package.package.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks one explanation line against a report's first reason.
fn explained(report: &Report, key: &str, value: &str) -> Result<(), String> {
    let reason = report.reasons.first().ok_or("no reason given")?;
    let ok = match (key, reason) {
        (
            "missing",
            Reason::Missing {
                unsat_dependency, ..
            },
        ) => unsat_dependency == value,
        ("conflict", Reason::Conflict { pkg1, pkg2, .. }) => {
            let mut got = [pkg1.package.as_str(), pkg2.package.as_str()];
            let mut want: Vec<&str> = value.split_whitespace().collect();
            got.sort_unstable();
            want.sort_unstable();
            got.as_slice() == want.as_slice()
        }
        ("chain", Reason::Missing { chain, .. }) => names(chain) == value,
        ("chain", Reason::Conflict { chain1, chain2, .. }) => {
            names(chain1) == value || names(chain2) == value
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {key}: {value}, got {reason:?}"))
    }
}

/// Every chain starts at the package checked (or at the essential set)
/// and a missing chain ends at the dependency nothing satisfies.
fn chains_are_well_formed(report: &Report) -> Result<(), String> {
    let starts_right = |chain: &[ChainStep]| {
        chain.first().is_none_or(|s| {
            s.package == report.package || s.package.package == ferry_solve::ESSENTIAL
        })
    };
    for reason in &report.reasons {
        let ok = match reason {
            Reason::Missing {
                chain,
                unsat_dependency,
            } => starts_right(chain) && chain.last().map(|s| &s.depends) == Some(unsat_dependency),
            Reason::Conflict { chain1, chain2, .. } => starts_right(chain1) && starts_right(chain2),
        };
        if !ok {
            return Err(format!("malformed chain in {reason:?}"));
        }
    }
    Ok(())
}

#[test]
fn each_rule_gives_the_expected_verdicts_explanations_and_dose_agrees() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let with_dose = dose_available();
    if !with_dose {
        eprintln!("note: dose-distcheck is not installed; checking the written expectations only");
    }
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Packages"))
        .collect();
    fixtures.sort();
    assert!(
        fixtures.len() >= 9,
        "fixtures missing from {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in &fixtures {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let expected =
            parse_expected(&std::fs::read_to_string(path.with_extension("expected")).unwrap());
        let foreign: Vec<&str> = expected.foreign.iter().map(String::as_str).collect();
        let want: BTreeSet<String> = expected.broken.iter().map(|(p, _)| p.clone()).collect();

        let reports = ours(&text, &foreign, true);
        let got = broken_set(&reports);
        if got != want {
            failures.push(format!("{name}: ferry says {got:?}, expected {want:?}"));
        }
        for (package, lines) in &expected.broken {
            let Some(report) = reports.iter().find(|r| {
                format!(
                    "{} {} {}",
                    r.package.package, r.package.version, r.package.architecture
                ) == *package
            }) else {
                continue;
            };
            for (key, value) in lines {
                if let Err(e) = explained(report, key, value) {
                    failures.push(format!("{name}: {package}: {e}"));
                }
            }
            if let Err(e) = chains_are_well_formed(report) {
                failures.push(format!("{name}: {package}: {e}"));
            }
        }
        if with_dose {
            match dose(path, &foreign) {
                Some(dose_set) if dose_set == want => {}
                Some(dose_set) => failures.push(format!(
                    "{name}: dose-distcheck says {dose_set:?}, the fixture expects {want:?}"
                )),
                None => failures.push(format!("{name}: dose-distcheck refused the fixture")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} fixtures agree", fixtures.len());
}
