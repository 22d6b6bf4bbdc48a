//! Which source packages may migrate from a proposed suite to a target,
//! as britney decides it: a candidate (newer in the source suite, or new)
//! migrates only if, once its binaries replace the old ones in the target,
//! no architecture's count of uninstallable packages grows.
//!
//! - Old binaries the new version no longer builds are dropped; when that
//!   breaks something, the migration is tried again keeping them (the
//!   smooth update), so a library transition need not wait.
//! - Candidates are retried until nothing more migrates, then blocked ones
//!   are tried together with the candidates that own what they break
//!   (britney's automatic "easy" grouping), and as the hints say.
//! - Plain reasons block before any trial: a `block` hint, a missing build
//!   on an architecture, the candidate's own binaries uninstallable in the
//!   source suite.
//!
//! Each trial rebuilds the target's universe and checks it whole; that is
//! exact and fast for small suites. A whole-archive run (sid → forky)
//! needs an incremental check of only the affected packages, not yet here.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ferry_deb::{BinaryPackage, VersionRef};
use ferry_solve::{PackageRef, Report, Universe};
use serde::Serialize;

use crate::hints::{Hint, HintItem, Hints};
use crate::{ArchiveError, Suite};

/// Why a candidate migrates or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Why {
    /// A `block` hint holds it.
    Blocked,
    /// No build for this architecture, where the source builds
    /// architecture-specific binaries.
    MissingBuild { architecture: String },
    /// Its own binaries cannot be installed in the source suite.
    UninstallableInSource { packages: Vec<Report> },
    /// Migrating would make these target packages uninstallable.
    Breaks {
        architecture: String,
        before: usize,
        after: usize,
        broken: Vec<Report>,
    },
    /// Migrated together with these candidates.
    MigratedWith { sources: Vec<String> },
    /// A `force` hint let it in whatever it breaks.
    Forced,
    /// Old binaries it no longer builds were kept: packages still need them.
    KeptOldBinaries { packages: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excuse {
    pub source: String,
    pub old_version: Option<String>,
    pub new_version: String,
    pub migrates: bool,
    pub reasons: Vec<Why>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excuses {
    pub excuses: Vec<Excuse>,
    /// Sources a `remove` hint took out of the target.
    pub removed: Vec<String>,
    /// Old binaries kept by a smooth update and dropped at the end, as
    /// nothing needs them any more.
    pub dropped: Vec<String>,
    /// Uninstallable packages of the target per architecture, before and after.
    pub broken_before: BTreeMap<String, usize>,
    pub broken_after: BTreeMap<String, usize>,
}

type Key = (String, String, String);

fn key(p: &BinaryPackage<'_>) -> Key {
    (
        p.name.to_string(),
        p.version.to_string(),
        p.architecture.to_string(),
    )
}

fn report_key(r: &PackageRef) -> Key {
    (r.package.clone(), r.version.clone(), r.architecture.clone())
}

/// The version of the source a binary was built from.
fn built_from<'a>(p: &BinaryPackage<'a>) -> VersionRef<'a> {
    p.source_version.unwrap_or(p.version)
}

/// The broken packages of a set of records on `arch`, with reasons.
fn broken(records: &[BinaryPackage<'_>], arch: &str, explain: bool) -> Vec<Report> {
    let universe = Universe::new(records, arch, &[]);
    ferry_solve::check(&universe, None, explain)
        .into_iter()
        .filter(|r| r.status != "ok")
        .collect()
}

struct Candidate {
    source: String,
    old_version: Option<String>,
    new_version: String,
}

/// The target as it evolves while candidates migrate.
struct Target<'a> {
    records: BTreeMap<String, Vec<BinaryPackage<'a>>>,
    broken: BTreeMap<String, HashSet<Key>>,
}

enum Trial<'a> {
    Accepted {
        records: BTreeMap<String, Vec<BinaryPackage<'a>>>,
        kept: Vec<String>,
    },
    Rejected(Vec<Why>),
}

