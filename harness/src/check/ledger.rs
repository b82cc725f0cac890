//! Ledger agreement: after recovery, every node's committed chain is a prefix
//! of every other's, each entry links to the hash of the one before, and every
//! acknowledged transaction appears exactly once.
//!
//! Owns the comparison between the appends in the history and the chains read
//! from every node after the run. It must never pass a run whose chains it
//! could not read: a node without a chain makes the verdict Unknown unless
//! something else already failed.

use super::verdict::{CheckResult, Verdict};
use crate::history::{Op, OpKind, Outcome};
use crate::NodeId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Name under which this checker reports.
pub const CHECKER: &str = "ledger_agreement";

/// `prev` of the first entry: the hash of nothing (32 zero bytes, hex).
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Most problems listed per category in `details`, to keep reports readable.
const DETAIL_CAP: usize = 20;

/// One committed entry of a node's chain, as `GET /ledger` returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub index: u64,
    #[serde(default)]
    pub term: u64,
    /// Hex hash of the previous entry ([`GENESIS`] for index 1).
    pub prev: String,
    /// Hex hash of this entry.
    pub hash: String,
    /// The command; transactions are `{"op":"tx","data":"..."}`.
    #[serde(default)]
    pub payload: serde_json::Value,
}

impl LedgerEntry {
    /// The transaction this entry carries, if it is one: `payload.data` of a
    /// `{"op":"tx"}` command, or a bare string payload.
    pub fn transaction(&self) -> Option<&str> {
        match &self.payload {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Object(m) if m.get("op").and_then(|o| o.as_str()) == Some("tx") => {
                m.get("data").and_then(|d| d.as_str())
            }
            _ => None,
        }
    }
}

/// A node's committed chain read after the run, or `None` when it could not
/// be read (the node did not answer).
pub type Chains = BTreeMap<NodeId, Option<Vec<LedgerEntry>>>;

