//! ferry-solve answers installability questions about Debian packages, as
//! dose-distcheck does: which packages of a set of Packages files (and a
//! dpkg status) can be installed at all, and why not.
//!
//! `Universe` resolves relations once (dose's rules, Essential packages
//! included); `Solver` decides; `check` runs a whole universe or a subset
//! of it on all cores and returns reports with explanations that name
//! packages, versions and the dependencies as written. For installed
//! packages, `check_installed` answers whether some version of each could
//! be installed from a universe: one of the repositories alone (what
//! `ferry check --installed` asks, with `installed_packages`), or one the
//! installed copies joined (the migration gate, with `add_installed`).
//! A universe is cheap to rebuild (a quarter of a second for sid), so a
//! caller that adds or removes binaries builds a new one and checks the
//! packages it cares about; one that checks many subsets of a large set
//! resolves the set once as a `Pool` and cuts each subset's universe
//! from it. Not for reading files (ferry-deb) or
//! rendering reports (the CLI); a `Reason` has one text form of its own
//! (`Display`), which every caller that names a reason in words uses.

mod dose_reasons;
mod pool;
mod solver;
mod universe;

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

// The crate's whole surface (with the types defined below); the modules
// stay private so that what other crates may lean on is decided here.
pub use pool::Pool;
pub use solver::{Cause, Prepared, Solver, Verdict, DEFAULT_BUDGET};
pub use universe::{ClauseOrigin, Field, PkgId, Universe};

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
    /// An empty chain says that the package checked itself is not in the
    /// universe at all (an installed package no version of which is
    /// offered, see `check_installed`); `unsat_dependency` then names it
    /// as `name:architecture`, the request dose would find unsatisfiable.
    Missing {
        chain: Vec<ChainStep>,
        unsat_dependency: String,
    },
    /// Two packages that cannot be installed together, each pulled in by a
    /// chain (empty for the package checked itself). `pkg1` is the one
    /// whose Conflicts or Breaks names `pkg2` when one does, and
    /// `unsat_conflict` that relation as written (or the shared name, for
    /// two versions of one package).
    Conflict {
        pkg1: PackageRef,
        pkg2: PackageRef,
        chain1: Vec<ChainStep>,
        chain2: Vec<ChainStep>,
        unsat_conflict: String,
    },
}

/// A reason in words, on one line. `{}` gives the whole of it: the chain of
/// dependencies as `a 1 needs b (>= 2) -> b 2 needs c`, and for a conflict
/// where each side comes from. The alternate form `{:#}` gives it in a few
/// words, for a list of broken packages.
impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // An empty chain: the package checked has no version at all
            // in the universe (an installed one, see `check_installed`).
            Reason::Missing {
                chain,
                unsat_dependency,
            } if chain.is_empty() && !unsat_dependency.is_empty() => {
                write!(f, "no version of {unsat_dependency} is offered")
            }
            Reason::Missing {
                chain,
                unsat_dependency,
            } => {
                write!(f, "nothing satisfies `{unsat_dependency}`")?;
                match chain.as_slice() {
                    _ if !f.alternate() => write!(f, ": {}", ChainText(chain)),
                    [] | [_] => Ok(()),
                    [.., last] => write!(
                        f,
                        " (needed by {} {}, {} steps away)",
                        last.package.package,
                        last.package.version,
                        chain.len() - 1
                    ),
                }
            }
            Reason::Conflict {
                pkg1,
                pkg2,
                chain1,
                chain2,
                unsat_conflict,
            } => {
                write!(
                    f,
                    "{} {} conflicts with {} {} (`{unsat_conflict}`)",
                    pkg1.package, pkg1.version, pkg2.package, pkg2.version
                )?;
                if f.alternate() {
                    return Ok(());
                }
                for (p, chain) in [(pkg1, chain1), (pkg2, chain2)] {
                    match chain.as_slice() {
                        [] => write!(f, "; {} is the package itself", p.package)?,
                        [only] if only.package.package == ESSENTIAL => {
                            write!(f, "; {} is essential", p.package)?
                        }
                        _ => write!(f, "; {} comes from {}", p.package, ChainText(chain))?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// A chain for people: `a 1 needs b (>= 2) -> b 2 needs c`.
struct ChainText<'a>(&'a [ChainStep]);

impl std::fmt::Display for ChainText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            if s.package.package == ESSENTIAL {
                write!(f, "essential {}", s.depends)?;
            } else {
                write!(
                    f,
                    "{} {} needs {}",
                    s.package.package, s.package.version, s.depends
                )?;
            }
        }
        Ok(())
    }
}

