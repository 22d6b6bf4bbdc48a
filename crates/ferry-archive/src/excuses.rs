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
//!   on an architecture, no binary of the new version at all. Binaries
//!   uninstallable in the source suite are no reason by themselves (as for
//!   britney): only making the target worse is; a rejected candidate's
//!   excuse names them too.
//!
//! A trial does not re-check the whole target. Only packages that can
//! reach a changed binary through dependencies can change installability
//! (an installation holds nothing outside its dependency closure and the
//! Essential set), so each trial checks those, in a universe built from
//! their dependency closure. The count per architecture is kept exact as
//! migrations are accepted. This is what makes a whole archive (sid →
//! forky) take seconds per thousand candidates instead of hours.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ferry_deb::{BinaryPackage, VersionRef};
use ferry_solve::{PkgId, Pool, Report, Universe};
use serde::Serialize;

use crate::hints::{Hint, HintItem, Hints};
use crate::policies::Policies;
use crate::suite::{key, key_of, Key};
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
    /// Its own binaries cannot be installed in the source suite. Said
    /// beside a rejection, never a reason by itself.
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
    /// Younger than its urgency asks (britney's age policy).
    TooYoung {
        age_days: u32,
        required_days: u32,
        urgency: String,
    },
    /// It would bring RC bugs into the target (britney's rc-bugs policy).
    NewRcBugs { bugs: Vec<String> },
    /// No binary built from this version on any architecture checked:
    /// it waits for its builds (britney's `no-binaries`).
    NoBinaries,
    /// A `force` hint overrode its policy reasons (it still had to break
    /// nothing).
    Forced,
    /// A `force-hint` hint let it in whatever it breaks.
    ForcedWhateverItBreaks,
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
    /// The target after every accepted migration: per architecture, the
    /// binaries (name, version, architecture) it holds; and the sources
    /// (name, version).
    #[serde(skip)]
    pub result_binaries: BTreeMap<String, Vec<Key>>,
    #[serde(skip)]
    pub result_sources: Vec<(String, String)>,
}

/// A broken package named without the solver's explanation.
fn unexplained(p: &BinaryPackage<'_>) -> Report {
    Report {
        package: ferry_solve::PackageRef {
            package: p.name.to_string(),
            version: p.version.to_string(),
            architecture: p.architecture.to_string(),
        },
        status: ferry_solve::Status::Broken,
        reasons: Vec::new(),
    }
}

/// The version of the source a binary was built from.
fn built_from<'a>(p: &BinaryPackage<'a>) -> VersionRef<'a> {
    p.source_version.unwrap_or(p.version)
}

struct Candidate {
    source: String,
    old_version: Option<String>,
    new_version: String,
}

/// One architecture of the target as it evolves, over a pool holding the
/// target's binaries and the candidates': which are present now, the
/// dependency edges between them (by name, over-approximated: versions and
/// alternatives are the solver's business), and which are broken.
struct Arch<'a> {
    name: String,
    pool: &'a [BinaryPackage<'a>],
    /// The pool resolved once; each trial's universe is cut from it.
    resolved: Pool<'a>,
    present: Vec<bool>,
    depends_on: Vec<Vec<u32>>,
    needed_by: Vec<Vec<u32>>,
    broken: HashSet<u32>,
    by_source: HashMap<&'a str, Vec<u32>>,
    essential: Vec<u32>,
    index: HashMap<(&'a str, &'a str, &'a str), u32>,
    /// For each entry, the generation (`Target::generation`) at which it
    /// last arrived, left or changed from broken to not or back.
    stamp: Vec<u32>,
    /// The generation at which an Essential entry last arrived.
    essential_arrived: u32,
}

/// A change to one architecture: pool entries leaving and arriving.
#[derive(Default, Clone)]
struct Change {
    remove: Vec<u32>,
    add: Vec<u32>,
}

