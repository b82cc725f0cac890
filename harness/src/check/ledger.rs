//! Ledger agreement: after recovery, every node's committed chain is a prefix
//! of every other's, each entry links to the hash of the one before, and every
//! acknowledged transaction appears exactly once.
//!
//! Owns the comparison between the appends in the history and the chains read
//! from every node after the run. It must never pass a run whose chains it
//! could not read: a node without a chain makes the verdict Unknown unless
//! something else already failed.

use super::verdict::{CheckDetails, CheckResult, Verdict};
use crate::history::{Op, OpKind, Outcome};
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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

/// The figures behind a ledger-agreement verdict, as report.json holds them
/// (fields in alphabetical order, the order report.json has always had).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LedgerDetails {
    /// Acknowledged appends in the history.
    pub acknowledged: usize,
    /// Per node, the length of its chain (`None` = could not be read).
    pub chain_lengths: BTreeMap<NodeId, Option<usize>>,
    pub duplicated: usize,
    pub failed_but_applied: usize,
    pub misplaced: usize,
    pub missing: usize,
    /// The first 20 problems found.
    pub problems: Vec<LedgerProblem>,
    /// Transactions in the longest chain that no append of the history wrote.
    pub transactions_nobody_appended: usize,
}

/// One violation of ledger agreement (fields in alphabetical order, as in
/// report.json; `kind` names the variant).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerProblem {
    /// A node's chain skips or repeats an index.
    IndexGap {
        expected: u64,
        found: u64,
        node: NodeId,
    },
    /// An entry's `prev` is not the hash of the entry before.
    BrokenLink {
        hash_before: String,
        index: u64,
        node: NodeId,
        prev: String,
    },
    /// Two nodes hold different entries at one index (the longest chain's
    /// node first).
    Fork {
        hashes: [String; 2],
        index: u64,
        nodes: [NodeId; 2],
        payloads: [serde_json::Value; 2],
    },
    /// An acknowledged transaction is not in the longest chain.
    Missing { op_ids: Vec<u64>, tx: String },
    /// A transaction appears more than once.
    Duplicate { indexes: Vec<u64>, tx: String },
    /// A transaction whose every append failed was applied.
    FailedButApplied { indexes: Vec<u64>, tx: String },
    /// A transaction committed at another index than acknowledged.
    Misplaced {
        acknowledged_index: u64,
        found_index: u64,
        tx: String,
    },
}