/// dose-distcheck's verdict on one package, serialized as dose writes it
/// (`ok`, `broken`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Broken,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Broken => "broken",
        }
    }

    pub fn is_broken(self) -> bool {
        self == Status::Broken
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub package: PackageRef,
    pub status: Status,
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
            } => {
                let (a, b, chain_a, chain_b, declared) = match self.declared_conflict(*a, *b) {
                    Some(text) => (*a, *b, chain_a, chain_b, text),
                    None => match self.declared_conflict(*b, *a) {
                        Some(text) => (*b, *a, chain_b, chain_a, text),
                        None => (*a, *b, chain_a, chain_b, self.implicit_conflict(*a, *b)),
                    },
                };
                Reason::Conflict {
                    pkg1: self.package_ref(a),
                    pkg2: self.package_ref(b),
                    chain1: self.chain(chain_a),
                    chain2: self.chain(chain_b),
                    unsat_conflict: declared,
                }
            }
        }
    }

    /// How dose words the conflict of two packages of one name: the name
    /// on one architecture (two versions), on another one at another
    /// version (Multi-Arch: same), or on any architecture.
    fn implicit_conflict(&self, a: PkgId, b: PkgId) -> String {
        let (Some(pa), Some(pb)) = (self.records.get(a as usize), self.records.get(b as usize))
        else {
            return String::new();
        };
        let effective = |arch: &'_ str| {
            if arch == "all" {
                self.native.clone()
            } else {
                arch.to_string()
            }
        };
        if effective(pa.architecture) == effective(pb.architecture) {
            pb.name.to_string()
        } else if pa.multi_arch == ferry_deb::MultiArch::Same {
            format!(
                "{}:{} (!= {})",
                pb.name,
                effective(pb.architecture),
                pa.version
            )
        } else {
            format!("{}:any", pb.name)
        }
    }

    /// The Conflicts or Breaks atom of `a` that names `b` (or a name `b`
    /// provides), as written. For the report only: the universe already
    /// decided that they conflict, this finds the words for it.
    fn declared_conflict(&self, a: PkgId, b: PkgId) -> Option<String> {
        let (pa, pb) = (self.records.get(a as usize)?, self.records.get(b as usize)?);
        let arch_b = if pb.architecture == "all" {
            self.native.as_str()
        } else {
            pb.architecture
        };
        pa.conflicts
            .atoms()
            .chain(pa.breaks.atoms())
            .find(|atom| {
                let arch_ok = match atom.arch_qualifier {
                    None | Some("any") => true,
                    Some("native") => arch_b == self.native,
                    Some(arch) => arch_b == arch,
                };
                // dose ignores the version of a `name:any` conflict.
                let any = atom.arch_qualifier == Some("any");
                let by_name = atom.name == pb.name
                    && (any || atom.constraint.is_none_or(|c| c.allows(&pb.version)));
                let by_provides = pb.provides.atoms().any(|v| {
                    v.name == atom.name
                        && match (&atom.constraint, &v.constraint) {
                            (None, _) => true,
                            (Some(_), _) if any => true,
                            (Some(c), Some(provided)) => c.allows(&provided.version),
                            (Some(_), None) => false,
                        }
                });
                arch_ok && (by_name || by_provides)
            })
            .map(|atom| atom.to_string())
    }
}

