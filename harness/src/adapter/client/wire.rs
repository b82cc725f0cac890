//! The JSON lines of the client protocol (docs/client-protocol.md): what
//! rift writes (hello, invoke) and what an answer means, classified once.
//!
//! Never touches a process; a line that breaks the protocol is a
//! [`WireError`], never a panic.

use crate::adapter::{Request, Response};
use crate::history::{OpKind, Outcome};
use crate::plan::WorkloadKind;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The protocol version rift speaks.
pub const PROTOCOL: u32 = 1;

/// A node as clients reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddr {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// The model a workload kind asks of a client, by its protocol name.
pub fn model(kind: &WorkloadKind) -> Option<&'static str> {
    match kind {
        WorkloadKind::Kv { .. } => Some("register"),
        WorkloadKind::Set { .. } => Some("set"),
        WorkloadKind::ListAppend { .. } => Some("list-append"),
        WorkloadKind::Ledger | WorkloadKind::Probe { .. } => None,
    }
}

/// rift's first line to a client.
pub fn hello(
    client: u32,
    model: &str,
    nodes: &[NodeAddr],
    vars: &BTreeMap<String, String>,
    timeout: Duration,
) -> String {
    let nodes: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({"name": n.name, "host": n.host, "port": n.port,
                   "addr": format!("{}:{}", n.host, n.port)})
        })
        .collect();
    json!({
        "type": "hello", "protocol": PROTOCOL, "client": client, "model": model,
        "nodes": nodes, "vars": vars, "timeout_ms": timeout.as_millis() as u64,
    })
    .to_string()
}

/// What an operation is called on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Op(OpKind),
    /// Which node leads (only `rift client-test` asks).
    Leader,
}

impl Func {
    pub fn name(self) -> Option<&'static str> {
        match self {
            Func::Leader => Some("leader"),
            Func::Op(kind) => match kind {
                OpKind::Read => Some("read"),
                OpKind::Write => Some("write"),
                OpKind::Cas => Some("cas"),
                OpKind::Add => Some("add"),
                OpKind::ReadSet => Some("read-set"),
                OpKind::Append => Some("append"),
                OpKind::ReadList => Some("read-list"),
                OpKind::Probe => None,
            },
        }
    }
}

/// An `invoke` line; `None` when the operation has no protocol name.
pub fn invoke(id: u64, f: Func, req: &Request, node: &str) -> Option<String> {
    let mut m = Map::new();
    m.insert("type".into(), "invoke".into());
    m.insert("id".into(), id.into());
    m.insert("f".into(), f.name()?.into());
    if let Some(k) = &req.key {
        m.insert("key".into(), k.clone().into());
    }
    if let Some(v) = &req.value {
        m.insert("value".into(), v.clone().into());
    }
    if f == Func::Op(OpKind::Cas) {
        m.insert("expect".into(), req.expect.clone().into());
    }
    m.insert("node".into(), node.into());
    Some(Value::Object(m).to_string())
}

/// A line that breaks the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not a JSON object: {0}")]
    NotJson(String),
    #[error("no `type`")]
    NoType,
    #[error("unknown type `{0}`")]
    UnknownType(String),
    #[error("answer to unknown id {got} (the operation in flight is {want})")]
    UnknownId { got: String, want: u64 },
    #[error("{0}")]
    Malformed(String),
    #[error("the client refused to start: {0}")]
    Refused(String),
}

/// Parses a line into a JSON object.
fn object(line: &[u8]) -> Result<Map<String, Value>, WireError> {
    let shown = || String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) | Err(_) => Err(WireError::NotJson(shown())),
    }
}

fn type_of(m: &Map<String, Value>) -> Result<&str, WireError> {
    m.get("type")
        .and_then(Value::as_str)
        .ok_or(WireError::NoType)
}

/// The answer to a hello: `Ok` on `ready`.
pub fn ready(line: &[u8]) -> Result<(), WireError> {
    let m = object(line)?;
    match type_of(&m)? {
        "ready" => Ok(()),
        "error" => Err(WireError::Refused(
            m.get("error")
                .and_then(Value::as_str)
                .unwrap_or("(no reason given)")
                .to_string(),
        )),
        other => Err(WireError::UnknownType(other.to_string())),
    }
}

