//! A universe of binary packages for one native architecture (plus foreign
//! ones), with every dependency atom resolved once to the concrete packages
//! that satisfy it and every conflict made symmetric — the form the solver
//! works on. Not for deciding installability (see `solver`).
//!
//! The resolution rules are dose-distcheck's, learned by running it on
//! small fixtures (tests/fixtures, checked against dose when present):
//! arch:all packages count as native; an unqualified dependency is met by a
//! package of the depender's architecture, arch:all, or Multi-Arch: foreign;
//! `name:any` is met by a real package of that name of any architecture,
//! never by a Provides, and its version constraint is ignored (dependency
//! and conflict alike: dose treats `name:any` as a name provided without a
//! version); a versioned dependency or conflict is met only by a versioned
//! Provides; Conflicts and Breaks never hit the package itself; two packages
//! of one name conflict unless both are Multi-Arch: same at one version.

use std::collections::HashMap;

use ferry_deb::relation::{Atom, MultiArch, Relations};
use ferry_deb::{BinaryPackage, VersionRef};

pub type PkgId = u32;

/// Which relation field of its package a clause comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    PreDepends,
    Depends,
}

/// One OR-group of a package's dependencies, resolved.
#[derive(Debug, Clone)]
pub struct Clause {
    pub candidates: Vec<PkgId>,
    pub field: Field,
    /// Index of the group in its field.
    pub group: u32,
}

pub struct Universe<'a> {
    pub records: Vec<&'a BinaryPackage<'a>>,
    pub native: String,
    pub clauses: Vec<Vec<Clause>>,
    pub conflicts: Vec<Vec<PkgId>>,
}

fn effective_arch<'b>(arch: &'b str, native: &'b str) -> &'b str {
    if arch == "all" {
        native
    } else {
        arch
    }
}

