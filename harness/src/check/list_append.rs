//! The list-append checker: every read of a key is a prefix of one order of
//! that key's appends, and that order agrees with real time.
//!
//! Owns the per-key candidate order (the longest read), the structural
//! checks of each read against it, and one sweep in time order that finds
//! every pair of operations real time orders one way and the list the other.
//! O(n log n) per key plus the size of the reads. No acknowledged append
//! and no value read is Unknown, never a pass.
//!
//! Each key's operations are placed on one line: the append of the i-th
//! value of the order at rank 2i, a read of length L at rank 2L+1 (after
//! the L-th append, before the next), acknowledged appends no read holds
//! after every value read (in completion order); `unknown` appends no read
//! holds may never have applied and are left out, refused ones (`fail`) took
//! no effect. A correct list could have produced the reads exactly when no
//! operation that completed before another began has a higher rank than it.
//! Violations, each with the operations that show it:
//! - **duplicate**: a value twice in one read;
//! - **phantom**: a value no append ever had, or whose every append was
//!   refused;
//! - **incompatible orders**: a read that is not a prefix of the longest;
//! - **went backwards**: a read shorter than one that completed before it
//!   began;
//! - **seen before appended**: a read that completed before a value's
//!   append was invoked holds it;
//! - **out of order**: an acknowledged append completed before another
//!   append was invoked, yet comes after it in the list (or is missing from
//!   reads that hold the later one);
//! - **lost** (an acknowledged append missed by a read that began after it
//!   completed, and by every later read) fails; **stale** (missed like that,
//!   then held by a read that began later) is counted and does not fail, as
//!   in the set checker. Final reads (`FinalState.lists`) are reads after
//!   every operation.

use super::collection::{gather, ReadAt};
use super::verdict::{CheckDetails, CheckResult, Verdict};
use crate::history::{Op, OpKind, Outcome};
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Most entries listed per category in `details`; the counts do not stop.
const DETAIL_CAP: usize = 50;

/// The figures behind a list-append verdict, as report.json holds them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListAppendDetails {
    pub keys_checked: usize,
    /// Keyed append operations (any outcome).
    pub appends: usize,
    /// Appends acknowledged (`ok`).
    pub acknowledged: usize,
    /// Acknowledged reads of the history.
    pub reads: usize,
    /// Lists read back after the final heal (node and key).
    pub final_reads: usize,
    /// Length of the longest read, per key with one.
    pub longest: BTreeMap<String, usize>,
    pub lost_count: usize,
    pub lost: Vec<LostAppend>,
    pub stale_count: usize,
    pub stale: Vec<StaleAppend>,
    /// Every other violation.
    pub problems_count: usize,
    pub problems: Vec<ListProblem>,
    /// Reads not acknowledged, records without key, value or values.
    pub ops_ignored: usize,
}

/// An acknowledged append that reads stopped holding for good.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LostAppend {
    pub key: String,
    pub value: String,
    pub op_id: u64,
    pub completed_ns: u64,
    /// The latest read that began after the append completed and missed it.
    pub missed_by: ReadAt,
    /// The latest read that held it, if any.
    pub last_seen: Option<ReadAt>,
}

/// An acknowledged append missed by a read that began after it completed,
/// held again by a later read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StaleAppend {
    pub key: String,
    pub value: String,
    pub op_id: u64,
    pub missed_by: ReadAt,
    pub seen_again_by: ReadAt,
}

/// A violation other than a lost append.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ListProblem {
    /// A value appears twice in one read.
    Duplicate {
        key: String,
        value: String,
        read: ReadAt,
    },
    /// A value no append put there (`refused_append_ids`: its appends, all
    /// refused; empty when nobody appended it).
    Phantom {
        key: String,
        value: String,
        read: ReadAt,
        refused_append_ids: Vec<u64>,
    },
    /// `read` is not a prefix of `longest`; they differ at `index`.
    IncompatibleOrders {
        key: String,
        read: ReadAt,
        longest: ReadAt,
        index: usize,
    },
    /// `read` began after `earlier` completed but holds fewer values.
    WentBackwards {
        key: String,
        read: ReadAt,
        len: usize,
        earlier: ReadAt,
        earlier_len: usize,
    },
    /// `read` completed before the append of `value` was invoked.
    SeenBeforeAppended {
        key: String,
        value: String,
        append_op_id: u64,
        read: ReadAt,
    },
    /// Append `first` completed before `then` was invoked, yet the list
    /// holds `then` first (or holds `then` without `first`).
    OutOfOrder {
        key: String,
        first_op_id: u64,
        first_value: String,
        then_op_id: u64,
        then_value: String,
    },
}

