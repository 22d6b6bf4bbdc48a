//! A pool of packages resolved once, from which the universe of any subset
//! is cut without resolving again: what a caller needs that checks many
//! small subsets of one large set (an archive migration's trials, each a
//! dependency closure of the target as it would be). Not for checking
//! (see `check`), nor for one universe (build it with `Universe::new`).
//!
//! A subset's universe is exactly `Universe::from_refs` of its packages:
//! a dependency's candidates in a subset are the pool's candidates that
//! are members, in the same order and at the same places, because whether
//! a package matches an atom depends on that package alone. Conflicts are
//! the same but for dose's Multi-Arch: same quirks, which look at which
//! names the whole set has or provides (`universe::Need`): those pairs
//! are kept aside with the packages that make them hold, and decided per
//! subset. When the pool has two packages dose would take for one (same
//! name, version and architecture, arch:all counting as native) or
//! packages of an architecture the universe leaves out, which of them
//! counts depends on the subset: the pool then builds each subset's
//! universe from scratch.

use ferry_deb::BinaryPackage;

use crate::universe::{OpenConflict, PkgId, Universe};

pub struct Pool<'a> {
    /// Every package of the pool, in the caller's order.
    packages: Vec<&'a BinaryPackage<'a>>,
    native: String,
    foreign: Vec<String>,
    /// The pool's universe (without its open conflicts), when package
    /// `i` of the pool is its package `i`; `None` when subsets are built
    /// from scratch.
    whole: Option<Universe<'a>>,
    /// Open conflicts, with the packages any one of which makes each hold;
    /// `open_start[p]..open_start[p + 1]` are those of package `p`.
    open: Vec<(OpenConflict, Vec<PkgId>)>,
    open_start: Vec<u32>,
}

