//! A universe of binary packages for one native architecture (plus foreign
//! ones), with every dependency atom resolved once to the concrete packages
//! that satisfy it and every conflict made symmetric — the form the solver
//! works on. Not for deciding installability (see `solver`).
//!
//! The resolution is dose-distcheck's translation of Debian packages to
//! CUDF (dose3 `deb/debcudf.ml`), reproduced rule for rule because
//! agreement with dose is the contract, and checked against the real
//! dose-distcheck by the fixtures in `tests/fixtures` and by random
//! archives. Each package offers *features*, looked up by (kind, name,
//! architecture tag):
//! - its own name on its architecture (arch:all counts as native) at its
//!   version, and its bare name (the tag `:any` resolves to) at every
//!   version — so `foo:any (>= 9)` is met by any `foo`, as in dose;
//! - Multi-Arch: foreign adds its name on every other architecture, and
//!   its Provides on every architecture; Multi-Arch: allowed adds its
//!   Provides under the bare name (so a virtual `:any` needs an allowed
//!   provider); other packages provide on their own architecture only;
//! - a Provides is a virtual feature at no version, and with `(= v)` also a
//!   versioned one: an unversioned dependency is met by either, a versioned
//!   one only by the versioned kind.
//!
//! Conflicts and Breaks hit every feature they match on every architecture
//! (never the package itself); a package also conflicts with every other
//! package of its name, except that Multi-Arch: same packages of one
//! version on different architectures are co-installable. dose's special
//! handling of Multi-Arch: same self-conflicts is kept, quirks included
//! (see `same_conflicts`). Essential packages must be installed with every
//! package: one clause per essential name, held by a pseudo-package after
//! the real ones (`essential_root`).

use ferry_deb::relation::{Atom, MultiArch, Relations};
use ferry_deb::{BinaryPackage, VersionRef};
use rayon::prelude::*;
// Keys here are package names and packed integers we make ourselves, not
// input an attacker picks to collide; FxHash is several times faster than
// SipHash on them, and interning is a fifth of the universe's build time.
use rustc_hash::FxHashMap as HashMap;

pub type PkgId = u32;

/// Which relation field of its package a clause comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    PreDepends,
    Depends,
    /// A clause of the essential pseudo-package: one of the packages of an
    /// essential name must be installed.
    Essential,
}

/// Where a clause came from: its field and the index of its group there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClauseOrigin {
    pub field: Field,
    pub group: u32,
}

/// Packages with their dependencies as resolved clauses and their
/// conflicts as symmetric lists, in flat arrays indexed by `PkgId`: a
/// sid-sized universe is half a million clauses, and one allocation per
/// clause would cost more memory than the Packages text.
pub struct Universe<'a> {
    pub records: Vec<&'a BinaryPackage<'a>>,
    pub native: String,
    /// Clauses of package p: `clause_start[p]..clause_start[p + 1]`;
    /// package `records.len()` is the essential pseudo-package.
    pub(crate) clause_start: Vec<u32>,
    pub(crate) origins: Vec<ClauseOrigin>,
    /// Candidates of clause c: `candidate_start[c]..candidate_start[c + 1]`.
    pub(crate) candidate_start: Vec<u32>,
    pub(crate) candidates: Vec<PkgId>,
    /// Each candidate's place in dose's order of its clause (`place`).
    pub(crate) places: Vec<u16>,
    pub(crate) conflict_start: Vec<u32>,
    pub(crate) conflicts: Vec<PkgId>,
}

/// When a conflict found while resolving holds: always, or (dose's
/// Multi-Arch: same quirks, see `same_conflicts`) only if the packages of
/// the universe include some package named `t` (`NamedReal`), some package
/// that provides `t` (`ProviderOf`), or some package named `n` that
/// provides `t` (`NamedProviderOf(n, t)`). Names are `Tables` name ids.
/// A universe decides these over its own packages; a `Pool` keeps them
/// open and decides them per subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Need {
    Always,
    NamedReal(u32),
    ProviderOf(u32),
    NamedProviderOf(u32, u32),
}

/// A conflict pair whose `Need` was left open (`Universe::build` for a
/// pool), with the name ids it depends on.
pub(crate) struct OpenConflict {
    pub(crate) a: PkgId,
    pub(crate) b: PkgId,
    pub(crate) need: Need,
}

