//! Installability: for each package, is there a set of packages that holds
//! it, meets every Depends and Pre-Depends of its members and has no
//! conflicting pair? Same question as dose-distcheck.
//!
//! A solver of our own rather than a SAT crate, because the measured bar
//! (all of sid in under 2 s on 2 cores) comes from structure a general
//! solver does not know, the tricks of britney2's installability tester:
//! - packages broken for lack of any candidate are found once, to a fixed
//!   point, and removed from every clause before searching;
//! - every package of a solution found is installable (the solution is its
//!   witness), so most packages are answered from that cache;
//! - the search itself is DPLL with unit propagation over watch lists,
//!   trying first candidates already known to be installable.

use crate::universe::{PkgId, Universe};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Installable,
    Broken,
}

/// Why a package is broken, in terms of packages and dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Following `chain` (package, dependency it needs), the last
    /// dependency has no package that could satisfy it.
    Missing { chain: Vec<(PkgId, usize)> },
    /// `a` and `b` conflict, pulled in by these dependency chains.
    Conflict {
        a: PkgId,
        b: PkgId,
        chain_a: Vec<(PkgId, usize)>,
        chain_b: Vec<(PkgId, usize)>,
    },
}

const UNSET: i8 = 0;
const TRUE: i8 = 1;
const FALSE: i8 = -1;

/// What every solver of a universe shares, computed once: statically
/// broken packages, clauses without them, and watch lists. Workers on
/// other cores borrow it instead of each building a copy.
pub struct Prepared {
    /// Broken for lack of candidates; solvers hold these false for good.
    broken: Vec<bool>,
    /// For each package q: the (package, clause) pairs q is a candidate of.
    watchers: Vec<Vec<(PkgId, u32)>>,
}

pub struct Solver<'u, 'a> {
    universe: &'u Universe<'a>,
    prepared: &'u Prepared,
    installable: Vec<bool>,
    assign: Vec<i8>,
    /// Why a package was set true: the package and clause that needed it.
    reason: Vec<(PkgId, u32)>,
    trail: Vec<PkgId>,
    queue_head: usize,
    open: Vec<(PkgId, u32)>,
    last_conflict: Option<(PkgId, PkgId)>,
    last_violated: Option<(PkgId, u32)>,
}

const NO_REASON: (PkgId, u32) = (PkgId::MAX, u32::MAX);

impl Prepared {
    pub fn new(universe: &Universe<'_>) -> Prepared {
        let n = universe.len();
        let mut broken = vec![false; n];
        // A clause with no candidate breaks its package; a package whose
        // clause has only broken candidates is broken too: to a fixed point.
        let mut changed = true;
        while changed {
            changed = false;
            for id in 0..n {
                if broken[id] {
                    continue;
                }
                let dead = universe.clauses[id]
                    .iter()
                    .any(|c| c.candidates.iter().all(|&q| broken[q as usize]));
                if dead {
                    broken[id] = true;
                    changed = true;
                }
            }
        }
        let mut watchers: Vec<Vec<(PkgId, u32)>> = vec![Vec::new(); n];
        for (p, cs) in universe.clauses.iter().enumerate() {
            for (ci, c) in cs.iter().enumerate() {
                for &q in c.candidates.iter().filter(|&&q| !broken[q as usize]) {
                    watchers[q as usize].push((p as PkgId, ci as u32));
                }
            }
        }
        Prepared { broken, watchers }
    }
}

impl<'u, 'a> Solver<'u, 'a> {
    pub fn new(universe: &'u Universe<'a>, prepared: &'u Prepared) -> Self {
        let n = universe.len();
        // Statically broken packages are false in every search; they are
        // never on the trail, so no backtrack resets them.
        let assign = prepared
            .broken
            .iter()
            .map(|&b| if b { FALSE } else { UNSET })
            .collect();
        Solver {
            universe,
            prepared,
            installable: vec![false; n],
            assign,
            reason: vec![NO_REASON; n],
            trail: Vec::new(),
            queue_head: 0,
            open: Vec::new(),
            last_conflict: None,
            last_violated: None,
        }
    }

    pub fn statically_broken(&self, id: PkgId) -> bool {
        self.prepared.broken[id as usize]
    }