impl<'a> Universe<'a> {
    /// Builds the universe of `packages` for `native` (and `foreign`)
    /// architectures; packages of other architectures are left out, as
    /// dose leaves them out.
    pub fn new(
        packages: &'a [BinaryPackage<'a>],
        native: &str,
        foreign: &[String],
    ) -> Universe<'a> {
        let considered =
            |arch: &str| arch == "all" || arch == native || foreign.iter().any(|f| f == arch);
        let records: Vec<&BinaryPackage> = packages
            .iter()
            .filter(|p| considered(p.architecture))
            .collect();

        let mut real: HashMap<&str, Vec<PkgId>> = HashMap::with_capacity(records.len());
        let mut provided: HashMap<&str, Vec<(PkgId, Option<VersionRef<'a>>)>> = HashMap::new();
        for (id, p) in records.iter().enumerate() {
            real.entry(p.name).or_default().push(id as PkgId);
            for atom in p.provides.atoms() {
                let version = atom.constraint.map(|c| c.version);
                provided
                    .entry(atom.name)
                    .or_default()
                    .push((id as PkgId, version));
            }
        }
        let resolver = Resolver {
            records: &records,
            real: &real,
            provided: &provided,
            native,
        };

        let clauses: Vec<Vec<Clause>> = records
            .iter()
            .enumerate()
            .map(|(id, p)| {
                let mut out = Vec::new();
                for (field, relations) in [
                    (Field::PreDepends, &p.pre_depends),
                    (Field::Depends, &p.depends),
                ] {
                    for (group, alternatives) in relations.groups.iter().enumerate() {
                        let mut candidates: Vec<PkgId> = alternatives
                            .iter()
                            .flat_map(|atom| resolver.satisfiers(id as PkgId, atom))
                            .collect();
                        candidates.sort_unstable();
                        candidates.dedup();
                        out.push(Clause {
                            candidates,
                            field,
                            group: group as u32,
                        });
                    }
                }
                out
            })
            .collect();

        let mut conflicts: Vec<Vec<PkgId>> = vec![Vec::new(); records.len()];
        for (id, p) in records.iter().enumerate() {
            let id = id as PkgId;
            for relations in [&p.conflicts, &p.breaks] {
                for atom in relations.atoms() {
                    for other in resolver.conflicting(id, atom) {
                        conflicts[id as usize].push(other);
                        conflicts[other as usize].push(id);
                    }
                }
            }
        }
        // One package of a name per architecture, and one architecture of a
        // name unless Multi-Arch: same at the same version.
        for ids in real.values() {
            for (i, &a) in ids.iter().enumerate() {
                for &b in &ids[i + 1..] {
                    let (pa, pb) = (records[a as usize], records[b as usize]);
                    let coinstallable = pa.multi_arch == MultiArch::Same
                        && pb.multi_arch == MultiArch::Same
                        && effective_arch(pa.architecture, native)
                            != effective_arch(pb.architecture, native)
                        && pa.version == pb.version;
                    if !coinstallable {
                        conflicts[a as usize].push(b);
                        conflicts[b as usize].push(a);
                    }
                }
            }
        }
        for list in &mut conflicts {
            list.sort_unstable();
            list.dedup();
        }
        Universe {
            records,
            native: native.to_string(),
            clauses,
            conflicts,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The relation group a clause came from, as written.
    pub fn clause_text(&self, id: PkgId, clause: &Clause) -> String {
        let p = self.records[id as usize];
        let relations: &Relations = match clause.field {
            Field::PreDepends => &p.pre_depends,
            Field::Depends => &p.depends,
        };
        relations
            .groups
            .get(clause.group as usize)
            .map(|g| {
                g.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .unwrap_or_default()
    }
}

struct Resolver<'r, 'a> {
    records: &'r [&'a BinaryPackage<'a>],
    real: &'r HashMap<&'a str, Vec<PkgId>>,
    provided: &'r HashMap<&'a str, Vec<(PkgId, Option<VersionRef<'a>>)>>,
    native: &'r str,
}

impl Resolver<'_, '_> {
    fn record(&self, id: PkgId) -> &BinaryPackage<'_> {
        self.records[id as usize]
    }

    /// Whether package `q` may satisfy an unqualified dependency of `p`.
    fn arch_fits(&self, p: PkgId, q: PkgId) -> bool {
        let (p, q) = (self.record(p), self.record(q));
        q.architecture == "all"
            || effective_arch(q.architecture, self.native)
                == effective_arch(p.architecture, self.native)
            || q.multi_arch == MultiArch::Foreign
    }

    fn satisfiers(&self, from: PkgId, atom: &Atom<'_>) -> Vec<PkgId> {
        // As in conflicts, dose ignores the version of a `name:any` atom.
        let any = atom.arch_qualifier == Some("any");
        let version_ok = |v: &VersionRef<'_>| any || atom.constraint.is_none_or(|c| c.allows(v));
        let mut out = Vec::new();
        if let Some(ids) = self.real.get(atom.name) {
            for &q in ids {
                let record = self.record(q);
                let arch_ok = match atom.arch_qualifier {
                    None => self.arch_fits(from, q),
                    Some("any") => true,
                    Some("native") => {
                        effective_arch(record.architecture, self.native) == self.native
                    }
                    Some(arch) => effective_arch(record.architecture, self.native) == arch,
                };
                if arch_ok && version_ok(&record.version) {
                    out.push(q);
                }
            }
        }
        if atom.arch_qualifier.is_none() {
            if let Some(providers) = self.provided.get(atom.name) {
                for (q, version) in providers {
                    let fits = match (&atom.constraint, version) {
                        (None, _) => true,
                        (Some(c), Some(v)) => c.allows(v),
                        (Some(_), None) => false,
                    };
                    if fits && self.arch_fits(from, *q) {
                        out.push(*q);
                    }
                }
            }
        }
        out
    }

    /// Whether a Conflicts/Breaks atom's architecture qualifier covers `q`:
    /// `foo:i386` hits only the i386 package, an unqualified one any arch.
    fn arch_qualified(&self, atom: &Atom<'_>, q: PkgId) -> bool {
        let arch = effective_arch(self.record(q).architecture, self.native);
        match atom.arch_qualifier {
            None | Some("any") => true,
            Some("native") => arch == self.native,
            Some(wanted) => arch == wanted,
        }
    }

    fn conflicting(&self, from: PkgId, atom: &Atom<'_>) -> Vec<PkgId> {
        // dose reads `name:any` as a name every package called `name`
        // provides without a version: its version constraint never narrows.
        let any = atom.arch_qualifier == Some("any");
        let mut out = Vec::new();
        if let Some(ids) = self.real.get(atom.name) {
            for &q in ids {
                if q != from
                    && self.arch_qualified(atom, q)
                    && (any
                        || atom
                            .constraint
                            .is_none_or(|c| c.allows(&self.record(q).version)))
                {
                    out.push(q);
                }
            }
        }
        if let Some(providers) = self.provided.get(atom.name) {
            for (q, version) in providers {
                let hit = any
                    || match (&atom.constraint, version) {
                        (None, _) => true,
                        (Some(c), Some(v)) => c.allows(v),
                        (Some(_), None) => false,
                    };
                if *q != from && hit && self.arch_qualified(atom, *q) {
                    out.push(*q);
                }
            }
        }
        out
    }
}