/// Which kind of feature: a package's own name, a Provides at no version,
/// or a Provides with `(= version)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Real = 0,
    Virtual = 1,
    Versioned = 2,
}

/// The architecture part of a feature: the bare name, or an architecture.
type Tag = u16;
const BARE: Tag = 0;

/// At which version a feature is offered.
const ANY_VERSION: u32 = u32::MAX;
const OWN_VERSION: u32 = u32::MAX - 1;
/// Its own version, offered on another architecture (Multi-Arch:
/// foreign): dose lists these after the packages of that name proper.
const FOREIGN_VERSION: u32 = u32::MAX - 2;
// Any other value: the index of the Provides atom whose `(= v)` it is.

fn key(kind: Kind, name: u32, tag: Tag) -> u64 {
    (u64::from(name) << 24) | ((kind as u64) << 16) | u64::from(tag)
}

/// Where dose's lookup of one atom puts a package (dose3
/// `CudfAdd.resolve_vpkgs_int`): first the packages of that name proper,
/// then those that offer the name as a feature (Multi-Arch: foreign ones
/// of other architectures; every package, for `:any`), then the virtual
/// ones (Provides), each run newest package first; atoms in their order.
/// Only the order of explanations depends on it (`dose_reasons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Named = 0,
    Feature = 1,
    Virtual = 2,
}

/// A candidate's place in its clause as dose orders it: the index of the
/// first atom it matches, then its `Slot` there.
fn place(atom: usize, slot: Slot) -> u16 {
    // Beyond 16,000 alternatives in one group the order is approximate.
    (atom.min(usize::from(u16::MAX / 4)) as u16) * 4 + slot as u16
}

struct Feature {
    key: u64,
    package: PkgId,
    version: u32,
}

/// Name and architecture tables, and the feature index the resolver reads.
struct Tables<'r, 'a> {
    records: &'r [&'a BinaryPackage<'a>],
    names: HashMap<&'a str, u32>,
    /// Architectures: index + 1 is the tag; 0 (native) first.
    archs: Vec<&'r str>,
    features: Vec<Feature>,
    /// Where each key's run of `features` is: start and length.
    index: HashMap<u64, (u32, u32)>,
    /// Names of real packages.
    real: Vec<bool>,
    /// For a name some package provides: the names of its providers.
    providers: HashMap<u32, Vec<u32>>,
}

impl<'r, 'a> Tables<'r, 'a> {
    fn name(&self, name: &str) -> Option<u32> {
        self.names.get(name).copied()
    }

    fn arch_tag(&self, arch: &str) -> Option<Tag> {
        let arch = if arch == "all" { self.archs[0] } else { arch };
        self.archs
            .iter()
            .position(|a| *a == arch)
            .map(|i| i as Tag + 1)
    }

    /// dose's `add_arch_info`: the tag an atom of a package of `arch`
    /// refers to. `None` for an architecture no package has.
    fn atom_tag(&self, qualifier: Option<&str>, arch: &str) -> Option<Tag> {
        match qualifier {
            Some("any") => Some(BARE),
            Some("native") => Some(1),
            // `foo:all` names no architecture a package is seen as.
            Some("all") => None,
            Some(a) => self.arch_tag(a),
            None => self.arch_tag(arch),
        }
    }

    fn lookup(&self, key: u64) -> &[Feature] {
        match self.index.get(&key) {
            Some(&(start, len)) => &self.features[start as usize..(start + len) as usize],
            None => &[],
        }
    }