    fn set(&mut self, q: PkgId, value: i8, reason: (PkgId, u32)) {
        self.assign[q as usize] = value;
        if value == TRUE {
            self.reason[q as usize] = reason;
        }
        self.trail.push(q);
    }

    fn undo_to(&mut self, len: usize) {
        while self.trail.len() > len {
            if let Some(q) = self.trail.pop() {
                self.assign[q as usize] = UNSET;
            }
        }
        self.queue_head = self.queue_head.min(len);
    }

    /// Looks at one clause of an installed package: satisfied, unit (then
    /// sets its last candidate), open, or violated (false).
    fn visit_clause(&mut self, p: PkgId, ci: u32) -> bool {
        let mut unset = None;
        let mut unset_count = 0;
        for &q in &self.universe.clauses[p as usize][ci as usize].candidates {
            match self.assign[q as usize] {
                TRUE => return true,
                UNSET => {
                    unset_count += 1;
                    unset = Some(q);
                }
                _ => {}
            }
        }
        match (unset_count, unset) {
            (0, _) => {
                self.last_conflict = None;
                self.last_violated = Some((p, ci));
                false
            }
            (1, Some(q)) => {
                self.set(q, TRUE, (p, ci));
                true
            }
            _ => {
                self.open.push((p, ci));
                true
            }
        }
    }