impl ListProblem {
    pub fn kind(&self) -> &'static str {
        match self {
            ListProblem::Duplicate { .. } => "duplicate",
            ListProblem::Phantom { .. } => "phantom",
            ListProblem::IncompatibleOrders { .. } => "incompatible orders",
            ListProblem::WentBackwards { .. } => "went backwards",
            ListProblem::SeenBeforeAppended { .. } => "seen before appended",
            ListProblem::OutOfOrder { .. } => "out of order",
        }
    }
}

/// An operation on the line of ranks.
#[derive(Clone, Copy)]
enum Placed {
    Append(usize),
    Read(usize),
}

#[derive(Clone, Copy)]
struct Item {
    invoke: u64,
    complete: u64,
    rank: u64,
    what: Placed,
}

/// The highest-ranked operation completed so far, of one sort.
#[derive(Clone, Copy, Default)]
struct Best(Option<(u64, usize)>);

impl Best {
    fn offer(&mut self, rank: u64, i: usize) {
        if self.0.is_none_or(|(r, _)| rank > r) {
            self.0 = Some((rank, i));
        }
    }
    fn above(self, rank: u64) -> Option<usize> {
        self.0.filter(|&(r, _)| r > rank).map(|(_, i)| i)
    }
}

/// Checks the keyed appends and list reads of `ops` and the final lists.
pub fn check_list_append(
    ops: &[Op],
    final_lists: &BTreeMap<NodeId, BTreeMap<String, Vec<String>>>,
) -> CheckResult {
    let g = gather(ops, final_lists, OpKind::Append, OpKind::ReadList);
    let mut d = ListAppendDetails {
        keys_checked: g.keys.len(),
        reads: g.reads,
        final_reads: g.final_reads,
        ops_ignored: g.ignored,
        ..ListAppendDetails::default()
    };
    let mut known = 0usize;
    let mut shown_lost: Option<Vec<usize>> = None;
    let mut shown_other: Option<Vec<usize>> = None;
    let mut problem = |d: &mut ListAppendDetails, p: ListProblem, show: Vec<usize>| {
        d.problems_count += 1;
        if d.problems.len() < DETAIL_CAP {
            d.problems.push(p);
        }
        if shown_other.is_none() {
            shown_other = Some(show);
        }
    };

    for (&key, k) in &g.keys {
        let reads = &k.reads;
        let mut appended: HashMap<&str, Vec<usize>> = HashMap::new();
        for &i in &k.writes {
            if let Some(v) = ops[i].value.as_deref() {
                d.appends += 1;
                if ops[i].outcome == Outcome::Ok {
                    d.acknowledged += 1;
                    known += 1;
                }
                appended.entry(v).or_default().push(i);
            }
        }
        let read_src = |r: usize| reads[r].src.into_iter().collect::<Vec<usize>>();

        // 1. Each read alone: duplicates, phantoms.
        let mut phantoms_seen: HashSet<&str> = HashSet::new();
        let mut values_seen: HashSet<&str> = HashSet::new();
        for (r, read) in reads.iter().enumerate() {
            let mut inside: HashSet<&str> = HashSet::with_capacity(read.values.len());
            let mut dup_reported = false;
            for v in read.values {
                let v = v.as_str();
                values_seen.insert(v);
                if !inside.insert(v) && !dup_reported {
                    dup_reported = true;
                    let p = ListProblem::Duplicate {
                        key: key.to_string(),
                        value: v.to_string(),
                        read: read.at.clone(),
                    };
                    problem(&mut d, p, read_src(r));
                }
                let by = appended.get(v).map(Vec::as_slice).unwrap_or_default();
                let applied = by.iter().any(|&i| ops[i].outcome != Outcome::Fail);
                if !applied && phantoms_seen.insert(v) {
                    let p = ListProblem::Phantom {
                        key: key.to_string(),
                        value: v.to_string(),
                        read: read.at.clone(),
                        refused_append_ids: by.iter().map(|&i| ops[i].id).collect(),
                    };
                    let mut show = read_src(r);
                    show.extend(by);
                    problem(&mut d, p, show);
                }
            }
        }
        known += values_seen.len();

        // 2. The candidate order: the longest read; every read its prefix.
        let longest = (0..reads.len())
            .rev()
            .max_by_key(|&r| reads[r].values.len());
        let cand: &[String] = longest.map_or(&[], |r| reads[r].values);
        if let Some(l) = longest {
            d.longest.insert(key.to_string(), cand.len());
            for (r, read) in reads.iter().enumerate() {
                let n = read.values.len();
                if let Some(index) = (0..n).find(|&i| read.values[i] != cand[i]) {
                    let p = ListProblem::IncompatibleOrders {
                        key: key.to_string(),
                        read: read.at.clone(),
                        longest: reads[l].at.clone(),
                        index,
                    };
                    let mut show = read_src(r);
                    show.extend(read_src(l));
                    problem(&mut d, p, show);
                }
            }
        }
        let mut pos: HashMap<&str, usize> = HashMap::with_capacity(cand.len());
        for (i, v) in cand.iter().enumerate() {
            pos.entry(v.as_str()).or_insert(i);
        }
        let m = cand.len() as u64;

        // 3. The line of ranks. Reads that are not prefixes failed already.
        let is_prefix = |r: usize| {
            let v = reads[r].values;
            v.len() <= cand.len() && v == &cand[..v.len()]
        };
        let mut items: Vec<Item> = Vec::with_capacity(k.writes.len() + reads.len());
        let mut unseen_ok: Vec<usize> = Vec::new();
        for &i in &k.writes {
            let op = &ops[i];
            let Some(v) = op.value.as_deref() else {
                continue;
            };
            let complete = match op.outcome {
                Outcome::Fail => continue,
                Outcome::Ok => op.complete_ns.max(op.invoke_ns),
                Outcome::Unknown => u64::MAX,
            };
            match (pos.get(v), op.outcome) {
                (Some(&p), _) => items.push(Item {
                    invoke: op.invoke_ns,
                    complete,
                    rank: 2 * (p as u64 + 1),
                    what: Placed::Append(i),
                }),
                (None, Outcome::Ok) => unseen_ok.push(i),
                (None, Outcome::Unknown | Outcome::Fail) => {}
            }
        }
        unseen_ok.sort_by_key(|&i| (ops[i].complete_ns.max(ops[i].invoke_ns), ops[i].id));
        for (j, &i) in unseen_ok.iter().enumerate() {
            items.push(Item {
                invoke: ops[i].invoke_ns,
                complete: ops[i].complete_ns.max(ops[i].invoke_ns),
                rank: 2 * (m + 1 + j as u64),
                what: Placed::Append(i),
            });
        }
        // Per length: the latest read of that length, for lost and stale.
        let mut latest_of_len: Vec<Option<usize>> = vec![None; cand.len() + 1];
        for r in (0..reads.len()).filter(|&r| is_prefix(r)) {
            let len = reads[r].values.len();
            items.push(Item {
                invoke: reads[r].invoke,
                complete: reads[r].complete,
                rank: 2 * len as u64 + 1,
                what: Placed::Read(r),
            });
            // Reads are in invocation order: the last one wins.
            latest_of_len[len] = Some(r);
        }

        // 4. One sweep: what completed before each operation began.
        let mut by_complete: Vec<usize> = (0..items.len()).collect();
        by_complete.sort_by_key(|&i| items[i].complete);
        let mut by_invoke: Vec<usize> = (0..items.len()).collect();
        by_invoke.sort_by_key(|&i| items[i].invoke);
        let (mut best_append, mut best_read) = (Best::default(), Best::default());
        let mut j = 0;
        for &y in &by_invoke {
            let it = items[y];
            while let Some(&x) = by_complete
                .get(j)
                .filter(|&&x| items[x].complete < it.invoke)
            {
                match items[x].what {
                    Placed::Append(_) => best_append.offer(items[x].rank, x),
                    Placed::Read(_) => best_read.offer(items[x].rank, x),
                }
                j += 1;
            }
            match it.what {
                Placed::Read(r) => {
                    if let Some(Placed::Read(e)) = best_read.above(it.rank).map(|x| items[x].what) {
                        let p = ListProblem::WentBackwards {
                            key: key.to_string(),
                            read: reads[r].at.clone(),
                            len: reads[r].values.len(),
                            earlier: reads[e].at.clone(),
                            earlier_len: reads[e].values.len(),
                        };
                        let mut show = read_src(e);
                        show.extend(read_src(r));
                        problem(&mut d, p, show);
                    }
                    // A missed append is judged per append below.
                }
                Placed::Append(a) => {
                    let value = ops[a].value.clone().unwrap_or_default();
                    if let Some(Placed::Read(e)) = best_read.above(it.rank).map(|x| items[x].what) {
                        let p = ListProblem::SeenBeforeAppended {
                            key: key.to_string(),
                            value,
                            append_op_id: ops[a].id,
                            read: reads[e].at.clone(),
                        };
                        let mut show = read_src(e);
                        show.push(a);
                        problem(&mut d, p, show);
                    } else if let Some(Placed::Append(f)) =
                        best_append.above(it.rank).map(|x| items[x].what)
                    {
                        let p = ListProblem::OutOfOrder {
                            key: key.to_string(),
                            first_op_id: ops[f].id,
                            first_value: ops[f].value.clone().unwrap_or_default(),
                            then_op_id: ops[a].id,
                            then_value: value,
                        };
                        problem(&mut d, p, vec![f, a]);
                    }
                }
            }
        }

        // 5. Acknowledged appends missed by a read that began after they
        // completed. `holds[p]`: the latest read holding position p;
        // `misses[p]`: the latest read missing it.
        let n = cand.len();
        let by_invoke_of = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(x), Some(y)) => Some(if reads[y].invoke >= reads[x].invoke {
                y
            } else {
                x
            }),
            (x, None) => x,
            (None, y) => y,
        };
        let mut misses: Vec<Option<usize>> = vec![None; n + 1];
        let mut acc = None;
        for len in 0..=n {
            acc = by_invoke_of(acc, latest_of_len[len]);
            misses[len] = acc; // reads of length <= len miss position len
        }
        let mut holds: Vec<Option<usize>> = vec![None; n + 1];
        let mut acc = None;
        for p in (0..n).rev() {
            acc = by_invoke_of(acc, latest_of_len[p + 1]);
            holds[p] = acc; // reads of length > p hold position p
        }
        for &i in &k.writes {
            let op = &ops[i];
            if op.outcome != Outcome::Ok {
                continue;
            }
            let Some(v) = op.value.as_deref() else {
                continue;
            };
            let done = op.complete_ns.max(op.invoke_ns);
            let (miss, hold) = match pos.get(v) {
                Some(&p) => (misses[p], holds[p]),
                None => (misses[n], None),
            };
            let Some(miss) = miss.filter(|&r| reads[r].invoke > done) else {
                continue;
            };
            match hold.filter(|&h| reads[h].invoke > reads[miss].invoke) {
                Some(again) => {
                    d.stale_count += 1;
                    if d.stale.len() < DETAIL_CAP {
                        d.stale.push(StaleAppend {
                            key: key.to_string(),
                            value: v.to_string(),
                            op_id: op.id,
                            missed_by: reads[miss].at.clone(),
                            seen_again_by: reads[again].at.clone(),
                        });
                    }
                }
                None => {
                    d.lost_count += 1;
                    if d.lost.len() < DETAIL_CAP {
                        d.lost.push(LostAppend {
                            key: key.to_string(),
                            value: v.to_string(),
                            op_id: op.id,
                            completed_ns: done,
                            missed_by: reads[miss].at.clone(),
                            last_seen: hold.map(|h| reads[h].at.clone()),
                        });
                    }
                    if shown_lost.is_none() {
                        let mut show = vec![i];
                        show.extend(hold.and_then(|h| reads[h].src));
                        show.extend(reads[miss].src);
                        shown_lost = Some(show);
                    }
                }
            }
        }
    }

    let failed = d.lost_count + d.problems_count;
    let verdict = if failed > 0 {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    let summary = if failed > 0 {
        let mut parts = Vec::new();
        if let Some(l) = d.lost.first() {
            parts.push(format!(
                "{} acknowledged appends lost (first: `{}` of key `{}`, missed by {})",
                d.lost_count, l.value, l.key, l.missed_by
            ));
        }
        if let Some(p) = d.problems.first() {
            parts.push(format!(
                "{} other violations (first: {} on key `{}`)",
                d.problems_count,
                p.kind(),
                problem_key(p)
            ));
        }
        parts.join("; ")
    } else {
        format!(
            "{} reads of {} keys are prefixes of one order of their appends, consistent with real time ({} acknowledged appends, {} stale)",
            d.reads + d.final_reads,
            d.keys_checked,
            d.acknowledged,
            d.stale_count
        )
    };
    let mut shown = shown_lost.or(shown_other).unwrap_or_default();
    shown.sort_unstable();
    shown.dedup();
    let counterexample: Vec<Op> = shown.into_iter().map(|i| ops[i].clone()).collect();
    CheckResult::new(
        verdict,
        summary,
        counterexample,
        CheckDetails::ListAppend(d),
    )
    .unless_nothing_to_check(known, "append, nor value read")
}

