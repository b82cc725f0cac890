//! Linearizability of a key-value history, one register per key.
//!
//! Owns the register model (read, write, compare-and-set), the Wing–Gong /
//! Lowe search with memoisation, the per-key split (P-compositionality) and
//! the shrinking of a violation to a small window of recorded operations.
//! It must never report a pass it did not prove: a search that runs out of
//! budget is an Unknown, and a counterexample is only shown once it has been
//! proven non-linearizable on its own.
//!
//! Semantics of outcomes: `ok` operations took effect between invocation and
//! completion; `fail` operations took no effect and are dropped, except a
//! cas refused as a correct answer (`fail` with a status and no error, see
//! [`Op::served`]): it is an observation, at one instant of its interval,
//! that the register did not hold `expect` (and held `result` when the op
//! carries one); `unknown` writes and cas may take effect at any time after
//! invocation, or never; `unknown` reads carry no information and are
//! dropped.

use super::verdict::{CheckDetails, CheckResult, Verdict};
use crate::history::{Op, OpKind, Outcome};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Tuning of the linearizability search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinOptions {
    /// Search steps allowed per key before that key is declared Unknown
    /// (20 M, well under a second: partitions leave many unknown writes,
    /// whose possible orders the search must try).
    /// Shrinking a violation gets a separate budget of the same size.
    pub max_steps_per_key: u64,
    /// Worker threads; 0 means the machine's available parallelism.
    pub threads: usize,
}

impl Default for LinOptions {
    fn default() -> Self {
        LinOptions {
            max_steps_per_key: 20_000_000,
            threads: 0,
        }
    }
}

/// The figures behind a linearizability verdict, as report.json holds them
/// (fields in alphabetical order, the order report.json has always had).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinearizableDetails {
    /// Per key, in key order.
    pub keys: Vec<KeyDetail>,
    pub keys_checked: usize,
    pub keys_failed: usize,
    pub keys_unknown: usize,
    pub max_steps_per_key: u64,
    pub ops_checked: usize,
    pub ops_ignored: IgnoredOps,
    /// Search steps over all keys.
    pub steps: u64,
}

/// Operations the register model leaves out, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IgnoredOps {
    /// Outcome `fail`: took no effect (a cas refused as a correct answer
    /// is checked as an observation, not counted here).
    pub failed: usize,
    /// Appends, probes and operations without a key.
    pub not_register: usize,
    /// Reads with outcome `unknown`: they tell nothing.
    pub unknown_reads: usize,
}

/// One key's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyDetail {
    /// Failing keys: ids of the shrunk window of operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterexample_ids: Option<Vec<u64>>,
    /// Failing keys: whether no operation of the window can be left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterexample_proven_minimal: Option<bool>,
    pub key: String,
    pub ops: usize,
    pub steps: u64,
    pub verdict: Verdict,
}

/// Checks that the read/write/cas operations of `ops` are linearizable,
/// treating each key as an independent register that starts absent.
///
/// With no acknowledged read, write or cas (nor refused cas) the verdict is
/// Unknown: nothing to check.
pub fn check_linearizable(ops: &[Op], opts: &LinOptions) -> CheckResult {
    let split = split_by_key(ops);
    let certain = split
        .keys
        .values()
        .map(|kh| kh.ops.iter().filter(|o| o.certain).count())
        .sum::<usize>();
    let keys: Vec<(&str, KeyHistory)> = split.keys.into_iter().collect();
    let outcomes = check_keys(&keys, opts);

    let mut verdict = Verdict::Pass;
    let mut total_steps = 0u64;
    let mut per_key = Vec::with_capacity(keys.len());
    let mut failing: Vec<(&str, &KeyOutcome)> = Vec::new();
    let mut undecided: Vec<&str> = Vec::new();
    for ((key, kh), outcome) in keys.iter().zip(&outcomes) {
        verdict = verdict.and(outcome.verdict);
        total_steps = total_steps.saturating_add(outcome.steps);
        let window = outcome.window.as_ref();
        per_key.push(KeyDetail {
            counterexample_ids: window.map(|w| w.iter().map(|&i| ops[i].id).collect()),
            counterexample_proven_minimal: window.map(|_| outcome.shrink_complete),
            key: key.to_string(),
            ops: kh.ops.len(),
            steps: outcome.steps,
            verdict: outcome.verdict,
        });
        match outcome.verdict {
            Verdict::Fail => failing.push((key, outcome)),
            Verdict::Unknown => undecided.push(key),
            Verdict::Pass => {}
        }
    }

    // The smallest window among failing keys is the easiest to read.
    let shown = failing
        .iter()
        .filter_map(|(k, o)| o.window.as_ref().map(|w| (*k, w)))
        .min_by_key(|(k, w)| (w.len(), *k));
    let counterexample: Vec<Op> = shown
        .map(|(_, w)| w.iter().map(|&i| ops[i].clone()).collect())
        .unwrap_or_default();

    let checked: usize = keys.iter().map(|(_, kh)| kh.ops.len()).sum();
    let summary = match verdict {
        Verdict::Pass => format!(
            "{checked} operations on {} keys are linearizable ({total_steps} search steps)",
            keys.len()
        ),
        Verdict::Fail => {
            let (key, window) = shown
                .map(|(k, w)| (k.to_string(), w.len()))
                .unwrap_or_default();
            format!(
                "{} of {} keys are not linearizable; key `{key}` fails on a window of {window} operations{}",
                failing.len(),
                keys.len(),
                if undecided.is_empty() {
                    String::new()
                } else {
                    format!("; {} keys undecided", undecided.len())
                }
            )
        }
        Verdict::Unknown => format!(
            "could not decide {} of {} keys within {} steps per key (first: `{}`); the others are linearizable",
            undecided.len(),
            keys.len(),
            opts.max_steps_per_key,
            undecided.first().copied().unwrap_or_default()
        ),
    };

    CheckResult::new(
        verdict,
        summary,
        counterexample,
        CheckDetails::Linearizable(LinearizableDetails {
            keys: per_key,
            keys_checked: keys.len(),
            keys_failed: failing.len(),
            keys_unknown: undecided.len(),
            max_steps_per_key: opts.max_steps_per_key,
            ops_checked: checked,
            ops_ignored: IgnoredOps {
                failed: split.ignored_failed,
                not_register: split.ignored_other,
                unknown_reads: split.ignored_unknown_reads,
            },
            steps: total_steps,
        }),
    )
    .unless_nothing_to_check(certain, "read, write or cas")
}

