//! The history of a run: every client operation, invoke to completion.
//!
//! Records are plain data written as JSON lines while the run goes on, so a
//! crash of rift keeps what was recorded. Checkers read them; they never see
//! processes or sockets.

use crate::NodeId;
use serde::{Deserialize, Serialize};

/// Version of the history.jsonl line format (see docs/history.md).
pub const HISTORY_VERSION: u32 = 1;

/// What became of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Acknowledged: it took effect.
    Ok,
    /// Definitely not applied (refused before any effect).
    Fail,
    /// May or may not have applied (timeout, reset, 5xx after sending).
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Read,
    Write,
    Cas,
    Append,
    /// A probe request with no state semantics.
    Probe,
}

/// One operation. Times are nanoseconds since the run's start on one monotonic
/// clock in rift.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in invocation order, unique in a history.
    pub id: u64,
    /// Client (Jepsen's process): its operations never overlap.
    pub client: u32,
    pub node: NodeId,
    pub kind: OpKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Written value (write, cas new value, append payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// cas: the value expected before; `None` with `kind = cas` means "absent".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    pub invoke_ns: u64,
    pub complete_ns: u64,
    pub outcome: Outcome,
    /// read: the value returned (`None` = not found). For appends: the index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    pub fn latency_ns(&self) -> u64 {
        self.complete_ns.saturating_sub(self.invoke_ns)
    }

    /// Whether the node answered as a working node would: the measure of
    /// availability. Read from what the adapter recorded: an acknowledged
    /// operation, or a definite refusal that is a correct answer (a cas
    /// whose expectation did not hold, a key not found), which the adapter
    /// records as `fail` with no error.
    pub fn served(&self) -> bool {
        match self.outcome {
            Outcome::Ok => true,
            Outcome::Fail => self.status.is_some() && self.error.is_none(),
            Outcome::Unknown => false,
        }
    }
}
