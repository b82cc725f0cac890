//! Checkers: turn a recorded history into verdicts with counterexamples.
//!
//! Checkers read plain data (history records, final reads) and never touch
//! processes, sockets or the clock; each one returns a [`CheckResult`] with
//! typed details, named by its [`CheckerId`]. They take each operation's
//! outcome as recorded and never re-classify an answer.

pub mod availability;
pub mod collection;
mod id;
pub mod ledger;
pub mod linearizable;
pub mod list_append;
pub mod lost_writes;
pub mod set;
pub mod verdict;

pub use collection::ReadAt;
pub use id::CheckerId;
pub use ledger::{check_ledger_agreement, Chains, LedgerDetails, LedgerEntry, LedgerProblem};
pub use linearizable::{check_linearizable, LinOptions, LinearizableDetails};
pub use list_append::{check_list_append, ListAppendDetails, ListProblem};
pub use lost_writes::{check_lost_writes, LostWritesDetails};
pub use set::{check_set, SetDetails};
pub use verdict::{CheckDetails, CheckResult, Verdict, NOTHING_TO_CHECK};

use crate::history::{Op, OpKind};
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the final.json format.
pub const FINAL_STATE_VERSION: u32 = 1;

/// What every node held after the final heal and recovery: the input of the
/// checkers that compare the history with the end state. Written to
/// `final.json` in the run directory so `rift check RUN_DIR` can re-run them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalState {
    #[serde(default)]
    pub version: u32,
    /// Per node, every key read back (`null` = absent). Keys a node did not
    /// answer are left out.
    #[serde(default)]
    pub kv: BTreeMap<NodeId, BTreeMap<String, Option<String>>>,
    /// Per node, its committed chain (`null` = could not be read).
    #[serde(default)]
    pub ledgers: Chains,
    /// Per node, every set read back after the final heal (set workload).
    /// Keys a node did not answer are left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sets: BTreeMap<NodeId, BTreeMap<String, Vec<String>>>,
    /// Per node, every list read back after the final heal, in order
    /// (list-append workload).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lists: BTreeMap<NodeId, BTreeMap<String, Vec<String>>>,
}

/// Every checker the recorded data can feed, in [`CheckerId::ALL`] order:
/// linearizable when the history has key-value operations, lost_writes when
/// final reads exist too, ledger_agreement when chains exist, set when the
/// history has adds or set reads, list_append when it has keyed appends or
/// list reads.
pub fn feedable(ops: &[Op], final_state: &FinalState) -> Vec<CheckerId> {
    let kv = ops
        .iter()
        .any(|o| matches!(o.kind, OpKind::Read | OpKind::Write | OpKind::Cas));
    let set = ops
        .iter()
        .any(|o| matches!(o.kind, OpKind::Add | OpKind::ReadSet));
    let list = ops.iter().any(|o| match o.kind {
        OpKind::Append => o.key.is_some(),
        OpKind::ReadList => true,
        OpKind::Read
        | OpKind::Write
        | OpKind::Cas
        | OpKind::Add
        | OpKind::ReadSet
        | OpKind::Probe => false,
    });
    CheckerId::ALL
        .into_iter()
        .filter(|c| match c {
            CheckerId::Linearizable => kv,
            CheckerId::LostWrites => kv && !final_state.kv.is_empty(),
            CheckerId::LedgerAgreement => !final_state.ledgers.is_empty(),
            CheckerId::Set => set,
            CheckerId::ListAppend => list,
        })
        .collect()
}

/// Runs the checkers named in `which` once each, in [`CheckerId::ALL`]
/// order whatever the order of `which`.
pub fn run_checkers(which: &[CheckerId], ops: &[Op], final_state: &FinalState) -> Vec<CheckResult> {
    CheckerId::ALL
        .into_iter()
        .filter(|c| which.contains(c))
        .map(|c| match c {
            CheckerId::Linearizable => check_linearizable(ops, &LinOptions::default()),
            CheckerId::LostWrites => check_lost_writes(ops, &final_state.kv),
            CheckerId::LedgerAgreement => check_ledger_agreement(ops, &final_state.ledgers),
            CheckerId::Set => check_set(ops, &final_state.sets),
            CheckerId::ListAppend => check_list_append(ops, &final_state.lists),
        })
        .collect()
}