/// The packages a dpkg status has installed, as `check_installed` takes
/// them: (name, version, architecture), minus the names `leaving` says go.
/// Only a list: the installed copies do not join any universe.
pub fn installed_packages(
    status: &[ferry_deb::BinaryPackage<'_>],
    leaving: impl Fn(&str) -> bool,
) -> Vec<(String, String, String)> {
    status
        .iter()
        .filter(|p| p.is_installed() && !leaving(p.name))
        .map(installed_key)
        .collect()
}

fn installed_key(p: &ferry_deb::BinaryPackage<'_>) -> (String, String, String) {
    (
        p.name.to_string(),
        p.version.to_string(),
        p.architecture.to_string(),
    )
}

/// Adds a dpkg status's installed packages to repository `packages`,
/// skipping names `leaving` says go and any (name, version, arch) already
/// listed; returns the installed packages kept, as `check_installed` takes
/// them. The installed copies then count as available: each satisfies
/// dependencies and is a version of itself. That is the migration gate's
/// question (a package the new sources do not reinstall stays as dpkg has
/// it; what no repository offers is another finding). It is not the
/// question "could these packages be installed from these repositories":
/// for that, build the universe from the repositories alone and take the
/// list from `installed_packages`.
pub fn add_installed<'a>(
    packages: &mut Vec<ferry_deb::BinaryPackage<'a>>,
    status: Vec<ferry_deb::BinaryPackage<'a>>,
    leaving: impl Fn(&str) -> bool,
) -> Vec<(String, String, String)> {
    let installed = installed_packages(&status, &leaving);
    let mut seen: HashSet<(String, String, String)> = packages.iter().map(installed_key).collect();
    for p in status
        .into_iter()
        .filter(|p| p.is_installed() && !leaving(p.name))
    {
        if seen.insert(installed_key(&p)) {
            packages.push(p);
        }
    }
    installed
}

/// Checks `targets` (all packages when `None`) of a universe, on all cores;
/// with `explain`, broken packages carry their reasons. Reports keep the
/// universe's order.
pub fn check(universe: &Universe<'_>, targets: Option<&[PkgId]>, explain: bool) -> Vec<Report> {
    check_with_budget(universe, targets, explain, solver::DEFAULT_BUDGET)
}

