//! ferry-solve answers installability questions about Debian packages, as
//! dose-distcheck does: which packages of a set of Packages files (and a
//! dpkg status) can be installed at all, and why not.
//!
//! `Universe` resolves relations once; `Solver` decides; `check` runs a
//! whole universe (on all cores) and returns reports with explanations that
//! name packages, versions and the dependencies as written. Not for reading
//! files (ferry-deb) or rendering (the CLI).

pub mod solver;
pub mod universe;

use rayon::prelude::*;
use serde::Serialize;

pub use solver::{Cause, Prepared, Solver, Verdict};
pub use universe::{PkgId, Universe};

/// A package as reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageRef {
    pub package: String,
    pub version: String,
    pub architecture: String,
}

/// One step of a dependency chain: this package needs this dependency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainStep {
    #[serde(flatten)]
    pub package: PackageRef,
    pub depends: String,
}

/// Why a package is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The last dependency of the chain has no package that satisfies it.
    Missing {
        chain: Vec<ChainStep>,
        unsat_dependency: String,
    },
    /// Two packages that cannot be installed together, each pulled in by a chain.
    Conflict {
        pkg1: PackageRef,
        pkg2: PackageRef,
        chain1: Vec<ChainStep>,
        chain2: Vec<ChainStep>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub package: PackageRef,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
}

/// How chains name the essential pseudo-package: a step `(essential)
/// needs base-files` says the essential set pulled `base-files` in.
pub const ESSENTIAL: &str = "(essential)";

impl Universe<'_> {
    pub fn package_ref(&self, id: PkgId) -> PackageRef {
        match self.records.get(id as usize) {
            Some(p) => PackageRef {
                package: p.name.to_string(),
                version: p.version.to_string(),
                architecture: p.architecture.to_string(),
            },
            None => PackageRef {
                package: ESSENTIAL.to_string(),
                version: String::new(),
                architecture: String::new(),
            },
        }
    }

    fn chain(&self, steps: &[(PkgId, u32)]) -> Vec<ChainStep> {
        steps
            .iter()
            .map(|&(p, ci)| ChainStep {
                package: self.package_ref(p),
                depends: self.clause_text(p, ci),
            })
            .collect()
    }

    pub fn reason(&self, cause: &Cause) -> Reason {
        match cause {
            Cause::Missing { chain } => {
                let steps = self.chain(chain);
                Reason::Missing {
                    unsat_dependency: steps.last().map(|s| s.depends.clone()).unwrap_or_default(),
                    chain: steps,
                }
            }
            Cause::Conflict {
                a,
                b,
                chain_a,
                chain_b,
            } => Reason::Conflict {
                pkg1: self.package_ref(*a),
                pkg2: self.package_ref(*b),
                chain1: self.chain(chain_a),
                chain2: self.chain(chain_b),
            },
        }
    }
}

/// Adds a dpkg status's installed packages to repository `packages` (the
/// installed version stays available to its own system), skipping names
/// `leaving` says go and any (name, version, arch) already listed; returns
/// the installed packages kept, as `check_installed` takes them.
pub fn add_installed<'a>(
    packages: &mut Vec<ferry_deb::BinaryPackage<'a>>,
    status: Vec<ferry_deb::BinaryPackage<'a>>,
    leaving: impl Fn(&str) -> bool,
) -> Vec<(String, String, String)> {
    let key = |p: &ferry_deb::BinaryPackage<'_>| {
        (
            p.name.to_string(),
            p.version.to_string(),
            p.architecture.to_string(),
        )
    };
    let mut seen: std::collections::HashSet<(String, String, String)> =
        packages.iter().map(key).collect();
    let mut installed = Vec::new();
    for p in status
        .into_iter()
        .filter(|p| p.is_installed() && !leaving(p.name))
    {
        installed.push(key(&p));
        if seen.insert(key(&p)) {
            packages.push(p);
        }
    }
    installed
}

/// Checks `targets` (all packages when `None`) of a universe, on all cores;
/// with `explain`, broken packages carry their reasons. Reports keep the
/// universe's order.
pub fn check(universe: &Universe<'_>, targets: Option<&[PkgId]>, explain: bool) -> Vec<Report> {
    let all: Vec<PkgId> = (0..universe.len() as PkgId).collect();
    let targets = targets.unwrap_or(&all);
    let threads = rayon::current_num_threads().max(1);
    let prepared = Prepared::new(universe);
    // Each worker owns a solver (the search state is not shared); chunks
    // interleave so that both workers see similar packages early and their
    // caches of installable packages fill alike.
    let parts: Vec<Vec<(usize, Report)>> = (0..threads)
        .into_par_iter()
        .map(|worker| {
            let mut solver = Solver::new(universe, &prepared);
            targets
                .iter()
                .enumerate()
                .filter(|(i, _)| (i / 512) % threads == worker)
                .map(|(i, &id)| {
                    let verdict = solver.check(id);
                    let reasons = if verdict == Verdict::Broken && explain {
                        vec![universe.reason(&solver.explain(id))]
                    } else {
                        Vec::new()
                    };
                    let status = match verdict {
                        Verdict::Installable => "ok",
                        Verdict::Broken => "broken",
                    };
                    (
                        i,
                        Report {
                            package: universe.package_ref(id),
                            status,
                            reasons,
                        },
                    )
                })
                .collect()
        })
        .collect();
    let mut reports: Vec<(usize, Report)> = parts.into_iter().flatten().collect();
    reports.sort_by_key(|(i, _)| *i);
    reports.into_iter().map(|(_, r)| r).collect()
}

/// For each installed package (name, version, architecture): is some
/// version of it installable — the installed one or one offered? A report
/// per installed package, `broken` when none is: the gate of a migration
/// plan ("after switching to these sources, this package cannot stay").
pub fn check_installed(
    universe: &Universe<'_>,
    installed: &[(String, String, String)],
    explain: bool,
) -> Vec<Report> {
    let names: std::collections::HashSet<&str> =
        installed.iter().map(|(n, _, _)| n.as_str()).collect();
    let ids: Vec<PkgId> = (0..universe.len() as PkgId)
        .filter(|&i| names.contains(universe.records[i as usize].name))
        .collect();
    let results = check(universe, Some(&ids), false);
    let mut reports = Vec::new();
    for (name, version, arch) in installed {
        let versions: Vec<(usize, &Report)> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| &r.package.package == name)
            .collect();
        let any_ok = versions.iter().any(|(_, r)| r.status == "ok");
        let mut report = versions
            .iter()
            .find(|(_, r)| &r.package.version == version && &r.package.architecture == arch)
            .map(|(_, r)| (*r).clone())
            .unwrap_or_else(|| Report {
                package: PackageRef {
                    package: name.clone(),
                    version: version.clone(),
                    architecture: arch.clone(),
                },
                status: "broken",
                reasons: Vec::new(),
            });
        report.status = if any_ok { "ok" } else { "broken" };
        if !any_ok && explain {
            if let Some(&(index, _)) = versions.first() {
                let prepared = Prepared::new(universe);
                let mut solver = Solver::new(universe, &prepared);
                let id = ids[index];
                solver.check(id);
                report.reasons = vec![universe.reason(&solver.explain(id))];
            }
        }
        reports.push(report);
    }
    reports
}
