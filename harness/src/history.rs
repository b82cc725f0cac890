//! The history of a run: every client operation, invoke to completion, and
//! the reader of history.jsonl.
//!
//! Records are plain data written as JSON lines while the run goes on, so a
//! crash of rift keeps what was recorded. Checkers read them; they never see
//! processes or sockets. Nothing here re-classifies an answer: an operation's
//! outcome and error were decided once, by the adapter that recorded it.

use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::path::Path;

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
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    Read,
    Write,
    Cas,
    /// Ledger append (no key; `result` is the index), or list-append model
    /// append of `value` to the list at `key`.
    Append,
    /// Set model: add the element `value` to the set at `key`.
    Add,
    /// Set model: read every element of the set at `key` (into `values`).
    ReadSet,
    /// List-append model: read the list at `key`, in order (into `values`).
    ReadList,
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
    /// A collection read's elements (set: any order; list: in order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
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
    /// records as `fail` with no error. (Every failure without an answer
    /// carries an error; a client-protocol refusal has no HTTP status.)
    pub fn served(&self) -> bool {
        match self.outcome {
            Outcome::Ok => true,
            Outcome::Fail => self.error.is_none(),
            Outcome::Unknown => false,
        }
    }
}

/// The version marks a line may carry: `"v"` in an operation line, or a
/// header line `{"rift_history": N}` (for converters). Both may be absent.
#[derive(Deserialize)]
struct Marks {
    v: Option<u32>,
    rift_history: Option<u32>,
    id: Option<serde_json::Value>,
}

/// Reads a history.jsonl file (format version 1, with or without version
/// marks); errors name the line. Operations come back sorted by id.
pub fn read_history(path: &Path) -> Result<Vec<Op>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_history(&text).map_err(|(line, e)| format!("{}:{line}: {e}", path.display()))
}

/// Parses history text; an error gives the 1-based line and what is wrong.
pub fn parse_history(text: &str) -> Result<Vec<Op>, (usize, String)> {
    let supported = HISTORY_VERSION;
    let mut ops = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let marks: Marks = serde_json::from_str(line).map_err(|e| (i + 1, e.to_string()))?;
        let version = marks.v.or(marks.rift_history).unwrap_or(supported);
        if version != supported {
            return Err((
                i + 1,
                format!("history format version {version}; this rift reads version {supported}"),
            ));
        }
        if marks.rift_history.is_some() && marks.id.is_none() {
            continue; // a header line
        }
        let op: Op = serde_json::from_str(line).map_err(|e| (i + 1, e.to_string()))?;
        if !ids.insert(op.id) {
            return Err((i + 1, format!("operation id {} appears twice", op.id)));
        }
        ops.push(op);
    }
    ops.sort_by_key(|o| o.id);
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64) -> Op {
        Op {
            id,
            client: 1,
            node: NodeId(2),
            kind: OpKind::Write,
            key: Some("k0".into()),
            value: Some("1.1".into()),
            expect: None,
            invoke_ns: 10,
            complete_ns: 20,
            outcome: Outcome::Ok,
            result: None,
            values: None,
            status: Some(200),
            error: None,
        }
    }

    #[test]
    fn versions_are_optional_but_never_ignored() {
        let plain = serde_json::to_string(&op(3)).expect("json");
        let header = format!("{{\"rift_history\":1}}\n{plain}\n");
        assert_eq!(parse_history(&header).map(|o| o.len()), Ok(1));
        assert_eq!(parse_history(&plain).map(|o| o.len()), Ok(1));
        let newer = plain.replacen('{', r#"{"v":2,"#, 1);
        assert_eq!(
            parse_history(&newer).map_err(|e| e.0),
            Err(1),
            "a newer format must be refused"
        );
        let twice = format!("{plain}\n{plain}\n");
        assert!(parse_history(&twice).is_err());
        assert_eq!(parse_history("{nope").map_err(|e| e.0), Err(1));
    }

    #[test]
    fn a_refusal_the_adapter_understood_counts_as_served() {
        let refused = |status: u16, error: Option<&str>| Op {
            id: 0,
            client: 0,
            node: NodeId(0),
            kind: OpKind::Cas,
            key: Some("k".into()),
            value: Some("v".into()),
            expect: None,
            invoke_ns: 0,
            complete_ns: 1,
            outcome: Outcome::Fail,
            result: None,
            values: None,
            status: Some(status),
            error: error.map(str::to_string),
        };
        assert!(refused(412, None).served());
        assert!(!refused(400, Some("bad body")).served());
        assert!(!refused(503, Some("no leader")).served());
    }

    #[test]
    fn acknowledged_is_served_and_silence_is_not() {
        assert!(op(0).served());
        let mut timed_out = op(1);
        timed_out.outcome = Outcome::Unknown;
        timed_out.status = None;
        timed_out.error = Some("timeout".into());
        assert!(!timed_out.served());
        // A 5xx whose effect is unknown is no service, even with a status.
        let mut gateway = op(2);
        gateway.outcome = Outcome::Unknown;
        gateway.status = Some(504);
        assert!(!gateway.served());
        let mut refused_connect = op(3);
        refused_connect.outcome = Outcome::Fail;
        refused_connect.status = None;
        refused_connect.error = Some("connect failed".into());
        assert!(!refused_connect.served());
    }
}
