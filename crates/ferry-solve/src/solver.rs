//! Installability: for each package, is there a set of packages that holds
//! it and the essential packages, meets every Depends and Pre-Depends of
//! its members and has no conflicting pair? Same question as
//! dose-distcheck. Not for resolving relations (see `universe`).
//!
//! A solver of our own rather than a SAT crate: the measured bar (all of
//! sid in under 2 s on 2 cores, parsing included) comes from structure a
//! general solver does not know, the tricks of britney2's installability
//! tester; a CDCL crate rebuilds or resets its state per query, which is
//! what makes dose take 30 s. What we use:
//! - packages broken for lack of any candidate are found once, to a fixed
//!   point, and held false in every search;
//! - what the essential packages imply is propagated once and kept as the
//!   base of every search (britney's pseudo-essential set);
//! - every package of a solution found is installable (the solution is its
//!   witness), so most packages are answered from that cache;
//! - the search itself is DPLL with unit propagation, trying first the
//!   candidates already known to be installable. It is complete, so the
//!   verdicts are exact; on Debian archives it almost never backtracks.
//!   Where it would backtrack for long (a dense tangle of alternatives and
//!   conflicts, as random archives have), a CDCL solver takes over the
//!   package (`check_by_cdcl`).

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::dose_reasons::{dose_reasons, NO_CLAUSE};
use crate::universe::{PkgId, Universe};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Installable,
    Broken,
}

/// Why a package is broken, in terms of packages and dependencies. A
/// chain is a list of (package, index of its clause) from the package
/// checked (or the essential root) to the last package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Following `chain`, the last clause has no package that could
    /// satisfy it.
    Missing { chain: Vec<(PkgId, u32)> },
    /// `a` and `b` conflict, pulled in by these dependency chains (each
    /// ends at the clause that pulled its package in; empty for the
    /// package checked itself).
    Conflict {
        a: PkgId,
        b: PkgId,
        chain_a: Vec<(PkgId, u32)>,
        chain_b: Vec<(PkgId, u32)>,
    },
}

const UNSET: i8 = 0;
const TRUE: i8 = 1;
const FALSE: i8 = -1;

const NO_REASON: (PkgId, u32) = (PkgId::MAX, u32::MAX);

/// At most this many causes per broken package: dose lists them all, and
/// a real archive's package has at most three (sid), so this only bounds
/// the odd made-up one with dozens.
const MAX_CAUSES: usize = 16;

/// What every solver of a universe shares, computed once: statically
/// broken packages and the reverse index of clauses. Workers on other
/// cores borrow it instead of each building a copy.
pub struct Prepared {
    /// Broken for lack of candidates; solvers hold these false for good.
    broken: Vec<bool>,
    /// For each package q, the (package, clause) pairs q is a candidate of:
    /// `watchers[watcher_start[q]..watcher_start[q + 1]]`.
    watcher_start: Vec<u32>,
    watchers: Vec<(PkgId, u32)>,
    /// Per statically broken package, the clause dose names as the reason
    /// (`dose_reasons`); computed on the first explanation.
    dose_reasons: OnceLock<Vec<u32>>,
}