/// `check` with the backtracking budget per package after which the CDCL
/// solver decides (see `Solver::set_budget`).
pub fn check_with_budget(
    universe: &Universe<'_>,
    targets: Option<&[PkgId]>,
    explain: bool,
    budget: u64,
) -> Vec<Report> {
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
            solver.set_budget(budget);
            targets
                .iter()
                .enumerate()
                .filter(|(i, _)| (i / 512) % threads == worker)
                .map(|(i, &id)| {
                    let verdict = solver.check(id);
                    let reasons = if verdict == Verdict::Broken && explain {
                        solver
                            .explain_all(id)
                            .iter()
                            .map(|c| universe.reason(c))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let status = match verdict {
                        Verdict::Installable => Status::Ok,
                        Verdict::Broken => Status::Broken,
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
/// version of that name on that architecture (arch:all counting as
/// native) installable in `universe`? A report per installed package,
/// `broken` when none is: "after switching to these sources, this package
/// could neither stay nor be reinstalled". Only what the universe holds
/// counts, so the installed version counts when the universe offers it
/// (always, when `add_installed` built it). Per version this is dose's
/// verdict (`dose-distcheck --checkonly name:arch`); a name is fine when
/// one of its versions is. With `explain`, a broken one carries the
/// reasons of its highest version, the one apt would want, or, when the
/// universe has no version of it, a `Missing` with an empty chain.
pub fn check_installed(
    universe: &Universe<'_>,
    installed: &[(String, String, String)],
    explain: bool,
) -> Vec<Report> {
    let effective = |arch: &str| -> String {
        if arch == "all" {
            universe.native.clone()
        } else {
            arch.to_string()
        }
    };
    let names: HashSet<&str> = installed.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut by_name: HashMap<&str, Vec<PkgId>> = HashMap::new();
    for (id, p) in universe.records.iter().enumerate() {
        if names.contains(p.name) {
            by_name.entry(p.name).or_default().push(id as PkgId);
        }
    }
    let ids: Vec<PkgId> = by_name.values().flatten().copied().collect();
    let ok: HashSet<PkgId> = ids
        .iter()
        .zip(check(universe, Some(&ids), false))
        .filter(|(_, r)| r.status == Status::Ok)
        .map(|(&id, _)| id)
        .collect();

    let prepared = explain.then(|| Prepared::new(universe));
    let mut solver = prepared.as_ref().map(|p| Solver::new(universe, p));
    installed
        .iter()
        .map(|(name, version, arch)| {
            let candidates: Vec<PkgId> = by_name
                .get(name.as_str())
                .into_iter()
                .flatten()
                .copied()
                .filter(|&id| {
                    effective(universe.records[id as usize].architecture) == effective(arch)
                })
                .collect();
            let installable = candidates.iter().any(|id| ok.contains(id));
            let best = candidates.iter().copied().max_by(|&a, &b| {
                let (a, b) = (universe.records[a as usize], universe.records[b as usize]);
                a.version.cmp(&b.version)
            });
            let reasons = match (&mut solver, best) {
                (Some(solver), Some(id)) if !installable => solver
                    .explain_all(id)
                    .iter()
                    .map(|c| universe.reason(c))
                    .collect(),
                (Some(_), None) => vec![Reason::Missing {
                    chain: Vec::new(),
                    unsat_dependency: format!("{name}:{}", effective(arch)),
                }],
                _ => Vec::new(),
            };
            Report {
                package: PackageRef {
                    package: name.clone(),
                    version: version.clone(),
                    architecture: arch.clone(),
                },
                status: if installable {
                    Status::Ok
                } else {
                    Status::Broken
                },
                reasons,
            }
        })
        .collect()
}

/// An installed package no version of which the universe can install, and
/// why (see `check_installed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(flatten)]
    pub installed: PackageRef,
    pub reasons: Vec<Reason>,
}

/// The installed packages (as `add_installed` returns them) that would
/// have no installable version in `universe`, explained: what a
/// migration must not leave behind.
pub fn installed_without_installable_version(
    universe: &Universe<'_>,
    installed: &[(String, String, String)],
) -> Vec<Finding> {
    check_installed(universe, installed, true)
        .into_iter()
        .filter(|r| r.status.is_broken())
        .map(|r| Finding {
            installed: r.package,
            reasons: r.reasons,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str) -> PackageRef {
        PackageRef {
            package: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
        }
    }

    fn step(name: &str, version: &str, depends: &str) -> ChainStep {
        ChainStep {
            package: pkg(name, version),
            depends: depends.into(),
        }
    }

    fn missing(chain: Vec<ChainStep>, unsat: &str) -> Reason {
        Reason::Missing {
            chain,
            unsat_dependency: unsat.into(),
        }
    }

    fn both(reason: &Reason) -> (String, String) {
        (format!("{reason}"), format!("{reason:#}"))
    }

    #[test]
    fn an_installed_package_no_version_of_is_offered_says_so_in_both_forms() {
        let (full, short) = both(&missing(vec![], "lib:amd64"));
        assert_eq!(full, "no version of lib:amd64 is offered");
        assert_eq!(short, full);
    }

    #[test]
    fn a_missing_dependency_names_its_chain_in_full_and_its_distance_in_short() {
        let reason = missing(
            vec![
                step(ESSENTIAL, "", "base-files"),
                step("app", "1", "lib (>= 2)"),
                step("lib", "2", "libc9"),
            ],
            "libc9",
        );
        let (full, short) = both(&reason);
        assert_eq!(
            full,
            "nothing satisfies `libc9`: essential base-files -> app 1 needs lib (>= 2) -> lib 2 needs libc9"
        );
        assert_eq!(
            short,
            "nothing satisfies `libc9` (needed by lib 2, 2 steps away)"
        );
        let (full, short) = both(&missing(vec![step("app", "1", "lib")], "lib"));
        assert_eq!(full, "nothing satisfies `lib`: app 1 needs lib");
        assert_eq!(short, "nothing satisfies `lib`");
    }

    #[test]
    fn a_conflict_says_where_each_side_comes_from_in_full_only() {
        let reason = Reason::Conflict {
            pkg1: pkg("tool", "1"),
            pkg2: pkg("app", "1"),
            chain1: vec![step("app", "1", "helper"), step("helper", "3", "tool")],
            chain2: vec![],
            unsat_conflict: "app".into(),
        };
        let (full, short) = both(&reason);
        assert_eq!(
            full,
            "tool 1 conflicts with app 1 (`app`); tool comes from app 1 needs helper -> helper 3 needs tool; app is the package itself"
        );
        assert_eq!(short, "tool 1 conflicts with app 1 (`app`)");
        let essential = Reason::Conflict {
            pkg1: pkg("a", "1"),
            pkg2: pkg("b", "2"),
            chain1: vec![step(ESSENTIAL, "", "a")],
            chain2: vec![],
            unsat_conflict: "b (<< 3)".into(),
        };
        assert_eq!(
            essential.to_string(),
            "a 1 conflicts with b 2 (`b (<< 3)`); a is essential; b is the package itself"
        );
    }
}
