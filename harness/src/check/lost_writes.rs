//! Lost writes: acknowledged values that are missing from the final state.
//!
//! Owns the comparison between the history's writes and the values every node
//! returns when read after the run has settled. It must never blame a write
//! that a later acknowledged write definitely replaced, nor one whose
//! successor might not have applied; and a key that was not read back is
//! Unknown, never a pass.

use super::verdict::{CheckDetails, CheckResult, Verdict};
use crate::history::{Op, OpKind, Outcome};
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Most entries listed per category in `details`, to keep reports readable.
const DETAIL_CAP: usize = 50;

/// The figures behind a lost-writes verdict, as report.json holds them
/// (fields in alphabetical order, the order report.json has always had).
/// Lists stop at 50 entries; the counts do not.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LostWritesDetails {
    /// Keys with an `ok` or `unknown` write.
    pub keys_checked: usize,
    /// Ids of the acknowledged writes lost.
    pub lost_op_ids: Vec<u64>,
    /// How many acknowledged writes were lost.
    pub lost_writes: usize,
    /// The nodes read back.
    pub nodes: Vec<NodeId>,
    pub not_read_back: Vec<NotReadBack>,
    pub not_read_back_count: usize,
    /// Final values no write ever wrote.
    pub phantom_values: Vec<PhantomValue>,
    pub violations: Vec<LostWriteViolation>,
}

/// A node's final value of a key that no surviving write could have left.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LostWriteViolation {
    /// What the surviving writes allow (`None` = absent).
    pub expected_one_of: Vec<Option<String>>,
    /// What the node holds (`None` = absent).
    #[serde(rename = "final")]
    pub final_value: Option<String>,
    pub key: String,
    pub lost_op_ids: Vec<u64>,
    pub node: NodeId,
}

/// A final value that no write of its key ever wrote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhantomValue {
    pub key: String,
    pub node: NodeId,
    pub value: String,
}

/// A written key a node did not answer when read back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotReadBack {
    pub key: String,
    pub node: NodeId,
}

/// Checks that every node's final value of every key is one a surviving write
/// could have left.
///
/// A write (or cas) that is `ok` or `unknown` survives unless an `ok` write of
/// the same key was invoked strictly after it completed (unknown writes never
/// complete, so they always survive). When a key had any `ok` write, its final
/// value on each node must be the value of a surviving write; otherwise the
/// surviving acknowledged writes are lost. A key with only unknown writes may
/// also be absent. A value no write ever wrote is reported too.
///
/// `final_reads` maps each node to the keys read from it after the run
/// (`None` = absent). A key with writes that was not read back on a node
/// makes the verdict Unknown unless something failed.
pub fn check_lost_writes(
    ops: &[Op],
    final_reads: &BTreeMap<NodeId, BTreeMap<String, Option<String>>>,
) -> CheckResult {
    // Per key: indices of ok/unknown writes and cas.
    let mut writes: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if !matches!(op.kind, OpKind::Write | OpKind::Cas) || op.outcome == Outcome::Fail {
            continue;
        }
        if let Some(key) = op.key.as_deref() {
            writes.entry(key).or_default().push(i);
        }
    }

    let mut lost: BTreeSet<usize> = BTreeSet::new();
    let mut violations = Vec::new();
    let mut missing = Vec::new();
    let mut phantoms = Vec::new();
    let mut first_bad: Option<FirstBad> = None;

    for (&key, idx) in &writes {
        let ok: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| ops[i].outcome == Outcome::Ok)
            .collect();
        let last_ok_invoke = ok.iter().map(|&i| ops[i].invoke_ns).max();
        let survives = |i: usize| -> bool {
            let op = &ops[i];
            op.outcome == Outcome::Unknown || last_ok_invoke.is_none_or(|t| op.complete_ns >= t)
        };
        let surviving: Vec<usize> = idx.iter().copied().filter(|&i| survives(i)).collect();
        let mut allowed: BTreeSet<Option<&str>> =
            surviving.iter().map(|&i| ops[i].value.as_deref()).collect();
        if ok.is_empty() {
            allowed.insert(None);
        }
        let acknowledged: Vec<usize> = surviving
            .iter()
            .copied()
            .filter(|&i| ops[i].outcome == Outcome::Ok)
            .collect();

        for (&node, reads) in final_reads {
            let Some(seen) = reads.get(key) else {
                missing.push((node, key));
                continue;
            };
            if allowed.contains(&seen.as_deref()) {
                continue;
            }
            if let Some(value) = seen
                .as_ref()
                .filter(|_| !idx.iter().any(|&i| ops[i].value == *seen))
            {
                phantoms.push(PhantomValue {
                    key: key.to_string(),
                    node,
                    value: value.clone(),
                });
            }
            lost.extend(acknowledged.iter().copied());
            if violations.len() < DETAIL_CAP {
                violations.push(LostWriteViolation {
                    expected_one_of: allowed
                        .iter()
                        .take(DETAIL_CAP)
                        .map(|v| v.map(str::to_string))
                        .collect(),
                    final_value: seen.clone(),
                    key: key.to_string(),
                    lost_op_ids: acknowledged.iter().map(|&i| ops[i].id).collect(),
                    node,
                });
            }
            if first_bad.is_none() {
                // Show the writes that should be visible, and the latest
                // write of the stale value, if any, so the overwrite is seen.
                let mut shown = acknowledged.clone();
                if let Some(src) = idx
                    .iter()
                    .copied()
                    .filter(|&i| ops[i].value == *seen)
                    .max_by_key(|&i| ops[i].invoke_ns)
                {
                    shown.push(src);
                }
                first_bad = Some((key.to_string(), node, seen.clone(), shown));
            }
        }
    }

    unwritten_values(&writes, final_reads, &mut phantoms, &mut first_bad);

    let verdict = if first_bad.is_some() {
        Verdict::Fail
    } else if final_reads.is_empty() && !writes.is_empty() || !missing.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Pass
    };

    let mut counterexample: Vec<Op> = Vec::new();
    let summary = match (&first_bad, verdict) {
        (Some(bad), _) => {
            let (summary, shown) = loss_summary(ops, bad, lost.len(), phantoms.len());
            counterexample = shown;
            summary
        }
        (None, Verdict::Unknown) if final_reads.is_empty() => {
            "no node was read back after the run; lost writes cannot be judged".to_string()
        }
        (None, Verdict::Unknown) => format!(
            "{} written keys were not read back (first: `{}` on {}); no loss among the rest",
            missing.len(),
            missing.first().map(|m| m.1).unwrap_or_default(),
            missing.first().map(|m| m.0.to_string()).unwrap_or_default()
        ),
        (None, _) => format!(
            "every acknowledged write of {} keys is visible on {} nodes",
            writes.len(),
            final_reads.len()
        ),
    };

    let acknowledged_writes = writes
        .values()
        .flatten()
        .filter(|&&i| ops[i].outcome == Outcome::Ok)
        .count();
    CheckResult::new(
        verdict,
        summary,
        counterexample,
        CheckDetails::LostWrites(LostWritesDetails {
            keys_checked: writes.len(),
            lost_op_ids: lost.iter().map(|&i| ops[i].id).collect(),
            lost_writes: lost.len(),
            nodes: final_reads.keys().copied().collect(),
            not_read_back: missing
                .iter()
                .take(DETAIL_CAP)
                .map(|&(node, key)| NotReadBack {
                    key: key.to_string(),
                    node,
                })
                .collect(),
            not_read_back_count: missing.len(),
            phantom_values: phantoms.into_iter().take(DETAIL_CAP).collect(),
            violations,
        }),
    )
    .unless_nothing_to_check(acknowledged_writes, "write or cas")
}

