//! Binaries Not Built from Source: a binary the suite still lists whose
//! source (at the version the suite has) no longer names it in `Binary`.
//! Such a binary can only be removed once nothing needs it: the packages
//! that become uninstallable without it are its reverse dependencies, and
//! their sources need a no-change rebuild (against the new library) first.
//!
//! "Needs" is decided by the solver, not by a name match: a dependency
//! with another alternative still satisfied does not hold the binary.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ferry_deb::package::SourcePackage;
use ferry_deb::{BinaryPackage, VersionRef};
use ferry_solve::{PackageRef, PkgId, Universe};
use serde::Serialize;

use crate::suite::{key, key_of, Key};
use crate::{ArchiveError, Suite};

/// One binary not built from source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nbs {
    #[serde(flatten)]
    pub binary: PackageRef,
    pub source: String,
    /// The source's version in the suite; `None` when the suite has no
    /// such source at all.
    pub source_version: Option<String>,
    /// Packages that cannot be installed without it (any architecture).
    pub needed_by: Vec<PackageRef>,
    /// Sources whose binaries need it: each needs a no-change rebuild.
    pub rebuild: Vec<String>,
}

/// Each source's newest version and the binaries it builds there.
fn newest_sources<'a>(
    sources: &'a [SourcePackage<'a>],
) -> HashMap<&'a str, (VersionRef<'a>, HashSet<&'a str>)> {
    let mut newest: HashMap<&str, (VersionRef, HashSet<&str>)> = HashMap::new();
    for s in sources {
        let newer = newest.get(s.name).is_none_or(|(v, _)| s.version > *v);
        if newer {
            newest.insert(s.name, (s.version, s.binaries.iter().copied().collect()));
        }
    }
    newest
}

/// The binaries of `suite` not built from source, with what needs each.
/// A suite without Sources indices has no answer: every binary would look
/// orphaned, so nothing is reported.
pub fn not_built_from_source(suite: &Suite) -> Result<Vec<Nbs>, ArchiveError> {
    if !suite.has_sources() {
        return Ok(Vec::new());
    }
    let sources = suite.sources()?;
    let newest = newest_sources(&sources);
    let mut found: BTreeMap<Key, Nbs> = BTreeMap::new();
    let mut needers: BTreeMap<Key, BTreeSet<Key>> = BTreeMap::new();
    let mut source_of: HashMap<Key, String> = HashMap::new();
    let architectures: Vec<String> = suite.architectures().map(str::to_string).collect();
    for arch in &architectures {
        let records = suite.binaries(arch)?;
        let orphaned: HashSet<Key> = records
            .iter()
            .filter(|p| {
                newest
                    .get(p.source)
                    .is_none_or(|(_, builds)| !builds.contains(p.name))
            })
            .map(key)
            .collect();
        for p in records.iter().filter(|p| orphaned.contains(&key(p))) {
            found.entry(key(p)).or_insert_with(|| Nbs {
                binary: PackageRef {
                    package: p.name.to_string(),
                    version: p.version.to_string(),
                    architecture: p.architecture.to_string(),
                },
                source: p.source.to_string(),
                source_version: newest.get(p.source).map(|(v, _)| v.to_string()),
                needed_by: Vec::new(),
                rebuild: Vec::new(),
            });
        }
        if orphaned.is_empty() {
            continue;
        }
        for p in &records {
            source_of.insert(key(p), p.source.to_string());
        }
        for (needer, needed) in needers_without(&records, arch, &orphaned) {
            needers.entry(needed).or_default().insert(needer);
        }
    }
    for (binary, by) in needers {
        if let Some(nbs) = found.get_mut(&binary) {
            nbs.needed_by = by
                .iter()
                .map(|(package, version, architecture)| PackageRef {
                    package: package.clone(),
                    version: version.clone(),
                    architecture: architecture.clone(),
                })
                .collect();
            // The source that built the NBS binary no longer builds it:
            // rebuilding it cannot help (its own old binaries needing the
            // NBS one go away with it); the other needers' sources can.
            let rebuild: BTreeSet<String> = by
                .iter()
                .filter_map(|k| source_of.get(k).cloned())
                .filter(|source| *source != nbs.source)
                .collect();
            nbs.rebuild = rebuild.into_iter().collect();
        }
    }
    Ok(found.into_values().collect())
}

/// (needer, needed) pairs: packages installable with the `removed`
/// binaries that are not without them, each with the removed binaries
/// its dependencies name.
fn needers_without(
    records: &[BinaryPackage<'_>],
    arch: &str,
    removed: &HashSet<Key>,
) -> Vec<(Key, Key)> {
    let universe = Universe::new(records, arch, &[]);
    let ids = |u: &Universe<'_>| -> HashMap<Key, PkgId> {
        (0..u.len() as PkgId)
            .map(|id| (key_of(&u.package_ref(id)), id))
            .collect()
    };
    let before_ids = ids(&universe);
    let removed_ids: HashSet<PkgId> = removed
        .iter()
        .filter_map(|k| before_ids.get(k).copied())
        .collect();
    // Who names a removed binary among the candidates of a dependency.
    let mut names: HashMap<PkgId, Vec<PkgId>> = HashMap::new();
    for p in 0..universe.len() as PkgId {
        if removed_ids.contains(&p) {
            continue;
        }
        for ci in 0..universe.clause_count(p) {
            for &q in universe.candidates(p, ci) {
                if removed_ids.contains(&q) {
                    let list = names.entry(p).or_default();
                    if !list.contains(&q) {
                        list.push(q);
                    }
                }
            }
        }
    }
    if names.is_empty() {
        return Vec::new();
    }
    let targets: Vec<PkgId> = names.keys().copied().collect();
    let installable_before: HashSet<Key> = ferry_solve::check(&universe, Some(&targets), false)
        .into_iter()
        .filter(|r| r.status == ferry_solve::Status::Ok)
        .map(|r| key_of(&r.package))
        .collect();
    let kept: Vec<BinaryPackage<'_>> = records
        .iter()
        .filter(|p| !removed.contains(&key(p)))
        .cloned()
        .collect();
    let after = Universe::new(&kept, arch, &[]);
    let after_ids = ids(&after);
    let after_targets: Vec<PkgId> = installable_before
        .iter()
        .filter_map(|k| after_ids.get(k).copied())
        .collect();
    let broken_after: HashSet<Key> = ferry_solve::check(&after, Some(&after_targets), false)
        .into_iter()
        .filter(|r| r.status.is_broken())
        .map(|r| key_of(&r.package))
        .collect();
    let mut pairs = Vec::new();
    for (p, needed) in names {
        let needer = key_of(&universe.package_ref(p));
        if broken_after.contains(&needer) {
            for q in needed {
                pairs.push((needer.clone(), key_of(&universe.package_ref(q))));
            }
        }
    }
    pairs
}