fn problem_key(p: &ListProblem) -> &str {
    match p {
        ListProblem::Duplicate { key, .. }
        | ListProblem::Phantom { key, .. }
        | ListProblem::IncompatibleOrders { key, .. }
        | ListProblem::WentBackwards { key, .. }
        | ListProblem::SeenBeforeAppended { key, .. }
        | ListProblem::OutOfOrder { key, .. } => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op(id: u64, kind: OpKind, t: (u64, u64), outcome: Outcome) -> Op {
        Op {
            id,
            client: id as u32,
            node: NodeId(0),
            kind,
            key: Some("l".into()),
            value: None,
            expect: None,
            invoke_ns: t.0,
            complete_ns: t.1,
            outcome,
            result: None,
            values: None,
            status: Some(200),
            error: None,
        }
    }
    fn append(id: u64, v: &str, t: (u64, u64), outcome: Outcome) -> Op {
        Op {
            value: Some(v.into()),
            ..op(id, OpKind::Append, t, outcome)
        }
    }
    fn read(id: u64, vs: &[&str], t: (u64, u64)) -> Op {
        Op {
            values: Some(vs.iter().map(|v| v.to_string()).collect()),
            ..op(id, OpKind::ReadList, t, Outcome::Ok)
        }
    }
    type Finals = BTreeMap<NodeId, BTreeMap<String, Vec<String>>>;
    fn finals(per_node: &[&[&str]]) -> Finals {
        per_node
            .iter()
            .enumerate()
            .map(|(n, vs)| {
                (
                    NodeId(n),
                    BTreeMap::from([("l".to_string(), vs.iter().map(|v| v.to_string()).collect())]),
                )
            })
            .collect()
    }
    fn check(ops: &[Op]) -> CheckResult {
        check_list_append(ops, &BTreeMap::new())
    }
    fn details(r: &CheckResult) -> &ListAppendDetails {
        r.details.list_append().expect("list-append details")
    }
    fn kinds(r: &CheckResult) -> Vec<&'static str> {
        details(r).problems.iter().map(ListProblem::kind).collect()
    }

    #[test]
    fn a_correct_history_passes() {
        let ops = [
            append(0, "1", (0, 10), Outcome::Ok),
            append(1, "2", (5, 15), Outcome::Ok),
            read(2, &["2"], (6, 7)), // the concurrent appends landed 2 first
            read(3, &["2", "1"], (20, 21)),
            append(4, "3", (30, 40), Outcome::Unknown),
            read(5, &["2", "1"], (50, 51)),
            append(6, "4", (60, 61), Outcome::Fail),
        ];
        let r = check_list_append(&ops, &finals(&[&["2", "1", "3"]]));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(details(&r).longest.get("l"), Some(&3));
        // A keyless append is the ledger's: ignored here.
        let mut ledger = append(7, "x", (0, 1), Outcome::Ok);
        ledger.key = None;
        let r = check(&[ledger]);
        assert_eq!(details(&r).appends, 0);
    }

    #[test]
    fn each_violation_kind_is_named() {
        let cases: Vec<(Vec<Op>, &str)> = vec![
            (
                vec![
                    append(0, "1", (0, 1), Outcome::Ok),
                    read(1, &["1", "1"], (2, 3)),
                ],
                "duplicate",
            ),
            (
                vec![
                    append(0, "1", (0, 1), Outcome::Ok),
                    read(1, &["1", "9"], (2, 3)),
                ],
                "phantom",
            ),
            (
                vec![
                    append(0, "1", (0, 1), Outcome::Fail),
                    read(1, &["1"], (2, 3)),
                ],
                "phantom",
            ),
            (
                vec![
                    append(0, "1", (0, 10), Outcome::Ok),
                    append(1, "2", (0, 10), Outcome::Ok),
                    read(2, &["1", "2"], (20, 21)),
                    read(3, &["2"], (20, 21)),
                ],
                "incompatible orders",
            ),
            (
                vec![
                    append(0, "1", (0, 10), Outcome::Unknown),
                    read(1, &["1"], (20, 21)),
                    read(2, &[], (30, 31)),
                ],
                "went backwards",
            ),
            (
                vec![read(0, &["1"], (0, 1)), append(1, "1", (5, 6), Outcome::Ok)],
                "seen before appended",
            ),
            (
                vec![
                    append(0, "1", (0, 1), Outcome::Ok),
                    append(1, "2", (5, 6), Outcome::Ok),
                    read(2, &["2", "1"], (10, 11)),
                ],
                "out of order",
            ),
            (
                vec![
                    append(0, "1", (0, 1), Outcome::Ok),
                    append(1, "2", (5, 6), Outcome::Unknown),
                    read(2, &["2"], (3, 11)),
                ],
                "out of order",
            ),
        ];
        for (ops, kind) in cases {
            let r = check(&ops);
            assert_eq!(r.verdict, Verdict::Fail, "{kind}: {}", r.summary);
            assert!(
                kinds(&r).contains(&kind),
                "{kind}: {:?}",
                details(&r).problems
            );
            assert!(!r.counterexample.is_empty(), "{kind}");
        }
    }

    #[test]
    fn appends_missed_for_good_are_lost_and_missed_once_stale() {
        let lost = [
            append(0, "1", (0, 10), Outcome::Ok),
            append(1, "2", (0, 10), Outcome::Ok),
            read(2, &["2"], (20, 21)),
        ];
        let r = check(&lost);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(details(&r).lost_count, 1);
        assert_eq!(details(&r).lost[0].value, "1");
        let ids: Vec<u64> = r.counterexample.iter().map(|o| o.id).collect();
        assert_eq!(ids, vec![0, 2]);
        // Missed by a node after the heal: lost.
        let r = check_list_append(&lost[..2], &finals(&[&["2", "1"], &["2"]]));
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        let stale = [
            append(0, "1", (0, 10), Outcome::Ok),
            read(1, &[], (20, 21)),
            read(2, &["1"], (30, 31)),
        ];
        let r = check(&stale);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(details(&r).stale_count, 1);
    }

    #[test]
    fn nothing_acknowledged_is_nothing_to_check() {
        let ops = [
            append(0, "1", (0, 1), Outcome::Unknown),
            read(1, &[], (2, 3)),
        ];
        let r = check(&ops);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert!(r.nothing_to_check);
        assert_eq!(check(&[]).verdict, Verdict::Unknown);
    }

    // ------------------------------------------------------------------
    // Brute-force oracle: every order of the appends (unknown ones may be
    // left out) and reads that respects real time, run against one list;
    // every read must return the list as it stands.

    fn oracle(ops: &[Op], finals: &Finals) -> bool {
        struct E {
            invoke: u64,
            end: u64,
            certain: bool,
            append: Option<String>,
            read: Vec<String>,
        }
        let mut es: Vec<E> = Vec::new();
        for o in ops {
            let outcome = o.outcome;
            match (o.kind, outcome) {
                (OpKind::Append, Outcome::Ok | Outcome::Unknown) => es.push(E {
                    invoke: o.invoke_ns,
                    end: if o.outcome == Outcome::Ok {
                        o.complete_ns
                    } else {
                        u64::MAX
                    },
                    certain: o.outcome == Outcome::Ok,
                    append: o.value.clone(),
                    read: Vec::new(),
                }),
                (OpKind::ReadList, Outcome::Ok) => es.push(E {
                    invoke: o.invoke_ns,
                    end: o.complete_ns,
                    certain: true,
                    append: None,
                    read: o.values.clone().unwrap_or_default(),
                }),
                (OpKind::Append, Outcome::Fail)
                | (OpKind::ReadList, Outcome::Fail | Outcome::Unknown) => {}
                (
                    OpKind::Read
                    | OpKind::Write
                    | OpKind::Cas
                    | OpKind::Add
                    | OpKind::ReadSet
                    | OpKind::Probe,
                    Outcome::Ok | Outcome::Fail | Outcome::Unknown,
                ) => {}
            }
        }
        for k in finals.values() {
            if let Some(v) = k.get("l") {
                es.push(E {
                    invoke: u64::MAX,
                    end: u64::MAX,
                    certain: true,
                    append: None,
                    read: v.clone(),
                });
            }
        }
        fn go(
            es: &[E],
            placed: u32,
            list: &mut Vec<String>,
            seen: &mut HashSet<(u32, Vec<String>)>,
        ) -> bool {
            if es
                .iter()
                .enumerate()
                .all(|(i, e)| !e.certain || placed & (1 << i) != 0)
            {
                return true;
            }
            if !seen.insert((placed, list.clone())) {
                return false;
            }
            for (i, e) in es.iter().enumerate() {
                if placed & (1 << i) != 0 {
                    continue;
                }
                let blocked = es
                    .iter()
                    .enumerate()
                    .any(|(j, p)| placed & (1 << j) == 0 && j != i && p.end < e.invoke);
                if blocked {
                    continue;
                }
                match &e.append {
                    Some(v) => {
                        list.push(v.clone());
                        let ok = go(es, placed | (1 << i), list, seen);
                        list.pop();
                        if ok {
                            return true;
                        }
                    }
                    None => {
                        if e.read == *list && go(es, placed | (1 << i), list, seen) {
                            return true;
                        }
                    }
                }
            }
            false
        }
        go(&es, 0, &mut Vec::new(), &mut HashSet::new())
    }

    fn arb_outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![5 => Just(Outcome::Ok), 1 => Just(Outcome::Fail), 2 => Just(Outcome::Unknown)]
    }

    /// Arbitrary small histories: unique appended values 0..6, reads of
    /// random sequences of them (and of a value never appended).
    fn arb_history() -> impl Strategy<Value = (Vec<Op>, Finals)> {
        let one = (
            any::<bool>(),
            prop::collection::vec(0..4u8, 0..4),
            0..12u64,
            0..6u64,
            arb_outcome(),
        );
        (
            prop::collection::vec(one, 0..=6),
            prop::collection::vec(prop::collection::vec(0..4u8, 0..4), 0..=1),
        )
            .prop_map(|(raw, fin)| {
                let name = |v: u8| {
                    if v == 3 {
                        "z".to_string()
                    } else {
                        v.to_string()
                    }
                };
                let ops = raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, (is_append, vs, start, len, outcome))| {
                        let t = (start, start + len);
                        if is_append {
                            append(i as u64, &(i % 3).to_string(), t, outcome)
                        } else {
                            let vs: Vec<String> = vs.into_iter().map(name).collect();
                            let vs: Vec<&str> = vs.iter().map(String::as_str).collect();
                            read(i as u64, &vs, t)
                        }
                    })
                    .collect::<Vec<Op>>();
                // Keep appended values unique: the first append of each wins.
                let mut used = HashSet::new();
                let ops = ops
                    .into_iter()
                    .filter(|o| o.kind != OpKind::Append || used.insert(o.value.clone()))
                    .collect();
                let fin: Vec<Vec<String>> = fin
                    .into_iter()
                    .map(|vs| vs.into_iter().map(name).collect())
                    .collect();
                let fin: Vec<Vec<&str>> = fin
                    .iter()
                    .map(|v| v.iter().map(String::as_str).collect())
                    .collect();
                let refs: Vec<&[&str]> = fin.iter().map(Vec::as_slice).collect();
                (ops, finals(&refs))
            })
    }

    /// A list with an effect point inside each operation, possibly buggy:
    /// from some time on, reads drop one value, or swap the first two.
    fn arb_simulated() -> impl Strategy<Value = (Vec<Op>, Finals)> {
        let one = (
            any::<bool>(),
            0..12u64,
            0..6u64,
            0..6u64,
            arb_outcome(),
            any::<bool>(),
        );
        (
            prop::collection::vec(one, 0..=6),
            0..3u8,
            0..6usize,
            0..20u64,
            any::<bool>(),
        )
            .prop_map(|(raw, bug, victim, from, final_read)| {
                let mut ops: Vec<(u64, Op, bool)> = raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, (is_append, start, len, at, outcome, applied))| {
                        let t = (start, start + len);
                        let point = if outcome == Outcome::Unknown {
                            start + at * 2
                        } else {
                            start + at.min(len)
                        };
                        let o = if is_append {
                            append(i as u64, &i.to_string(), t, outcome)
                        } else {
                            read(i as u64, &[], t)
                        };
                        (point, o, applied)
                    })
                    .collect();
                ops.sort_by_key(|(p, o, _)| (*p, o.id));
                let victim = victim.to_string();
                let view = |list: &[String], p: u64| -> Vec<String> {
                    let mut v: Vec<String> = list.to_vec();
                    if p >= from {
                        match bug {
                            1 => v.retain(|x| *x != victim),
                            2 if v.len() >= 2 => v.swap(0, 1),
                            _ => {}
                        }
                    }
                    v
                };
                let mut list: Vec<String> = Vec::new();
                for (p, o, applied) in ops.iter_mut() {
                    if o.kind == OpKind::Append {
                        if o.outcome == Outcome::Ok || (o.outcome == Outcome::Unknown && *applied) {
                            list.extend(o.value.clone());
                        }
                    } else {
                        o.values = Some(view(&list, *p));
                    }
                }
                let mut ops: Vec<Op> = ops.into_iter().map(|(_, o, _)| o).collect();
                ops.sort_by_key(|o| o.id);
                let last = view(&list, u64::MAX);
                let last: Vec<&str> = last.iter().map(String::as_str).collect();
                let fin = if final_read {
                    finals(&[&last])
                } else {
                    Finals::new()
                };
                (ops, fin)
            })
    }

    fn agrees_with_oracle(ops: &[Op], fin: &Finals) -> Result<(), TestCaseError> {
        let r = check_list_append(ops, fin);
        let d = details(&r);
        let violated = r.verdict == Verdict::Fail || d.stale_count > 0;
        prop_assert_eq!(
            violated,
            !oracle(ops, fin),
            "{}\n{:#?}\n{:#?}\n{:#?}",
            r.summary,
            d,
            ops,
            fin
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn checker_agrees_with_brute_force_on_arbitrary_histories((ops, fin) in arb_history()) {
            agrees_with_oracle(&ops, &fin)?;
        }

        #[test]
        fn checker_agrees_with_brute_force_on_simulated_histories((ops, fin) in arb_simulated()) {
            agrees_with_oracle(&ops, &fin)?;
        }
    }

    #[test]
    fn generated_histories_exercise_both_verdicts() {
        let strategies = vec![
            ("arbitrary", arb_history().boxed()),
            ("simulated", arb_simulated().boxed()),
        ];
        for (name, pass, fail) in
            crate::check::testing::verdict_mix(strategies, |(ops, fin)| oracle(ops, fin))
        {
            assert!(pass > 20 && fail > 20, "{name}: {pass} pass, {fail} fail");
        }
    }

    /// A store that loses an acknowledged append on one node must be caught.
    #[test]
    fn a_store_that_drops_an_append_is_caught() {
        let mut ops = Vec::new();
        let mut list: Vec<String> = Vec::new();
        for i in 0..3000u64 {
            let t = i * 10;
            if i % 2 == 0 {
                list.push(i.to_string());
                ops.push(append(i, &i.to_string(), (t, t + 5), Outcome::Ok));
            } else {
                let gone = i > 2000;
                let vs: Vec<&str> = list
                    .iter()
                    .map(String::as_str)
                    .filter(|v| !(gone && *v == "1000"))
                    .collect();
                ops.push(read(i, &vs, (t, t + 5)));
            }
        }
        let r = check(&ops);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert!(kinds(&r).contains(&"incompatible orders"), "{}", r.summary);
    }
}