/// The first final value found wrong: key, node, value (`None` = absent),
/// and indices of the writes to show.
type FirstBad = (String, NodeId, Option<String>, Vec<usize>);

/// Values on keys nobody wrote (with an acknowledged or possible write).
fn unwritten_values(
    writes: &BTreeMap<&str, Vec<usize>>,
    final_reads: &BTreeMap<NodeId, BTreeMap<String, Option<String>>>,
    phantoms: &mut Vec<PhantomValue>,
    first_bad: &mut Option<FirstBad>,
) {
    for (&node, reads) in final_reads {
        for (key, seen) in reads {
            let Some(value) = seen.as_ref() else { continue };
            if !writes.contains_key(key.as_str()) {
                phantoms.push(PhantomValue {
                    key: key.clone(),
                    node,
                    value: value.clone(),
                });
                if first_bad.is_none() {
                    *first_bad = Some((key.clone(), node, seen.clone(), Vec::new()));
                }
            }
        }
    }
}

/// The summary of a failing check, and its counterexample: the writes of
/// the first wrong value, in invocation order.
fn loss_summary(ops: &[Op], bad: &FirstBad, lost: usize, phantoms: usize) -> (String, Vec<Op>) {
    let (key, node, seen, shown) = bad;
    let mut shown = shown.clone();
    shown.sort_unstable_by_key(|&i| (ops[i].invoke_ns, ops[i].id));
    shown.dedup();
    let counterexample = shown.iter().map(|&i| ops[i].clone()).collect();
    let seen = match seen {
        Some(v) => format!("{v:?}"),
        None => "nothing".to_string(),
    };
    let summary = format!(
        "{lost} acknowledged writes lost; first: key `{key}` on {node} reads {seen}{}",
        if phantoms == 0 {
            String::new()
        } else {
            format!("; {phantoms} final values were never written")
        }
    );
    (summary, counterexample)
}