/// Reads final.json (as the runner writes it); errors say which file and why.
pub fn read_final_state(path: &std::path::Path) -> Result<FinalState, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let fin: FinalState =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if fin.version > FINAL_STATE_VERSION {
        return Err(format!(
            "{}: final state format version {}; this rift reads version {FINAL_STATE_VERSION}",
            path.display(),
            fin.version
        ));
    }
    Ok(fin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    fn op(kind: OpKind) -> Op {
        Op {
            id: 0,
            client: 0,
            node: NodeId(0),
            kind,
            key: Some("k0".into()),
            value: Some("v".into()),
            expect: None,
            invoke_ns: 0,
            complete_ns: 1,
            outcome: Outcome::Ok,
            result: None,
            values: None,
            status: Some(200),
            error: None,
        }
    }

    #[test]
    fn the_data_decides_which_checkers_run() {
        let mut fin = FinalState::default();
        let kv = [op(OpKind::Write)];
        assert_eq!(feedable(&kv, &fin), vec![CheckerId::Linearizable]);
        fin.kv.insert(NodeId(0), BTreeMap::new());
        fin.ledgers.insert(NodeId(0), Some(Vec::new()));
        assert_eq!(feedable(&kv, &fin), CheckerId::ALL[..3].to_vec());
        // A ledger append has no key.
        let appends = [Op {
            key: None,
            ..op(OpKind::Append)
        }];
        let sel = feedable(&appends, &fin);
        assert_eq!(sel, vec![CheckerId::LedgerAgreement]);
        let names: Vec<CheckerId> = run_checkers(&sel, &appends, &fin)
            .into_iter()
            .map(|r| r.checker)
            .collect();
        assert_eq!(names, vec![CheckerId::LedgerAgreement]);
    }

    #[test]
    fn set_and_list_histories_feed_their_checkers() {
        let fin = FinalState::default();
        let set = [op(OpKind::Add), op(OpKind::ReadSet)];
        assert_eq!(feedable(&set, &fin), vec![CheckerId::Set]);
        let list = [op(OpKind::Append), op(OpKind::ReadList)];
        assert_eq!(feedable(&list, &fin), vec![CheckerId::ListAppend]);
    }

    #[test]
    fn checkers_run_once_each_in_the_fixed_order() {
        let mut fin = FinalState::default();
        fin.kv.insert(NodeId(0), BTreeMap::new());
        fin.ledgers.insert(NodeId(0), Some(Vec::new()));
        let which = [
            CheckerId::LedgerAgreement,
            CheckerId::Linearizable,
            CheckerId::LedgerAgreement,
            CheckerId::LostWrites,
        ];
        let results = run_checkers(&which, &[op(OpKind::Write)], &fin);
        let names: Vec<CheckerId> = results.iter().map(|r| r.checker).collect();
        assert_eq!(names, CheckerId::ALL[..3].to_vec());
        for r in &results {
            assert_eq!(r.checker, r.details.checker());
        }
        assert!(run_checkers(&[], &[op(OpKind::Write)], &fin).is_empty());
    }

    /// Every result rift wrote before details were typed (every verdict of
    /// every checker, every kind of ledger problem), as the old code wrote it.
    const OLD_CHECKS: &str = include_str!("../../tests/fixtures/checks-v1.json");

    #[test]
    fn results_written_before_typed_details_read_back_and_write_the_same_json() {
        let old: serde_json::Value = serde_json::from_str(OLD_CHECKS).expect("fixture is JSON");
        let typed: Vec<CheckResult> = serde_json::from_str(OLD_CHECKS).expect("old results read");
        let kinds: std::collections::BTreeSet<(CheckerId, &str)> = typed
            .iter()
            .map(|r| (r.checker, r.verdict.as_str()))
            .collect();
        assert_eq!(
            kinds.len(),
            9,
            "every checker with every verdict: {kinds:?}"
        );
        for r in &typed {
            assert_eq!(r.checker, r.details.checker());
        }
        let problems: std::collections::BTreeSet<String> = typed
            .iter()
            .filter_map(|r| r.details.ledger_agreement())
            .flat_map(|d| d.problems.iter())
            .filter_map(|p| serde_json::to_value(p).ok())
            .map(|p| p["kind"].to_string())
            .collect();
        assert_eq!(problems.len(), 7, "{problems:?}");
        // The same JSON, value for value.
        let again = serde_json::to_value(&typed).expect("typed results serialise");
        assert_eq!(again, old);
        // Byte for byte where no ledger problem is listed (a problem's
        // `kind` is now written first, a key order JSON gives no meaning).
        let mut exact = 0;
        for r in &typed {
            if r.details
                .ledger_agreement()
                .is_some_and(|d| !d.problems.is_empty())
            {
                continue;
            }
            let pretty = serde_json::to_string_pretty(r).expect("serialises");
            let indented: Vec<String> = pretty.lines().map(|l| format!("  {l}")).collect();
            assert!(OLD_CHECKS.contains(&indented.join("\n")), "{pretty}");
            exact += 1;
        }
        assert_eq!(exact, typed.len() - 6);
    }

    #[test]
    fn each_checkers_result_round_trips() {
        let mut fin = FinalState::default();
        fin.kv.insert(
            NodeId(0),
            BTreeMap::from([("k0".to_string(), Some("stale".to_string()))]),
        );
        fin.ledgers.insert(NodeId(0), Some(Vec::new()));
        fin.ledgers.insert(NodeId(1), None);
        let mut ops = vec![op(OpKind::Write), op(OpKind::Read)];
        ops[1].id = 1;
        ops[1].invoke_ns = 2;
        ops[1].complete_ns = 3;
        ops[1].result = Some("nobody wrote this".into());
        let mut append = op(OpKind::Append);
        append.id = 2;
        append.key = None;
        append.result = Some("1".into());
        ops.push(append);
        for (id, kind) in [(3, OpKind::ReadSet), (4, OpKind::ReadList)] {
            ops.push(Op {
                id,
                value: None,
                values: Some(vec!["nobody added this".into()]),
                ..op(kind)
            });
        }
        let results = run_checkers(&CheckerId::ALL, &ops, &fin);
        assert_eq!(results.len(), 5);
        for r in results {
            assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
            let text = serde_json::to_string(&r).expect("serialises");
            let back: CheckResult = serde_json::from_str(&text).expect("reads back");
            assert_eq!(back, r);
        }
    }

    #[test]
    fn details_are_read_by_the_checker_beside_them() {
        let lin = r#"{"checker":"linearizable","verdict":"pass","summary":"s","counterexample":[],"details":{"keys_checked":2}}"#;
        let r: CheckResult = serde_json::from_str(lin).expect("reads");
        assert_eq!(r.details.linearizable().map(|d| d.keys_checked), Some(2));
        // Details that are not an object of their checker's shape are refused.
        let wrong = lin.replace(r#"{"keys_checked":2}"#, r#"{"keys_checked":"two"}"#);
        let err = serde_json::from_str::<CheckResult>(&wrong).expect_err("refused");
        assert!(
            err.to_string()
                .contains("details of checker `linearizable`"),
            "{err}"
        );
        let unknown = lin.replace("linearizable", "serializable");
        assert!(serde_json::from_str::<CheckResult>(&unknown).is_err());
        // No details (or null) read as empty ones.
        let bare = lin.replace(r#","details":{"keys_checked":2}"#, "");
        let r: CheckResult = serde_json::from_str(&bare).expect("reads");
        assert_eq!(
            r.details,
            CheckDetails::Linearizable(LinearizableDetails::default())
        );
        let null = lin.replace(r#"{"keys_checked":2}"#, "null");
        assert!(serde_json::from_str::<CheckResult>(&null).is_ok());
    }

    #[test]
    fn final_state_round_trips_and_newer_versions_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("final.json");
        let mut fin = FinalState {
            version: FINAL_STATE_VERSION,
            ..Default::default()
        };
        fin.kv.insert(
            NodeId(1),
            BTreeMap::from([
                ("k0".to_string(), None),
                ("k1".to_string(), Some("x".into())),
            ]),
        );
        fin.ledgers.insert(NodeId(2), None);
        std::fs::write(&path, serde_json::to_vec(&fin).expect("json")).expect("write");
        assert_eq!(read_final_state(&path), Ok(fin));
        std::fs::write(&path, r#"{"version": 2}"#).expect("write");
        assert!(read_final_state(&path).is_err_and(|e| e.contains("version 2")));
        std::fs::write(&path, "{").expect("write");
        assert!(read_final_state(&path).is_err());
    }
}

/// Helpers the checkers' property tests share.
#[cfg(test)]
pub(crate) mod testing {
    use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    /// How many of 400 histories each strategy yields that `oracle` accepts
    /// and rejects, from a fixed seed: a property test against the oracle is
    /// only worth something if its generators give plenty of both.
    pub(crate) fn verdict_mix<T: std::fmt::Debug>(
        strategies: Vec<(&'static str, BoxedStrategy<T>)>,
        oracle: impl Fn(&T) -> bool,
    ) -> Vec<(&'static str, usize, usize)> {
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
        let mut runner = TestRunner::new_with_rng(Config::default(), rng);
        strategies
            .into_iter()
            .map(|(name, strategy)| {
                let (mut pass, mut fail) = (0, 0);
                for _ in 0..400 {
                    let Ok(tree) = strategy.new_tree(&mut runner) else {
                        continue;
                    };
                    if oracle(&tree.current()) {
                        pass += 1;
                    } else {
                        fail += 1;
                    }
                }
                (name, pass, fail)
            })
            .collect()
    }
}