/// An architecture's pool: the target's binaries, then the incoming ones
/// the target does not have; and how many of them the target has.
fn pool_of<'a>(
    target: Vec<BinaryPackage<'a>>,
    incoming: &[BinaryPackage<'a>],
) -> (Vec<BinaryPackage<'a>>, usize) {
    let present_count = target.len();
    let known: HashSet<Key> = target.iter().map(key).collect();
    let mut pool = target;
    pool.extend(
        incoming
            .iter()
            .filter(|p| !known.contains(&key(p)))
            .cloned(),
    );
    (pool, present_count)
}

impl<'a> Arch<'a> {
    fn new(name: &str, pool: &'a [BinaryPackage<'a>], present_count: usize) -> Arch<'a> {
        let mut present = vec![false; pool.len()];
        present[..present_count].fill(true);
        let mut providers: HashMap<&str, Vec<u32>> = HashMap::new();
        for (i, p) in pool.iter().enumerate() {
            providers.entry(p.name).or_default().push(i as u32);
            for atom in p.provides.atoms() {
                providers.entry(atom.name).or_default().push(i as u32);
            }
        }
        let depends_on: Vec<Vec<u32>> = pool
            .iter()
            .map(|p| {
                let mut to: Vec<u32> = p
                    .depends
                    .atoms()
                    .chain(p.pre_depends.atoms())
                    .flat_map(|a| providers.get(a.name).into_iter().flatten().copied())
                    .collect();
                to.sort_unstable();
                to.dedup();
                to
            })
            .collect();
        let mut needed_by = vec![Vec::new(); pool.len()];
        for (from, to) in depends_on.iter().enumerate() {
            for &t in to {
                needed_by[t as usize].push(from as u32);
            }
        }
        let mut by_source: HashMap<&str, Vec<u32>> = HashMap::new();
        for (i, p) in pool.iter().enumerate() {
            by_source.entry(p.source).or_default().push(i as u32);
        }
        let essential = (0..pool.len() as u32)
            .filter(|&i| pool[i as usize].essential)
            .collect();
        let index = pool
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.name, p.version.text, p.architecture), i as u32))
            .collect();
        let mut arch = Arch {
            index,
            essential,
            name: name.to_string(),
            pool,
            resolved: Pool::new(pool, name, &[]),
            present,
            depends_on,
            needed_by,
            broken: HashSet::new(),
            by_source,
            stamp: vec![0; pool.len()],
            essential_arrived: 0,
        };
        let all: Vec<u32> = (0..present_count as u32).collect();
        let (broken, _) = arch.check(&arch.present.clone(), &all, false, None);
        arch.broken = broken;
        arch
    }

    /// The pool entry of a package the solver reported on.
    fn index_of_ref(&self, r: &ferry_solve::PackageRef) -> Option<u32> {
        let k = (
            r.package.as_str(),
            r.version.as_str(),
            r.architecture.as_str(),
        );
        self.index.get(&k).copied()
    }

    fn index_of(&self, p: &BinaryPackage<'_>) -> Option<u32> {
        self.index
            .get(&(p.name, p.version.text, p.architecture))
            .copied()
    }

    /// Which of `targets` are broken with `present`, checked in a universe
    /// of their dependency closure and the Essential packages; with
    /// `explain`, the reports of the broken ones.
    ///
    /// `watch` gets every entry whose presence the answer depended on: the
    /// closure and the entries its members depend on, present or not.
    fn check(
        &self,
        present: &[bool],
        targets: &[u32],
        explain: bool,
        watch: Option<&mut Vec<u32>>,
    ) -> (HashSet<u32>, Vec<Report>) {
        let mut seen = vec![false; self.pool.len()];
        let mut stack: Vec<u32> = targets.to_vec();
        stack.extend(self.essential.iter().copied());
        let mut closure = Vec::new();
        while let Some(i) = stack.pop() {
            if seen[i as usize] || !present[i as usize] {
                continue;
            }
            seen[i as usize] = true;
            closure.push(i);
            stack.extend(self.depends_on[i as usize].iter().copied());
        }
        if let Some(watch) = watch {
            for &i in &closure {
                watch.push(i);
                watch.extend(self.depends_on[i as usize].iter().copied());
            }
        }
        closure.sort_unstable();
        let universe = self.resolved.universe(&closure);
        // Every record of the closure is of this architecture or `all` and
        // the pool holds no duplicates, so ids are positions in `closure`;
        // should a duplicate ever collapse, ids are looked up by name.
        let positional = universe.len() == closure.len();
        let ids: HashMap<Key, PkgId> = if positional {
            HashMap::new()
        } else {
            (0..universe.len() as PkgId)
                .map(|id| (key_of(&universe.package_ref(id)), id))
                .collect()
        };
        let id_of = |i: u32| -> Option<PkgId> {
            if positional {
                closure.binary_search(&i).ok().map(|at| at as PkgId)
            } else {
                ids.get(&key(&self.pool[i as usize])).copied()
            }
        };
        let mut wanted: Vec<PkgId> = Vec::new();
        let mut back: HashMap<PkgId, Vec<u32>> = HashMap::new();
        for &t in targets {
            if !present[t as usize] {
                continue;
            }
            if let Some(id) = id_of(t) {
                wanted.push(id);
                back.entry(id).or_default().push(t);
            }
        }
        wanted.sort_unstable();
        wanted.dedup();
        let mut broken = HashSet::new();
        let mut reports = Vec::new();
        // `check` reports on the targets in the order given.
        let checked = ferry_solve::check(&universe, Some(&wanted), explain);
        for (id, report) in wanted.iter().zip(checked) {
            if report.status == ferry_solve::Status::Ok {
                continue;
            }
            broken.extend(back.get(id).into_iter().flatten().copied());
            if explain {
                reports.push(report);
            }
        }
        (broken, reports)
    }

    /// The packages whose installability a change can alter: everything
    /// that reaches a changed binary through dependencies (all of them when
    /// an Essential package changes).
    fn affected(&self, change: &Change) -> Vec<u32> {
        let changed = change.remove.iter().chain(&change.add);
        if changed.clone().any(|&i| self.pool[i as usize].essential) {
            return (0..self.pool.len() as u32).collect();
        }
        let mut seen = vec![false; self.pool.len()];
        let mut stack: Vec<u32> = changed.copied().collect();
        let mut out = Vec::new();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i as usize], true) {
                continue;
            }
            out.push(i);
            stack.extend(self.needed_by[i as usize].iter().copied());
        }
        out
    }

    fn after(&self, change: &Change) -> Vec<bool> {
        let mut present = self.present.clone();
        for &i in &change.remove {
            present[i as usize] = false;
        }
        for &i in &change.add {
            present[i as usize] = true;
        }
        present
    }

    /// The broken set after `change`, exact; `watch` gets the entries the
    /// answer depends on (see `check`), the affected ones included.
    fn broken_after(
        &self,
        change: &Change,
        mut watch: Option<&mut Vec<u32>>,
    ) -> (Vec<bool>, HashSet<u32>) {
        let present = self.after(change);
        let affected = self.affected(change);
        let (now, _) = self.check(&present, &affected, false, watch.as_deref_mut());
        if let Some(watch) = watch {
            watch.extend(&affected);
        }
        let affected_set: HashSet<u32> = affected.iter().copied().collect();
        let mut broken: HashSet<u32> = self
            .broken
            .iter()
            .copied()
            .filter(|i| present[*i as usize] && !affected_set.contains(i))
            .collect();
        broken.extend(now);
        (present, broken)
    }

    /// Whether no entry of `watch` changed, nor an Essential one arrived,
    /// after generation `since`.
    fn unchanged_since(&self, since: u32, watch: &[u32]) -> bool {
        self.essential_arrived <= since && watch.iter().all(|&i| self.stamp[i as usize] <= since)
    }
}