    fn offered_version(&self, f: &Feature) -> Option<VersionRef<'a>> {
        let p = self.records[f.package as usize];
        match f.version {
            ANY_VERSION => None,
            OWN_VERSION | FOREIGN_VERSION => Some(p.version),
            i => p
                .provides
                .atoms()
                .nth(i as usize)
                .and_then(|a| a.constraint)
                .map(|c| c.version),
        }
    }

    /// Features `(kind, name, tag)` offered at a version `atom` accepts.
    fn offering(
        &self,
        kind: Kind,
        name: u32,
        tag: Tag,
        atom: &Atom<'_>,
        mut out: impl FnMut(&Feature),
    ) {
        for f in self.lookup(key(kind, name, tag)) {
            let fits = match (&atom.constraint, self.offered_version(f)) {
                (None, _) | (Some(_), None) => true,
                (Some(c), Some(v)) => c.allows(&v),
            };
            if fits {
                out(f);
            }
        }
    }

    /// dose's `loadl` for one atom of a package (or conflict expansion) of
    /// architecture `arch`: the features that match it, each with the
    /// place dose's lookup gives it (see `Slot`).
    fn matching_features(&self, atom: &Atom<'_>, arch: &str, mut out: impl FnMut(&Feature, Slot)) {
        let (Some(name), Some(tag)) = (
            self.name(atom.name),
            self.atom_tag(atom.arch_qualifier, arch),
        ) else {
            return;
        };
        self.offering(Kind::Real, name, tag, atom, |f| {
            let slot = if f.version == OWN_VERSION {
                Slot::Named
            } else {
                Slot::Feature
            };
            out(f, slot)
        });
        let virtual_kind = if atom.constraint.is_some() {
            Kind::Versioned
        } else {
            Kind::Virtual
        };
        self.offering(virtual_kind, name, tag, atom, |f| out(f, Slot::Virtual));
    }

    /// The packages that match `atom` (see `matching_features`).
    fn matching(&self, atom: &Atom<'_>, arch: &str, mut out: impl FnMut(PkgId)) {
        self.matching_features(atom, arch, |f, _| out(f.package));
    }

    fn every(&self, kind: Kind, name: u32, tag: Tag, mut out: impl FnMut(PkgId)) {
        for f in self.lookup(key(kind, name, tag)) {
            out(f.package);
        }
    }

    /// The packages any one of which meets `need`.
    fn makers(&self, need: Need) -> Vec<PkgId> {
        let provides = |id: &PkgId, t: u32| {
            self.records[*id as usize]
                .provides
                .atoms()
                .any(|a| self.name(a.name) == Some(t))
        };
        match need {
            Need::Always => Vec::new(),
            Need::NamedReal(t) => self
                .lookup(key(Kind::Real, t, BARE))
                .iter()
                .map(|f| f.package)
                .collect(),
            Need::ProviderOf(t) => (0..self.records.len() as PkgId)
                .filter(|id| provides(id, t))
                .collect(),
            Need::NamedProviderOf(n, t) => self
                .lookup(key(Kind::Real, n, BARE))
                .iter()
                .map(|f| f.package)
                .filter(|id| provides(id, t))
                .collect(),
        }
    }

    /// Whether the packages the tables were built from meet `need`.
    fn holds(&self, need: Need) -> bool {
        match need {
            Need::Always | Need::NamedProviderOf(..) => true,
            Need::NamedReal(t) => self.real[t as usize],
            Need::ProviderOf(t) => self.providers.contains_key(&t),
        }
    }
}