// ---------------------------------------------------------------------------
// Per-key preparation

/// Register operation kinds the model understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Cas,
    /// A cas refused because its expectation did not hold: reads the
    /// register, requiring it to differ from `expect` (and to equal `value`
    /// unless `value` is [`NO_RESULT`]).
    RefusedCas,
}

/// A refused cas that did not say what it saw.
const NO_RESULT: u32 = u32::MAX;

/// Value id 0 is "absent"; others are interned strings of one key.
const ABSENT: u32 = 0;

/// One register operation of one key, compact for the search.
#[derive(Clone, Copy, Debug)]
struct KOp {
    invoke: u64,
    /// `u64::MAX` when the operation may take effect at any later time.
    complete: u64,
    kind: Kind,
    /// Written value (write, cas) or value returned (read, refused cas).
    value: u32,
    /// cas only: value required before.
    expect: u32,
    /// Ok outcome: must be linearized. Otherwise it may be skipped.
    certain: bool,
    /// Index into the caller's slice.
    src: usize,
}

impl KOp {
    /// The register after this op from `state`, or None if it cannot apply.
    #[inline]
    fn apply(&self, state: u32) -> Option<u32> {
        match self.kind {
            Kind::Read => (state == self.value).then_some(state),
            Kind::Write => Some(self.value),
            Kind::Cas => (state == self.expect).then_some(self.value),
            Kind::RefusedCas => (state != self.expect
                && (self.value == NO_RESULT || state == self.value))
                .then_some(state),
        }
    }

    /// The value this op requires the register to hold, if any.
    fn observes(&self) -> Option<u32> {
        match self.kind {
            Kind::Read => Some(self.value),
            Kind::Cas => Some(self.expect),
            Kind::RefusedCas => (self.value != NO_RESULT).then_some(self.value),
            Kind::Write => None,
        }
    }

    /// Whether the op may change the register.
    fn writes(&self) -> bool {
        match self.kind {
            Kind::Write | Kind::Cas => true,
            Kind::Read | Kind::RefusedCas => false,
        }
    }

    /// A refused cas that did not say what it saw: it holds for every
    /// value but one, so removing any write could change what it sees.
    fn observes_all_but_one(&self) -> bool {
        self.kind == Kind::RefusedCas && self.value == NO_RESULT
    }
}

#[derive(Default)]
struct KeyHistory {
    ops: Vec<KOp>,
}

#[derive(Default)]
struct Split<'a> {
    keys: BTreeMap<&'a str, KeyHistory>,
    ignored_failed: usize,
    ignored_unknown_reads: usize,
    ignored_other: usize,
}

/// Value id of `v` for one key; absent is always [`ABSENT`].
fn intern<'a>(interner: &mut HashMap<&'a str, u32>, v: Option<&'a str>) -> u32 {
    match v {
        None => ABSENT,
        Some(s) => {
            let next = interner.len() as u32 + 1;
            *interner.entry(s).or_insert(next)
        }
    }
}

fn split_by_key(ops: &[Op]) -> Split<'_> {
    let mut split = Split::default();
    let mut interners: HashMap<&str, HashMap<&str, u32>> = HashMap::new();
    for (src, op) in ops.iter().enumerate() {
        let kind = match op.kind {
            OpKind::Read => Kind::Read,
            OpKind::Write => Kind::Write,
            OpKind::Cas => Kind::Cas,
            OpKind::Append | OpKind::Add | OpKind::ReadSet | OpKind::ReadList | OpKind::Probe => {
                split.ignored_other += 1;
                continue;
            }
        };
        let Some(key) = op.key.as_deref() else {
            split.ignored_other += 1;
            continue;
        };
        // A cas refused as a correct answer observed the register.
        let refused_cas = kind == Kind::Cas && op.outcome == Outcome::Fail && op.served();
        let kind = if refused_cas { Kind::RefusedCas } else { kind };
        let certain = match op.outcome {
            Outcome::Ok => true,
            Outcome::Fail if refused_cas => true,
            Outcome::Fail => {
                split.ignored_failed += 1;
                continue;
            }
            Outcome::Unknown if kind == Kind::Read => {
                split.ignored_unknown_reads += 1;
                continue;
            }
            Outcome::Unknown => false,
        };
        let interner = interners.entry(key).or_default();
        let (value, expect) = match kind {
            Kind::Read => (intern(interner, op.result.as_deref()), ABSENT),
            Kind::Write => (intern(interner, op.value.as_deref()), ABSENT),
            Kind::Cas => (
                intern(interner, op.value.as_deref()),
                intern(interner, op.expect.as_deref()),
            ),
            // `result` absent means "not said" here, not "absent".
            Kind::RefusedCas => (
                op.result
                    .as_deref()
                    .map_or(NO_RESULT, |r| intern(interner, Some(r))),
                intern(interner, op.expect.as_deref()),
            ),
        };
        split.keys.entry(key).or_default().ops.push(KOp {
            invoke: op.invoke_ns,
            // A completion before the invocation is a recording error; the
            // permissive reading keeps the checker from inventing violations.
            complete: if certain {
                op.complete_ns.max(op.invoke_ns)
            } else {
                u64::MAX
            },
            kind,
            value,
            expect,
            certain,
            src,
        });
    }
    split
}

