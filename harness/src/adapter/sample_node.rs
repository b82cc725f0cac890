//! The bundled sample node's API, in one place: its key-value paths (as an
//! [`HttpKv`] shape), ledger appends and pages, a set and a list per key
//! (`/set/{key}`, `/list/{key}`), `/health` (readiness, who leads, what is
//! committed) and what its statuses mean.
//!
//! Any service that imitates this API gets the same treatment; only the
//! bundled node is also asked to converge (see [`SampleNode::new`]).

use super::http_kv::HttpKvAdapter;
use super::{error_text, exchange, Adapter, Call, Request, Response};
use crate::check::LedgerEntry;
use crate::history::{OpKind, Outcome};
use crate::plan::{HttpKv, HttpOp, LeaderQuery, ValueAt};
use reqwest::Method;
use std::net::SocketAddr;
use std::time::Duration;

/// Where the sample node answers readiness, leadership and heads.
pub const HEALTH_PATH: &str = "/health";
/// The JSON pointer to the leader's name in `/health`.
pub const LEADER_POINTER: &str = "/leader";
/// The sample node's key-value API, as an HTTP adapter shape: what a kv
/// workload without `[workload.http]` speaks.
pub fn kv_api() -> HttpKv {
    let op = |method: Method, path: &str, body: Option<&str>| HttpOp {
        method,
        path: path.into(),
        headers: Vec::new(),
        body: body.map(str::to_string),
        ok: vec![200],
        not_found: vec![404],
        precondition_failed: Vec::new(),
        refused: Vec::new(),
        value: ValueAt::Pointer("/value".into()),
    };
    let mut cas = op(
        Method::POST,
        "/kv/{key}/cas",
        Some(r#"{"expect": {expect_json}, "value": {value_json}}"#),
    );
    cas.not_found = Vec::new();
    cas.precondition_failed = vec![409];
    cas.value = ValueAt::Pointer("/current".into());
    cas.headers = vec![("content-type".into(), "application/json".into())];
    // The sample node answers 503 only for what it never proposed (no
    // leader, stopping, or a slot another entry took), 504 otherwise.
    cas.refused = vec![503];
    let mut write = op(Method::PUT, "/kv/{key}", Some("{value}"));
    write.not_found = Vec::new();
    write.refused = vec![503];
    HttpKv {
        read: op(Method::GET, "/kv/{key}", None),
        write,
        cas: Some(cas),
        cas_absent: None,
    }
}

/// How to ask a sample node who leads.
pub fn leader_query() -> LeaderQuery {
    LeaderQuery::named(HEALTH_PATH, LEADER_POINTER)
}

/// Most entries asked for per ledger page (the node's limit).
const LEDGER_PAGE: usize = 1000;

pub struct SampleNode {
    http: reqwest::Client,
    kv: HttpKvAdapter,
    heads: bool,
}

impl SampleNode {
    /// `heads`: whether the nodes are the bundled sample node, which
    /// promises that every node reaches the same commit and chain head
    /// after the final heal (the runner then waits for it).
    pub fn new(http: reqwest::Client, heads: bool) -> SampleNode {
        SampleNode {
            kv: HttpKvAdapter::new(http.clone(), kv_api()),
            http,
            heads,
        }
    }

    async fn run(&self, addr: SocketAddr, req: &Request) -> Response {
        match req.kind {
            OpKind::Read | OpKind::Write | OpKind::Cas => self.kv.run(addr, req).await,
            // Keyed: the list-append model; unkeyed: the ledger.
            OpKind::Append => {
                let path = match &req.key {
                    Some(key) => format!("/list/{key}"),
                    None => "/ledger".to_string(),
                };
                self.write(addr, req, &path).await
            }
            OpKind::Add => match &req.key {
                Some(key) => self.write(addr, req, &format!("/set/{key}")).await,
                None => Response::failed("a set add needs a key"),
            },
            OpKind::ReadSet | OpKind::ReadList => {
                let (Some(key), what) = (&req.key, collection(req.kind)) else {
                    return Response::failed("a collection read needs a key");
                };
                let request = self.http.get(format!("http://{addr}/{what}/{key}"));
                match exchange(req.kind, request).await {
                    Ok((status, body)) => classify_values(status, &body),
                    // A read changes nothing: whatever happened, it failed.
                    Err(mut failed) => {
                        failed.outcome = Outcome::Fail;
                        failed
                    }
                }
            }
            // Probe workloads get the probe adapter (`adapter::for_plan`).
            OpKind::Probe => Response::failed("the sample node adapter sends no probes"),
        }
    }

    /// A write whose body is the operation's value (ledger append, list
    /// append, set add), classified like a ledger append.
    async fn write(&self, addr: SocketAddr, req: &Request, path: &str) -> Response {
        let request = self
            .http
            .post(format!("http://{addr}{path}"))
            .body(req.value.clone().unwrap_or_default());
        match exchange(req.kind, request).await {
            Ok((status, body)) => classify_append(status, &body),
            Err(failed) => failed,
        }
    }

    /// One node's chain through `GET /ledger?from=N&limit=M`, page by page;
    /// `None` when the node does not answer or answers nonsense.
    async fn read_chain(&self, addr: SocketAddr) -> Option<Vec<LedgerEntry>> {
        #[derive(serde::Deserialize)]
        struct Page {
            entries: Vec<LedgerEntry>,
        }
        let mut chain: Vec<LedgerEntry> = Vec::new();
        // Bounded: a node cannot keep rift paging forever.
        for _ in 0..10_000 {
            let from = chain.len() + 1;
            let url = format!("http://{addr}/ledger?from={from}&limit={LEDGER_PAGE}");
            let resp = self.http.get(url).send().await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let page: Page = resp.json().await.ok()?;
            let n = page.entries.len();
            chain.extend(page.entries);
            if n < LEDGER_PAGE {
                return Some(chain);
            }
        }
        Some(chain)
    }

    async fn read_head(&self, addr: SocketAddr) -> Option<String> {
        let h: serde_json::Value = self
            .http
            .get(format!("http://{addr}{HEALTH_PATH}"))
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        Some(format!(
            "commit {} head {}",
            h["commit"],
            h["head"].as_str().unwrap_or("?")
        ))
    }
}

impl Adapter for SampleNode {
    fn call<'a>(&'a self, addr: SocketAddr, req: &'a Request) -> Call<'a, Response> {
        Box::pin(self.run(addr, req))
    }

    fn read_key<'a>(&'a self, addr: SocketAddr, key: &'a str) -> Call<'a, Option<Option<String>>> {
        Box::pin(self.kv.read(addr, key))
    }

    fn chain(&self, addr: SocketAddr) -> Call<'_, Option<Vec<LedgerEntry>>> {
        Box::pin(self.read_chain(addr))
    }

    fn reports_heads(&self) -> bool {
        self.heads
    }

    fn head(&self, addr: SocketAddr) -> Call<'_, Option<String>> {
        Box::pin(self.read_head(addr))
    }
}