impl Prepared {
    pub fn new(universe: &Universe<'_>) -> Prepared {
        // Ids run to the essential root, after the real packages.
        let n = universe.len() + 1;
        let mut counts = vec![0u32; n + 1];
        for p in 0..n as PkgId {
            for ci in 0..universe.clause_count(p) {
                for &q in universe.candidates(p, ci) {
                    counts[q as usize + 1] += 1;
                }
            }
        }
        for i in 1..=n {
            counts[i] += counts[i - 1];
        }
        let watcher_start = counts.clone();
        let mut watchers = vec![(0, 0); watcher_start[n] as usize];
        let mut fill = counts;
        for p in 0..n as PkgId {
            for ci in 0..universe.clause_count(p) {
                for &q in universe.candidates(p, ci) {
                    watchers[fill[q as usize] as usize] = (p, ci);
                    fill[q as usize] += 1;
                }
            }
        }

        // A clause with no candidate breaks its package; a package whose
        // clause has only broken candidates is broken too, to a fixed
        // point: count live candidates per clause, walk back from each
        // package found broken.
        let mut first_clause = Vec::with_capacity(n + 1);
        let mut live = Vec::new();
        for p in 0..n as PkgId {
            first_clause.push(live.len() as u32);
            for ci in 0..universe.clause_count(p) {
                live.push(universe.candidates(p, ci).len() as u32);
            }
        }
        first_clause.push(live.len() as u32);
        let mut broken = vec![false; n];
        let mut work: Vec<PkgId> = (0..n as PkgId)
            .filter(|&p| {
                (0..universe.clause_count(p)).any(|ci| universe.candidates(p, ci).is_empty())
            })
            .collect();
        for &p in &work {
            broken[p as usize] = true;
        }
        while let Some(q) = work.pop() {
            let range = watcher_start[q as usize] as usize..watcher_start[q as usize + 1] as usize;
            for &(p, ci) in &watchers[range] {
                let slot = (first_clause[p as usize] + ci) as usize;
                live[slot] -= 1;
                if live[slot] == 0 && !broken[p as usize] {
                    broken[p as usize] = true;
                    work.push(p);
                }
            }
        }
        Prepared {
            broken,
            watcher_start,
            watchers,
            dose_reasons: OnceLock::new(),
        }
    }

    fn watchers(&self, q: PkgId) -> &[(PkgId, u32)] {
        &self.watchers
            [self.watcher_start[q as usize] as usize..self.watcher_start[q as usize + 1] as usize]
    }
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
    /// Clauses of installed packages that had several candidates when
    /// seen; entries satisfied since are skipped, never dropped (they may
    /// be open again after a backtrack; `open` is restored by length).
    open: Vec<(PkgId, u32)>,
    /// The state every search starts from: the essential root installed
    /// and propagated.
    base_trail: usize,
    base_open: usize,
    /// The essential packages conflict among themselves: nothing installs.
    base_failed: bool,
    last_conflict: Option<(PkgId, PkgId)>,
    last_violated: Option<(PkgId, u32)>,
    budget: u64,
    cdcl: Option<Cdcl>,
}

/// Backtracks per package before the CDCL solver takes over. Measured on
/// sid: one package (ukui-control-center) needs between 2,000 and 10,000,
/// all others a handful; building the CDCL solver costs sid 0.2 s and
/// 25 MB per worker, so the budget stays above what real archives need,
/// while a random dense archive of 4,500 packages still takes 1.1 s (at
/// 50,000 it would take 3.4 s; dose takes 0.7 s).
pub const DEFAULT_BUDGET: u64 = 10_000;

/// The universe as CNF for batsat: a variable per package (and the
/// essential root), `¬p ∨ q1 ∨ … ∨ qn` per dependency, `¬p ∨ ¬q` per
/// conflicting pair, the essential root true.
struct Cdcl {
    solver: batsat::BasicSolver,
    vars: Vec<batsat::Var>,
}

impl Cdcl {
    fn new(universe: &Universe<'_>, prepared: &Prepared) -> Cdcl {
        use batsat::{Lit, SolverInterface};
        let mut solver = batsat::BasicSolver::default();
        let n = universe.len() + 1;
        let vars: Vec<batsat::Var> = (0..n).map(|_| solver.new_var_default()).collect();
        let mut clause = Vec::new();
        for p in 0..n as PkgId {
            let not_p = Lit::new(vars[p as usize], false);
            if prepared.broken[p as usize] {
                clause.clear();
                clause.push(not_p);
                solver.add_clause_reuse(&mut clause);
                continue;
            }
            for ci in 0..universe.clause_count(p) {
                clause.clear();
                clause.push(not_p);
                clause.extend(
                    universe
                        .candidates(p, ci)
                        .iter()
                        .map(|&q| Lit::new(vars[q as usize], true)),
                );
                solver.add_clause_reuse(&mut clause);
            }
            for &q in universe.conflicts(p).iter().filter(|&&q| q > p) {
                clause.clear();
                clause.push(not_p);
                clause.push(Lit::new(vars[q as usize], false));
                solver.add_clause_reuse(&mut clause);
            }
        }
        clause.clear();
        clause.push(Lit::new(vars[universe.essential_root() as usize], true));
        solver.add_clause_reuse(&mut clause);
        Cdcl { solver, vars }
    }
}