    /// Unit propagation from the trail's unprocessed entries.
    fn propagate(&mut self) -> bool {
        while self.queue_head < self.trail.len() {
            let q = self.trail[self.queue_head];
            self.queue_head += 1;
            if self.assign[q as usize] == TRUE {
                for i in 0..self.universe.conflicts[q as usize].len() {
                    let c = self.universe.conflicts[q as usize][i];
                    match self.assign[c as usize] {
                        TRUE => {
                            self.last_conflict = Some((q, c));
                            return false;
                        }
                        UNSET => self.set(c, FALSE, NO_REASON),
                        _ => {}
                    }
                }
                for ci in 0..self.universe.clauses[q as usize].len() as u32 {
                    if !self.visit_clause(q, ci) {
                        return false;
                    }
                }
            } else {
                for i in 0..self.prepared.watchers[q as usize].len() {
                    let (p, ci) = self.prepared.watchers[q as usize][i];
                    if self.assign[p as usize] == TRUE && !self.visit_clause(p, ci) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// An open clause not yet satisfied, and the candidate to try first.
    /// Entries are never dropped here: one satisfied now may be open again
    /// after a backtrack, and `open` is restored by length only.
    fn pick(&self) -> Option<PkgId> {
        for &(p, ci) in self.open.iter().rev() {
            let candidates = &self.universe.clauses[p as usize][ci as usize].candidates;
            if candidates.iter().any(|&q| self.assign[q as usize] == TRUE) {
                continue;
            }
            let mut first = None;
            for q in candidates
                .iter()
                .copied()
                .filter(|&q| self.assign[q as usize] == UNSET)
            {
                if self.installable[q as usize] {
                    return Some(q);
                }
                first.get_or_insert(q);
            }
            if first.is_some() {
                return first;
            }
        }
        None
    }

    /// The open clause `pick` chose from, for the reason of its decision.
    fn picked_clause(&self) -> (PkgId, u32) {
        self.open
            .iter()
            .rev()
            .find(|&&(p, ci)| {
                !self.universe.clauses[p as usize][ci as usize]
                    .candidates
                    .iter()
                    .any(|&q| self.assign[q as usize] == TRUE)
            })
            .copied()
            .unwrap_or(NO_REASON)
    }

    /// Whether package `root` is installable.
    pub fn check(&mut self, root: PkgId) -> Verdict {
        if self.prepared.broken[root as usize] {
            return Verdict::Broken;
        }
        if self.installable[root as usize] {
            return Verdict::Installable;
        }
        self.undo_to(0);
        self.open.clear();
        self.last_conflict = None;
        self.set(root, TRUE, NO_REASON);
        // (trail length before the decision, open length, decided package)
        let mut decisions: Vec<(usize, usize, PkgId)> = Vec::new();
        let mut ok = self.propagate();
        loop {
            if !ok {
                let mut resumed = false;
                while let Some((trail_len, open_len, decided)) = decisions.pop() {
                    self.undo_to(trail_len);
                    self.open.truncate(open_len);
                    self.set(decided, FALSE, NO_REASON);
                    if self.propagate() {
                        resumed = true;
                        break;
                    }
                }
                if !resumed {
                    self.undo_to(0);
                    return Verdict::Broken;
                }
            }
            match self.pick() {
                None => {
                    for i in 0..self.trail.len() {
                        let q = self.trail[i];
                        if self.assign[q as usize] == TRUE {
                            self.installable[q as usize] = true;
                        }
                    }
                    self.undo_to(0);
                    return Verdict::Installable;
                }
                Some(q) => {
                    let why = self.picked_clause();
                    decisions.push((self.trail.len(), self.open.len(), q));
                    self.set(q, TRUE, why);
                    ok = self.propagate();
                }
            }
        }
    }

    /// Why `root` is broken: a missing dependency chain when it is broken
    /// for lack of candidates, else a conflicting pair and the chains that
    /// pull each member in (from the first branch of the search).
    pub fn explain(&mut self, root: PkgId) -> Cause {
        if self.prepared.broken[root as usize] {
            return Cause::Missing {
                chain: self.missing_chain(root),
            };
        }
        // Replay the search greedily (no backtracking) to find a conflict
        // on the path the solver tries first.
        self.undo_to(0);
        self.open.clear();
        self.last_conflict = None;
        self.last_violated = None;
        self.set(root, TRUE, NO_REASON);
        loop {
            let before = self.trail.len();
            if !self.propagate() {
                break;
            }
            match self.pick() {
                Some(q) => {
                    let why = self.picked_clause();
                    self.set(q, TRUE, why);
                }
                None => {
                    if self.trail.len() == before {
                        break;
                    }
                }
            }
        }
        let cause = match (self.last_conflict, self.last_violated) {
            (Some((a, b)), _) => Cause::Conflict {
                a,
                b,
                chain_a: self.reason_chain(a),
                chain_b: self.reason_chain(b),
            },
            (None, Some((p, ci))) => self.violated_cause(p, ci),
            (None, None) => Cause::Missing { chain: Vec::new() },
        };
        self.undo_to(0);
        cause
    }

    /// A clause of an installed package lost all its candidates: each was
    /// excluded by a conflict with an installed package (name the first
    /// such pair), or was broken to begin with (a missing dependency).
    fn violated_cause(&self, p: PkgId, ci: u32) -> Cause {
        let mut chain = self.reason_chain(p);
        chain.push((p, ci as usize));
        let candidates = &self.universe.clauses[p as usize][ci as usize].candidates;
        for &q in candidates {
            if let Some(&t) = self.universe.conflicts[q as usize]
                .iter()
                .find(|&&t| self.assign[t as usize] == TRUE)
            {
                return Cause::Conflict {
                    a: q,
                    b: t,
                    chain_a: chain,
                    chain_b: self.reason_chain(t),
                };
            }
        }
        match candidates.first() {
            Some(&q) if self.prepared.broken[q as usize] => {
                chain.extend(self.missing_chain(q));
                Cause::Missing { chain }
            }
            _ => Cause::Missing { chain },
        }
    }

    /// (package, clause) steps from the root to `q`, following reasons.
    fn reason_chain(&self, q: PkgId) -> Vec<(PkgId, usize)> {
        let mut chain = Vec::new();
        let mut current = q;
        let mut guard = 0;
        while self.reason[current as usize] != NO_REASON && guard < 10_000 {
            let (p, ci) = self.reason[current as usize];
            chain.push((p, ci as usize));
            current = p;
            guard += 1;
        }
        chain.reverse();
        chain
    }

    /// For a statically broken package: follow clauses whose candidates are
    /// all broken down to one with no candidate at all.
    fn missing_chain(&self, root: PkgId) -> Vec<(PkgId, usize)> {
        let mut chain = Vec::new();
        let mut current = root;
        let mut seen = std::collections::HashSet::new();
        while seen.insert(current) {
            let clauses = &self.universe.clauses[current as usize];
            let Some((ci, clause)) = clauses.iter().enumerate().find(|(_, c)| {
                c.candidates
                    .iter()
                    .all(|&q| self.prepared.broken[q as usize])
            }) else {
                break;
            };
            chain.push((current, ci));
            match clause.candidates.first() {
                Some(&next) => current = next,
                None => break,
            }
        }
        chain
    }
}