/// Checks the chains read from every node against the history's appends.
///
/// Violations: an index out of sequence, a broken `prev` link, two nodes with
/// different entries at one index, an `ok` append missing from the longest
/// chain or present more than once, an `unknown` append present more than
/// once, a `fail` append present at all, an `ok` append found at another
/// index than the one acknowledged.
pub fn check_ledger_agreement(ops: &[Op], chains: &Chains) -> CheckResult {
    let mut problems: Vec<serde_json::Value> = Vec::new();
    let mut blamed: BTreeSet<usize> = BTreeSet::new();
    let push = |problems: &mut Vec<serde_json::Value>, p: serde_json::Value| {
        if problems.len() < DETAIL_CAP {
            problems.push(p);
        }
    };
    let mut violations = 0usize;

    // 1. Each chain on its own: consecutive indexes from 1, linked hashes.
    for (&node, chain) in chains {
        let Some(chain) = chain else { continue };
        let mut prev_hash = GENESIS;
        for (i, e) in chain.iter().enumerate() {
            let want = i as u64 + 1;
            if e.index != want {
                violations += 1;
                push(
                    &mut problems,
                    json!({"kind": "index_gap", "node": node, "expected": want, "found": e.index}),
                );
                break;
            }
            if !e.prev.eq_ignore_ascii_case(prev_hash) {
                violations += 1;
                push(
                    &mut problems,
                    json!({"kind": "broken_link", "node": node, "index": e.index,
                           "prev": e.prev, "hash_before": prev_hash}),
                );
                break;
            }
            prev_hash = &e.hash;
        }
    }

    // 2. Prefix agreement, against the longest chain.
    let readable: Vec<(NodeId, &Vec<LedgerEntry>)> = chains
        .iter()
        .filter_map(|(n, c)| c.as_ref().map(|c| (*n, c)))
        .collect();
    let longest = readable
        .iter()
        .max_by_key(|(n, c)| (c.len(), std::cmp::Reverse(*n)))
        .copied();
    if let Some((ref_node, reference)) = longest {
        for &(node, chain) in &readable {
            if node == ref_node {
                continue;
            }
            if let Some(i) =
                (0..chain.len()).find(|&i| !chain[i].hash.eq_ignore_ascii_case(&reference[i].hash))
            {
                violations += 1;
                push(
                    &mut problems,
                    json!({"kind": "fork", "index": i + 1,
                           "nodes": [ref_node, node],
                           "hashes": [reference[i].hash, chain[i].hash],
                           "payloads": [reference[i].payload, chain[i].payload]}),
                );
            }
        }
    }

    // 3. Transactions: where each appears in the longest chain.
    let mut positions: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    if let Some((_, reference)) = longest {
        for e in reference {
            if let Some(tx) = e.transaction() {
                positions.entry(tx).or_default().push(e.index);
            }
        }
    }
    let mut appends: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if op.kind == OpKind::Append {
            if let Some(v) = op.value.as_deref() {
                appends.entry(v).or_default().push(i);
            }
        }
    }
    let (mut acknowledged, mut missing, mut duplicated, mut misplaced, mut phantom) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    for (&tx, idx) in &appends {
        let found = positions.get(tx).map(Vec::as_slice).unwrap_or(&[]);
        let ok: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| ops[i].outcome == Outcome::Ok)
            .collect();
        let possible = idx.iter().any(|&i| ops[i].outcome != Outcome::Fail);
        acknowledged += ok.len();
        if longest.is_none() {
            continue;
        }
        if !ok.is_empty() && found.is_empty() {
            missing += 1;
            violations += 1;
            blamed.extend(ok.iter().copied());
            push(
                &mut problems,
                json!({"kind": "missing", "tx": tx, "op_ids": ok.iter().map(|&i| ops[i].id).collect::<Vec<_>>()}),
            );
        } else if found.len() > 1 {
            duplicated += 1;
            violations += 1;
            blamed.extend(idx.iter().copied());
            push(
                &mut problems,
                json!({"kind": "duplicate", "tx": tx, "indexes": found}),
            );
        } else if !possible && !found.is_empty() {
            phantom += 1;
            violations += 1;
            blamed.extend(idx.iter().copied());
            push(
                &mut problems,
                json!({"kind": "failed_but_applied", "tx": tx, "indexes": found}),
            );
        } else if let (Some(&at), Some(&i)) = (found.first(), ok.first()) {
            let said = ops[i].result.as_deref().and_then(|r| r.parse::<u64>().ok());
            if said.is_some_and(|s| s != at) {
                misplaced += 1;
                violations += 1;
                blamed.insert(i);
                push(
                    &mut problems,
                    json!({"kind": "misplaced", "tx": tx, "acknowledged_index": said, "found_index": at}),
                );
            }
        }
    }
    // Transactions nobody appended (another writer, or corruption).
    let strangers = positions
        .keys()
        .filter(|tx| !appends.contains_key(*tx))
        .count();

    let unreadable: Vec<NodeId> = chains
        .iter()
        .filter(|(_, c)| c.is_none())
        .map(|(n, _)| *n)
        .collect();
    let lengths: BTreeMap<String, Option<usize>> = chains
        .iter()
        .map(|(n, c)| (n.to_string(), c.as_ref().map(Vec::len)))
        .collect();

    let verdict = if violations > 0 {
        Verdict::Fail
    } else if chains.is_empty() || !unreadable.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Pass
    };
    let summary = match verdict {
        Verdict::Pass => format!(
            "{} nodes agree on a linked chain of {} entries; all {acknowledged} acknowledged transactions appear exactly once",
            readable.len(),
            longest.map(|(_, c)| c.len()).unwrap_or(0)
        ),
        Verdict::Unknown if chains.is_empty() => {
            "no chain was read from any node after the run".to_string()
        }
        Verdict::Unknown => format!(
            "could not read the chain of {}",
            unreadable
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Verdict::Fail => {
            let mut parts = Vec::new();
            let kinds = |k: &str| problems.iter().filter(|p| p["kind"] == k).count();
            let forks = kinds("fork");
            let links = kinds("broken_link") + kinds("index_gap");
            if forks > 0 {
                parts.push(format!("{forks} node(s) disagree with the longest chain"));
            }
            if links > 0 {
                parts.push(format!("{links} chain(s) broken"));
            }
            if missing > 0 {
                parts.push(format!(
                    "{missing} of {acknowledged} acknowledged transactions missing"
                ));
            }
            if duplicated > 0 {
                parts.push(format!("{duplicated} transactions appear more than once"));
            }
            if phantom > 0 {
                parts.push(format!("{phantom} failed transactions were applied"));
            }
            if misplaced > 0 {
                parts.push(format!(
                    "{misplaced} transactions committed at another index than acknowledged"
                ));
            }
            let first = problems
                .first()
                .map(|p| format!("; first: {p}"))
                .unwrap_or_default();
            format!("{}{first}", parts.join(", "))
        }
    };
    let counterexample = if verdict == Verdict::Fail {
        blamed
            .iter()
            .take(DETAIL_CAP)
            .map(|&i| ops[i].clone())
            .collect()
    } else {
        Vec::new()
    };
    CheckResult {
        checker: CHECKER.into(),
        verdict,
        summary,
        counterexample,
        details: json!({
            "chain_lengths": lengths,
            "acknowledged": acknowledged,
            "missing": missing,
            "duplicated": duplicated,
            "failed_but_applied": phantom,
            "misplaced": misplaced,
            "transactions_nobody_appended": strangers,
            "problems": problems,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn chain(txs: &[&str]) -> Vec<LedgerEntry> {
        let mut prev = GENESIS.to_string();
        let mut out = Vec::new();
        for (i, tx) in txs.iter().enumerate() {
            let hash: String = Sha256::digest(format!("{prev}{i}{tx}"))
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            out.push(LedgerEntry {
                index: i as u64 + 1,
                term: 1,
                prev: prev.clone(),
                hash: hash.clone(),
                payload: json!({"op": "tx", "data": tx}),
            });
            prev = hash;
        }
        out
    }

    fn append(id: u64, tx: &str, outcome: Outcome, index: Option<u64>) -> Op {
        Op {
            id,
            client: 0,
            node: NodeId(0),
            kind: OpKind::Append,
            key: None,
            value: Some(tx.into()),
            expect: None,
            invoke_ns: id * 10,
            complete_ns: id * 10 + 5,
            outcome,
            result: index.map(|i| i.to_string()),
            status: None,
            error: None,
        }
    }

    fn chains(cs: Vec<Vec<LedgerEntry>>) -> Chains {
        cs.into_iter()
            .enumerate()
            .map(|(i, c)| (NodeId(i), Some(c)))
            .collect()
    }

    fn history() -> Vec<Op> {
        vec![
            append(0, "a", Outcome::Ok, Some(1)),
            append(1, "b", Outcome::Ok, Some(2)),
            append(2, "c", Outcome::Unknown, None),
        ]
    }

    #[test]
    fn prefixes_with_every_acknowledged_tx_pass() {
        let full = chain(&["a", "b", "c"]);
        let r = check_ledger_agreement(
            &history(),
            &chains(vec![full.clone(), full[..2].to_vec(), full.clone()]),
        );
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        // An unknown append may also be absent.
        let r = check_ledger_agreement(&history(), &chains(vec![chain(&["a", "b"])]));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
    }

    #[test]
    fn diverging_chains_fail() {
        let r = check_ledger_agreement(
            &history(),
            &chains(vec![chain(&["a", "b", "c"]), chain(&["a", "c", "b"])]),
        );
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("disagree"), "{}", r.summary);
    }

    #[test]
    fn a_broken_link_fails() {
        let mut c = chain(&["a", "b", "c"]);
        c[2].prev = GENESIS.into();
        let r = check_ledger_agreement(&history(), &chains(vec![c.clone(), c]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.details["problems"][0]["kind"], "broken_link");
        let mut gap = chain(&["a", "b"]);
        gap[1].index = 3;
        let r = check_ledger_agreement(&history(), &chains(vec![gap]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.details["problems"][0]["kind"], "index_gap");
    }

    #[test]
    fn a_duplicate_fails_even_when_unknown() {
        let r = check_ledger_agreement(&history(), &chains(vec![chain(&["a", "b", "c", "c"])]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.details["duplicated"], 1);
    }

    #[test]
    fn a_missing_acknowledged_tx_fails_with_its_operation() {
        let r = check_ledger_agreement(&history(), &chains(vec![chain(&["a", "c"])]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.details["missing"], 1);
        assert_eq!(
            r.counterexample.iter().map(|o| o.id).collect::<Vec<_>>(),
            vec![1]
        );
    }

    #[test]
    fn failed_applied_and_misplaced_txs_fail() {
        let mut ops = history();
        ops.push(append(3, "d", Outcome::Fail, None));
        let r = check_ledger_agreement(&ops, &chains(vec![chain(&["a", "b", "d"])]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.details["failed_but_applied"], 1);
        let r = check_ledger_agreement(&history(), &chains(vec![chain(&["b", "a"])]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.details["misplaced"], 2);
    }

    #[test]
    fn an_unreadable_node_is_unknown_never_pass() {
        let mut cs = chains(vec![chain(&["a", "b"])]);
        cs.insert(NodeId(1), None);
        assert_eq!(
            check_ledger_agreement(&history(), &cs).verdict,
            Verdict::Unknown
        );
        assert_eq!(
            check_ledger_agreement(&history(), &Chains::new()).verdict,
            Verdict::Unknown
        );
        // ... but a violation still fails.
        cs.insert(NodeId(2), Some(chain(&["a"])));
        cs.insert(NodeId(0), Some(chain(&["a"])));
        assert_eq!(
            check_ledger_agreement(&history(), &cs).verdict,
            Verdict::Fail
        );
    }
}
