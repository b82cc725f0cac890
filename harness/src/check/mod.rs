//! Checkers: turn a recorded history into verdicts with counterexamples.
//!
//! Checkers read plain data (history records, final reads) and never touch
//! processes, sockets or the clock; each one returns a [`CheckResult`].

pub mod availability;
mod id;
pub mod ledger;
pub mod linearizable;
pub mod lost_writes;
pub mod verdict;

pub use id::CheckerId;
pub use ledger::{check_ledger_agreement, Chains, LedgerEntry};
pub use linearizable::{check_linearizable, LinOptions};
pub use lost_writes::check_lost_writes;
pub use verdict::{CheckResult, Verdict};

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
}

/// Which checkers [`run_checkers`] runs, and which must find a violation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub linearizable: bool,
    pub lost_writes: bool,
    pub ledger_agreement: bool,
}

impl Selection {
    /// Every checker the recorded data can feed: linearizable when the
    /// history has key-value operations, lost_writes when final reads exist,
    /// ledger_agreement when chains exist.
    pub fn from_data(ops: &[Op], fin: &FinalState) -> Selection {
        let kv = ops
            .iter()
            .any(|o| matches!(o.kind, OpKind::Read | OpKind::Write | OpKind::Cas));
        Selection {
            linearizable: kv,
            lost_writes: kv && !fin.kv.is_empty(),
            ledger_agreement: !fin.ledgers.is_empty(),
        }
    }
}

/// Runs the selected checkers, in a fixed order.
pub fn run_checkers(sel: &Selection, ops: &[Op], fin: &FinalState) -> Vec<CheckResult> {
    let mut out = Vec::new();
    if sel.linearizable {
        out.push(check_linearizable(ops, &LinOptions::default()));
    }
    if sel.lost_writes {
        out.push(check_lost_writes(ops, &fin.kv));
    }
    if sel.ledger_agreement {
        out.push(check_ledger_agreement(ops, &fin.ledgers));
    }
    out
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
            status: Some(200),
            error: None,
        }
    }

    #[test]
    fn the_data_decides_which_checkers_run() {
        let mut fin = FinalState::default();
        let kv = [op(OpKind::Write)];
        let sel = Selection::from_data(&kv, &fin);
        assert!(sel.linearizable && !sel.lost_writes && !sel.ledger_agreement);
        fin.kv.insert(NodeId(0), BTreeMap::new());
        fin.ledgers.insert(NodeId(0), Some(Vec::new()));
        let sel = Selection::from_data(&kv, &fin);
        assert!(sel.linearizable && sel.lost_writes && sel.ledger_agreement);
        let appends = [op(OpKind::Append)];
        let sel = Selection::from_data(&appends, &fin);
        assert!(!sel.linearizable && !sel.lost_writes && sel.ledger_agreement);
        let names: Vec<String> = run_checkers(&sel, &appends, &fin)
            .into_iter()
            .map(|r| r.checker)
            .collect();
        assert_eq!(names, vec!["ledger_agreement"]);
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