// ---------------------------------------------------------------------------
// Parallel driver

struct KeyOutcome {
    verdict: Verdict,
    steps: u64,
    /// Failing keys: caller indices of the shrunk window, in invocation order.
    window: Option<Vec<usize>>,
    shrink_complete: bool,
}

fn check_keys(keys: &[(&str, KeyHistory)], opts: &LinOptions) -> Vec<KeyOutcome> {
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    }
    .clamp(1, keys.len().max(1));

    // Largest keys first so one big key does not start last and run alone.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(keys[i].1.ops.len()));

    let run_one = |i: usize| check_one_key(&keys[i].1.ops, opts.max_steps_per_key);
    let results: Mutex<Vec<Option<KeyOutcome>>> =
        Mutex::new((0..keys.len()).map(|_| None).collect());
    if threads == 1 {
        let mut out = Vec::with_capacity(keys.len());
        for i in 0..keys.len() {
            out.push(run_one(i));
        }
        return out;
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = order.get(n) else { break };
                let outcome = run_one(i);
                // A poisoned lock only means another worker panicked; the
                // slot data is still valid.
                let mut guard = results.lock().unwrap_or_else(|e| e.into_inner());
                guard[i] = Some(outcome);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|o| {
            // Every index was handed to exactly one worker; a missing slot
            // would mean a worker died, which is not a pass.
            o.unwrap_or(KeyOutcome {
                verdict: Verdict::Unknown,
                steps: 0,
                window: None,
                shrink_complete: false,
            })
        })
        .collect()
}