/// Checks the chains read from every node against the history's appends.
///
/// Violations: an index out of sequence, a broken `prev` link, two nodes with
/// different entries at one index, an `ok` append missing from the longest
/// chain or present more than once, an `unknown` append present more than
/// once, a `fail` append present at all, an `ok` append found at another
/// index than the one acknowledged.
pub fn check_ledger_agreement(ops: &[Op], chains: &Chains) -> CheckResult {
    let mut found = Findings::default();
    // 1. Each chain on its own: consecutive indexes from 1, linked hashes.
    for (&node, chain) in chains {
        if let Some(chain) = chain {
            check_links(node, chain, &mut found);
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
    if let Some(reference) = longest {
        check_forks(&readable, reference, &mut found);
    }
    // 3. Transactions: where each appears in the longest chain.
    let tx = check_transactions(ops, longest.map(|(_, c)| c.as_slice()), &mut found);

    let unreadable: Vec<NodeId> = chains
        .iter()
        .filter(|(_, c)| c.is_none())
        .map(|(n, _)| *n)
        .collect();
    let verdict = if found.violations > 0 {
        Verdict::Fail
    } else if chains.is_empty() || !unreadable.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Pass
    };
    let summary = match verdict {
        Verdict::Pass => format!(
            "{} nodes agree on a linked chain of {} entries; all {} acknowledged transactions appear exactly once",
            readable.len(),
            longest.map(|(_, c)| c.len()).unwrap_or(0),
            tx.acknowledged
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
        Verdict::Fail => fail_summary(&found.problems, &tx),
    };
    let counterexample = if verdict == Verdict::Fail {
        found
            .blamed
            .iter()
            .take(DETAIL_CAP)
            .map(|&i| ops[i].clone())
            .collect()
    } else {
        Vec::new()
    };
    let acknowledged = tx.acknowledged;
    CheckResult::new(
        verdict,
        summary,
        counterexample,
        CheckDetails::LedgerAgreement(LedgerDetails {
            acknowledged: tx.acknowledged,
            chain_lengths: chains
                .iter()
                .map(|(n, c)| (*n, c.as_ref().map(Vec::len)))
                .collect(),
            duplicated: tx.duplicated,
            failed_but_applied: tx.failed_but_applied,
            misplaced: tx.misplaced,
            missing: tx.missing,
            problems: found.problems,
            transactions_nobody_appended: tx.strangers,
        }),
    )
    .unless_nothing_to_check(acknowledged, "append")
}

/// What the checks found so far.
#[derive(Default)]
struct Findings {
    /// The first [`DETAIL_CAP`] problems.
    problems: Vec<LedgerProblem>,
    /// Every problem, listed or not.
    violations: usize,
    /// Indices of the operations to show.
    blamed: BTreeSet<usize>,
}

impl Findings {
    fn add(&mut self, p: LedgerProblem) {
        self.violations += 1;
        if self.problems.len() < DETAIL_CAP {
            self.problems.push(p);
        }
    }
}

/// Consecutive indexes from 1 and linked hashes; the first break is reported.
fn check_links(node: NodeId, chain: &[LedgerEntry], found: &mut Findings) {
    let mut prev_hash = GENESIS;
    for (i, e) in chain.iter().enumerate() {
        let want = i as u64 + 1;
        if e.index != want {
            found.add(LedgerProblem::IndexGap {
                node,
                expected: want,
                found: e.index,
            });
            return;
        }
        if !e.prev.eq_ignore_ascii_case(prev_hash) {
            found.add(LedgerProblem::BrokenLink {
                node,
                index: e.index,
                prev: e.prev.clone(),
                hash_before: prev_hash.to_string(),
            });
            return;
        }
        prev_hash = &e.hash;
    }
}

/// Every chain must be a prefix of the longest (`reference`).
fn check_forks(
    readable: &[(NodeId, &Vec<LedgerEntry>)],
    (ref_node, reference): (NodeId, &Vec<LedgerEntry>),
    found: &mut Findings,
) {
    for &(node, chain) in readable {
        if node == ref_node {
            continue;
        }
        if let Some(i) =
            (0..chain.len()).find(|&i| !chain[i].hash.eq_ignore_ascii_case(&reference[i].hash))
        {
            found.add(LedgerProblem::Fork {
                index: i as u64 + 1,
                nodes: [ref_node, node],
                hashes: [reference[i].hash.clone(), chain[i].hash.clone()],
                payloads: [reference[i].payload.clone(), chain[i].payload.clone()],
            });
        }
    }
}

/// Counts of [`check_transactions`].
#[derive(Default)]
struct TxCounts {
    acknowledged: usize,
    missing: usize,
    duplicated: usize,
    failed_but_applied: usize,
    misplaced: usize,
    /// Transactions nobody appended (another writer, or corruption).
    strangers: usize,
}

/// Each append of the history against where its transaction appears in the
/// longest chain (`None`: no chain could be read; only counts then).
fn check_transactions(
    ops: &[Op],
    reference: Option<&[LedgerEntry]>,
    found: &mut Findings,
) -> TxCounts {
    let mut positions: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for e in reference.unwrap_or(&[]) {
        if let Some(tx) = e.transaction() {
            positions.entry(tx).or_default().push(e.index);
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
    let mut t = TxCounts::default();
    for (&tx, idx) in &appends {
        let at = positions.get(tx).map(Vec::as_slice).unwrap_or(&[]);
        let ok: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| ops[i].outcome == Outcome::Ok)
            .collect();
        let possible = idx.iter().any(|&i| ops[i].outcome != Outcome::Fail);
        t.acknowledged += ok.len();
        if reference.is_none() {
            continue;
        }
        if !ok.is_empty() && at.is_empty() {
            t.missing += 1;
            found.blamed.extend(ok.iter().copied());
            found.add(LedgerProblem::Missing {
                tx: tx.to_string(),
                op_ids: ok.iter().map(|&i| ops[i].id).collect(),
            });
        } else if at.len() > 1 {
            t.duplicated += 1;
            found.blamed.extend(idx.iter().copied());
            found.add(LedgerProblem::Duplicate {
                tx: tx.to_string(),
                indexes: at.to_vec(),
            });
        } else if !possible && !at.is_empty() {
            t.failed_but_applied += 1;
            found.blamed.extend(idx.iter().copied());
            found.add(LedgerProblem::FailedButApplied {
                tx: tx.to_string(),
                indexes: at.to_vec(),
            });
        } else if let (Some(&at), Some(&i)) = (at.first(), ok.first()) {
            let said = ops[i].result.as_deref().and_then(|r| r.parse::<u64>().ok());
            if let Some(said) = said.filter(|&s| s != at) {
                t.misplaced += 1;
                found.blamed.insert(i);
                found.add(LedgerProblem::Misplaced {
                    tx: tx.to_string(),
                    acknowledged_index: said,
                    found_index: at,
                });
            }
        }
    }
    t.strangers = positions
        .keys()
        .filter(|tx| !appends.contains_key(*tx))
        .count();
    t
}

/// One line naming every kind of violation found, then the first problem.
fn fail_summary(problems: &[LedgerProblem], t: &TxCounts) -> String {
    let mut parts = Vec::new();
    let forks = problems
        .iter()
        .filter(|p| matches!(p, LedgerProblem::Fork { .. }))
        .count();
    let links = problems
        .iter()
        .filter(|p| {
            matches!(
                p,
                LedgerProblem::BrokenLink { .. } | LedgerProblem::IndexGap { .. }
            )
        })
        .count();
    if forks > 0 {
        parts.push(format!("{forks} node(s) disagree with the longest chain"));
    }
    if links > 0 {
        parts.push(format!("{links} chain(s) broken"));
    }
    if t.missing > 0 {
        parts.push(format!(
            "{} of {} acknowledged transactions missing",
            t.missing, t.acknowledged
        ));
    }
    if t.duplicated > 0 {
        parts.push(format!(
            "{} transactions appear more than once",
            t.duplicated
        ));
    }
    if t.failed_but_applied > 0 {
        parts.push(format!(
            "{} failed transactions were applied",
            t.failed_but_applied
        ));
    }
    if t.misplaced > 0 {
        parts.push(format!(
            "{} transactions committed at another index than acknowledged",
            t.misplaced
        ));
    }
    // As report.json holds it (keys in alphabetical order).
    let first = problems
        .first()
        .and_then(|p| serde_json::to_value(p).ok())
        .map(|p| format!("; first: {p}"))
        .unwrap_or_default();
    format!("{}{first}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sha2::{Digest, Sha256};

    fn led(r: &CheckResult) -> &LedgerDetails {
        r.details.ledger_agreement().expect("ledger details")
    }

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
            values: None,
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
        assert!(
            matches!(led(&r).problems[0], LedgerProblem::BrokenLink { .. }),
            "{:?}",
            led(&r).problems
        );
        let mut gap = chain(&["a", "b"]);
        gap[1].index = 3;
        let r = check_ledger_agreement(&history(), &chains(vec![gap]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            matches!(led(&r).problems[0], LedgerProblem::IndexGap { .. }),
            "{:?}",
            led(&r).problems
        );
    }

    #[test]
    fn a_duplicate_fails_even_when_unknown() {
        let r = check_ledger_agreement(&history(), &chains(vec![chain(&["a", "b", "c", "c"])]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(led(&r).duplicated, 1);
    }

    #[test]
    fn a_missing_acknowledged_tx_fails_with_its_operation() {
        let r = check_ledger_agreement(&history(), &chains(vec![chain(&["a", "c"])]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(led(&r).missing, 1);
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
        assert_eq!(led(&r).failed_but_applied, 1);
        let r = check_ledger_agreement(&history(), &chains(vec![chain(&["b", "a"])]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(led(&r).misplaced, 2);
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
