//! The set checker: Jepsen's set-full over `add` and `read-set`, per key.
//!
//! Owns what each element's history says: when it became known present (its
//! add acknowledged, or a read saw it), and which reads began after that yet
//! missed it. Judged per element, as Jepsen's set-full does: it does not ask
//! whether all the reads of a key fit one order together. It never counts a
//! pass on nothing: no element known present is Unknown.
//!
//! Rules (times are invocation and completion; a read that completed before
//! another began precedes it; final reads come after every operation):
//! - **lost** (fails): an element known present (acknowledged add
//!   completed, or a read that saw it completed) is missed by a read that
//!   began after that, and no read that began later than the latest such
//!   read has it again. Final reads count: a node that misses an
//!   acknowledged element after the heal lost it.
//! - **stale** (does not fail, as in Jepsen): missed like that, but a read
//!   that began later has it again.
//! - **phantom** (fails): a read holds an element no add ever had, or whose
//!   every add was refused (`fail`: took no effect).
//! - **seen before added** (fails): a read that completed before the
//!   element's add was invoked holds it.
//! - An `unknown` add is never required; seen, it is no phantom.

use super::collection::{gather, CRead, ReadAt};
use super::verdict::{CheckDetails, CheckResult, Verdict};
use crate::history::{Op, OpKind, Outcome};
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Most entries listed per category in `details`; the counts do not stop.
const DETAIL_CAP: usize = 50;
/// Most missing reads listed for one lost element.
const MISSED_CAP: usize = 5;

/// The figures behind a set verdict, as report.json holds them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SetDetails {
    pub keys_checked: usize,
    /// Add operations (any outcome).
    pub adds: usize,
    /// Adds acknowledged (`ok`).
    pub acknowledged: usize,
    /// Acknowledged reads of the history.
    pub reads: usize,
    /// Sets read back after the final heal (node and key).
    pub final_reads: usize,
    /// Elements known present at some time (acknowledged or seen).
    pub elements_known: usize,
    /// Acknowledged adds no read began after.
    pub never_read: usize,
    pub lost_count: usize,
    pub lost: Vec<LostElement>,
    pub stale_count: usize,
    pub stale: Vec<StaleElement>,
    pub phantom_count: usize,
    pub phantoms: Vec<PhantomElement>,
    pub seen_before_added_count: usize,
    pub seen_before_added: Vec<EarlyElement>,
    /// Reads not acknowledged, records without key, value or values.
    pub ops_ignored: usize,
}

/// An element known present, then missed by every read from some time on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LostElement {
    pub key: String,
    pub element: String,
    /// The acknowledged add, if any (else the element was seen after an
    /// `unknown` add).
    pub add_op_id: Option<u64>,
    /// When it was known present: its add completed, or a read that saw it.
    pub known_ns: u64,
    /// The start of the first read after `known_ns` that held it.
    pub stable_ns: Option<u64>,
    /// The start of the first read after which no read held it.
    pub lost_ns: u64,
    /// The last read that held it.
    pub last_seen: Option<ReadAt>,
    /// Reads that missed it after it was known (the first few).
    pub missed_by: Vec<ReadAt>,
    pub missed_by_count: usize,
}

/// An element missed by a read that began after it was known present, then
/// seen again by a later read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StaleElement {
    pub key: String,
    pub element: String,
    pub known_ns: u64,
    /// Reads that missed it after it was known.
    pub stale_reads: usize,
    /// The latest of them.
    pub missed_by: ReadAt,
    /// A read that began later and held it again.
    pub seen_again_by: ReadAt,
}

/// An element read that no add put there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhantomElement {
    pub key: String,
    pub element: String,
    /// The first read that held it.
    pub read: ReadAt,
    /// Adds of it that were refused (empty: nobody ever added it).
    pub refused_add_ids: Vec<u64>,
}

/// An element held by a read that completed before its add was invoked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyElement {
    pub key: String,
    pub element: String,
    pub add_op_id: u64,
    pub read: ReadAt,
}

/// One element's adds.
#[derive(Default)]
struct Adds {
    /// Earliest invocation among adds that may have applied.
    invoke: Option<u64>,
    /// Earliest completion among acknowledged adds, and that add.
    ok: Option<(u64, usize)>,
    /// The first add that may have applied.
    first: Option<usize>,
    refused: Vec<usize>,
}