fn ok(status: u16, result: Option<String>) -> Response {
    Response {
        outcome: Outcome::Ok,
        result,
        values: None,
        status: Some(status),
        error: None,
    }
}

/// The path segment of a collection read.
fn collection(kind: OpKind) -> &'static str {
    match kind {
        OpKind::ReadSet | OpKind::Add => "set",
        OpKind::ReadList | OpKind::Append => "list",
        OpKind::Read | OpKind::Write | OpKind::Cas | OpKind::Probe => "kv",
    }
}

/// A set or list read's answer: 200 with `{"values": [string...]}`; any
/// other answer (503 no leader, 504 not confirmed in time) is a failed read.
fn classify_values(status: u16, body: &[u8]) -> Response {
    #[derive(serde::Deserialize)]
    struct Values {
        values: Vec<String>,
    }
    let failed = |error: Option<String>| Response {
        outcome: Outcome::Fail,
        result: None,
        values: None,
        status: Some(status),
        error,
    };
    if status != 200 {
        return failed(error_text(body));
    }
    match serde_json::from_slice::<Values>(body) {
        Ok(v) => Response {
            values: Some(v.values),
            ..ok(200, None)
        },
        Err(e) => failed(Some(format!("expected {{\"values\": [string...]}}: {e}"))),
    }
}