impl<'a> Target<'a> {
    /// The target with `sources`' binaries replaced by `incoming`.
    fn with(
        &self,
        sources: &HashSet<&str>,
        incoming: &BTreeMap<String, Vec<BinaryPackage<'a>>>,
        keep_old: bool,
    ) -> BTreeMap<String, Vec<BinaryPackage<'a>>> {
        let mut next = BTreeMap::new();
        for (arch, records) in &self.records {
            let new: &[BinaryPackage<'a>] = incoming.get(arch).map_or(&[], Vec::as_slice);
            let new_names: HashSet<&str> = new.iter().map(|p| p.name).collect();
            let mut list: Vec<BinaryPackage<'a>> = records
                .iter()
                .filter(|p| {
                    !sources.contains(p.source) || (keep_old && !new_names.contains(p.name))
                })
                .cloned()
                .collect();
            list.extend(new.iter().cloned());
            next.insert(arch.clone(), list);
        }
        next
    }

    fn try_with(
        &self,
        sources: &HashSet<&str>,
        incoming: &BTreeMap<String, Vec<BinaryPackage<'a>>>,
    ) -> Trial<'a> {
        let mut rejection = Vec::new();
        for keep_old in [false, true] {
            let next = self.with(sources, incoming, keep_old);
            rejection.clear();
            for (arch, records) in &next {
                let before = self.broken.get(arch).map_or(0, HashSet::len);
                let now = broken(records, arch, false);
                if now.len() > before {
                    let old = self.broken.get(arch);
                    let newly: HashSet<Key> = now
                        .iter()
                        .map(|r| report_key(&r.package))
                        .filter(|k| old.is_none_or(|o| !o.contains(k)))
                        .collect();
                    let explained = broken(records, arch, true)
                        .into_iter()
                        .filter(|r| newly.contains(&report_key(&r.package)))
                        .collect();
                    rejection.push(Why::Breaks {
                        architecture: arch.clone(),
                        before,
                        after: now.len(),
                        broken: explained,
                    });
                }
            }
            if rejection.is_empty() {
                let kept = if keep_old {
                    let mut names: BTreeSet<String> = BTreeSet::new();
                    for (arch, records) in &self.records {
                        let new: HashSet<&str> = incoming
                            .get(arch)
                            .map(|n| n.iter().map(|p| p.name).collect())
                            .unwrap_or_default();
                        names.extend(
                            records
                                .iter()
                                .filter(|p| sources.contains(p.source) && !new.contains(p.name))
                                .map(|p| p.name.to_string()),
                        );
                    }
                    names.into_iter().collect()
                } else {
                    Vec::new()
                };
                return Trial::Accepted {
                    records: next,
                    kept,
                };
            }
        }
        Trial::Rejected(rejection)
    }

    fn accept(&mut self, records: BTreeMap<String, Vec<BinaryPackage<'a>>>) {
        for (arch, list) in &records {
            let now = broken(list, arch, false)
                .into_iter()
                .map(|r| report_key(&r.package))
                .collect();
            self.broken.insert(arch.clone(), now);
        }
        self.records = records;
    }
}

fn newest<'a>(
    sources: &[ferry_deb::package::SourcePackage<'a>],
) -> HashMap<&'a str, VersionRef<'a>> {
    let mut newest: HashMap<&str, VersionRef> = HashMap::new();
    for s in sources {
        if newest.get(s.name).is_none_or(|v| s.version > *v) {
            newest.insert(s.name, s.version);
        }
    }
    newest
}

fn hinted<'h>(
    hints: &'h Hints,
    pick: impl Fn(&'h Hint) -> Option<&'h Vec<HintItem>>,
) -> Vec<&'h HintItem> {
    hints.hints.iter().filter_map(pick).flatten().collect()
}

fn names(items: &[&HintItem], source: &str, version: &str) -> bool {
    items
        .iter()
        .any(|i| i.source == source && i.version.as_deref().is_none_or(|v| v == version))
}