/// `records` are the packages of the universe; `listed` all packages of
/// the considered architectures, duplicates included: dose builds its
/// tables of real and provided names from those before it drops a
/// duplicate, so a dropped package's Provides still shapes Multi-Arch:
/// same conflicts.
fn build_tables<'r, 'a>(
    records: &'r [&'a BinaryPackage<'a>],
    listed: &[&'a BinaryPackage<'a>],
    native: &'r str,
    foreign: &'r [String],
) -> Tables<'r, 'a> {
    let mut names: HashMap<&'a str, u32> =
        HashMap::with_capacity_and_hasher(records.len() * 2, Default::default());
    let mut intern = |name: &'a str| {
        let next = names.len() as u32;
        *names.entry(name).or_insert(next)
    };
    let mut archs: Vec<&str> = vec![native];
    for f in foreign {
        if !archs.contains(&f.as_str()) {
            archs.push(f);
        }
    }
    for p in listed {
        intern(p.name);
        for atom in p.provides.atoms() {
            intern(atom.name);
        }
    }
    let mut tables = Tables {
        records,
        names,
        archs,
        features: Vec::new(),
        index: HashMap::default(),
        real: Vec::new(),
        providers: HashMap::default(),
    };
    let mut real = vec![false; tables.names.len()];
    let mut features = Vec::with_capacity(records.len() * 4);
    let mut providers: HashMap<u32, Vec<u32>> = HashMap::default();
    for (id, p) in records.iter().enumerate() {
        let id = id as PkgId;
        let Some(name) = tables.name(p.name) else {
            continue;
        };
        let mut emit = |kind: Kind, name: u32, tag: Tag, version: u32| {
            features.push(Feature {
                key: key(kind, name, tag),
                package: id,
                version,
            })
        };
        emit(Kind::Real, name, BARE, ANY_VERSION);
        if let Some(own) = tables.arch_tag(p.architecture) {
            emit(Kind::Real, name, own, OWN_VERSION);
        }
        // dose's `loadlp`: the Provides of a package seen as of `arch`
        // (`qualifier` replacing the atom's own for Multi-Arch: allowed).
        let provides =
            |emit: &mut dyn FnMut(Kind, u32, Tag, u32), arch: &str, any: Option<bool>| {
                for (i, atom) in p.provides.atoms().enumerate() {
                    let Some(provided) = tables.name(atom.name) else {
                        continue;
                    };
                    let qualifier = match any {
                        Some(true) => Some("any"),
                        Some(false) => None,
                        None => atom.arch_qualifier,
                    };
                    let Some(tag) = tables.atom_tag(qualifier, arch) else {
                        continue;
                    };
                    emit(Kind::Virtual, provided, tag, ANY_VERSION);
                    if atom.constraint.is_some() {
                        emit(Kind::Versioned, provided, tag, i as u32);
                    }
                }
            };
        match p.multi_arch {
            MultiArch::No | MultiArch::Same => provides(&mut emit, p.architecture, None),
            MultiArch::Foreign => {
                for arch in &tables.archs {
                    if *arch == p.architecture {
                        provides(&mut emit, arch, None);
                    } else {
                        if let Some(tag) = tables.arch_tag(arch) {
                            emit(Kind::Real, name, tag, FOREIGN_VERSION);
                        }
                        provides(&mut emit, arch, None);
                    }
                }
            }
            MultiArch::Allowed => {
                provides(&mut emit, p.architecture, Some(true));
                provides(&mut emit, p.architecture, Some(false));
            }
        }
    }
    for p in listed {
        let Some(name) = tables.name(p.name) else {
            continue;
        };
        real[name as usize] = true;
        for atom in p.provides.atoms() {
            if let Some(provided) = tables.name(atom.name) {
                providers.entry(provided).or_default().push(name);
            }
        }
    }
    for list in providers.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    features.par_sort_unstable_by_key(|f| (f.key, f.package));
    let mut index = HashMap::with_capacity_and_hasher(features.len() / 2, Default::default());
    let mut start = 0u32;
    for run in features.chunk_by(|a, b| a.key == b.key) {
        index.insert(run[0].key, (start, run.len() as u32));
        start += run.len() as u32;
    }
    tables.features = features;
    tables.index = index;
    tables.real = real;
    tables.providers = providers;
    tables
}

/// What one package contributes: resolved clauses and conflict pairs.
#[derive(Default)]
struct Part {
    clause_counts: Vec<u32>,
    origins: Vec<ClauseOrigin>,
    candidate_counts: Vec<u32>,
    candidates: Vec<PkgId>,
    places: Vec<u16>,
    conflicts: Vec<(PkgId, PkgId)>,
    /// Conflicts whose need was left open (only when asked to).
    open: Vec<OpenConflict>,
    /// Scratch space for one clause's candidates and their places.
    matched: Vec<(PkgId, u16)>,
    /// Scratch space for one package's conflicts.
    hits: Vec<(PkgId, Need)>,
}