/// The target: every architecture.
struct Target<'a> {
    arches: Vec<Arch<'a>>,
    /// How many states were adopted.
    generation: u32,
}

/// An architecture's state after a change: present entries, broken ones.
type State = (Vec<bool>, HashSet<u32>);

enum Trial {
    Accepted {
        states: Vec<State>,
        kept: Vec<String>,
    },
    Rejected(Vec<Why>, Watch),
}

/// What a rejected trial's answer depended on: the generation it ran at
/// and, per architecture, the entries whose presence or brokenness it
/// read. While none of them changes, trying again gives the same answer.
struct Watch {
    generation: u32,
    entries: Vec<Vec<u32>>,
}

impl Watch {
    fn still_holds(&self, target: &Target<'_>) -> bool {
        target
            .arches
            .iter()
            .zip(&self.entries)
            .all(|(arch, entries)| arch.unchanged_since(self.generation, entries))
    }
}

impl<'a> Target<'a> {
    /// The change that replaces `sources`' binaries by `incoming`'s (pool
    /// entries per architecture), keeping old binaries the new ones do not
    /// replace when `keep_old`.
    fn change(
        &self,
        sources: &HashSet<&str>,
        incoming: &[Vec<u32>],
        keep_old: bool,
    ) -> Vec<Change> {
        self.arches
            .iter()
            .zip(incoming)
            .map(|(arch, add)| {
                let new_names: HashSet<&str> =
                    add.iter().map(|&i| arch.pool[i as usize].name).collect();
                let remove = sources
                    .iter()
                    .flat_map(|s| arch.by_source.get(s).into_iter().flatten().copied())
                    .filter(|&i| arch.present[i as usize])
                    .filter(|&i| !add.contains(&i))
                    .filter(|&i| !keep_old || new_names.contains(arch.pool[i as usize].name))
                    .collect();
                let add = add
                    .iter()
                    .copied()
                    .filter(|&i| !arch.present[i as usize])
                    .collect();
                Change { remove, add }
            })
            .collect()
    }

