//! Which of its dependencies breaks each statically broken package (one
//! broken for lack of candidates, whatever else is installed), chosen as
//! dose-distcheck chooses it, so that both name the same root causes. Not
//! for deciding installability (see `solver`), nor for packages broken
//! by conflicts, which the search explains.
//!
//! A package with several dependencies that cannot be met gets one of
//! them as its reason in dose: the first that its solver (dose3
//! `common/edosSolver.ml`) finds false while it propagates the empty
//! installation at level 0, before any package is checked. That order is
//! deterministic, so it is reproduced here step for step:
//! - clauses are added in dose's package order (`Universe::dose_key`),
//!   each package's Pre-Depends then Depends in their order; a package
//!   already false skips its remaining clauses, and a clause whose
//!   candidates are all false already (none at all: dose's "missing")
//!   makes its package false at once;
//! - a clause with one candidate left is a binary rule, fired when that
//!   candidate turns false (one rule per pair of packages: the first);
//! - a clause with more watches its first open candidate (dose's order of
//!   candidates, `Universe::places`) and, when that one turns false,
//!   moves to the next open one or, if none is left, fires;
//! - packages turned false are processed first in, first out; for each,
//!   its binary rules by the owner's dose order, then the clauses
//!   watching it, the one that started watching last first.
//!
//! Only clauses whose candidates are all statically broken can ever fire,
//! and only the relative order of such packages matters, so the
//! simulation runs on those alone: a few hundred packages for sid.

use std::cmp::Reverse;
use std::collections::VecDeque;

use crate::universe::{PkgId, Universe};

/// No clause: the package is not statically broken.
pub(crate) const NO_CLAUSE: u32 = u32::MAX;

/// A clause of more than one open candidate, as the propagation sees it.
struct Watched {
    /// The owner's index in dose order.
    owner: u32,
    ci: u32,
    /// Where its open candidates (dose-order indices) are in `Propagation::lits`;
    /// the first is the one watched.
    lits: std::ops::Range<usize>,
}

/// The state of dose's level-0 propagation, over packages numbered in
/// dose order.
struct Propagation {
    assigned: Vec<bool>,
    reason: Vec<u32>,
    queue: VecDeque<u32>,
    /// Binary rules by their candidate: (owner, clause).
    binary: Vec<Vec<(u32, u32)>>,
    /// Clauses by the candidate they watch; the list's head is the end.
    watching: Vec<Vec<u32>>,
    clauses: Vec<Watched>,
    lits: Vec<u32>,
}

impl Propagation {
    fn assign(&mut self, x: u32, ci: u32) {
        if !self.assigned[x as usize] {
            self.assigned[x as usize] = true;
            self.reason[x as usize] = ci;
            self.queue.push_back(x);
        }
    }

    /// dose's `add_rule` for a dependency clause of `x` whose candidates
    /// (in dose order) are `candidates`.
    fn add(&mut self, x: u32, ci: u32, candidates: &[u32]) {
        let start = self.lits.len();
        self.lits
            .extend(candidates.iter().filter(|&&q| !self.assigned[q as usize]));
        match self.lits.len() - start {
            0 => self.assign(x, ci),
            1 => {
                let q = self.lits[start] as usize;
                self.lits.truncate(start);
                if !self.binary[q].iter().any(|&(owner, _)| owner == x) {
                    self.binary[q].push((x, ci));
                }
            }
            _ => {
                let watched = self.lits[start] as usize;
                self.watching[watched].push(self.clauses.len() as u32);
                self.clauses.push(Watched {
                    owner: x,
                    ci,
                    lits: start..self.lits.len(),
                });
            }
        }
    }

    /// dose's `propagate`: every package turned false, in turn.
    fn run(&mut self) {
        while let Some(q) = self.queue.pop_front() {
            let mut binary = std::mem::take(&mut self.binary[q as usize]);
            binary.sort_unstable_by_key(|&(owner, _)| owner);
            for (owner, ci) in binary {
                self.assign(owner, ci);
            }
            let watching = std::mem::take(&mut self.watching[q as usize]);
            for &c in watching.iter().rev() {
                let clause = &self.clauses[c as usize];
                let (x, ci) = (clause.owner, clause.ci);
                if self.assigned[x as usize] {
                    continue;
                }
                let lits = &mut self.lits[clause.lits.clone()];
                match (1..lits.len()).find(|&i| !self.assigned[lits[i] as usize]) {
                    Some(i) => {
                        lits.swap(0, i);
                        let next = lits[0] as usize;
                        self.watching[next].push(c);
                    }
                    None => self.assign(x, ci),
                }
            }
        }
    }
}

/// For each package (by `PkgId`, the essential pseudo-package included),
/// the index of the clause dose gives as the reason it is statically
/// broken, or `NO_CLAUSE`. `broken` says which packages are (the fixed
/// point `Prepared` computes, which is exactly the set dose's level 0
/// holds false).
pub(crate) fn dose_reasons(universe: &Universe<'_>, broken: &[bool]) -> Vec<u32> {
    let mut order: Vec<PkgId> = (0..universe.len() as PkgId)
        .filter(|&p| broken[p as usize])
        .collect();
    order.sort_by_cached_key(|&p| universe.dose_key(p));
    let mut rank = vec![u32::MAX; broken.len()];
    for (i, &p) in order.iter().enumerate() {
        rank[p as usize] = i as u32;
    }
    let m = order.len();
    let mut propagation = Propagation {
        assigned: vec![false; m],
        reason: vec![NO_CLAUSE; m],
        queue: VecDeque::new(),
        binary: vec![Vec::new(); m],
        watching: vec![Vec::new(); m],
        clauses: Vec::new(),
        lits: Vec::new(),
    };
    let mut candidates: Vec<(u16, Reverse<u32>)> = Vec::new();
    let mut ranks: Vec<u32> = Vec::new();
    for (x, &p) in order.iter().enumerate() {
        for ci in 0..universe.clause_count(p) {
            if propagation.assigned[x] {
                break;
            }
            let all = universe.candidates(p, ci);
            if !all.iter().all(|&q| broken[q as usize]) {
                continue;
            }
            // dose's order: by place, then the newest package first.
            candidates.clear();
            candidates.extend(
                universe
                    .places(p, ci)
                    .iter()
                    .zip(all)
                    .map(|(&place, &q)| (place, Reverse(rank[q as usize]))),
            );
            candidates.sort_unstable();
            ranks.clear();
            ranks.extend(candidates.iter().map(|c| c.1 .0));
            propagation.add(x as u32, ci, &ranks);
        }
    }
    propagation.run();

    let mut reasons = vec![NO_CLAUSE; broken.len()];
    for (i, &p) in order.iter().enumerate() {
        reasons[p as usize] = propagation.reason[i];
    }
    reasons
}