impl Part {
    /// Resolves package `id`; with `keep_open`, conflicts that hold only
    /// for some sets of packages go to `open` instead of being decided.
    fn resolve(&mut self, tables: &Tables<'_, '_>, id: PkgId, keep_open: bool) {
        let p = tables.records[id as usize];
        let mut count = 0;
        for (field, relations) in [
            (Field::PreDepends, &p.pre_depends),
            (Field::Depends, &p.depends),
        ] {
            for (group, alternatives) in relations.groups.iter().enumerate() {
                let matched = &mut self.matched;
                matched.clear();
                for (i, atom) in alternatives.iter().enumerate() {
                    tables.matching_features(atom, p.architecture, |f, slot| {
                        matched.push((f.package, place(i, slot)))
                    });
                }
                // By package, each at the first place dose finds it.
                matched.sort_unstable();
                matched.dedup_by_key(|m| m.0);
                self.candidates.extend(matched.iter().map(|m| m.0));
                self.places.extend(matched.iter().map(|m| m.1));
                self.candidate_counts.push(matched.len() as u32);
                self.origins.push(ClauseOrigin {
                    field,
                    group: group as u32,
                });
                count += 1;
            }
        }
        self.clause_counts.push(count);

        let start = self.conflicts.len();
        let mut hits = std::mem::take(&mut self.hits);
        hits.clear();
        conflicting(tables, id, &mut hits);
        for &(q, need) in hits.iter().filter(|h| h.0 != id) {
            if need == Need::Always || (!keep_open && tables.holds(need)) {
                self.conflicts.push((id, q));
            } else if keep_open {
                self.open.push(OpenConflict { a: id, b: q, need });
            }
        }
        self.hits = hits;
        // Most conflicts are found several times (per architecture, by
        // name and by Provides); keep each pair once.
        self.conflicts[start..].sort_unstable();
        let mut write = start;
        for read in start..self.conflicts.len() {
            if write == start || self.conflicts[read] != self.conflicts[write - 1] {
                self.conflicts[write] = self.conflicts[read];
                write += 1;
            }
        }
        self.conflicts.truncate(write);
    }
}

/// dose's conflicts of package `id`, its own name's included; may list
/// `id` itself, which never counts.
fn conflicting(tables: &Tables<'_, '_>, id: PkgId, out: &mut Vec<(PkgId, Need)>) {
    let p = tables.records[id as usize];
    let Some(name) = tables.name(p.name) else {
        return;
    };
    let relations: [&Relations; 2] = [&p.breaks, &p.conflicts];
    let always = |q| (q, Need::Always);
    if let Some(own) = tables.arch_tag(p.architecture) {
        tables.every(Kind::Real, name, own, |q| out.push(always(q)));
    }
    if p.multi_arch == MultiArch::Same {
        same_conflicts(tables, p, name, &relations, out);
        return;
    }
    tables.every(Kind::Real, name, BARE, |q| out.push(always(q)));
    for arch in &tables.archs {
        for atom in relations.iter().flat_map(|r| r.atoms()) {
            tables.matching(atom, arch, |q| out.push(always(q)));
        }
    }
}

/// Multi-Arch: same, as dose has it: other versions of the name on other
/// architectures; a conflict that matches the package itself (its name,
/// or unversioned a name it provides) is expanded to every *other*
/// package named like a provider, at any version; a versioned conflict
/// on a purely virtual name is dropped (dose: "does not correctly handle
/// versioned provides").
///
/// Which names are real and who provides what depend on the whole set of
/// packages, so each conflict comes with the `Need` that decides it: a
/// versioned conflict holds if its name is real (`NamedReal`); an
/// expansion of a conflict on the package itself holds if something
/// provides the name at all (`ProviderOf`) and, for the packages named
/// like a provider, if a package of that name provides it
/// (`NamedProviderOf`). Packages named like the target itself need no
/// more: being there makes the name real.
fn same_conflicts(
    tables: &Tables<'_, '_>,
    p: &BinaryPackage<'_>,
    name: u32,
    relations: &[&Relations; 2],
    out: &mut Vec<(PkgId, Need)>,
) {
    for arch in &tables.archs {
        if *arch == p.architecture {
            continue;
        }
        if let Some(tag) = tables.arch_tag(arch) {
            for f in tables.lookup(key(Kind::Real, name, tag)) {
                if tables.offered_version(f).is_none_or(|v| v != p.version) {
                    out.push((f.package, Need::Always));
                }
            }
        }
    }
    for arch in &tables.archs {
        for atom in relations.iter().flat_map(|r| r.atoms()) {
            let target = tables.name(atom.name);
            let is_self = atom.name == p.name
                || (atom.constraint.is_none() && p.provides.atoms().any(|a| a.name == atom.name));
            if !is_self {
                let need = match (atom.constraint.is_some(), target) {
                    (false, _) => Need::Always,
                    (true, Some(t)) => Need::NamedReal(t),
                    // A name no package has or provides matches nothing.
                    (true, None) => continue,
                };
                tables.matching(atom, arch, |q| out.push((q, need)));
                continue;
            }
            let Some(t) = target else {
                continue;
            };
            let Some(tag) = tables.atom_tag(atom.arch_qualifier, arch) else {
                continue;
            };
            if t != name {
                tables.every(Kind::Real, t, tag, |q| out.push((q, Need::ProviderOf(t))));
            }
            let providers = tables.providers.get(&t).into_iter().flatten();
            for &other in providers.filter(|&&n| n != name) {
                let need = Need::NamedProviderOf(other, t);
                tables.every(Kind::Real, other, tag, |q| out.push((q, need)));
            }
        }
    }
}

