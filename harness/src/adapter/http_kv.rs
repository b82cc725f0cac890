//! The generic HTTP key-value adapter: one templated request shape per
//! operation (`[workload.http]`, docs/http-adapter.md), and the statuses
//! that say what became of it.
//!
//! Never guesses: a status the plan did not name is unknown for a write
//! and a failure for a read.

use super::{error_text, exchange, Adapter, Call, Request, Response};
use crate::history::{OpKind, Outcome};
use crate::plan::{HttpKv, HttpOp, ValueAt};
use std::net::SocketAddr;

pub struct HttpKvAdapter {
    http: reqwest::Client,
    spec: HttpKv,
}

impl HttpKvAdapter {
    pub fn new(http: reqwest::Client, spec: HttpKv) -> HttpKvAdapter {
        HttpKvAdapter { http, spec }
    }

    /// The request shape of a key-value operation; `None` for other kinds
    /// and for a cas the adapter has no shape for.
    fn op(&self, kind: OpKind) -> Option<&HttpOp> {
        match kind {
            OpKind::Read => Some(&self.spec.read),
            OpKind::Write => Some(&self.spec.write),
            OpKind::Cas => self.spec.cas.as_ref(),
            OpKind::Append | OpKind::Add | OpKind::ReadSet | OpKind::ReadList | OpKind::Probe => {
                None
            }
        }
    }

    pub(crate) async fn run(&self, addr: SocketAddr, req: &Request) -> Response {
        let Some(op) = self.op(req.kind) else {
            return Response::failed(match req.kind {
                OpKind::Cas => "the HTTP adapter has no cas operation",
                OpKind::Read
                | OpKind::Write
                | OpKind::Append
                | OpKind::Add
                | OpKind::ReadSet
                | OpKind::ReadList
                | OpKind::Probe => "the HTTP adapter has no such operation",
            });
        };
        let vars = Vars {
            key: req.key.as_deref().unwrap_or_default(),
            value: req.value.as_deref(),
            expect: req.expect.as_deref(),
        };
        let request = build(&self.http, addr, op, &vars);
        match exchange(req.kind, request).await {
            Ok((status, body)) => classify(op, req.kind, status, &body),
            Err(failed) => failed,
        }
    }

    pub(crate) async fn read(&self, addr: SocketAddr, key: &str) -> Option<Option<String>> {
        let req = Request {
            kind: OpKind::Read,
            key: Some(key.to_string()),
            value: None,
            expect: None,
        };
        let r = self.run(addr, &req).await;
        (r.outcome == Outcome::Ok).then_some(r.result)
    }
}

impl Adapter for HttpKvAdapter {
    fn call<'a>(&'a self, addr: SocketAddr, req: &'a Request) -> Call<'a, Response> {
        Box::pin(self.run(addr, req))
    }

    fn read_key<'a>(&'a self, addr: SocketAddr, key: &'a str) -> Call<'a, Option<Option<String>>> {
        Box::pin(self.read(addr, key))
    }
}

/// The values an adapter template can name.
pub(crate) struct Vars<'a> {
    pub key: &'a str,
    pub value: Option<&'a str>,
    pub expect: Option<&'a str>,
}