fn check_one_key(ops: &[KOp], budget: u64) -> KeyOutcome {
    let (found, steps) = search(ops, budget);
    match found {
        Found::Linearizable => KeyOutcome {
            verdict: Verdict::Pass,
            steps,
            window: None,
            shrink_complete: false,
        },
        Found::OutOfBudget => KeyOutcome {
            verdict: Verdict::Unknown,
            steps,
            window: None,
            shrink_complete: false,
        },
        Found::Violation => {
            let (window, complete) = shrink(ops, budget);
            let mut src: Vec<usize> = window.iter().map(|&i| ops[i].src).collect();
            src.sort_unstable();
            KeyOutcome {
                verdict: Verdict::Fail,
                steps,
                window: Some(src),
                shrink_complete: complete,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The search

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    Linearizable,
    Violation,
    OutOfBudget,
}

/// Hasher for cache keys that are already uniformly random (Zobrist sums).
#[derive(Default)]
struct ZobristHasher(u64);

impl Hasher for ZobristHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 ^= (v as u64) ^ ((v >> 64) as u64);
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0 ^ u64::from(v)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Cache = HashSet<(u128, u32), BuildHasherDefault<ZobristHasher>>;

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

/// Decides whether `ops` (one key) is linearizable within `budget` steps.
///
/// Just-in-time linearization over a doubly linked list of call and return
/// events in time order: any call before the first pending return may be
/// linearized next. Linearized ops are unlinked; reaching a return whose op
/// is still pending means backtracking. The cache remembers every (set of
/// linearized ops, register value) already explored, the set being
/// identified by a 128-bit Zobrist sum so each step costs O(1) memory.
/// Uncertain ops return at +infinity: reaching such a return means every
/// certain op is placed, and the uncertain rest are taken as never applied.
fn search(ops: &[KOp], budget: u64) -> (Found, u64) {
    let n = ops.len();
    if n == 0 {
        return (Found::Linearizable, 0);
    }
    if n >= (u32::MAX / 2) as usize {
        return (Found::OutOfBudget, 0);
    }
    // Events: (time, is_return, op). Calls sort before returns at equal
    // times, so touching intervals count as concurrent (the permissive side).
    let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        events.push((op.invoke, false, i as u32));
        events.push((op.complete, true, i as u32));
    }
    events.sort_unstable();

    let len = 2 * n + 1;
    let mut next = vec![NIL; len];
    let mut prev = vec![NIL; len];
    let mut ev_op = vec![0u32; len];
    let mut ev_ret = vec![false; len];
    let mut op_call = vec![0u32; n];
    let mut op_ret = vec![0u32; n];
    for (k, &(_, is_ret, op)) in events.iter().enumerate() {
        let e = (k + 1) as u32;
        ev_op[e as usize] = op;
        ev_ret[e as usize] = is_ret;
        if is_ret {
            op_ret[op as usize] = e;
        } else {
            op_call[op as usize] = e;
        }
        prev[e as usize] = e - 1;
        next[(e - 1) as usize] = e;
    }

    let mut seed = 0x5EED_u64;
    let zobrist: Vec<u128> = (0..n)
        .map(|_| (u128::from(splitmix64(&mut seed)) << 64) | u128::from(splitmix64(&mut seed)))
        .collect();

    let unlink = |next: &mut [u32], prev: &mut [u32], e: u32| {
        let (p, q) = (prev[e as usize], next[e as usize]);
        next[p as usize] = q;
        if q != NIL {
            prev[q as usize] = p;
        }
    };
    let relink = |next: &mut [u32], prev: &mut [u32], e: u32| {
        let (p, q) = (prev[e as usize], next[e as usize]);
        next[p as usize] = e;
        if q != NIL {
            prev[q as usize] = e;
        }
    };

    let mut cache = Cache::default();
    let mut stack: Vec<(u32, u32)> = Vec::new();
    let mut state = ABSENT;
    let mut hash: u128 = 0;
    let mut steps = 0u64;
    let mut entry = next[HEAD as usize];
    loop {
        if entry == NIL {
            return (Found::Linearizable, steps);
        }
        steps += 1;
        if steps > budget {
            return (Found::OutOfBudget, steps - 1);
        }
        let o = ev_op[entry as usize];
        let op = &ops[o as usize];
        if !ev_ret[entry as usize] {
            if let Some(after) = op.apply(state) {
                let h = hash ^ zobrist[o as usize];
                if cache.insert((h, after)) {
                    stack.push((o, state));
                    state = after;
                    hash = h;
                    unlink(&mut next, &mut prev, op_call[o as usize]);
                    unlink(&mut next, &mut prev, op_ret[o as usize]);
                    entry = next[HEAD as usize];
                    continue;
                }
            }
            entry = next[entry as usize];
        } else {
            if !op.certain {
                return (Found::Linearizable, steps);
            }
            let Some((back, before)) = stack.pop() else {
                return (Found::Violation, steps);
            };
            state = before;
            hash ^= zobrist[back as usize];
            relink(&mut next, &mut prev, op_ret[back as usize]);
            relink(&mut next, &mut prev, op_call[back as usize]);
            entry = next[op_call[back as usize] as usize];
        }
    }
}

// ---------------------------------------------------------------------------
// Shrinking a violation

/// The ops of `window` as they stand when the history is cut at time `cut`:
/// ops invoked later vanish, ops completing later become uncertain (reads
/// among them carry no information and vanish).
fn materialize(ops: &[KOp], window: &[usize], cut: u64) -> Vec<KOp> {
    window
        .iter()
        .filter_map(|&i| {
            let mut op = ops[i];
            if op.invoke > cut {
                return None;
            }
            if op.complete > cut {
                if !op.writes() {
                    return None;
                }
                op.certain = false;
                op.complete = u64::MAX;
            }
            Some(op)
        })
        .collect()
}

/// Shrinks a non-linearizable key history to a small window that is itself
/// non-linearizable and whose failure implies the whole history's.
///
/// Two sound moves only. (1) Cutting at time t, with ops still running at t
/// made uncertain: any linearization of the whole history, truncated at t,
/// linearizes the cut, so a failing cut proves the whole fails; failure is
/// monotone in t, hence a binary search for the earliest t. (2) Removing ops
/// whose effect nobody left observes: reads always; writes and cas when no
/// remaining read returns, no remaining cas expects, and no remaining refused
/// cas saw, a value they wrote (and no remaining refused cas that did not
/// say what it saw, since it observes every value but one) —
/// deleting them from a linearization of the larger window leaves every
/// remaining op seeing the same value, so the smaller window failing proves
/// the larger one fails. Removing any write freely would be unsound: it can
/// "explain" a read by a write that was dropped.
///
/// Returns indices into `ops` and whether shrinking finished within budget.
fn shrink(ops: &[KOp], budget: u64) -> (Vec<usize>, bool) {
    let left = std::cell::Cell::new(budget);
    let fails = |cand: &[KOp]| -> bool {
        if left.get() == 0 {
            return false;
        }
        let (found, steps) = search(cand, left.get());
        left.set(left.get().saturating_sub(steps.max(1)));
        found == Found::Violation
    };

    let all: Vec<usize> = (0..ops.len()).collect();
    let mut cuts: Vec<u64> = ops
        .iter()
        .filter(|o| o.certain)
        .map(|o| o.complete)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let (mut lo, mut hi) = (0usize, cuts.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fails(&materialize(ops, &all, cuts[mid])) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let cut = cuts.get(hi).copied().unwrap_or(u64::MAX);
    let mut window: Vec<usize> = all
        .into_iter()
        .filter(|&i| {
            let o = &ops[i];
            o.invoke <= cut && (o.complete <= cut || o.writes())
        })
        .collect();

    let removable = |window: &[usize], from: usize, to: usize| -> bool {
        let rest = || window[..from].iter().chain(&window[to..]);
        let observed: HashSet<u32> = rest().filter_map(|&i| ops[i].observes()).collect();
        let blind = rest().any(|&i| ops[i].observes_all_but_one());
        window[from..to]
            .iter()
            .all(|&i| !ops[i].writes() || (!blind && !observed.contains(&ops[i].value)))
    };

    let mut chunk = (window.len() / 2).max(1);
    loop {
        let mut removed_any = false;
        let mut start = 0;
        while start < window.len() && window.len() > 1 {
            let end = (start + chunk).min(window.len());
            if removable(&window, start, end) {
                let cand: Vec<usize> = window[..start]
                    .iter()
                    .chain(&window[end..])
                    .copied()
                    .collect();
                if fails(&materialize(ops, &cand, cut)) {
                    window = cand;
                    removed_any = true;
                    continue;
                }
            }
            start = end;
        }
        if left.get() == 0 {
            return (window, false);
        }
        if chunk == 1 {
            if !removed_any {
                return (window, true);
            }
        } else {
            chunk /= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;
    use proptest::prelude::*;

    fn op(id: u64, kind: OpKind, key: &str, t: (u64, u64), outcome: Outcome) -> Op {
        Op {
            id,
            client: id as u32,
            node: NodeId((id % 3) as usize),
            kind,
            key: Some(key.to_string()),
            value: None,
            expect: None,
            invoke_ns: t.0,
            complete_ns: t.1,
            outcome,
            result: None,
            values: None,
            status: None,
            error: None,
        }
    }
    fn write(id: u64, key: &str, v: &str, t: (u64, u64), outcome: Outcome) -> Op {
        Op {
            value: Some(v.to_string()),
            ..op(id, OpKind::Write, key, t, outcome)
        }
    }
    fn read(id: u64, key: &str, v: Option<&str>, t: (u64, u64)) -> Op {
        Op {
            result: v.map(str::to_string),
            values: None,
            ..op(id, OpKind::Read, key, t, Outcome::Ok)
        }
    }
    fn cas(
        id: u64,
        key: &str,
        from: Option<&str>,
        to: &str,
        t: (u64, u64),
        outcome: Outcome,
    ) -> Op {
        Op {
            expect: from.map(str::to_string),
            value: Some(to.to_string()),
            ..op(id, OpKind::Cas, key, t, outcome)
        }
    }

    fn check(ops: &[Op]) -> CheckResult {
        check_linearizable(ops, &LinOptions::default())
    }

    fn lin(r: &CheckResult) -> &LinearizableDetails {
        r.details.linearizable().expect("linearizable details")
    }

    fn ids(r: &CheckResult) -> Vec<u64> {
        r.counterexample.iter().map(|o| o.id).collect()
    }

    #[test]
    fn sequential_and_overlapping_history_is_linearizable() {
        let ops = [
            read(0, "x", None, (0, 5)),
            write(1, "x", "1", (10, 20), Outcome::Ok),
            // Overlaps the write: may see either value.
            read(2, "x", None, (12, 14)),
            read(3, "x", Some("1"), (15, 25)),
            cas(4, "x", Some("1"), "2", (30, 40), Outcome::Ok),
            read(5, "x", Some("2"), (41, 42)),
            write(6, "y", "a", (0, 100), Outcome::Ok),
        ];
        let r = check(&ops);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert!(r.counterexample.is_empty());
        assert_eq!(lin(&r).keys_checked, 2);
    }

    #[test]
    fn stale_read_is_a_violation_with_a_small_window() {
        let mut ops = Vec::new();
        // Plenty of correct traffic first, to prove the window shrinks.
        for i in 0..40u64 {
            let t = i * 100;
            ops.push(write(
                2 * i,
                "x",
                &format!("v{i}"),
                (t, t + 10),
                Outcome::Ok,
            ));
            ops.push(read(
                2 * i + 1,
                "x",
                Some(&format!("v{i}")),
                (t + 20, t + 30),
            ));
        }
        // A read after v39 was acknowledged returns v38.
        ops.push(read(80, "x", Some("v38"), (4000, 4010)));
        let r = check(&ops);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(ids(&r), vec![76, 78, 80], "{:#?}", r.counterexample);
        assert_eq!(lin(&r).keys[0].counterexample_proven_minimal, Some(true));
    }

    #[test]
    fn lost_update_through_cas_is_a_violation() {
        // Two clients both move 0 -> 1 successfully: one cas must have failed.
        let ops = [
            write(0, "x", "0", (0, 1), Outcome::Ok),
            cas(1, "x", Some("0"), "1", (10, 20), Outcome::Ok),
            cas(2, "x", Some("0"), "1", (15, 25), Outcome::Ok),
        ];
        let r = check(&ops);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(ids(&r), vec![0, 1, 2]);
        // With the second one refused (409) it is fine.
        let mut ok = ops.clone();
        ok[2].outcome = Outcome::Fail;
        assert_eq!(check(&ok).verdict, Verdict::Pass);
    }

    #[test]
    fn unknown_write_that_later_appears_is_linearizable() {
        let ops = [
            write(0, "x", "1", (0, 1), Outcome::Ok),
            write(1, "x", "2", (10, 20), Outcome::Unknown),
            read(2, "x", Some("1"), (30, 31)),
            // Applied long after its client gave up.
            read(3, "x", Some("2"), (40, 41)),
        ];
        let r = check(&ops);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        // But it cannot appear before it was invoked.
        let early = [read(4, "x", Some("2"), (2, 3)), ops[1].clone()];
        assert_eq!(check(&early).verdict, Verdict::Fail);
    }

    #[test]
    fn unknown_write_that_never_appears_is_linearizable() {
        let ops = [
            write(0, "x", "1", (0, 1), Outcome::Ok),
            write(1, "x", "2", (10, 20), Outcome::Unknown),
            cas(2, "x", Some("3"), "4", (10, 20), Outcome::Unknown),
            read(3, "x", Some("1"), (30, 31)),
            read(4, "x", Some("1"), (40, 41)),
        ];
        let r = check(&ops);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
    }

    #[test]
    fn concurrent_writes_may_land_in_either_order() {
        for last in ["1", "2"] {
            let ops = [
                write(0, "x", "1", (0, 10), Outcome::Ok),
                write(1, "x", "2", (5, 15), Outcome::Ok),
                read(2, "x", Some(last), (20, 21)),
                read(3, "x", Some(last), (22, 23)),
            ];
            let r = check(&ops);
            assert_eq!(r.verdict, Verdict::Pass, "{last}: {}", r.summary);
        }
        // Both orders cannot be observed one after the other.
        let ops = [
            write(0, "x", "1", (0, 10), Outcome::Ok),
            write(1, "x", "2", (5, 15), Outcome::Ok),
            read(2, "x", Some("1"), (20, 21)),
            read(3, "x", Some("2"), (22, 23)),
        ];
        assert_eq!(check(&ops).verdict, Verdict::Fail);
    }

    #[test]
    fn failed_ops_and_unknown_reads_carry_no_effect() {
        let mut unknown_read = read(2, "x", Some("zzz"), (0, 50));
        unknown_read.outcome = Outcome::Unknown;
        let ops = [
            write(0, "x", "1", (0, 1), Outcome::Ok),
            write(1, "x", "2", (2, 3), Outcome::Fail),
            unknown_read,
            read(3, "x", Some("1"), (10, 11)),
        ];
        let r = check(&ops);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(lin(&r).ops_ignored.failed, 1);
        assert_eq!(lin(&r).ops_ignored.unknown_reads, 1);
    }

    fn refused(mut o: Op, saw: Option<&str>) -> Op {
        o.outcome = Outcome::Fail;
        o.status = Some(412);
        o.result = saw.map(str::to_string);
        o
    }

    #[test]
    fn a_refused_cas_is_an_observation() {
        // write 1, cas 1->2 refused, read 1: the cas saw a value != 1 while
        // only 1 was there.
        let ops = [
            write(0, "x", "1", (0, 1), Outcome::Ok),
            refused(cas(1, "x", Some("1"), "2", (2, 3), Outcome::Fail), None),
            read(2, "x", Some("1"), (4, 5)),
        ];
        let r = check(&ops);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(ids(&r), vec![0, 1]);
        assert_eq!(lin(&r).ops_ignored.failed, 0);
        // A refusal with an error (the node did not answer) is no observation.
        let mut errored = ops.clone();
        errored[1].error = Some("connect failed".into());
        errored[1].status = None;
        let r = check(&errored);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(lin(&r).ops_ignored.failed, 1);
        // Concurrent with a write of 3, the refusal is fine...
        let racing = [
            write(0, "x", "1", (0, 1), Outcome::Ok),
            write(1, "x", "3", (2, 10), Outcome::Ok),
            refused(
                cas(2, "x", Some("1"), "2", (2, 10), Outcome::Fail),
                Some("3"),
            ),
            read(3, "x", Some("3"), (11, 12)),
        ];
        assert_eq!(check(&racing).verdict, Verdict::Pass);
        // ...but not when it says it saw a value nobody wrote.
        let mut lying = racing.clone();
        lying[2].result = Some("9".into());
        assert_eq!(check(&lying).verdict, Verdict::Fail);
        // cas from absent refused while the key was absent.
        let absent = [
            refused(cas(0, "x", None, "1", (0, 1), Outcome::Fail), None),
            read(1, "x", None, (2, 3)),
        ];
        assert_eq!(check(&absent).verdict, Verdict::Fail);
        let present = [
            write(0, "x", "5", (0, 1), Outcome::Ok),
            refused(cas(1, "x", None, "1", (2, 3), Outcome::Fail), Some("5")),
        ];
        assert_eq!(check(&present).verdict, Verdict::Pass);
    }

    #[test]
    fn nothing_acknowledged_is_nothing_to_check() {
        let ops = [
            write(0, "x", "1", (0, 1), Outcome::Unknown),
            write(1, "x", "2", (2, 3), Outcome::Fail),
        ];
        for history in [&ops[..], &[]] {
            let r = check(history);
            assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
            assert!(r.nothing_to_check);
            assert!(r.summary.starts_with("nothing to check"), "{}", r.summary);
        }
        // One acknowledged read is something to check.
        let r = check(&[read(0, "x", None, (0, 1))]);
        assert_eq!(r.verdict, Verdict::Pass);
        assert!(!r.nothing_to_check);
    }

    #[test]
    fn exhausted_budget_is_unknown_never_pass() {
        // Many concurrent unknown writes make the search wide; a tiny budget
        // cannot finish it.
        let mut ops: Vec<Op> = (0..12)
            .map(|i| write(i, "x", &i.to_string(), (0, 10), Outcome::Unknown))
            .collect();
        ops.push(read(99, "x", Some("11"), (20, 21)));
        ops.push(read(100, "x", Some("nope"), (30, 31)));
        let opts = LinOptions {
            max_steps_per_key: 5,
            threads: 1,
        };
        let r = check_linearizable(&ops, &opts);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert_eq!(lin(&r).keys_unknown, 1);
        assert_eq!(check(&ops).verdict, Verdict::Fail);
    }

    #[test]
    fn keys_are_checked_independently_on_many_threads() {
        let mut ops = Vec::new();
        for k in 0..20u64 {
            let key = format!("k{k}");
            ops.push(write(3 * k, &key, "a", (0, 10), Outcome::Ok));
            ops.push(read(3 * k + 1, &key, Some("a"), (20, 30)));
            // Key k7 reads a value nobody wrote.
            let v = if k == 7 { "b" } else { "a" };
            ops.push(read(3 * k + 2, &key, Some(v), (40, 50)));
        }
        let opts = LinOptions {
            threads: 4,
            ..LinOptions::default()
        };
        let r = check_linearizable(&ops, &opts);
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(lin(&r).keys_failed, 1);
        assert_eq!(ids(&r), vec![23]);
        let text = serde_json::to_string(&r).unwrap_or_default();
        assert!(text.contains("\"verdict\":\"fail\""), "{text}");
    }

    // ------------------------------------------------------------------
    // Brute-force oracle: every real-time-respecting order of the certain
    // ops plus any subset of the uncertain ones, run against one register
    // per key.

    /// Must take effect: acknowledged, or a cas refused as a correct answer.
    fn certain(o: &Op) -> bool {
        o.outcome == Outcome::Ok
            || (o.kind == OpKind::Cas && o.outcome == Outcome::Fail && o.served())
    }

    fn oracle(ops: &[Op]) -> bool {
        let ops: Vec<&Op> = ops
            .iter()
            .filter(|o| matches!(o.kind, OpKind::Read | OpKind::Write | OpKind::Cas))
            .filter(|o| certain(o) || (o.outcome == Outcome::Unknown && o.kind != OpKind::Read))
            .collect();
        let end = |o: &Op| {
            if certain(o) {
                o.complete_ns
            } else {
                u64::MAX
            }
        };
        fn go(
            ops: &[&Op],
            end: &dyn Fn(&Op) -> u64,
            placed: u32,
            regs: &mut BTreeMap<String, Option<String>>,
        ) -> bool {
            let all_certain = ops
                .iter()
                .enumerate()
                .all(|(i, o)| !certain(o) || placed & (1 << i) != 0);
            if all_certain {
                return true;
            }
            for (i, o) in ops.iter().enumerate() {
                if placed & (1 << i) != 0 {
                    continue;
                }
                let blocked = ops
                    .iter()
                    .enumerate()
                    .any(|(j, p)| placed & (1 << j) == 0 && j != i && end(p) < o.invoke_ns);
                if blocked {
                    continue;
                }
                let key = o.key.clone().unwrap_or_default();
                let cur = regs.get(&key).cloned().flatten();
                let refused = o.outcome == Outcome::Fail;
                let next = match o.kind {
                    OpKind::Read if cur == o.result => cur.clone(),
                    OpKind::Write => o.value.clone(),
                    OpKind::Cas
                        if refused
                            && cur != o.expect
                            && (o.result.is_none() || cur == o.result) =>
                    {
                        cur.clone()
                    }
                    OpKind::Cas if !refused && cur == o.expect => o.value.clone(),
                    _ => continue,
                };
                regs.insert(key.clone(), next);
                let ok = go(ops, end, placed | (1 << i), regs);
                regs.insert(key, cur);
                if ok {
                    return true;
                }
            }
            false
        }
        go(&ops, &end, 0, &mut BTreeMap::new())
    }

    fn arb_value() -> impl Strategy<Value = Option<String>> {
        prop_oneof![1 => Just(None), 3 => (0..3u8).prop_map(|v| Some(v.to_string()))]
    }

    fn arb_outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![6 => Just(Outcome::Ok), 1 => Just(Outcome::Fail), 2 => Just(Outcome::Unknown)]
    }

    /// Arbitrary small histories: mostly not linearizable.
    fn arb_history() -> impl Strategy<Value = Vec<Op>> {
        let one = (
            0..3u8,
            0..2u8,
            arb_value(),
            arb_value(),
            0..12u64,
            0..6u64,
            arb_outcome(),
            any::<bool>(),
            arb_value(),
        );
        prop::collection::vec(one, 0..=7).prop_map(|raw| {
            raw.into_iter()
                .enumerate()
                .map(
                    |(i, (kind, key, a, b, start, len, outcome, answered, saw))| {
                        let kind = [OpKind::Read, OpKind::Write, OpKind::Cas][kind as usize];
                        let mut o = op(
                            i as u64,
                            kind,
                            ["x", "y"][key as usize],
                            (start, start + len),
                            outcome,
                        );
                        match kind {
                            OpKind::Read => o.result = a,
                            OpKind::Write => o.value = a,
                            _ => {
                                o.expect = a;
                                o.value = b;
                                // A refusal the node answered: an observation.
                                if outcome == Outcome::Fail && answered {
                                    o.status = Some(412);
                                    o.result = saw;
                                }
                            }
                        }
                        o
                    },
                )
                .collect()
        })
    }

    /// Histories produced by a register with a linearization point inside
    /// each op, then possibly corrupted in one read: mostly linearizable.
    fn arb_simulated() -> impl Strategy<Value = Vec<Op>> {
        let one = (
            0..3u8,
            0..2u8,
            arb_value(),
            0..12u64,
            0..6u64,
            0..6u64,
            arb_outcome(),
            any::<bool>(),
        );
        (
            prop::collection::vec(one, 0..=7),
            any::<bool>(),
            0..7usize,
            arb_value(),
        )
            .prop_map(|(raw, corrupt, which, bad)| {
                let mut ops: Vec<(u64, Op, bool)> = raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, (kind, key, v, start, len, at, outcome, applied))| {
                        let kind = [OpKind::Read, OpKind::Write, OpKind::Cas][kind as usize];
                        let mut o = op(
                            i as u64,
                            kind,
                            ["x", "y"][key as usize],
                            (start, start + len),
                            outcome,
                        );
                        o.value = v;
                        // Unknown ops may land after their completion.
                        let point = if outcome == Outcome::Unknown {
                            start + at * 2
                        } else {
                            start + at.min(len)
                        };
                        (point, o, applied)
                    })
                    .collect();
                ops.sort_by_key(|(p, o, _)| (*p, o.id));
                let mut regs: BTreeMap<String, Option<String>> = BTreeMap::new();
                for (_, o, applied) in ops.iter_mut() {
                    let key = o.key.clone().unwrap_or_default();
                    let cur = regs.get(&key).cloned().flatten();
                    match o.kind {
                        OpKind::Read => o.result = cur,
                        OpKind::Write => {
                            if o.outcome == Outcome::Ok
                                || (o.outcome == Outcome::Unknown && *applied)
                            {
                                regs.insert(key, o.value.clone());
                            }
                        }
                        _ => {
                            // Expect the current value half of the time.
                            o.expect = if *applied {
                                cur.clone()
                            } else {
                                Some("2".into())
                            };
                            let matches = o.expect == cur;
                            if !matches && o.outcome == Outcome::Ok {
                                // Refused as a correct answer, sometimes
                                // saying what it saw.
                                o.outcome = Outcome::Fail;
                                o.status = Some(412);
                                if o.id % 2 == 0 {
                                    o.result = cur.clone();
                                }
                            }
                            let lands = o.outcome == Outcome::Ok
                                || (o.outcome == Outcome::Unknown && matches && *applied);
                            if lands && matches {
                                regs.insert(key, o.value.clone());
                            }
                        }
                    }
                }
                let mut ops: Vec<Op> = ops.into_iter().map(|(_, o, _)| o).collect();
                ops.sort_by_key(|o| o.id);
                let len = ops.len().max(1);
                if let Some(o) = ops.get_mut(which % len).filter(|_| corrupt) {
                    match o.kind {
                        OpKind::Read => o.result = bad,
                        // Moving a write's window shifts its effect in time.
                        _ => {
                            o.invoke_ns += 6;
                            o.complete_ns += 6;
                        }
                    }
                }
                ops
            })
    }

    fn agrees_with_oracle(ops: &[Op]) -> Result<(), TestCaseError> {
        let opts = LinOptions {
            threads: 2,
            ..LinOptions::default()
        };
        let r = check_linearizable(ops, &opts);
        let judged = ops
            .iter()
            .any(|o| matches!(o.kind, OpKind::Read | OpKind::Write | OpKind::Cas) && certain(o));
        let expected = match (oracle(ops), judged) {
            (false, _) => Verdict::Fail,
            (true, true) => Verdict::Pass,
            // Honest: nothing acknowledged is nothing to check.
            (true, false) => Verdict::Unknown,
        };
        prop_assert_eq!(r.verdict, expected, "{}\n{:#?}", r.summary, ops);
        if r.verdict == Verdict::Fail {
            // The counterexample must be part of the history and fail alone.
            prop_assert!(!r.counterexample.is_empty());
            for c in &r.counterexample {
                prop_assert!(ops.contains(c));
            }
            prop_assert!(
                !oracle(&r.counterexample),
                "counterexample passes: {:#?}",
                r.counterexample
            );
        } else {
            prop_assert!(r.counterexample.is_empty());
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn checker_agrees_with_brute_force_on_arbitrary_histories(ops in arb_history()) {
            agrees_with_oracle(&ops)?;
        }

        #[test]
        fn checker_agrees_with_brute_force_on_simulated_histories(ops in arb_simulated()) {
            agrees_with_oracle(&ops)?;
        }
    }

    #[test]
    fn generated_histories_exercise_both_verdicts() {
        let strategies = vec![
            ("arbitrary", arb_history().boxed()),
            ("simulated", arb_simulated().boxed()),
        ];
        for (name, pass, fail) in crate::check::testing::verdict_mix(strategies, |h| oracle(h)) {
            assert!(
                pass > 20 && fail > 20,
                "{name}: {pass} linearizable, {fail} not"
            );
        }
    }

    #[test]
    fn oracle_sanity() {
        // The oracle itself must be able to say no and yes.
        assert!(oracle(&[
            write(0, "x", "1", (0, 1), Outcome::Ok),
            read(1, "x", Some("1"), (2, 3))
        ]));
        assert!(!oracle(&[
            write(0, "x", "1", (0, 1), Outcome::Ok),
            read(1, "x", None, (2, 3))
        ]));
        assert!(oracle(&[
            write(0, "x", "1", (0, 1), Outcome::Unknown),
            read(1, "x", None, (2, 3))
        ]));
    }
}