impl<'a> Universe<'a> {
    /// Builds the universe of `packages` for `native` (and `foreign`)
    /// architectures; packages of other architectures are left out, as
    /// dose leaves them out, and of two packages with one name, version
    /// and architecture (arch:all counting as native) the first counts.
    pub fn new(
        packages: &'a [BinaryPackage<'a>],
        native: &str,
        foreign: &[String],
    ) -> Universe<'a> {
        Universe::from_refs(packages.iter(), native, foreign)
    }

    /// `new` over packages held elsewhere: a caller that checks many small
    /// subsets of one large set (an archive migration's trials) builds each
    /// universe without copying records.
    pub fn from_refs(
        packages: impl IntoIterator<Item = &'a BinaryPackage<'a>>,
        native: &str,
        foreign: &[String],
    ) -> Universe<'a> {
        Universe::build(packages, native, foreign, false).0
    }

    /// `from_refs`; with `keep_open`, the conflicts that hold only for
    /// some sets of packages (see `Need`) are left out of the universe and
    /// returned, each with the packages any one of which makes it hold.
    pub(crate) fn build(
        packages: impl IntoIterator<Item = &'a BinaryPackage<'a>>,
        native: &str,
        foreign: &[String],
        keep_open: bool,
    ) -> (Universe<'a>, Vec<(OpenConflict, Vec<PkgId>)>) {
        let considered =
            |arch: &str| arch == "all" || arch == native || foreign.iter().any(|f| f == arch);
        let listed: Vec<&BinaryPackage> = packages
            .into_iter()
            .filter(|p| considered(p.architecture))
            .collect();
        // dose names a package `name:arch` (arch:all as native) at a
        // version, and keeps the first of two that share that name.
        let identity = |p: &BinaryPackage<'a>| {
            let arch = if p.architecture == "all" {
                native
            } else {
                p.architecture
            };
            (p.name, p.version.text, arch)
        };
        let mut first: HashMap<(&str, &str, &str), PkgId> =
            HashMap::with_capacity_and_hasher(listed.len(), Default::default());
        let mut records: Vec<&BinaryPackage> = Vec::with_capacity(listed.len());
        for p in &listed {
            let next = records.len() as PkgId;
            if *first.entry(identity(p)).or_insert(next) == next {
                records.push(p);
            }
        }
        // An essential duplicate makes its kept twin essential.
        let mut essential: Vec<(&str, PkgId)> = listed
            .iter()
            .filter(|p| p.essential)
            .filter_map(|p| first.get(&identity(p)).map(|&id| (p.name, id)))
            .collect();
        drop(first);
        let tables = build_tables(&records, &listed, native, foreign);

        // Resolve in chunks on all cores, then lay the chunks end to end.
        const CHUNK: usize = 4096;
        let parts: Vec<Part> = (0..records.len().div_ceil(CHUNK))
            .into_par_iter()
            .map(|chunk| {
                let mut part = Part::default();
                let end = ((chunk + 1) * CHUNK).min(records.len());
                for id in chunk * CHUNK..end {
                    part.resolve(&tables, id as PkgId, keep_open);
                }
                part
            })
            .collect();

        let n = records.len();
        let mut clause_start = Vec::with_capacity(n + 2);
        let mut origins = Vec::new();
        let mut candidate_start = vec![0u32];
        let mut candidates = Vec::new();
        let mut places = Vec::new();
        let mut pairs = Vec::new();
        let mut open = Vec::new();
        clause_start.push(0u32);
        for part in parts {
            open.extend(part.open);
            let mut clauses = *clause_start.last().unwrap_or(&0);
            for count in part.clause_counts {
                clauses += count;
                clause_start.push(clauses);
            }
            origins.extend(part.origins);
            let mut offset = candidates.len() as u32;
            for count in part.candidate_counts {
                offset += count;
                candidate_start.push(offset);
            }
            candidates.extend(part.candidates);
            places.extend(part.places);
            pairs.extend(part.conflicts);
        }

        // The essential pseudo-package: a clause per essential name.
        essential.sort_unstable();
        essential.dedup();
        for (i, group) in essential.chunk_by(|a, b| a.0 == b.0).enumerate() {
            candidates.extend(group.iter().map(|(_, id)| *id));
            places.resize(candidates.len(), 0);
            candidate_start.push(candidates.len() as u32);
            origins.push(ClauseOrigin {
                field: Field::Essential,
                group: i as u32,
            });
        }
        clause_start.push(origins.len() as u32);

        // Conflicts hold both ways.
        let reversed: Vec<(PkgId, PkgId)> = pairs.iter().map(|&(a, b)| (b, a)).collect();
        pairs.extend(reversed);
        pairs.par_sort_unstable();
        pairs.dedup();
        let mut conflict_start = Vec::with_capacity(n + 2);
        let mut next = 0;
        for p in 0..=n as PkgId {
            conflict_start.push(next as u32);
            while next < pairs.len() && pairs[next].0 == p {
                next += 1;
            }
        }
        conflict_start.push(pairs.len() as u32);
        let conflicts = pairs.into_iter().map(|(_, b)| b).collect();
        // A few hundred open conflicts share a few dozen needs.
        let mut makers: HashMap<Need, Vec<PkgId>> = HashMap::default();
        let open = open
            .into_iter()
            .map(|c: OpenConflict| {
                let who = makers
                    .entry(c.need)
                    .or_insert_with(|| tables.makers(c.need))
                    .clone();
                (c, who)
            })
            .collect();

        let universe = Universe {
            records,
            native: native.to_string(),
            clause_start,
            origins,
            candidate_start,
            candidates,
            places,
            conflict_start,
            conflicts,
        };
        (universe, open)
    }

    /// Number of packages (the essential pseudo-package not counted).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The pseudo-package whose clauses require one package of each
    /// essential name; every installation holds it.
    pub fn essential_root(&self) -> PkgId {
        self.records.len() as PkgId
    }

    /// Number of clauses of package `p` (of the essential root too).
    pub fn clause_count(&self, p: PkgId) -> u32 {
        self.clause_start[p as usize + 1] - self.clause_start[p as usize]
    }

    /// Packages that satisfy clause `ci` of package `p`.
    pub fn candidates(&self, p: PkgId, ci: u32) -> &[PkgId] {
        let c = (self.clause_start[p as usize] + ci) as usize;
        &self.candidates[self.candidate_start[c] as usize..self.candidate_start[c + 1] as usize]
    }

    /// Where dose's lookup puts each of `candidates(p, ci)`: sorting by
    /// this, then newest package first (`dose_before`), gives dose's
    /// order of the clause.
    pub(crate) fn places(&self, p: PkgId, ci: u32) -> &[u16] {
        let c = (self.clause_start[p as usize] + ci) as usize;
        &self.places[self.candidate_start[c] as usize..self.candidate_start[c + 1] as usize]
    }

    /// dose's order of packages (its CUDF uids) sorts by this key: the
    /// CUDF name, `name:arch` escaped as dose3's `CudfAdd.encode` does
    /// (`:` is `%3a`; arch:all as native), then the version. `None` for
    /// the essential pseudo-package, which dose too puts last.
    pub(crate) fn dose_key(&self, id: PkgId) -> Option<(String, VersionRef<'a>)> {
        let p = self.records.get(id as usize)?;
        let arch = if p.architecture == "all" {
            self.native.as_str()
        } else {
            p.architecture
        };
        let mut name = String::with_capacity(p.name.len() + arch.len() + 3);
        for c in p.name.chars().chain([':']).chain(arch.chars()) {
            if c.is_ascii_alphanumeric() || "@/+().-".contains(c) {
                name.push(c);
            } else {
                let mut utf8 = [0; 4];
                for b in c.encode_utf8(&mut utf8).bytes() {
                    name.push_str(&format!("%{b:02x}"));
                }
            }
        }
        Some((name, p.version))
    }

    pub fn origin(&self, p: PkgId, ci: u32) -> ClauseOrigin {
        self.origins[(self.clause_start[p as usize] + ci) as usize]
    }

    /// Packages that cannot be installed together with `p`.
    pub fn conflicts(&self, p: PkgId) -> &[PkgId] {
        &self.conflicts
            [self.conflict_start[p as usize] as usize..self.conflict_start[p as usize + 1] as usize]
    }

    /// The relation group clause `ci` of `p` came from, as written; for
    /// the essential root, the essential name.
    pub fn clause_text(&self, p: PkgId, ci: u32) -> String {
        let origin = self.origin(p, ci);
        let relations: &Relations = match (origin.field, self.records.get(p as usize)) {
            (Field::PreDepends, Some(r)) => &r.pre_depends,
            (Field::Depends, Some(r)) => &r.depends,
            (Field::Essential, _) | (_, None) => {
                return self
                    .candidates(p, ci)
                    .first()
                    .map(|&q| self.records[q as usize].name.to_string())
                    .unwrap_or_default();
            }
        };
        relations
            .groups
            .get(origin.group as usize)
            .map(|g| {
                g.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_deb::package::parse_binary_packages;

    fn id(u: &Universe<'_>, name: &str, arch: &str) -> PkgId {
        (0..u.len() as PkgId)
            .find(|&i| {
                u.records[i as usize].name == name && u.records[i as usize].architecture == arch
            })
            .unwrap()
    }

    #[test]
    fn dependencies_resolve_to_the_packages_dose_would_take() {
        let text = "\
Package: app\nVersion: 1\nArchitecture: i386\nDepends: indep, tool, lib:any (>= 9)\n\n\
Package: indep\nVersion: 1\nArchitecture: all\n\n\
Package: tool\nVersion: 1\nArchitecture: all\nMulti-Arch: foreign\n\n\
Package: lib\nVersion: 1\nArchitecture: amd64\n\n\
Package: other\nVersion: 1\nArchitecture: armhf\n";
        let packages = parse_binary_packages(text).unwrap();
        let u = Universe::new(&packages, "amd64", &["i386".to_string()]);
        assert_eq!(u.len(), 4, "armhf is neither native nor foreign");
        let app = id(&u, "app", "i386");
        // arch:all is native: an i386 package cannot use it unless it is
        // Multi-Arch: foreign; `:any` ignores the version, as dose does.
        assert!(u.candidates(app, 0).is_empty());
        assert_eq!(u.candidates(app, 1), [id(&u, "tool", "all")]);
        assert_eq!(u.candidates(app, 2), [id(&u, "lib", "amd64")]);
    }

    #[test]
    fn conflicts_are_symmetric_and_never_with_oneself() {
        let text = "\
Package: mta\nVersion: 1\nArchitecture: amd64\nProvides: mail-transport-agent\nConflicts: mail-transport-agent\n\n\
Package: other-mta\nVersion: 1\nArchitecture: amd64\nProvides: mail-transport-agent\n\n\
Package: lib\nVersion: 1\nArchitecture: amd64\n\n\
Package: lib\nVersion: 2\nArchitecture: amd64\n";
        let packages = parse_binary_packages(text).unwrap();
        let u = Universe::new(&packages, "amd64", &[]);
        let (mta, other) = (id(&u, "mta", "amd64"), id(&u, "other-mta", "amd64"));
        assert_eq!(u.conflicts(mta), [other]);
        assert_eq!(u.conflicts(other), [mta]);
        let libs: Vec<PkgId> = (0..u.len() as PkgId)
            .filter(|&i| u.records[i as usize].name == "lib")
            .collect();
        assert_eq!(u.conflicts(libs[0]), [libs[1]], "one version of a name");
    }

    #[test]
    fn essential_packages_are_one_clause_per_name() {
        let text = "\
Package: base\nVersion: 1\nArchitecture: amd64\nEssential: yes\n\n\
Package: base\nVersion: 2\nArchitecture: amd64\nEssential: yes\n\n\
Package: sh\nVersion: 1\nArchitecture: amd64\nEssential: yes\n";
        let packages = parse_binary_packages(text).unwrap();
        let u = Universe::new(&packages, "amd64", &[]);
        let root = u.essential_root();
        assert_eq!(u.clause_count(root), 2);
        assert_eq!(u.candidates(root, 0).len(), 2);
        assert_eq!(u.clause_text(root, 1), "sh");
    }
}