/// Fills `{key}`, `{value}`, `{expect}` (raw text; empty when absent) and
/// `{value_json}`, `{expect_json}` (a JSON string or `null`). Other text,
/// JSON braces included, is kept as it is.
pub(crate) fn render(template: &str, v: &Vars<'_>) -> String {
    let json = |x: Option<&str>| match x {
        Some(s) => serde_json::Value::String(s.to_string()).to_string(),
        None => "null".to_string(),
    };
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let filled = [
            ("key}", v.key.to_string()),
            ("value}", v.value.unwrap_or_default().to_string()),
            ("expect}", v.expect.unwrap_or_default().to_string()),
            ("value_json}", json(v.value)),
            ("expect_json}", json(v.expect)),
        ]
        .into_iter()
        .find(|(name, _)| after.starts_with(name));
        match filled {
            Some((name, text)) => {
                out.push_str(&text);
                rest = &after[name.len()..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn build(
    http: &reqwest::Client,
    addr: SocketAddr,
    op: &HttpOp,
    vars: &Vars<'_>,
) -> reqwest::RequestBuilder {
    let mut rb = http.request(
        op.method.clone(),
        format!("http://{addr}{}", render(&op.path, vars)),
    );
    for (name, value) in &op.headers {
        rb = rb.header(name.as_str(), render(value, vars));
    }
    if let Some(body) = &op.body {
        rb = rb.body(render(body, vars));
    }
    rb
}

/// Where an adapter answer keeps the value: `None` = absent.
fn extract(at: &ValueAt, body: &[u8]) -> Result<Option<String>, String> {
    match at {
        ValueAt::Body => String::from_utf8(body.to_vec())
            .map(Some)
            .map_err(|_| "the body is not UTF-8".to_string()),
        ValueAt::Pointer(p) => {
            let v: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
            Ok(match v.pointer(p) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            })
        }
    }
}

/// Maps an answer to an outcome, by the statuses the adapter names.
pub(crate) fn classify(op: &HttpOp, kind: OpKind, status: u16, body: &[u8]) -> Response {
    let mk = |outcome, result, error| Response {
        outcome,
        result,
        values: None,
        status: Some(status),
        error,
    };
    let ok = op.ok.contains(&status);
    let not_found = op.not_found.contains(&status);
    match kind {
        OpKind::Read if ok => match extract(&op.value, body) {
            Ok(v) => mk(Outcome::Ok, v, None),
            // An answer the adapter cannot read tells nothing; reads change nothing.
            Err(e) => mk(Outcome::Fail, None, Some(e)),
        },
        OpKind::Read if not_found => mk(Outcome::Ok, None, None),
        // Reads change nothing, so any other answer is a definite failure.
        OpKind::Read => mk(Outcome::Fail, None, error_text(body)),
        _ if ok => mk(Outcome::Ok, None, None),
        // The cas was evaluated and refused: no effect, and it may tell the value.
        OpKind::Cas if op.precondition_failed.contains(&status) => {
            mk(Outcome::Fail, extract(&op.value, body).ok().flatten(), None)
        }
        OpKind::Cas if not_found => mk(Outcome::Fail, None, None),
        // The service says it refused before any effect.
        _ if op.refused.contains(&status) => mk(Outcome::Fail, None, error_text(body)),
        // A client error is refused before it is applied.
        _ if (400..500).contains(&status) => mk(Outcome::Fail, None, error_text(body)),
        // 5xx (or anything unexpected) after the request was sent: it may have applied.
        _ => mk(Outcome::Unknown, None, error_text(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter() -> HttpKv {
        let mut a = crate::adapter::sample_node::kv_api();
        a.read.path = "/v2/{key}".into();
        a.read.ok = vec![200, 203];
        a.read.value = ValueAt::Pointer("/data/v".into());
        a.write.ok = vec![201, 204];
        if let Some(c) = a.cas.as_mut() {
            c.precondition_failed = vec![412];
            c.not_found = vec![404];
            c.refused = Vec::new();
            c.value = ValueAt::Body;
        }
        a
    }

    fn classify_kv(a: &HttpKv, kind: OpKind, status: u16, body: &[u8]) -> Response {
        let op = match kind {
            OpKind::Read => &a.read,
            OpKind::Write => &a.write,
            _ => a.cas.as_ref().expect("cas"),
        };
        classify(op, kind, status, body)
    }

    #[test]
    fn templates_fill_known_placeholders_and_keep_json_braces() {
        let v = Vars {
            key: "k1",
            value: Some("a\"b"),
            expect: None,
        };
        assert_eq!(
            render(
                r#"{"k":"{key}","to":{value_json},"from":{expect_json}}"#,
                &v
            ),
            r#"{"k":"k1","to":"a\"b","from":null}"#
        );
        assert_eq!(
            render("/x/{key}?v={value}&e={expect}{", &v),
            "/x/k1?v=a\"b&e={"
        );
    }

    #[test]
    fn adapter_statuses_and_value_locations_decide_outcomes() {
        let a = adapter();
        let r = classify_kv(&a, OpKind::Read, 203, br#"{"data":{"v":"x"}}"#);
        assert_eq!((r.outcome, r.result.as_deref()), (Outcome::Ok, Some("x")));
        let r = classify_kv(&a, OpKind::Read, 200, br#"{"data":{}}"#);
        assert_eq!((r.outcome, r.result), (Outcome::Ok, None));
        assert_eq!(
            classify_kv(&a, OpKind::Read, 200, b"not json").outcome,
            Outcome::Fail
        );
        assert_eq!(
            classify_kv(&a, OpKind::Write, 204, b"").outcome,
            Outcome::Ok
        );
        // 200 is not in this adapter's ok list for writes: unexpected, maybe applied.
        assert_eq!(
            classify_kv(&a, OpKind::Write, 200, b"").outcome,
            Outcome::Unknown
        );
        let r = classify_kv(&a, OpKind::Cas, 412, b"cur");
        assert_eq!(
            (r.outcome, r.result.as_deref()),
            (Outcome::Fail, Some("cur"))
        );
        let r = classify_kv(&a, OpKind::Cas, 404, b"");
        assert_eq!((r.outcome, r.result), (Outcome::Fail, None));
        assert_eq!(
            classify_kv(&a, OpKind::Cas, 503, b"").outcome,
            Outcome::Unknown
        );
        // `refused` turns a 5xx into a definite failure, for that operation only.
        assert_eq!(
            classify_kv(&a, OpKind::Write, 503, b"no leader").outcome,
            Outcome::Fail
        );
        assert_eq!(
            classify_kv(&a, OpKind::Write, 502, b"").outcome,
            Outcome::Unknown
        );
    }
}