    /// Tries the change; a rejection lists what it breaks, with the
    /// solver's explanations only when `explain` (they are asked for once,
    /// at the end: a candidate is retried every round).
    fn try_with(&self, sources: &HashSet<&str>, incoming: &[Vec<u32>], explain: bool) -> Trial {
        let mut rejection = Vec::new();
        // Which changes these sources' own entries (what `change` reads).
        let mut watch: Vec<Vec<u32>> = self
            .arches
            .iter()
            .zip(incoming)
            .map(|(arch, add)| {
                let mut own = add.clone();
                own.extend(
                    sources
                        .iter()
                        .flat_map(|s| arch.by_source.get(s).into_iter().flatten()),
                );
                own
            })
            .collect();
        for keep_old in [false, true] {
            let changes = self.change(sources, incoming, keep_old);
            rejection.clear();
            let mut states = Vec::new();
            for ((arch, change), watch) in self.arches.iter().zip(&changes).zip(&mut watch) {
                let (present, after) = arch.broken_after(change, Some(watch));
                if after.len() > arch.broken.len() {
                    let newly: Vec<u32> = after.difference(&arch.broken).copied().collect();
                    let broken = if explain {
                        arch.check(&present, &newly, true, None).1
                    } else {
                        let mut named: Vec<Report> = newly
                            .iter()
                            .map(|&i| unexplained(&arch.pool[i as usize]))
                            .collect();
                        named.sort_by(|a, b| a.package.package.cmp(&b.package.package));
                        named
                    };
                    rejection.push(Why::Breaks {
                        architecture: arch.name.clone(),
                        before: arch.broken.len(),
                        after: after.len(),
                        broken,
                    });
                }
                states.push((present, after));
            }
            if rejection.is_empty() {
                let kept = if keep_old {
                    let dropping = self.change(sources, incoming, false);
                    let mut names: BTreeSet<String> = BTreeSet::new();
                    for ((arch, strict), kept) in self.arches.iter().zip(&dropping).zip(&changes) {
                        names.extend(
                            strict
                                .remove
                                .iter()
                                .filter(|i| !kept.remove.contains(i))
                                .map(|&i| arch.pool[i as usize].name.to_string()),
                        );
                    }
                    names.into_iter().collect()
                } else {
                    Vec::new()
                };
                return Trial::Accepted { states, kept };
            }
        }
        for entries in &mut watch {
            entries.sort_unstable();
            entries.dedup();
        }
        let watch = Watch {
            generation: self.generation,
            entries: watch,
        };
        Trial::Rejected(rejection, watch)
    }

    fn accept(&mut self, changes: &[Change]) {
        let states: Vec<State> = self
            .arches
            .iter()
            .zip(changes)
            .map(|(arch, change)| arch.broken_after(change, None))
            .collect();
        self.adopt(states);
    }