/// Checks the set operations of `ops` and the final sets (per node, per key).
pub fn check_set(
    ops: &[Op],
    final_sets: &BTreeMap<NodeId, BTreeMap<String, Vec<String>>>,
) -> CheckResult {
    let g = gather(ops, final_sets, OpKind::Add, OpKind::ReadSet);
    let mut d = SetDetails {
        keys_checked: g.keys.len(),
        reads: g.reads,
        final_reads: g.final_reads,
        ops_ignored: g.ignored,
        ..SetDetails::default()
    };
    // The ops shown: of the first violation found, lost before the others.
    let mut shown_lost: Option<Vec<usize>> = None;
    let mut shown_other: Option<Vec<usize>> = None;

    for (&key, k) in &g.keys {
        let mut adds: HashMap<&str, Adds> = HashMap::new();
        for &i in &k.writes {
            let op = &ops[i];
            let Some(v) = op.value.as_deref() else {
                continue;
            };
            d.adds += 1;
            let a = adds.entry(v).or_default();
            match op.outcome {
                Outcome::Fail => a.refused.push(i),
                Outcome::Ok | Outcome::Unknown => {
                    a.invoke = Some(a.invoke.map_or(op.invoke_ns, |t| t.min(op.invoke_ns)));
                    a.first.get_or_insert(i);
                    if op.outcome == Outcome::Ok {
                        d.acknowledged += 1;
                        let done = op.complete_ns.max(op.invoke_ns);
                        if a.ok.is_none_or(|(t, _)| done < t) {
                            a.ok = Some((done, i));
                        }
                    }
                }
            }
        }
        // Per element, the reads that held it, in read order.
        let mut present: HashMap<&str, Vec<usize>> = HashMap::new();
        for (r, read) in k.reads.iter().enumerate() {
            for v in read.values {
                let list = present.entry(v.as_str()).or_default();
                if list.last() != Some(&r) {
                    list.push(r);
                }
            }
        }
        let reads = &k.reads;
        let first_after = |t: u64| reads.partition_point(|r| r.invoke <= t);

        // Phantoms, in element order for stable reports.
        let mut seen: Vec<(&str, &Vec<usize>)> = present.iter().map(|(v, l)| (*v, l)).collect();
        seen.sort_unstable();
        for &(v, list) in &seen {
            let a = adds.get(v);
            if a.is_some_and(|a| a.first.is_some()) {
                continue;
            }
            d.phantom_count += 1;
            let refused: Vec<usize> = a.map(|a| a.refused.clone()).unwrap_or_default();
            let read = &reads[list[0]];
            if d.phantoms.len() < DETAIL_CAP {
                d.phantoms.push(PhantomElement {
                    key: key.to_string(),
                    element: v.to_string(),
                    read: read.at.clone(),
                    refused_add_ids: refused.iter().map(|&i| ops[i].id).collect(),
                });
            }
            if shown_other.is_none() {
                shown_other = Some(read.src.into_iter().chain(refused).collect());
            }
        }

        let mut elements: Vec<(&str, &Adds)> = adds
            .iter()
            .filter(|(_, a)| a.first.is_some())
            .map(|(v, a)| (*v, a))
            .collect();
        elements.sort_unstable_by_key(|(v, _)| *v);
        let empty = Vec::new();
        for (v, a) in elements {
            let list = present.get(v).unwrap_or(&empty);
            let (Some(add_invoke), Some(first_add)) = (a.invoke, a.first) else {
                continue;
            };
            // Seen by a read that completed before any add was invoked.
            if let Some(&r) = list.iter().find(|&&r| reads[r].complete < add_invoke) {
                d.seen_before_added_count += 1;
                if d.seen_before_added.len() < DETAIL_CAP {
                    d.seen_before_added.push(EarlyElement {
                        key: key.to_string(),
                        element: v.to_string(),
                        add_op_id: ops[first_add].id,
                        read: reads[r].at.clone(),
                    });
                }
                if shown_other.is_none() {
                    shown_other = Some(reads[r].src.into_iter().chain([first_add]).collect());
                }
            }
            let seen_done = list.iter().map(|&r| reads[r].complete).min();
            let known = match (a.ok.map(|(t, _)| t), seen_done) {
                (Some(x), Some(y)) => x.min(y),
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => continue,
            };
            d.elements_known += 1;
            if let Some((done, _)) = a.ok {
                if first_after(done) == reads.len() {
                    d.never_read += 1;
                }
            }
            // The latest read that missed it: walk back over those that held it.
            let mut r = reads.len();
            let mut p = list.len();
            while r > 0 && p > 0 && list[p - 1] == r - 1 {
                r -= 1;
                p -= 1;
            }
            let Some(latest_miss) = r.checked_sub(1) else {
                continue;
            };
            if reads[latest_miss].invoke <= known {
                continue;
            }
            // Missed after it was known: stale or lost.
            let after_known = first_after(known);
            let held_after_known = list.len() - list.partition_point(|&r| r < after_known);
            let missed = (reads.len() - after_known) - held_after_known;
            let last_held = list.last().copied();
            match last_held.filter(|&h| reads[h].invoke > reads[latest_miss].invoke) {
                Some(again) => {
                    d.stale_count += 1;
                    if d.stale.len() < DETAIL_CAP {
                        d.stale.push(StaleElement {
                            key: key.to_string(),
                            element: v.to_string(),
                            known_ns: known,
                            stale_reads: missed,
                            missed_by: reads[latest_miss].at.clone(),
                            seen_again_by: reads[again].at.clone(),
                        });
                    }
                }
                None => {
                    d.lost_count += 1;
                    // Every read after the last that held it missed it.
                    let from = after_known.max(last_held.map_or(0, |h| h + 1));
                    let missing: Vec<&CRead<'_>> = reads[from..].iter().collect();
                    let stable = list[list.partition_point(|&r| r < after_known)..]
                        .first()
                        .map(|&r| reads[r].invoke);
                    if d.lost.len() < DETAIL_CAP {
                        d.lost.push(LostElement {
                            key: key.to_string(),
                            element: v.to_string(),
                            add_op_id: a.ok.map(|(_, i)| ops[i].id),
                            known_ns: known,
                            stable_ns: stable,
                            lost_ns: missing.first().map_or(u64::MAX, |r| r.invoke),
                            last_seen: last_held.map(|h| reads[h].at.clone()),
                            missed_by: missing
                                .iter()
                                .take(MISSED_CAP)
                                .map(|r| r.at.clone())
                                .collect(),
                            missed_by_count: missing.len(),
                        });
                    }
                    if shown_lost.is_none() {
                        let mut s: Vec<usize> = vec![a.ok.map_or(first_add, |(_, i)| i)];
                        s.extend(last_held.and_then(|h| reads[h].src));
                        s.extend(missing.iter().filter_map(|r| r.src).take(3));
                        shown_lost = Some(s);
                    }
                }
            }
        }
    }

    let failed = d.lost_count + d.phantom_count + d.seen_before_added_count;
    let verdict = if failed > 0 {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    let summary = if failed > 0 {
        let mut parts = Vec::new();
        if let Some(l) = d.lost.first() {
            parts.push(format!(
                "{} acknowledged elements lost (first: `{}` of key `{}`, missed by {})",
                d.lost_count,
                l.element,
                l.key,
                l.missed_by
                    .first()
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            ));
        }
        if let Some(p) = d.phantoms.first() {
            parts.push(format!(
                "{} elements read that no add put there (first: `{}` of key `{}` in {})",
                d.phantom_count, p.element, p.key, p.read
            ));
        }
        if let Some(e) = d.seen_before_added.first() {
            parts.push(format!(
                "{} elements read before their add was invoked (first: `{}` of key `{}` in {})",
                d.seen_before_added_count, e.element, e.key, e.read
            ));
        }
        parts.join("; ")
    } else {
        format!(
            "{} elements known present on {} keys, none lost ({} stale, {} never read)",
            d.elements_known, d.keys_checked, d.stale_count, d.never_read
        )
    };
    let mut shown = shown_lost.or(shown_other).unwrap_or_default();
    shown.sort_unstable();
    shown.dedup();
    let counterexample: Vec<Op> = shown.into_iter().map(|i| ops[i].clone()).collect();
    let known = d.elements_known;
    CheckResult::new(verdict, summary, counterexample, CheckDetails::Set(d))
        .unless_nothing_to_check(known, "add, nor element read")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn op(id: u64, kind: OpKind, t: (u64, u64), outcome: Outcome) -> Op {
        Op {
            id,
            client: id as u32,
            node: NodeId(0),
            kind,
            key: Some("s".into()),
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
    fn add(id: u64, v: &str, t: (u64, u64), outcome: Outcome) -> Op {
        Op {
            value: Some(v.into()),
            ..op(id, OpKind::Add, t, outcome)
        }
    }
    fn read(id: u64, vs: &[&str], t: (u64, u64)) -> Op {
        Op {
            values: Some(vs.iter().map(|v| v.to_string()).collect()),
            ..op(id, OpKind::ReadSet, t, Outcome::Ok)
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
                    BTreeMap::from([("s".to_string(), vs.iter().map(|v| v.to_string()).collect())]),
                )
            })
            .collect()
    }
    fn details(r: &CheckResult) -> &SetDetails {
        r.details.set().expect("set details")
    }

    #[test]
    fn a_correct_history_passes() {
        let ops = [
            add(0, "a", (0, 10), Outcome::Ok),
            read(1, &[], (1, 2)),    // before the add took effect
            read(2, &["a"], (5, 6)), // concurrent with it
            add(3, "b", (20, 30), Outcome::Unknown),
            read(4, &["a"], (40, 41)), // the unknown add need not appear
            add(5, "c", (50, 51), Outcome::Fail),
        ];
        let r = check_set(&ops, &finals(&[&["a", "b"]]));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(details(&r).elements_known, 2);
        assert_eq!(details(&r).stale_count, 0);
        assert!(r.counterexample.is_empty());
    }

    #[test]
    fn an_acknowledged_add_missed_for_good_is_lost() {
        let ops = [
            add(0, "a", (0, 10), Outcome::Ok),
            read(1, &["a"], (20, 21)),
            read(2, &[], (30, 31)),
            read(3, &[], (40, 41)),
        ];
        let r = check_set(&ops, &BTreeMap::new());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        let d = details(&r);
        assert_eq!(d.lost_count, 1);
        let l = &d.lost[0];
        assert_eq!((l.known_ns, l.stable_ns, l.lost_ns), (10, Some(20), 30));
        assert_eq!(l.last_seen, Some(ReadAt::Op { id: 1 }));
        assert_eq!(l.missed_by.len(), 2);
        let ids: Vec<u64> = r.counterexample.iter().map(|o| o.id).collect();
        assert_eq!(ids, vec![0, 1, 2, 3]);
        // Missed by a node after the heal: lost too.
        let r = check_set(&ops[..2], &finals(&[&["a"], &[]]));
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(
            details(&r).lost[0].missed_by,
            vec![ReadAt::Final { node: NodeId(1) }]
        );
    }

    #[test]
    fn seen_then_gone_is_lost_even_after_an_unknown_add() {
        let ops = [
            add(0, "a", (0, 100), Outcome::Unknown),
            read(1, &["a"], (10, 11)),
            read(2, &[], (20, 21)),
        ];
        let r = check_set(&ops, &BTreeMap::new());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(details(&r).lost[0].add_op_id, None);
    }

    #[test]
    fn missed_then_seen_again_is_stale_and_passes() {
        let ops = [
            add(0, "a", (0, 10), Outcome::Ok),
            read(1, &[], (20, 21)),
            read(2, &["a"], (30, 31)),
        ];
        let r = check_set(&ops, &finals(&[&["a"]]));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        let d = details(&r);
        assert_eq!(d.stale_count, 1);
        assert_eq!(d.stale[0].missed_by, ReadAt::Op { id: 1 });
        assert_eq!(d.stale[0].stale_reads, 1);
    }

    #[test]
    fn elements_nobody_added_or_seen_too_early_fail() {
        let ghost = [
            add(0, "a", (0, 1), Outcome::Ok),
            read(1, &["a", "zz"], (2, 3)),
        ];
        let r = check_set(&ghost, &BTreeMap::new());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(details(&r).phantoms[0].element, "zz");
        assert!(details(&r).phantoms[0].refused_add_ids.is_empty());
        // A refused add took no effect: reading it is a phantom too.
        let refused = [add(0, "a", (0, 1), Outcome::Fail), read(1, &["a"], (2, 3))];
        let r = check_set(&refused, &BTreeMap::new());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(details(&r).phantoms[0].refused_add_ids, vec![0]);
        let early = [read(0, &["a"], (0, 1)), add(1, "a", (5, 6), Outcome::Ok)];
        let r = check_set(&early, &BTreeMap::new());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(details(&r).seen_before_added_count, 1);
    }

    #[test]
    fn nothing_acknowledged_is_nothing_to_check() {
        let ops = [
            add(0, "a", (0, 1), Outcome::Unknown),
            add(1, "b", (0, 1), Outcome::Fail),
            read(2, &[], (5, 6)),
        ];
        let r = check_set(&ops, &BTreeMap::new());
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert!(r.nothing_to_check);
        assert!(r.summary.starts_with(super::super::NOTHING_TO_CHECK));
        assert_eq!(check_set(&[], &BTreeMap::new()).verdict, Verdict::Unknown);
    }

    // ------------------------------------------------------------------
    // Brute-force oracle, per element as set-full judges: every order of
    // the element's adds and the key's reads that respects real time (an
    // unknown add may be left out), run against a set that only ever
    // grows; each read must agree on whether it holds the element.

    fn oracle(ops: &[Op], finals: &Finals) -> bool {
        struct E {
            invoke: u64,
            end: u64,
            certain: bool,
            /// None: the add; Some(holds): a read.
            read: Option<bool>,
        }
        let reads: Vec<(u64, u64, HashSet<&str>)> = ops
            .iter()
            .filter(|o| o.kind == OpKind::ReadSet && o.outcome == Outcome::Ok)
            .filter_map(|o| {
                let v = o.values.as_ref()?;
                Some((
                    o.invoke_ns,
                    o.complete_ns,
                    v.iter().map(String::as_str).collect(),
                ))
            })
            .chain(finals.values().filter_map(|k| {
                k.get("s")
                    .map(|v| (u64::MAX, u64::MAX, v.iter().map(String::as_str).collect()))
            }))
            .collect();
        let mut elements: HashSet<&str> = ops.iter().filter_map(|o| o.value.as_deref()).collect();
        for (_, _, vs) in &reads {
            elements.extend(vs.iter().copied());
        }
        elements.iter().all(|&x| {
            let mut es: Vec<E> = ops
                .iter()
                .filter(|o| o.kind == OpKind::Add && o.value.as_deref() == Some(x))
                .filter(|o| o.outcome != Outcome::Fail)
                .map(|o| E {
                    invoke: o.invoke_ns,
                    end: if o.outcome == Outcome::Ok {
                        o.complete_ns
                    } else {
                        u64::MAX
                    },
                    certain: o.outcome == Outcome::Ok,
                    read: None,
                })
                .collect();
            es.extend(reads.iter().map(|(i, c, vs)| E {
                invoke: *i,
                end: *c,
                certain: true,
                read: Some(vs.contains(x)),
            }));
            fn go(es: &[E], placed: u32, present: bool, seen: &mut HashSet<(u32, bool)>) -> bool {
                if es
                    .iter()
                    .enumerate()
                    .all(|(i, e)| !e.certain || placed & (1 << i) != 0)
                {
                    return true;
                }
                if !seen.insert((placed, present)) {
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
                    if blocked || e.read.is_some_and(|holds| holds != present) {
                        continue;
                    }
                    if go(es, placed | (1 << i), present || e.read.is_none(), seen) {
                        return true;
                    }
                }
                false
            }
            go(&es, 0, false, &mut HashSet::new())
        })
    }

    fn arb_outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![5 => Just(Outcome::Ok), 1 => Just(Outcome::Fail), 2 => Just(Outcome::Unknown)]
    }

    /// Arbitrary small histories of one key, with final reads.
    fn arb_history() -> impl Strategy<Value = (Vec<Op>, Finals)> {
        let one = (
            any::<bool>(),
            0..3u8,
            prop::collection::vec(0..4u8, 0..4),
            0..12u64,
            0..6u64,
            arb_outcome(),
        );
        let names = ["a", "b", "c", "zz"];
        (
            prop::collection::vec(one, 0..=6),
            prop::collection::vec(prop::collection::vec(0..4u8, 0..4), 0..=1),
        )
            .prop_map(move |(raw, fin)| {
                let ops = raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, (is_add, v, vs, start, len, outcome))| {
                        let t = (start, start + len);
                        if is_add {
                            add(i as u64, names[v as usize], t, outcome)
                        } else {
                            let vs: Vec<&str> = vs.iter().map(|&v| names[v as usize]).collect();
                            read(i as u64, &vs, t)
                        }
                    })
                    .collect();
                let fin: Vec<Vec<&str>> = fin
                    .iter()
                    .map(|vs| vs.iter().map(|&v| names[v as usize]).collect())
                    .collect();
                let refs: Vec<&[&str]> = fin.iter().map(Vec::as_slice).collect();
                (ops, finals(&refs))
            })
    }

    /// A set with an effect point inside each operation, whose reads may
    /// forget one element from some time on (a buggy store).
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
            any::<bool>(),
            0..6usize,
            0..20u64,
            any::<bool>(),
        )
            .prop_map(|(raw, buggy, victim, from, final_read)| {
                let mut ops: Vec<(u64, Op, bool)> = raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, (is_add, start, len, at, outcome, applied))| {
                        let t = (start, start + len);
                        let point = if outcome == Outcome::Unknown {
                            start + at * 2
                        } else {
                            start + at.min(len)
                        };
                        let o = if is_add {
                            add(i as u64, &format!("e{i}"), t, outcome)
                        } else {
                            read(i as u64, &[], t)
                        };
                        (point, o, applied)
                    })
                    .collect();
                ops.sort_by_key(|(p, o, _)| (*p, o.id));
                let victim = format!("e{victim}");
                let mut set: Vec<String> = Vec::new();
                for (p, o, applied) in ops.iter_mut() {
                    match o.kind {
                        OpKind::Add => {
                            let lands = o.outcome == Outcome::Ok
                                || (o.outcome == Outcome::Unknown && *applied);
                            if lands {
                                set.extend(o.value.clone());
                            }
                        }
                        OpKind::ReadSet
                        | OpKind::Read
                        | OpKind::Write
                        | OpKind::Cas
                        | OpKind::Append
                        | OpKind::ReadList
                        | OpKind::Probe => {
                            let forgets = buggy && *p >= from;
                            o.values = Some(
                                set.iter()
                                    .filter(|v| !(forgets && **v == victim))
                                    .cloned()
                                    .collect(),
                            );
                        }
                    }
                }
                let mut ops: Vec<Op> = ops.into_iter().map(|(_, o, _)| o).collect();
                ops.sort_by_key(|o| o.id);
                let last: Vec<&str> = set
                    .iter()
                    .map(String::as_str)
                    .filter(|v| !(buggy && *v == victim))
                    .collect();
                let fin = if final_read {
                    finals(&[&last])
                } else {
                    Finals::new()
                };
                (ops, fin)
            })
    }

    fn agrees_with_oracle(ops: &[Op], fin: &Finals) -> Result<(), TestCaseError> {
        let r = check_set(ops, fin);
        let d = details(&r);
        let violated = r.verdict == Verdict::Fail || d.stale_count > 0;
        prop_assert_eq!(
            violated,
            !oracle(ops, fin),
            "{}\n{:#?}\n{:#?}",
            r.summary,
            ops,
            fin
        );
        if r.verdict == Verdict::Fail {
            prop_assert!(d.lost_count + d.phantom_count + d.seen_before_added_count > 0);
        }
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

    /// A buggy store that forgets one acknowledged element halfway through a
    /// long run must be caught, and the element named.
    #[test]
    fn a_store_that_forgets_an_element_is_caught() {
        let mut ops = Vec::new();
        let mut set: Vec<String> = Vec::new();
        for i in 0..2000u64 {
            let t = i * 10;
            if i % 3 == 0 {
                let v = format!("e{i}");
                set.push(v.clone());
                ops.push(add(i, &v, (t, t + 5), Outcome::Ok));
            } else {
                let forgotten = i > 1000;
                let vs: Vec<&str> = set
                    .iter()
                    .map(String::as_str)
                    .filter(|v| !(forgotten && *v == "e300"))
                    .collect();
                ops.push(read(i, &vs, (t, t + 5)));
            }
        }
        let r = check_set(&ops, &BTreeMap::new());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        let d = details(&r);
        assert_eq!(d.lost_count, 1);
        assert_eq!(d.lost[0].element, "e300");
        assert_eq!(d.lost[0].lost_ns, 10010);
        assert!(r.counterexample.iter().any(|o| o.id == 300));
    }
}