/// A write's answer (ledger append, list append, set add): 200, with the
/// entry's index or the list position when the body has one; 503 and 4xx
/// refused before any effect (never proposed); anything else may still
/// commit.
fn classify_append(status: u16, body: &[u8]) -> Response {
    let index = || {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        match v.get("index")? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    };
    let outcome = match status {
        200 => return ok(200, index()),
        400..=499 | 503 => Outcome::Fail,
        _ => Outcome::Unknown,
    };
    Response {
        outcome,
        result: None,
        values: None,
        status: Some(status),
        error: error_text(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::http_kv;

    fn classify(kind: OpKind, status: u16, body: &[u8]) -> Response {
        let api = kv_api();
        match kind {
            OpKind::Read => http_kv::classify(&api.read, kind, status, body),
            OpKind::Write => http_kv::classify(&api.write, kind, status, body),
            OpKind::Cas => http_kv::classify(api.cas.as_ref().expect("cas"), kind, status, body),
            OpKind::ReadSet | OpKind::ReadList => classify_values(status, body),
            OpKind::Append | OpKind::Add | OpKind::Probe => classify_append(status, body),
        }
    }

    #[test]
    fn set_and_list_answers_are_classified_like_the_ledger() {
        // A set add answers `{}`; a list append its position.
        let r = classify(OpKind::Add, 200, b"{}");
        assert_eq!((r.outcome, r.result, r.error), (Outcome::Ok, None, None));
        let r = classify(OpKind::Append, 200, br#"{"index":0}"#);
        assert_eq!((r.outcome, r.result.as_deref()), (Outcome::Ok, Some("0")));
        for kind in [OpKind::Add, OpKind::Append] {
            assert_eq!(classify(kind, 503, b"{}").outcome, Outcome::Fail);
            assert_eq!(classify(kind, 400, b"{}").outcome, Outcome::Fail);
            assert_eq!(classify(kind, 504, b"{}").outcome, Outcome::Unknown);
            assert_eq!(classify(kind, 502, b"").outcome, Outcome::Unknown);
        }
        for kind in [OpKind::ReadSet, OpKind::ReadList] {
            let r = classify(kind, 200, br#"{"values":["b","a"]}"#);
            assert_eq!(r.outcome, Outcome::Ok);
            assert_eq!(r.values, Some(vec!["b".to_string(), "a".to_string()]));
            let r = classify(kind, 200, br#"{"values":[]}"#);
            assert_eq!((r.outcome, r.values), (Outcome::Ok, Some(vec![])));
            for status in [503, 504, 500] {
                let r = classify(kind, status, br#"{"error":"no leader"}"#);
                assert_eq!((r.outcome, r.values), (Outcome::Fail, None), "{status}");
                assert!(r.error.is_some());
            }
            let r = classify(kind, 200, br#"{"value":"x"}"#);
            assert_eq!(r.outcome, Outcome::Fail);
            assert!(r.error.is_some_and(|e| e.contains("values")));
        }
        assert_eq!(collection(OpKind::ReadSet), "set");
        assert_eq!(collection(OpKind::ReadList), "list");
    }

    #[test]
    fn writes_answered_with_5xx_are_unknown_but_503_reads_are_failures() {
        // The sample node's 503: refused, never proposed.
        assert_eq!(classify(OpKind::Write, 503, b"{}").outcome, Outcome::Fail);
        assert_eq!(
            classify(OpKind::Write, 504, b"{}").outcome,
            Outcome::Unknown
        );
        assert_eq!(classify(OpKind::Append, 503, b"{}").outcome, Outcome::Fail);
        assert_eq!(
            classify(OpKind::Append, 504, b"{}").outcome,
            Outcome::Unknown
        );
        assert_eq!(classify(OpKind::Cas, 500, b"").outcome, Outcome::Unknown);
        assert_eq!(classify(OpKind::Read, 503, b"").outcome, Outcome::Fail);
        assert_eq!(classify(OpKind::Write, 400, b"").outcome, Outcome::Fail);
    }

    #[test]
    fn reads_and_refused_cas_carry_values() {
        let r = classify(OpKind::Read, 200, br#"{"value":"7.1","index":3}"#);
        assert_eq!((r.outcome, r.result.as_deref()), (Outcome::Ok, Some("7.1")));
        let r = classify(OpKind::Read, 404, b"{}");
        assert_eq!((r.outcome, r.result), (Outcome::Ok, None));
        let r = classify(OpKind::Cas, 409, br#"{"current":"2.2"}"#);
        assert_eq!(
            (r.outcome, r.result.as_deref()),
            (Outcome::Fail, Some("2.2"))
        );
        let r = classify(OpKind::Append, 200, br#"{"index":12}"#);
        assert_eq!((r.outcome, r.result.as_deref()), (Outcome::Ok, Some("12")));
    }
}