/// Number of lost writes in a result of [`check_lost_writes`], for comparing
/// with a plan's `lost_writes = N` expectation; 0 for any other checker.
pub fn lost_write_count(result: &CheckResult) -> u64 {
    result
        .details
        .lost_writes()
        .map_or(0, |d| d.lost_writes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: u64, key: &str, value: &str, t: (u64, u64), outcome: Outcome) -> Op {
        Op {
            id,
            client: id as u32,
            node: NodeId(0),
            kind: OpKind::Write,
            key: Some(key.into()),
            value: Some(value.into()),
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

    fn finals(
        per_node: &[&[(&str, Option<&str>)]],
    ) -> BTreeMap<NodeId, BTreeMap<String, Option<String>>> {
        per_node
            .iter()
            .enumerate()
            .map(|(n, kv)| {
                let m = kv
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                    .collect();
                (NodeId(n), m)
            })
            .collect()
    }

    #[test]
    fn newest_acknowledged_write_visible_everywhere_passes() {
        let ops = [
            w(0, "x", "1", (0, 10), Outcome::Ok),
            w(1, "x", "2", (20, 30), Outcome::Ok),
        ];
        let r = check_lost_writes(&ops, &finals(&[&[("x", Some("2"))], &[("x", Some("2"))]]));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(lost_write_count(&r), 0);
    }

    #[test]
    fn overwritten_value_on_one_node_is_a_lost_write() {
        let ops = [
            w(0, "x", "1", (0, 10), Outcome::Ok),
            w(1, "x", "2", (20, 30), Outcome::Ok),
        ];
        let r = check_lost_writes(&ops, &finals(&[&[("x", Some("2"))], &[("x", Some("1"))]]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(lost_write_count(&r), 1);
        let ids: Vec<u64> = r.counterexample.iter().map(|o| o.id).collect();
        assert_eq!(
            ids,
            vec![0, 1],
            "the lost write and the stale value's source"
        );
    }

    #[test]
    fn absent_key_after_acknowledged_write_is_lost() {
        let ops = [w(0, "x", "1", (0, 10), Outcome::Ok)];
        let r = check_lost_writes(&ops, &finals(&[&[("x", None)]]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(lost_write_count(&r), 1);
        assert_eq!(r.counterexample.len(), 1);
    }

    #[test]
    fn concurrent_writes_may_end_in_either_value() {
        let ops = [
            w(0, "x", "1", (0, 10), Outcome::Ok),
            w(1, "x", "2", (5, 15), Outcome::Ok),
        ];
        for v in ["1", "2"] {
            let r = check_lost_writes(&ops, &finals(&[&[("x", Some(v))]]));
            assert_eq!(r.verdict, Verdict::Pass, "{v}: {}", r.summary);
        }
    }

    #[test]
    fn unknown_writes_may_or_may_not_survive() {
        let ops = [
            w(0, "x", "1", (0, 10), Outcome::Ok),
            // Timed out long before the next acknowledged write, yet it may
            // have been applied at any time after its invocation.
            w(1, "x", "2", (11, 12), Outcome::Unknown),
            w(2, "y", "3", (0, 10), Outcome::Unknown),
        ];
        for (x, y) in [("1", None), ("2", Some("3")), ("2", None), ("1", Some("3"))] {
            let r = check_lost_writes(&ops, &finals(&[&[("x", Some(x)), ("y", y)]]));
            assert_eq!(r.verdict, Verdict::Pass, "{x} {y:?}: {}", r.summary);
        }
        // But an acknowledged write followed by nothing acknowledged must stay.
        let r = check_lost_writes(&ops, &finals(&[&[("x", None), ("y", None)]]));
        assert_eq!(r.verdict, Verdict::Fail);
    }

    #[test]
    fn acknowledged_cas_counts_as_a_write_and_failed_writes_do_not() {
        let mut cas = w(1, "x", "2", (20, 30), Outcome::Ok);
        cas.kind = OpKind::Cas;
        cas.expect = Some("1".into());
        let failed = w(2, "x", "3", (40, 50), Outcome::Fail);
        let ops = [w(0, "x", "1", (0, 10), Outcome::Ok), cas, failed];
        let r = check_lost_writes(&ops, &finals(&[&[("x", Some("2"))]]));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        let r = check_lost_writes(&ops, &finals(&[&[("x", Some("1"))]]));
        assert_eq!(r.verdict, Verdict::Fail);
        let r = check_lost_writes(&ops, &finals(&[&[("x", Some("3"))]]));
        assert_eq!(r.verdict, Verdict::Fail, "a refused write's value appeared");
    }

    #[test]
    fn key_not_read_back_is_unknown_not_pass() {
        let ops = [
            w(0, "x", "1", (0, 10), Outcome::Ok),
            w(1, "y", "1", (0, 10), Outcome::Ok),
        ];
        let r = check_lost_writes(&ops, &finals(&[&[("x", Some("1"))]]));
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        let r = check_lost_writes(&ops, &BTreeMap::new());
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
    }

    #[test]
    fn value_nobody_wrote_fails() {
        let r = check_lost_writes(&[], &finals(&[&[("z", Some("boo"))]]));
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(lost_write_count(&r), 0);
    }
}
