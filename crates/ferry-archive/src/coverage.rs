//! Coverage of an organisation move: every binary of the old repository
//! must have a counterpart in the new one — the same name, or the name the
//! map gives — at an equal or newer version, that can be installed there.
//! Checked per architecture the two repositories share.

use std::collections::{BTreeMap, HashMap, HashSet};

use ferry_deb::VersionRef;
use ferry_solve::{PackageRef, PkgId, Reason, Universe};
use serde::Serialize;

use crate::suite::{key, Key};
use crate::{ArchiveError, NameMap, Suite};

/// What is wrong with an old binary's counterpart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum GapKind {
    /// The new repository has no package of that name on that architecture.
    Missing,
    /// Only older versions (the newest is given).
    Older { version: String },
    /// The newest counterpart cannot be installed there.
    Uninstallable {
        version: String,
        reasons: Vec<Reason>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    #[serde(flatten)]
    pub old: PackageRef,
    /// The name looked for in the new repository.
    pub counterpart: String,
    #[serde(flatten)]
    pub kind: GapKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Old binaries checked (name, version, architecture; arch:all once).
    pub checked: usize,
    pub architectures: Vec<String>,
    pub gaps: Vec<Gap>,
}

/// Checks that `new` covers `old`.
pub fn coverage(old: &Suite, new: &Suite, map: &NameMap) -> Result<Coverage, ArchiveError> {
    let new_arches: HashSet<&str> = new.architectures().collect();
    let architectures: Vec<String> = old
        .architectures()
        .filter(|a| new_arches.contains(a))
        .map(str::to_string)
        .collect();
    let mut seen: HashSet<Key> = HashSet::new();
    let mut gaps: BTreeMap<Key, Gap> = BTreeMap::new();
    for arch in &architectures {
        let old_records = old.binaries(arch)?;
        let new_records = new.binaries(arch)?;
        let universe = Universe::new(&new_records, arch, &[]);
        // The newest version of each name in the new repository, by id.
        let mut newest: HashMap<String, (PkgId, String)> = HashMap::new();
        for id in 0..universe.len() as PkgId {
            let r = universe.package_ref(id);
            let better = newest.get(&r.package).is_none_or(|(_, v)| {
                match (VersionRef::split(&r.version), VersionRef::split(v)) {
                    (Ok(a), Ok(b)) => a > b,
                    _ => false,
                }
            });
            if better {
                newest.insert(r.package.clone(), (id, r.version));
            }
        }
        let mut to_check: Vec<(Key, String, PkgId)> = Vec::new();
        for p in &old_records {
            let key = key(p);
            if !seen.insert(key.clone()) {
                continue;
            }
            let counterpart = map.counterpart(p.name).to_string();
            let old_ref = PackageRef {
                package: key.0.clone(),
                version: key.1.clone(),
                architecture: key.2.clone(),
            };
            match newest.get(&counterpart) {
                None => {
                    gaps.insert(
                        key,
                        Gap {
                            old: old_ref,
                            counterpart,
                            kind: GapKind::Missing,
                        },
                    );
                }
                Some((_, version)) if VersionRef::split(version).is_ok_and(|v| v < p.version) => {
                    gaps.insert(
                        key,
                        Gap {
                            old: old_ref,
                            counterpart,
                            kind: GapKind::Older {
                                version: version.clone(),
                            },
                        },
                    );
                }
                Some((id, _)) => to_check.push((key, counterpart, *id)),
            }
        }
        let mut ids: Vec<PkgId> = to_check.iter().map(|(_, _, id)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let reports: HashMap<(String, String, String), ferry_solve::Report> =
            ferry_solve::check(&universe, Some(&ids), true)
                .into_iter()
                .map(|r| {
                    let p = &r.package;
                    (
                        (p.package.clone(), p.version.clone(), p.architecture.clone()),
                        r,
                    )
                })
                .collect();
        for (key, counterpart, id) in to_check {
            let r = universe.package_ref(id);
            let Some(report) = reports.get(&(r.package, r.version, r.architecture)) else {
                continue;
            };
            if report.status.is_broken() {
                gaps.insert(
                    key.clone(),
                    Gap {
                        old: PackageRef {
                            package: key.0,
                            version: key.1,
                            architecture: key.2,
                        },
                        counterpart,
                        kind: GapKind::Uninstallable {
                            version: report.package.version.clone(),
                            reasons: report.reasons.clone(),
                        },
                    },
                );
            }
        }
    }
    Ok(Coverage {
        checked: seen.len(),
        architectures,
        gaps: gaps.into_values().collect(),
    })
}