impl<'a> Pool<'a> {
    /// Resolves `packages` (all of `native`, `foreign` or `all`) once.
    pub fn new(
        packages: impl IntoIterator<Item = &'a BinaryPackage<'a>>,
        native: &str,
        foreign: &[String],
    ) -> Pool<'a> {
        let packages: Vec<&'a BinaryPackage<'a>> = packages.into_iter().collect();
        let (whole, mut open) = Universe::build(packages.iter().copied(), native, foreign, true);
        // The universe keeps a package per dose identity and of the
        // architectures considered only: the same list means none was
        // left out, so positions are ids.
        let whole = (whole.len() == packages.len()).then_some(whole);
        open.sort_by_key(|(c, _)| c.a);
        let mut open_start = vec![0u32; packages.len() + 1];
        for (c, _) in &open {
            open_start[c.a as usize + 1] += 1;
        }
        for i in 1..open_start.len() {
            open_start[i] += open_start[i - 1];
        }
        Pool {
            packages,
            native: native.to_string(),
            foreign: foreign.to_vec(),
            whole,
            open,
            open_start,
        }
    }

    pub fn len(&self) -> usize {
        self.packages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// The universe of pool packages `members` (positions in the pool,
    /// ascending), identical to `Universe::from_refs` of those packages in
    /// that order.
    pub fn universe(&self, members: &[u32]) -> Universe<'a> {
        let sorted = members.windows(2).all(|w| w[0] < w[1]);
        match &self.whole {
            Some(whole) if sorted => self.cut(whole, members),
            _ => Universe::from_refs(
                members.iter().map(|&i| self.packages[i as usize]),
                &self.native,
                &self.foreign,
            ),
        }
    }

    fn cut(&self, whole: &Universe<'a>, members: &[u32]) -> Universe<'a> {
        const OUT: u32 = u32::MAX;
        let mut at = vec![OUT; self.packages.len()];
        for (i, &m) in members.iter().enumerate() {
            at[m as usize] = i as u32;
        }
        let inside = |q: PkgId| at[q as usize] != OUT;
        let records: Vec<&'a BinaryPackage<'a>> =
            members.iter().map(|&m| whole.records[m as usize]).collect();

        let mut clause_start = Vec::with_capacity(members.len() + 2);
        let mut origins = Vec::new();
        let mut candidate_start = vec![0u32];
        let mut candidates = Vec::new();
        let mut places = Vec::new();
        clause_start.push(0u32);
        for &m in members {
            for ci in 0..whole.clause_count(m) {
                let c = (whole.clause_start[m as usize] + ci) as usize;
                let range =
                    whole.candidate_start[c] as usize..whole.candidate_start[c + 1] as usize;
                for (&q, &place) in whole.candidates[range.clone()]
                    .iter()
                    .zip(&whole.places[range])
                {
                    if inside(q) {
                        candidates.push(at[q as usize]);
                        places.push(place);
                    }
                }
                candidate_start.push(candidates.len() as u32);
                origins.push(whole.origins[c]);
            }
            clause_start.push(origins.len() as u32);
        }
        // The essential pseudo-package: a clause per essential name, its
        // packages in order (as `Universe::build` has it).
        let mut essential: Vec<(&str, PkgId)> = records
            .iter()
            .enumerate()
            .filter(|(_, p)| p.essential)
            .map(|(id, p)| (p.name, id as PkgId))
            .collect();
        essential.sort_unstable();
        for (i, group) in essential.chunk_by(|a, b| a.0 == b.0).enumerate() {
            candidates.extend(group.iter().map(|(_, id)| *id));
            places.resize(candidates.len(), 0);
            candidate_start.push(candidates.len() as u32);
            origins.push(crate::ClauseOrigin {
                field: crate::Field::Essential,
                group: i as u32,
            });
        }
        clause_start.push(origins.len() as u32);

        // Conflicts: the pool's, both ways already, between members; then
        // the open ones this subset makes hold.
        let mut extra: Vec<(PkgId, PkgId)> = Vec::new();
        for &m in members {
            let range =
                self.open_start[m as usize] as usize..self.open_start[m as usize + 1] as usize;
            for (c, makers) in &self.open[range] {
                if inside(c.b) && makers.iter().any(|&q| inside(q)) {
                    let (a, b) = (at[c.a as usize], at[c.b as usize]);
                    extra.push((a, b));
                    extra.push((b, a));
                }
            }
        }
        extra.sort_unstable();
        extra.dedup();
        let mut conflict_start = Vec::with_capacity(members.len() + 2);
        let mut conflicts = Vec::new();
        let mut next = 0;
        for (id, &m) in members.iter().enumerate() {
            conflict_start.push(conflicts.len() as u32);
            let start = conflicts.len();
            conflicts.extend(
                whole
                    .conflicts(m)
                    .iter()
                    .filter(|&&q| inside(q))
                    .map(|&q| at[q as usize]),
            );
            let before = next;
            while next < extra.len() && extra[next].0 == id as PkgId {
                next += 1;
            }
            if next > before {
                conflicts.extend(extra[before..next].iter().map(|&(_, b)| b));
                conflicts[start..].sort_unstable();
                let mut list = conflicts.split_off(start);
                list.dedup();
                conflicts.extend(list);
            }
        }
        // The essential pseudo-package conflicts with nothing.
        conflict_start.push(conflicts.len() as u32);
        conflict_start.push(conflicts.len() as u32);

        Universe {
            records,
            native: whole.native.clone(),
            clause_start,
            origins,
            candidate_start,
            candidates,
            places,
            conflict_start,
            conflicts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_deb::package::parse_binary_packages;

    /// Whether two universes are the same, field by field through the
    /// accessors the solver reads; the first difference otherwise.
    fn difference(a: &Universe<'_>, b: &Universe<'_>) -> Option<String> {
        if a.len() != b.len() {
            return Some(format!("{} packages, not {}", a.len(), b.len()));
        }
        for p in 0..=a.len() as PkgId {
            if p < a.len() as PkgId && !std::ptr::eq(a.records[p as usize], b.records[p as usize]) {
                return Some(format!("package {p} differs"));
            }
            if a.clause_count(p) != b.clause_count(p) {
                return Some(format!("clauses of {p}"));
            }
            for ci in 0..a.clause_count(p) {
                if a.candidates(p, ci) != b.candidates(p, ci)
                    || a.places(p, ci) != b.places(p, ci)
                    || a.origin(p, ci) != b.origin(p, ci)
                {
                    return Some(format!("clause {ci} of {p}"));
                }
            }
            if a.conflicts(p) != b.conflicts(p) {
                return Some(format!(
                    "conflicts of {p}: {:?}, not {:?}",
                    a.conflicts(p),
                    b.conflicts(p)
                ));
            }
        }
        None
    }

    /// Every subset's universe cut from the pool against the one built
    /// from scratch.
    fn every_subset_agrees(text: &str, foreign: &[String]) {
        let packages = parse_binary_packages(text).unwrap();
        let pool = Pool::new(packages.iter(), "amd64", foreign);
        let n = packages.len();
        assert!(n <= 14, "2^n subsets");
        for mask in 0u32..(1 << n) {
            let members: Vec<u32> = (0..n as u32).filter(|i| mask & (1 << i) != 0).collect();
            let cut = pool.universe(&members);
            let built = Universe::from_refs(
                members.iter().map(|&i| &packages[i as usize]),
                "amd64",
                foreign,
            );
            if let Some(d) = difference(&cut, &built) {
                panic!("subset {members:?}: {d}");
            }
        }
    }

    /// dose's Multi-Arch: same quirks make conflicts depend on which names
    /// the set has and provides: a conflict on a name the package provides
    /// itself reaches every package named like another provider, a
    /// versioned conflict on a name only holds while a package has it.
    #[test]
    fn a_subset_cut_from_the_pool_is_the_universe_built_from_scratch() {
        let text = "\
Package: libx\nVersion: 1\nArchitecture: amd64\nMulti-Arch: same\nProvides: virt\nConflicts: virt\n\n\
Package: liby\nVersion: 1\nArchitecture: amd64\nMulti-Arch: same\nProvides: virt\nBreaks: libz (>= 1), liby (<< 1)\n\n\
Package: liby\nVersion: 0.5\nArchitecture: amd64\nMulti-Arch: same\n\n\
Package: libz\nVersion: 1\nArchitecture: amd64\n\n\
Package: pz\nVersion: 1\nArchitecture: amd64\nProvides: libz (= 2)\n\n\
Package: virt\nVersion: 3\nArchitecture: all\n\n\
Package: libx\nVersion: 1\nArchitecture: i386\nMulti-Arch: same\nProvides: virt\nConflicts: virt\n\n\
Package: libx\nVersion: 2\nArchitecture: i386\nMulti-Arch: same\n\n\
Package: app\nVersion: 1\nArchitecture: amd64\nDepends: libx | liby, libz (>= 1) | virt\nConflicts: pz\n\n\
Package: base\nVersion: 1\nArchitecture: amd64\nEssential: yes\nDepends: libx\n\n\
Package: base\nVersion: 2\nArchitecture: all\nEssential: yes\n";
        every_subset_agrees(text, &["i386".to_string()]);
        every_subset_agrees(text, &[]);
    }

    /// Two packages dose would take for one (arch:all counts as native):
    /// which one counts depends on the subset, so it is built from scratch.
    #[test]
    fn a_pool_with_twins_builds_each_subset_from_scratch() {
        let text = "\
Package: tool\nVersion: 1\nArchitecture: all\n\n\
Package: tool\nVersion: 1\nArchitecture: amd64\nDepends: missing\n\n\
Package: app\nVersion: 1\nArchitecture: amd64\nDepends: tool\n";
        let packages = parse_binary_packages(text).unwrap();
        assert!(Pool::new(packages.iter(), "amd64", &[]).whole.is_none());
        every_subset_agrees(text, &[]);
    }
}