/// The answer to invoke `id` of `f`, classified. See docs/client-protocol.md
/// for the mapping: a cas `fail` marked `"refused": true` is a correct
/// refusal (recorded without `error`, so it counts as served).
pub fn answer(line: &[u8], id: u64, f: Func) -> Result<Response, WireError> {
    let m = object(line)?;
    let ty = type_of(&m)?;
    if !matches!(ty, "ok" | "fail" | "info") {
        return Err(WireError::UnknownType(ty.to_string()));
    }
    match m.get("id") {
        Some(Value::Number(n)) if n.as_u64() == Some(id) => {}
        Some(other) => {
            return Err(WireError::UnknownId {
                got: other.to_string(),
                want: id,
            })
        }
        None => return Err(WireError::Malformed("an answer without `id`".into())),
    }
    let text = |field: &str| -> Result<Option<String>, WireError> {
        match m.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(WireError::Malformed(format!(
                "`{field}` must be a string or null, found {other}"
            ))),
        }
    };
    let error = text("error")?;
    let mut r = Response {
        outcome: Outcome::Unknown,
        result: None,
        values: None,
        status: None,
        error: None,
    };
    match ty {
        "ok" => {
            r.outcome = Outcome::Ok;
            match f {
                Func::Op(OpKind::Read) | Func::Leader => {
                    if !m.contains_key("value") {
                        return Err(WireError::Malformed(format!(
                            "an ok `{}` without `value` (null when absent)",
                            f.name().unwrap_or("?")
                        )));
                    }
                    r.result = text("value")?;
                }
                Func::Op(OpKind::ReadSet | OpKind::ReadList) => {
                    r.values = Some(strings(m.get("values"))?);
                }
                Func::Op(OpKind::Append) => r.result = text("value")?,
                Func::Op(OpKind::Write | OpKind::Cas | OpKind::Add | OpKind::Probe) => {}
            }
        }
        "fail" => {
            r.outcome = Outcome::Fail;
            let refused = m.get("refused") == Some(&Value::Bool(true));
            if refused && f == Func::Op(OpKind::Cas) {
                // A correct refusal: the expectation did not hold.
                r.result = text("value")?;
            } else {
                r.error = Some(error.unwrap_or_else(|| "failed (no reason given)".into()));
            }
        }
        _ => {
            r.error = Some(error.unwrap_or_else(|| "info (no reason given)".into()));
        }
    }
    Ok(r)
}

fn strings(v: Option<&Value>) -> Result<Vec<String>, WireError> {
    let bad = || WireError::Malformed("`values` must be a list of strings".into());
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        Some(_) | None => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAS: Func = Func::Op(OpKind::Cas);

    #[test]
    fn answers_map_to_outcomes() {
        let ok = answer(
            br#"{"type":"ok","id":3,"value":null}"#,
            3,
            Func::Op(OpKind::Read),
        );
        assert_eq!(ok.map(|r| (r.outcome, r.result)), Ok((Outcome::Ok, None)));
        let refused = answer(
            br#"{"type":"fail","id":3,"refused":true,"value":"x","error":"differs"}"#,
            3,
            CAS,
        )
        .expect("refusal");
        assert_eq!(
            (refused.outcome, refused.result.as_deref(), refused.error),
            (Outcome::Fail, Some("x"), None)
        );
        let failed =
            answer(br#"{"type":"fail","id":3,"error":"no leader"}"#, 3, CAS).expect("fail");
        assert_eq!(failed.error.as_deref(), Some("no leader"));
        let info = answer(br#"{"type":"info","id":3}"#, 3, CAS).expect("info");
        assert_eq!(info.outcome, Outcome::Unknown);
        let set = answer(
            br#"{"type":"ok","id":3,"values":["a","b"]}"#,
            3,
            Func::Op(OpKind::ReadSet),
        );
        assert_eq!(
            set.map(|r| r.values),
            Ok(Some(vec!["a".into(), "b".into()]))
        );
    }

    #[test]
    fn protocol_breaches_are_errors() {
        assert!(matches!(
            answer(b"garbage", 1, CAS),
            Err(WireError::NotJson(_))
        ));
        assert!(matches!(
            answer(br#"{"type":"ok","id":2}"#, 1, CAS),
            Err(WireError::UnknownId { .. })
        ));
        assert!(matches!(
            answer(br#"{"type":"yes","id":1}"#, 1, CAS),
            Err(WireError::UnknownType(_))
        ));
        assert!(matches!(
            answer(br#"{"type":"ok","id":1}"#, 1, Func::Op(OpKind::Read)),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            answer(
                br#"{"type":"ok","id":1,"values":[1]}"#,
                1,
                Func::Op(OpKind::ReadList)
            ),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            ready(br#"{"type":"error","error":"no"}"#),
            Err(WireError::Refused(_))
        ));
        assert_eq!(ready(br#"{"type":"ready"}"#), Ok(()));
    }
}