/// Decides every candidate of `from` for `to`.
pub fn excuses(from: &Suite, to: &Suite, hints: &Hints) -> Result<Excuses, ArchiveError> {
    let to_arches: HashSet<&str> = to.architectures().collect();
    let arches: Vec<String> = from
        .architectures()
        .filter(|a| to_arches.contains(a))
        .map(str::to_string)
        .collect();
    let from_sources = from.sources()?;
    let to_sources = to.sources()?;
    let new = newest(&from_sources);
    let old = newest(&to_sources);
    let mut candidates: Vec<Candidate> = new
        .iter()
        .filter(|(name, v)| old.get(*name).is_none_or(|o| *v > o))
        .map(|(name, v)| Candidate {
            source: name.to_string(),
            old_version: old.get(name).map(|o| o.to_string()),
            new_version: v.to_string(),
        })
        .collect();
    candidates.sort_by(|a, b| a.source.cmp(&b.source));

    let mut from_records = BTreeMap::new();
    let mut target = Target {
        records: BTreeMap::new(),
        broken: BTreeMap::new(),
    };
    for arch in &arches {
        from_records.insert(arch.clone(), from.binaries(arch)?);
        let records = to.binaries(arch)?;
        let now = broken(&records, arch, false)
            .into_iter()
            .map(|r| report_key(&r.package))
            .collect();
        target.broken.insert(arch.clone(), now);
        target.records.insert(arch.clone(), records);
    }
    let broken_before = target
        .broken
        .iter()
        .map(|(a, b)| (a.clone(), b.len()))
        .collect();

    // The binaries each candidate brings, per architecture.
    let incoming_of = |c: &Candidate| -> BTreeMap<String, Vec<BinaryPackage<'_>>> {
        from_records
            .iter()
            .map(|(arch, records): (&String, &Vec<BinaryPackage<'_>>)| {
                let list = records
                    .iter()
                    .filter(|p| p.source == c.source && built_from(p).to_string() == c.new_version)
                    .cloned()
                    .collect();
                (arch.clone(), list)
            })
            .collect()
    };

    let blocks = hinted(hints, |h| match h {
        Hint::Block(i) => Some(i),
        _ => None,
    });
    let unblocks = hinted(hints, |h| match h {
        Hint::Unblock(i) => Some(i),
        _ => None,
    });
    let forces = hinted(hints, |h| match h {
        Hint::Force(i) => Some(i),
        _ => None,
    });
    let removes = hinted(hints, |h| match h {
        Hint::Remove(i) => Some(i),
        _ => None,
    });

    let mut excuses: Vec<Excuse> = Vec::new();
    let mut eligible: Vec<usize> = Vec::new();
    for (index, c) in candidates.iter().enumerate() {
        let mut reasons = Vec::new();
        let forced = names(&forces, &c.source, &c.new_version);
        if names(&blocks, &c.source, &c.new_version) && !names(&unblocks, &c.source, &c.new_version)
        {
            reasons.push(Why::Blocked);
        }
        let incoming = incoming_of(c);
        let builds_arch_specific = incoming.values().flatten().any(|p| p.architecture != "all");
        for (arch, list) in &incoming {
            if builds_arch_specific && !list.iter().any(|p| p.architecture != "all") {
                reasons.push(Why::MissingBuild {
                    architecture: arch.clone(),
                });
            }
        }
        let own: HashSet<Key> = incoming.values().flatten().map(key).collect();
        let mut uninstallable = Vec::new();
        for (arch, records) in &from_records {
            uninstallable.extend(
                broken(records, arch, true)
                    .into_iter()
                    .filter(|r| own.contains(&report_key(&r.package))),
            );
        }
        if !uninstallable.is_empty() {
            reasons.push(Why::UninstallableInSource {
                packages: uninstallable,
            });
        }
        if forced {
            reasons = vec![Why::Forced];
        }
        if reasons.is_empty() || forced {
            eligible.push(index);
        }
        excuses.push(Excuse {
            source: c.source.clone(),
            old_version: c.old_version.clone(),
            new_version: c.new_version.clone(),
            migrates: false,
            reasons,
        });
    }

    // Removals asked for by hints go first, checked like migrations.
    let mut removed = Vec::new();
    for item in &removes {
        let sources: HashSet<&str> = [item.source.as_str()].into_iter().collect();
        if let Trial::Accepted { records, .. } = target.try_with(&sources, &BTreeMap::new()) {
            target.accept(records);
            removed.push(item.source.clone());
        }
    }

    // One at a time until nothing more migrates.
    let mut progress = true;
    while progress {
        progress = false;
        for &index in &eligible {
            if excuses[index].migrates {
                continue;
            }
            let c = &candidates[index];
            let sources: HashSet<&str> = [c.source.as_str()].into_iter().collect();
            let incoming = incoming_of(c);
            if excuses[index].reasons == [Why::Forced] {
                target.accept(target.with(&sources, &incoming, true));
                excuses[index].migrates = true;
                progress = true;
                continue;
            }
            match target.try_with(&sources, &incoming) {
                Trial::Accepted { records, kept } => {
                    target.accept(records);
                    let excuse = &mut excuses[index];
                    excuse.migrates = true;
                    excuse.reasons.clear();
                    if !kept.is_empty() {
                        excuse.reasons.push(Why::KeptOldBinaries { packages: kept });
                    }
                    progress = true;
                }
                Trial::Rejected(why) => excuses[index].reasons = why,
            }
        }
    }

    // Groups: the hints' `easy` sets, then each blocked candidate with the
    // candidates whose binaries it breaks.
    let mut groups: Vec<Vec<usize>> = hints
        .hints
        .iter()
        .filter_map(|h| match h {
            Hint::Easy(items) => Some(
                items
                    .iter()
                    .filter_map(|i| {
                        candidates.iter().position(|c| {
                            c.source == i.source
                                && i.version.as_deref() == Some(c.new_version.as_str())
                        })
                    })
                    .collect::<Vec<usize>>(),
            ),
            _ => None,
        })
        .collect();
    let by_binary: HashMap<String, usize> = eligible
        .iter()
        .flat_map(|&i| {
            let names: Vec<String> = target
                .records
                .values()
                .flatten()
                .filter(|p| p.source == candidates[i].source)
                .map(|p| p.name.to_string())
                .collect();
            names.into_iter().map(move |n| (n, i))
        })
        .collect();
    for &index in &eligible {
        if excuses[index].migrates {
            continue;
        }
        let mut group: BTreeSet<usize> = [index].into_iter().collect();
        for why in &excuses[index].reasons {
            if let Why::Breaks { broken, .. } = why {
                for r in broken {
                    if let Some(&other) = by_binary.get(&r.package.package) {
                        if !excuses[other].migrates {
                            group.insert(other);
                        }
                    }
                }
            }
        }
        if group.len() > 1 {
            groups.push(group.into_iter().collect());
        }
    }
    for group in groups {
        let pending: Vec<usize> = group
            .into_iter()
            .filter(|&i| !excuses[i].migrates && eligible.contains(&i))
            .collect();
        if pending.len() < 2 {
            continue;
        }
        let sources: HashSet<&str> = pending
            .iter()
            .map(|&i| candidates[i].source.as_str())
            .collect();
        let mut incoming: BTreeMap<String, Vec<BinaryPackage<'_>>> = BTreeMap::new();
        for &i in &pending {
            for (arch, list) in incoming_of(&candidates[i]) {
                incoming.entry(arch).or_default().extend(list);
            }
        }
        if let Trial::Accepted { records, kept } = target.try_with(&sources, &incoming) {
            target.accept(records);
            for &i in &pending {
                let others: Vec<String> = pending
                    .iter()
                    .filter(|&&j| j != i)
                    .map(|&j| candidates[j].source.clone())
                    .collect();
                let excuse = &mut excuses[i];
                excuse.migrates = true;
                excuse.reasons = vec![Why::MigratedWith { sources: others }];
                if !kept.is_empty() {
                    excuse.reasons.push(Why::KeptOldBinaries {
                        packages: kept.clone(),
                    });
                }
            }
        }
    }

    // Old binaries kept for packages that needed them go once nothing does
    // (those packages migrated since): the end of a smooth update.
    let mut dropped = Vec::new();
    let kept: BTreeSet<(String, String)> = excuses
        .iter()
        .filter(|e| e.migrates)
        .flat_map(|e| {
            e.reasons.iter().flat_map(move |w| match w {
                Why::KeptOldBinaries { packages } => packages
                    .iter()
                    .map(|p| (e.source.clone(), p.clone()))
                    .collect::<Vec<_>>(),
                _ => Vec::new(),
            })
        })
        .collect();
    for (source, name) in kept {
        let mut next = target.records.clone();
        for list in next.values_mut() {
            list.retain(|p| !(p.source == source && p.name == name));
        }
        let grows = next.iter().any(|(arch, list)| {
            broken(list, arch, false).len() > target.broken.get(arch).map_or(0, HashSet::len)
        });
        if !grows {
            target.accept(next);
            dropped.push(name);
        }
    }

    let broken_after = target
        .broken
        .iter()
        .map(|(a, b)| (a.clone(), b.len()))
        .collect();
    Ok(Excuses {
        excuses,
        removed,
        dropped,
        broken_before,
        broken_after,
    })
}