impl<'u, 'a> Solver<'u, 'a> {
    pub fn new(universe: &'u Universe<'a>, prepared: &'u Prepared) -> Self {
        let n = universe.len() + 1;
        // Statically broken packages are false in every search; they are
        // never on the trail, so no backtrack resets them.
        let assign = prepared
            .broken
            .iter()
            .map(|&b| if b { FALSE } else { UNSET })
            .collect();
        let mut solver = Solver {
            universe,
            prepared,
            installable: vec![false; n],
            assign,
            reason: vec![NO_REASON; n],
            trail: Vec::new(),
            queue_head: 0,
            open: Vec::new(),
            base_trail: 0,
            base_open: 0,
            base_failed: false,
            last_conflict: None,
            last_violated: None,
            budget: DEFAULT_BUDGET,
            cdcl: None,
        };
        let root = universe.essential_root();
        if prepared.broken[root as usize] {
            solver.base_failed = true;
        } else {
            solver.set(root, TRUE, NO_REASON);
            solver.base_failed = !solver.propagate();
        }
        solver.base_trail = solver.trail.len();
        solver.base_open = solver.open.len();
        solver
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

    fn reset_to_base(&mut self) {
        self.undo_to(self.base_trail);
        self.open.truncate(self.base_open);
        self.last_conflict = None;
        self.last_violated = None;
    }

    /// Looks at one clause of an installed package: satisfied, unit (then
    /// sets its last candidate), open, or violated (false).
    fn visit_clause(&mut self, p: PkgId, ci: u32) -> bool {
        let mut unset = None;
        let mut unset_count = 0;
        for &q in self.universe.candidates(p, ci) {
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
        let universe = self.universe;
        let prepared = self.prepared;
        while self.queue_head < self.trail.len() {
            let q = self.trail[self.queue_head];
            self.queue_head += 1;
            if self.assign[q as usize] == TRUE {
                for &c in universe.conflicts(q) {
                    match self.assign[c as usize] {
                        TRUE => {
                            self.last_conflict = Some((q, c));
                            return false;
                        }
                        UNSET => self.set(c, FALSE, NO_REASON),
                        _ => {}
                    }
                }
                for ci in 0..universe.clause_count(q) {
                    if !self.visit_clause(q, ci) {
                        return false;
                    }
                }
            } else {
                for &(p, ci) in prepared.watchers(q) {
                    if self.assign[p as usize] == TRUE && !self.visit_clause(p, ci) {
                        return false;
                    }
                }
            }
        }
        true
    }

    fn satisfied(&self, p: PkgId, ci: u32) -> bool {
        self.universe
            .candidates(p, ci)
            .iter()
            .any(|&q| self.assign[q as usize] == TRUE)
    }

    /// The newest open clause not yet satisfied, and the candidate to try:
    /// one known installable if any, else the first free one.
    fn pick(&self) -> Option<(PkgId, (PkgId, u32))> {
        for &(p, ci) in self.open.iter().rev() {
            if self.satisfied(p, ci) {
                continue;
            }
            let mut first = None;
            for &q in self.universe.candidates(p, ci) {
                if self.assign[q as usize] != UNSET {
                    continue;
                }
                if self.installable[q as usize] {
                    return Some((q, (p, ci)));
                }
                first.get_or_insert(q);
            }
            if let Some(q) = first {
                return Some((q, (p, ci)));
            }
        }
        None
    }

    /// Whether package `root` is installable.
    pub fn check(&mut self, root: PkgId) -> Verdict {
        if self.base_failed || self.prepared.broken[root as usize] {
            return Verdict::Broken;
        }
        if self.installable[root as usize] {
            return Verdict::Installable;
        }
        self.reset_to_base();
        match self.assign[root as usize] {
            // Excluded by an essential package.
            FALSE => return Verdict::Broken,
            UNSET => self.set(root, TRUE, NO_REASON),
            _ => {}
        }
        // (trail length before the decision, open length, decided package)
        let mut decisions: Vec<(usize, usize, PkgId)> = Vec::new();
        let mut backtracks = 0u64;
        let mut ok = self.propagate();
        loop {
            if !ok {
                let mut resumed = false;
                while let Some((trail_len, open_len, decided)) = decisions.pop() {
                    backtracks += 1;
                    if backtracks > self.budget {
                        self.reset_to_base();
                        return self.check_by_cdcl(root);
                    }
                    self.undo_to(trail_len);
                    self.open.truncate(open_len);
                    self.set(decided, FALSE, NO_REASON);
                    if self.propagate() {
                        resumed = true;
                        break;
                    }
                }
                if !resumed {
                    self.reset_to_base();
                    return Verdict::Broken;
                }
            }
            match self.pick() {
                None => {
                    for &q in &self.trail {
                        if self.assign[q as usize] == TRUE {
                            self.installable[q as usize] = true;
                        }
                    }
                    self.reset_to_base();
                    return Verdict::Installable;
                }
                Some((q, why)) => {
                    decisions.push((self.trail.len(), self.open.len(), q));
                    self.set(q, TRUE, why);
                    ok = self.propagate();
                }
            }
        }
    }

    /// The search for `root` ran out of its backtracking budget: a package
    /// in a thicket of alternatives and conflicts, which chronological
    /// backtracking can take exponential time to get through (Debian
    /// archives have none; a random dense one does). A CDCL solver
    /// (batsat, learning from each conflict) decides it instead, over the
    /// whole universe's clauses, built once per solver on first need and
    /// kept, learnt clauses included, for the next hard package.
    fn check_by_cdcl(&mut self, root: PkgId) -> Verdict {
        use batsat::{lbool, Lit, SolverInterface};
        let universe = self.universe;
        let prepared = self.prepared;
        let cdcl = self
            .cdcl
            .get_or_insert_with(|| Cdcl::new(universe, prepared));
        let root_lit = Lit::new(cdcl.vars[root as usize], true);
        if cdcl.solver.solve_limited(&[root_lit]) != lbool::TRUE {
            return Verdict::Broken;
        }
        // The model is an installation set: all of it is installable.
        for (p, &var) in cdcl.vars.iter().enumerate() {
            if cdcl.solver.value_var(var) == lbool::TRUE {
                self.installable[p] = true;
            }
        }
        Verdict::Installable
    }

    /// Backtracks allowed per package before the CDCL solver takes over
    /// (`DEFAULT_BUDGET`); 0 sends every package that needs one to it,
    /// which is how the tests check that solver against dose too.
    pub fn set_budget(&mut self, backtracks: u64) {
        self.budget = backtracks;
    }

    /// Why `root` is broken: a missing dependency chain when it is broken
    /// for lack of candidates, else a conflicting pair and the chains that
    /// pull each member in, on the branch the search tries first (every
    /// branch fails for a broken package).
    pub fn explain(&mut self, root: PkgId) -> Cause {
        let mut causes = self.explain_all(root);
        if causes.is_empty() {
            Cause::Missing { chain: Vec::new() }
        } else {
            causes.swap_remove(0)
        }
    }

    /// Every cause of a package broken for lack of candidates: each
    /// dependency nothing satisfies that its reason clauses lead to, the
    /// ones dose names (`dose_missing`), at most `MAX_CAUSES`; else the
    /// conflict (or the clause left without candidates) on the branch the
    /// search tries first, then what breaks the alternatives along its
    /// chains that are broken for lack of a dependency.
    pub fn explain_all(&mut self, root: PkgId) -> Vec<Cause> {
        if !self.prepared.broken[root as usize] {
            return self.explain_search(root);
        }
        let mut causes = Vec::new();
        self.dose_missing(root, &[], &mut HashSet::new(), MAX_CAUSES, &mut causes);
        if causes.is_empty() {
            causes.push(Cause::Missing {
                chain: self.missing_chain(root),
            });
        }
        causes
    }

    /// The clause that breaks statically broken `p` in dose's eyes: the
    /// one its propagation found false first (`dose_reasons`); failing
    /// that (the essential pseudo-package), the first clause whose
    /// candidates are all broken.
    fn dose_reason(&self, p: PkgId) -> Option<u32> {
        let universe = self.universe;
        let broken = &self.prepared.broken;
        let reasons = self
            .prepared
            .dose_reasons
            .get_or_init(|| dose_reasons(universe, broken));
        match reasons.get(p as usize) {
            Some(&ci) if ci != NO_CLAUSE => Some(ci),
            _ => (0..universe.clause_count(p)).find(|&ci| {
                universe
                    .candidates(p, ci)
                    .iter()
                    .all(|&q| broken[q as usize])
            }),
        }
    }

    /// The missing dependencies that break statically broken `from`, as
    /// dose-distcheck lists them: from `from` down its reason clauses
    /// (`dose_reason`), through every candidate of each, to the clauses
    /// nothing satisfies, each package once (`seen`, shared between
    /// calls); one cause per such clause, its chain `prefix` and then the
    /// way there, until `out` holds `limit`. Depth-first without
    /// recursion: a chain may be as long as the archive.
    fn dose_missing(
        &self,
        from: PkgId,
        prefix: &[(PkgId, u32)],
        seen: &mut HashSet<PkgId>,
        limit: usize,
        out: &mut Vec<Cause>,
    ) {
        let universe = self.universe;
        if !seen.insert(from) {
            return;
        }
        let Some(ci) = self.dose_reason(from) else {
            return;
        };
        // (package, its reason clause, the candidates left to visit)
        let mut stack: Vec<(PkgId, u32, std::vec::IntoIter<PkgId>)> =
            vec![(from, ci, self.by_alternative(from, ci))];
        while out.len() < limit {
            let Some((p, ci, next)) = stack.last_mut() else {
                break;
            };
            if universe.candidates(*p, *ci).is_empty() {
                let mut chain = prefix.to_vec();
                chain.extend(stack.iter().map(|&(p, ci, _)| (p, ci)));
                out.push(Cause::Missing { chain });
                stack.pop();
                continue;
            }
            match next.next() {
                Some(q) if seen.insert(q) => {
                    if let Some(cq) = self.dose_reason(q) {
                        stack.push((q, cq, self.by_alternative(q, cq)));
                    }
                }
                Some(_) => {}
                None => {
                    stack.pop();
                }
            }
        }
    }

    /// The candidates of a clause by alternative, as its text lists them,
    /// so that causes come in the order a reader of the relation expects.
    fn by_alternative(&self, p: PkgId, ci: u32) -> std::vec::IntoIter<PkgId> {
        let mut candidates: Vec<(u16, PkgId)> = self
            .universe
            .places(p, ci)
            .iter()
            .copied()
            .zip(self.universe.candidates(p, ci).iter().copied())
            .collect();
        candidates.sort_unstable();
        candidates
            .into_iter()
            .map(|(_, q)| q)
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn explain_search(&mut self, root: PkgId) -> Vec<Cause> {
        let essential = self.universe.essential_root();
        if self.prepared.broken[essential as usize] {
            return vec![Cause::Missing {
                chain: self.missing_chain(essential),
            }];
        }
        self.reset_to_base();
        if self.base_failed {
            // Replay the essential root's propagation to find its conflict.
            self.undo_to(0);
            self.open.clear();
            self.set(essential, TRUE, NO_REASON);
        } else if self.assign[root as usize] == FALSE {
            let cause = self.universe.conflicts(root).iter().find_map(|&t| {
                (self.assign[t as usize] == TRUE).then(|| Cause::Conflict {
                    a: root,
                    b: t,
                    chain_a: Vec::new(),
                    chain_b: self.reason_chain(t),
                })
            });
            return vec![cause.unwrap_or(Cause::Missing { chain: Vec::new() })];
        } else if self.assign[root as usize] == UNSET {
            self.set(root, TRUE, NO_REASON);
        }
        loop {
            if !self.propagate() {
                break;
            }
            match self.pick() {
                Some((q, why)) => self.set(q, TRUE, why),
                None => break,
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
        let mut causes = self.missing_alternatives(&cause);
        causes.insert(0, cause);
        if self.base_failed {
            self.undo_to(0);
            self.open.clear();
        } else {
            self.reset_to_base();
        }
        causes
    }

    /// Along the chains of `cause`, the alternatives that were never an
    /// option because they are broken for lack of a dependency: why the
    /// search did not take them (dose lists these too).
    fn missing_alternatives(&self, cause: &Cause) -> Vec<Cause> {
        let chains: Vec<&Vec<(PkgId, u32)>> = match cause {
            Cause::Missing { chain } => vec![chain],
            Cause::Conflict {
                chain_a, chain_b, ..
            } => vec![chain_a, chain_b],
        };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for &(p, ci) in chains.iter().flat_map(|c| c.iter()) {
            for &q in self.universe.candidates(p, ci) {
                if self.prepared.broken[q as usize] && !seen.contains(&q) {
                    let mut prefix = self.reason_chain(p);
                    prefix.push((p, ci));
                    self.dose_missing(q, &prefix, &mut seen, MAX_CAUSES, &mut out);
                }
            }
        }
        out
    }

    /// A clause of an installed package lost all its candidates: each was
    /// excluded by a conflict with an installed package (name the first
    /// such pair), or was broken to begin with (a missing dependency).
    fn violated_cause(&self, p: PkgId, ci: u32) -> Cause {
        let mut chain = self.reason_chain(p);
        chain.push((p, ci));
        let candidates = self.universe.candidates(p, ci);
        for &q in candidates {
            if let Some(&t) = self
                .universe
                .conflicts(q)
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
        if let Some(&q) = candidates
            .iter()
            .find(|&&q| self.prepared.broken[q as usize])
        {
            chain.extend(self.missing_chain(q));
        }
        Cause::Missing { chain }
    }

    /// (package, clause) steps from the root to the clause that pulled `q`
    /// in, following reasons.
    fn reason_chain(&self, q: PkgId) -> Vec<(PkgId, u32)> {
        let mut chain = Vec::new();
        let mut current = q;
        while self.reason[current as usize] != NO_REASON && chain.len() <= self.trail.len() {
            let (p, ci) = self.reason[current as usize];
            chain.push((p, ci));
            current = p;
        }
        chain.reverse();
        chain
    }

    /// For a statically broken package: the first way down its reason
    /// clauses to a clause with no candidate (see `dose_missing`).
    fn missing_chain(&self, from: PkgId) -> Vec<(PkgId, u32)> {
        let mut out = Vec::new();
        self.dose_missing(from, &[], &mut HashSet::new(), 1, &mut out);
        match out.pop() {
            Some(Cause::Missing { chain }) => chain,
            _ => Vec::new(),
        }
    }
}