    /// Takes the states a trial computed.
    fn adopt(&mut self, states: Vec<State>) {
        self.generation += 1;
        let generation = self.generation;
        for (arch, (present, broken)) in self.arches.iter_mut().zip(states) {
            for (i, (was, is)) in arch.present.iter().zip(&present).enumerate() {
                if was != is {
                    arch.stamp[i] = generation;
                    if *is && arch.pool[i].essential {
                        arch.essential_arrived = generation;
                    }
                }
            }
            for &i in arch.broken.symmetric_difference(&broken) {
                arch.stamp[i as usize] = generation;
            }
            arch.present = present;
            arch.broken = broken;
        }
    }

    fn broken_counts(&self) -> BTreeMap<String, usize> {
        self.arches
            .iter()
            .map(|a| (a.name.clone(), a.broken.len()))
            .collect()
    }
}

/// Each source's newest version. `Extra-Source-Only: yes` stanzas are
/// sources kept only for the binaries built using them: not candidates,
/// as britney ignores them.
fn newest<'a>(
    sources: &[ferry_deb::package::SourcePackage<'a>],
) -> HashMap<&'a str, VersionRef<'a>> {
    let mut newest: HashMap<&str, VersionRef> = HashMap::new();
    for s in sources.iter().filter(|s| !s.extra_source_only) {
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

/// Decides every candidate of `from` for `to` by installability and the
/// hints alone.
pub fn excuses(from: &Suite, to: &Suite, hints: &Hints) -> Result<Excuses, ArchiveError> {
    excuses_with(from, to, hints, &Policies::default())
}

/// Decides every candidate of `from` for `to`, with the age and RC-bug
/// policies `policies` holds.
pub fn excuses_with(
    from: &Suite,
    to: &Suite,
    hints: &Hints,
    policies: &Policies,
) -> Result<Excuses, ArchiveError> {
    let to_arches: HashSet<&str> = to.architectures().collect();
    let arch_names: Vec<String> = from
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
    let candidate_versions: HashMap<&str, &str> = candidates
        .iter()
        .map(|c| (c.source.as_str(), c.new_version.as_str()))
        .collect();
    let brings = |p: &BinaryPackage<'_>| {
        candidate_versions
            .get(p.source)
            .is_some_and(|v| built_from(p).to_string() == *v)
    };

    // The source suite: what each candidate brings, and which of those are
    // broken there already (checked once, explained only when broken).
    let mut from_records: Vec<Vec<BinaryPackage<'_>>> = Vec::new();
    let mut broken_in_source: HashMap<String, Vec<Report>> = HashMap::new();
    let mut pools = Vec::new();
    for arch in &arch_names {
        let records = from.binaries(arch)?;
        let universe = Universe::new(&records, arch, &[]);
        let brought: HashMap<Key, &str> = records
            .iter()
            .filter(|p| brings(p))
            .map(|p| (key(p), p.source))
            .collect();
        let ids: Vec<PkgId> = (0..universe.len() as PkgId)
            .filter(|&id| brought.contains_key(&key_of(&universe.package_ref(id))))
            .collect();
        let id_of: HashMap<Key, PkgId> = ids
            .iter()
            .map(|&id| (key_of(&universe.package_ref(id)), id))
            .collect();
        let broken_ids: Vec<PkgId> = ferry_solve::check(&universe, Some(&ids), false)
            .into_iter()
            .filter(|r| r.status.is_broken())
            .filter_map(|r| id_of.get(&key_of(&r.package)).copied())
            .collect();
        for report in ferry_solve::check(&universe, Some(&broken_ids), true) {
            let source = brought
                .get(&key_of(&report.package))
                .copied()
                .unwrap_or_default();
            broken_in_source
                .entry(source.to_string())
                .or_default()
                .push(report);
        }
        let incoming: Vec<BinaryPackage<'_>> =
            records.iter().filter(|p| brings(p)).cloned().collect();
        pools.push(pool_of(to.binaries(arch)?, &incoming));
        from_records.push(incoming);
    }
    let arches = arch_names
        .iter()
        .zip(&pools)
        .map(|(name, (pool, present))| Arch::new(name, pool, *present))
        .collect();
    let mut target = Target {
        arches,
        generation: 0,
    };
    let broken_before = target.broken_counts();

    // What each candidate brings, per architecture: its records and their
    // pool entries, looked up once (a candidate is tried every round).
    let n_arches = arch_names.len();
    let mut records_of: HashMap<&str, Vec<Vec<&BinaryPackage<'_>>>> = HashMap::new();
    let mut entries_of: HashMap<&str, Vec<Vec<u32>>> = HashMap::new();
    for (a, (arch, records)) in target.arches.iter().zip(&from_records).enumerate() {
        for p in records {
            records_of
                .entry(p.source)
                .or_insert_with(|| vec![Vec::new(); n_arches])[a]
                .push(p);
            if let Some(i) = arch.index_of(p) {
                entries_of
                    .entry(p.source)
                    .or_insert_with(|| vec![Vec::new(); n_arches])[a]
                    .push(i);
            }
        }
    }
    let incoming_of = |c: &Candidate| -> Vec<Vec<u32>> {
        entries_of
            .get(c.source.as_str())
            .cloned()
            .unwrap_or_else(|| vec![Vec::new(); n_arches])
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
    let force_hints = hinted(hints, |h| match h {
        Hint::ForceHint(i) => Some(i),
        _ => None,
    });
    let urgents = hinted(hints, |h| match h {
        Hint::Urgent(i) => Some(i),
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
        let forced_through = names(&force_hints, &c.source, &c.new_version);
        if names(&blocks, &c.source, &c.new_version) && !names(&unblocks, &c.source, &c.new_version)
        {
            reasons.push(Why::Blocked);
        }
        let per_arch: Vec<Vec<&BinaryPackage<'_>>> = records_of
            .get(c.source.as_str())
            .cloned()
            .unwrap_or_else(|| vec![Vec::new(); n_arches]);
        if per_arch.iter().all(Vec::is_empty) {
            reasons.push(Why::NoBinaries);
        }
        if let Some(age) = &policies.age {
            let hinted_days = hints.hints.iter().rev().find_map(|h| match h {
                Hint::AgeDays(days, items) => {
                    let items: Vec<&HintItem> = items.iter().collect();
                    names(&items, &c.source, &c.new_version).then_some(*days)
                }
                _ => None,
            });
            let verdict = age.judge(
                &c.source,
                c.old_version.as_deref(),
                &c.new_version,
                hinted_days,
            );
            if verdict.too_young() && !names(&urgents, &c.source, &c.new_version) {
                reasons.push(Why::TooYoung {
                    age_days: verdict.age_days,
                    required_days: verdict.required_days,
                    urgency: verdict.urgency,
                });
            }
        }
        if let Some(rc) = &policies.rc_bugs {
            let ignored: BTreeSet<String> = hints
                .hints
                .iter()
                .filter_map(|h| match h {
                    Hint::IgnoreRcBugs(bugs, items) => {
                        let items: Vec<&HintItem> = items.iter().collect();
                        names(&items, &c.source, &c.new_version).then_some(bugs)
                    }
                    _ => None,
                })
                .flatten()
                .cloned()
                .collect();
            let new_binaries = per_arch.iter().flatten().map(|p| p.name);
            let old_binaries = target.arches.iter().flat_map(|arch| {
                arch.by_source
                    .get(c.source.as_str())
                    .into_iter()
                    .flatten()
                    .filter(|&&i| arch.present[i as usize])
                    .map(|&i| arch.pool[i as usize].name)
            });
            let bugs = rc.new_bugs(
                &c.source,
                c.old_version.is_some(),
                new_binaries,
                old_binaries,
                &ignored,
            );
            if !bugs.is_empty() {
                reasons.push(Why::NewRcBugs { bugs });
            }
        }
        let builds_arch_specific = per_arch.iter().flatten().any(|p| p.architecture != "all");
        for (arch, list) in arch_names.iter().zip(&per_arch) {
            if builds_arch_specific && !list.iter().any(|p| p.architecture != "all") {
                reasons.push(Why::MissingBuild {
                    architecture: arch.clone(),
                });
            }
        }
        if forced_through {
            reasons = vec![Why::ForcedWhateverItBreaks];
        } else if forced {
            reasons = vec![Why::Forced];
        }
        if reasons.is_empty() || forced || forced_through {
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
    let nothing: Vec<Vec<u32>> = vec![Vec::new(); target.arches.len()];
    for item in &removes {
        let sources: HashSet<&str> = [item.source.as_str()].into_iter().collect();
        if let Trial::Accepted { states, .. } = target.try_with(&sources, &nothing, false) {
            target.adopt(states);
            removed.push(item.source.clone());
        }
    }

    // One at a time until nothing more migrates. A rejected candidate is
    // tried again only once something its trial read has changed (most of
    // a round's acceptances are elsewhere in the archive).
    let mut watches: HashMap<usize, Watch> = HashMap::new();
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
            if excuses[index].reasons == [Why::ForcedWhateverItBreaks] {
                let changes = target.change(&sources, &incoming, true);
                target.accept(&changes);
                excuses[index].migrates = true;
                progress = true;
                continue;
            }
            // A `force` overrode the policies, not the installability
            // check; the excuse keeps saying so.
            let forced = excuses[index].reasons.first() == Some(&Why::Forced);
            if watches.get(&index).is_some_and(|w| w.still_holds(&target)) {
                // The same packages break; only the counts of broken
                // packages elsewhere may have moved.
                for why in &mut excuses[index].reasons {
                    if let Why::Breaks {
                        architecture,
                        before,
                        after,
                        ..
                    } = why
                    {
                        if let Some(arch) = target.arches.iter().find(|a| a.name == *architecture) {
                            *after = *after - *before + arch.broken.len();
                            *before = arch.broken.len();
                        }
                    }
                }
                continue;
            }
            match target.try_with(&sources, &incoming, false) {
                Trial::Accepted { states, kept } => {
                    target.adopt(states);
                    let excuse = &mut excuses[index];
                    excuse.migrates = true;
                    excuse.reasons.clear();
                    if forced {
                        excuse.reasons.push(Why::Forced);
                    }
                    if !kept.is_empty() {
                        excuse.reasons.push(Why::KeptOldBinaries { packages: kept });
                    }
                    progress = true;
                }
                Trial::Rejected(why, watch) => {
                    watches.insert(index, watch);
                    let excuse = &mut excuses[index];
                    excuse.reasons = forced.then_some(Why::Forced).into_iter().collect();
                    excuse.reasons.extend(why);
                    if let Some(packages) = broken_in_source.get(&c.source) {
                        excuse.reasons.push(Why::UninstallableInSource {
                            packages: packages.clone(),
                        });
                    }
                }
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
    let eligible_by_source: HashMap<&str, usize> = eligible
        .iter()
        .map(|&i| (candidates[i].source.as_str(), i))
        .collect();
    for &index in &eligible {
        if excuses[index].migrates {
            continue;
        }
        let mut group: BTreeSet<usize> = [index].into_iter().collect();
        for why in &excuses[index].reasons {
            if let Why::Breaks {
                broken,
                architecture,
                ..
            } = why
            {
                let Some(arch) = target.arches.iter().find(|a| &a.name == architecture) else {
                    continue;
                };
                for r in broken {
                    let owner = arch
                        .index_of_ref(&r.package)
                        .map(|i| arch.pool[i as usize].source);
                    if let Some(&other) = owner.and_then(|s| eligible_by_source.get(s)) {
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
        let mut incoming: Vec<Vec<u32>> = vec![Vec::new(); target.arches.len()];
        for &i in &pending {
            for (all, list) in incoming.iter_mut().zip(incoming_of(&candidates[i])) {
                all.extend(list);
            }
        }
        if let Trial::Accepted { states, kept } = target.try_with(&sources, &incoming, false) {
            target.adopt(states);
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

    // The solver's explanations of what each rejected candidate would
    // break, asked once, of the target as it ends.
    for &index in &eligible {
        let breaks = |w: &Why| matches!(w, Why::Breaks { .. });
        if excuses[index].migrates || !excuses[index].reasons.iter().any(breaks) {
            continue;
        }
        let c = &candidates[index];
        let sources: HashSet<&str> = [c.source.as_str()].into_iter().collect();
        let incoming = incoming_of(c);
        if let Trial::Rejected(explained, _) = target.try_with(&sources, &incoming, true) {
            let excuse = &mut excuses[index];
            let at = excuse.reasons.iter().position(breaks).unwrap_or(0);
            excuse.reasons.retain(|w| !breaks(w));
            let at = at.min(excuse.reasons.len());
            excuse.reasons.splice(at..at, explained);
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
        let changes: Vec<Change> = target
            .arches
            .iter()
            .map(|arch| Change {
                remove: arch
                    .by_source
                    .get(source.as_str())
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|&i| arch.present[i as usize] && arch.pool[i as usize].name == name)
                    .collect(),
                add: Vec::new(),
            })
            .collect();
        let grows = target
            .arches
            .iter()
            .zip(&changes)
            .any(|(arch, change)| arch.broken_after(change, None).1.len() > arch.broken.len());
        if !grows {
            target.accept(&changes);
            dropped.push(name);
        }
    }

    let result_binaries = target
        .arches
        .iter()
        .map(|arch| {
            let present = arch
                .pool
                .iter()
                .zip(&arch.present)
                .filter(|(_, here)| **here)
                .map(|(p, _)| key(p))
                .collect();
            (arch.name.clone(), present)
        })
        .collect();
    let migrated: HashMap<&str, &str> = excuses
        .iter()
        .filter(|e| e.migrates)
        .map(|e| (e.source.as_str(), e.new_version.as_str()))
        .collect();
    let mut result_sources: Vec<(String, String)> = to_sources
        .iter()
        .filter(|s| !migrated.contains_key(s.name) && !removed.contains(&s.name.to_string()))
        .map(|s| (s.name.to_string(), s.version.to_string()))
        .collect();
    result_sources.extend(
        migrated
            .iter()
            .map(|(name, version)| (name.to_string(), version.to_string())),
    );
    result_sources.sort();
    Ok(Excuses {
        excuses,
        removed,
        dropped,
        broken_before,
        broken_after: target.broken_counts(),
        result_binaries,
        result_sources,
    })
}

/// Writes the target after the accepted migrations into `dir`, laid out as
/// a suite (`main/binary-ARCH/Packages`, `main/source/Sources`): each
/// stanza as the source or target suite wrote it.
pub fn write_result(
    dir: &std::path::Path,
    from: &Suite,
    to: &Suite,
    result: &Excuses,
) -> Result<(), ArchiveError> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Read { path, source }
    };
    for (arch, binaries) in &result.result_binaries {
        let mut stanzas: HashMap<Key, &str> = HashMap::new();
        for suite in [to, from] {
            for (k, text) in suite.binary_stanzas(arch) {
                stanzas.entry(k).or_insert(text);
            }
        }
        let out_dir = dir.join(format!("main/binary-{arch}"));
        std::fs::create_dir_all(&out_dir).map_err(io(&out_dir))?;
        let mut text = String::new();
        for k in binaries {
            if let Some(stanza) = stanzas.get(k) {
                text.push_str(stanza.trim_end_matches('\n'));
                text.push_str("\n\n");
            }
        }
        let path = out_dir.join("Packages");
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    let mut stanzas: HashMap<(String, String), &str> = HashMap::new();
    for suite in [to, from] {
        for (k, text) in suite.source_stanzas() {
            stanzas.entry(k).or_insert(text);
        }
    }
    let out_dir = dir.join("main/source");
    std::fs::create_dir_all(&out_dir).map_err(io(&out_dir))?;
    let mut text = String::new();
    for k in &result.result_sources {
        if let Some(stanza) = stanzas.get(k) {
            text.push_str(stanza.trim_end_matches('\n'));
            text.push_str("\n\n");
        }
    }
    let path = out_dir.join("Sources");
    std::fs::write(&path, text).map_err(io(&path))
}
