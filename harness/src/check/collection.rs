//! What the set and list-append checkers share: reads of whole collections,
//! from the history and from the final state, and where each came from.
//!
//! Owns the gathering of one model's operations per key. It never judges:
//! each checker decides what its reads mean.

use crate::history::{Op, OpKind, Outcome};
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where a collection read came from: an operation of the history, or the
/// read of one node after the final heal (later than every operation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum ReadAt {
    Op { id: u64 },
    Final { node: NodeId },
}

impl fmt::Display for ReadAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadAt::Op { id } => write!(f, "op {id}"),
            ReadAt::Final { node } => write!(f, "final read of {node}"),
        }
    }
}

/// One read of a whole collection.
pub(super) struct CRead<'a> {
    pub at: ReadAt,
    /// Index into the caller's operations (None for a final read).
    pub src: Option<usize>,
    pub invoke: u64,
    /// Final reads begin and complete at `u64::MAX`: after every operation,
    /// concurrent with each other.
    pub complete: u64,
    pub values: &'a [String],
}

/// One key's operations of one model.
#[derive(Default)]
pub(super) struct KeyOps<'a> {
    /// Indices of the adds or appends (any outcome).
    pub writes: Vec<usize>,
    /// Acknowledged reads and final reads, sorted by (invoke, complete).
    pub reads: Vec<CRead<'a>>,
}

#[derive(Default)]
pub(super) struct Gathered<'a> {
    pub keys: BTreeMap<&'a str, KeyOps<'a>>,
    /// Acknowledged reads from the history.
    pub reads: usize,
    pub final_reads: usize,
    /// Operations of the model left out: reads not acknowledged (they tell
    /// nothing), and records missing a key, value or values.
    pub ignored: usize,
}

/// Splits the `write`/`read` operations of `ops` (and the final reads) by
/// key. A `write` needs a key and a value; a `read` counts when acknowledged
/// with its `values`.
pub(super) fn gather<'a>(
    ops: &'a [Op],
    finals: &'a BTreeMap<NodeId, BTreeMap<String, Vec<String>>>,
    write: OpKind,
    read: OpKind,
) -> Gathered<'a> {
    let mut g = Gathered::default();
    for (i, op) in ops.iter().enumerate() {
        if op.kind == write {
            match (op.key.as_deref(), op.value.as_deref()) {
                (Some(key), Some(_)) => g.keys.entry(key).or_default().writes.push(i),
                // A keyless append is the ledger's, not this model's.
                (None, _) if write == OpKind::Append => {}
                _ => g.ignored += 1,
            }
        } else if op.kind == read {
            let acknowledged = match op.outcome {
                Outcome::Ok => true,
                // A read that failed or may not have happened tells nothing.
                Outcome::Fail | Outcome::Unknown => false,
            };
            match (op.key.as_deref(), op.values.as_deref()) {
                (Some(key), Some(values)) if acknowledged => {
                    g.reads += 1;
                    g.keys.entry(key).or_default().reads.push(CRead {
                        at: ReadAt::Op { id: op.id },
                        src: Some(i),
                        invoke: op.invoke_ns,
                        complete: op.complete_ns.max(op.invoke_ns),
                        values,
                    });
                }
                _ => g.ignored += 1,
            }
        }
    }
    for (&node, keys) in finals {
        for (key, values) in keys {
            g.final_reads += 1;
            g.keys.entry(key).or_default().reads.push(CRead {
                at: ReadAt::Final { node },
                src: None,
                invoke: u64::MAX,
                complete: u64::MAX,
                values,
            });
        }
    }
    for k in g.keys.values_mut() {
        k.reads.sort_by_key(|r| (r.invoke, r.complete));
    }
    g
}
