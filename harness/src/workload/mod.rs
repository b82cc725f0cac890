//! Clients that drive load against the nodes and record every operation.
//!
//! Owns request pacing, request shapes and outcome classification. Never
//! decides whether a node *should* have served: that is the checkers' job.

mod recorder;

// The reader lives with the record it reads; re-exported for old paths.
pub use crate::history::{parse_history, read_history};
pub use recorder::{LiveCounters, Recorder};

use crate::history::{Op, OpKind, Outcome};
use crate::plan::{HttpKv, HttpOp, KvMix, ValueAt, WorkloadKind, WorkloadSpec};
use crate::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Where clients send requests, indexed by node.
pub type Targets = Arc<Vec<SocketAddr>>;

/// Builds the HTTP client shared by all workload clients.
///
/// `no_proxy`: traffic must go straight to loopback nodes, whatever proxy the
/// environment configures.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_millis(500)))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
}

/// Resolves once the flag turns true (or its sender is gone). Holds no
/// borrow of the channel across awaits, so futures using it stay `Send`.
pub async fn until_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Runs the workload until `deadline` or until `stop` turns true.
pub async fn run(
    spec: WorkloadSpec,
    targets: Targets,
    seed: u64,
    origin: Instant,
    deadline: Instant,
    recorder: Recorder,
    mut stop: watch::Receiver<bool>,
) {
    let http = match http_client(spec.timeout) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot build HTTP client: {e}");
            return;
        }
    };
    let clients = spec.clients.max(1);
    let nodes = targets.len().max(1);
    let period = Duration::from_secs_f64(clients as f64 / spec.rate.max(0.001));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let client = Client {
            id: c as u32,
            // With a client per node or more, each client sticks to one node
            // (as Jepsen's processes do), so requests hung on a paused node
            // never slow the load on the others.
            home: home_node(c, clients, nodes),
            http: http.clone(),
            targets: targets.clone(),
            kind: spec.kind.clone(),
            rng: ChaCha8Rng::seed_from_u64(
                seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(c as u64 + 1)),
            ),
            recorder: recorder.clone(),
            origin,
            seq: 0,
            last_seen: Default::default(),
        };
        // Spread clients over one period so requests do not arrive in bursts.
        let offset = period.mul_f64(c as f64 / clients as f64);
        let stop = stop.clone();
        tasks.spawn(client.drive(period, offset, deadline, stop));
    }
    tokio::select! {
        _ = async { while tasks.join_next().await.is_some() {} } => {}
        _ = crate::workload::until_true(&mut stop) => {
            // Clients see the same signal; give in-flight requests their timeout.
            let grace = tokio::time::sleep(spec.timeout + Duration::from_millis(100));
            tokio::pin!(grace);
            loop {
                tokio::select! {
                    next = tasks.join_next() => if next.is_none() { break },
                    _ = &mut grace => { tasks.abort_all(); break }
                }
            }
        }
    }
}

/// The node a client sticks to: with at least one client per node, client
/// `c` always talks to node `c mod n`; with fewer clients, none (each request
/// picks a node at random, so every node still gets traffic).
fn home_node(client: usize, clients: usize, nodes: usize) -> Option<NodeId> {
    (nodes > 0 && clients >= nodes).then_some(NodeId(client % nodes.max(1)))
}

struct Client {
    id: u32,
    home: Option<NodeId>,
    http: reqwest::Client,
    targets: Targets,
    kind: WorkloadKind,
    rng: ChaCha8Rng,
    recorder: Recorder,
    origin: Instant,
    seq: u64,
    /// Per key, the last value this client saw: the `expect` of its next cas.
    last_seen: std::collections::HashMap<String, Option<String>>,
}

/// The request a client is about to make.
struct Request {
    node: NodeId,
    kind: OpKind,
    key: Option<String>,
    value: Option<String>,
    expect: Option<String>,
}

/// What came back.
struct Response {
    outcome: Outcome,
    result: Option<String>,
    status: Option<u16>,
    error: Option<String>,
}

impl Client {
    async fn drive(
        mut self,
        period: Duration,
        offset: Duration,
        deadline: Instant,
        mut stop: watch::Receiver<bool>,
    ) {
        let start = tokio::time::Instant::now() + offset;
        let mut ticker = tokio::time::interval_at(start, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = crate::workload::until_true(&mut stop) => return,
            }
            if Instant::now() >= deadline || *stop.borrow() {
                return;
            }
            let req = self.next_request();
            let id = self.recorder.next_id();
            let invoke = self.origin.elapsed();
            let resp = self.execute(&req).await;
            let complete = self.origin.elapsed();
            self.observe(&req, &resp);
            self.recorder.record(Op {
                id,
                client: self.id,
                node: req.node,
                kind: req.kind,
                key: req.key,
                value: req.value,
                expect: req.expect,
                invoke_ns: invoke.as_nanos() as u64,
                complete_ns: complete.as_nanos() as u64,
                outcome: resp.outcome,
                result: resp.result,
                status: resp.status,
                error: resp.error,
            });
        }
    }

    fn pick_node(&mut self, n: usize) -> NodeId {
        match self.home {
            Some(home) => home,
            None => NodeId(self.rng.random_range(0..n)),
        }
    }

    fn next_request(&mut self) -> Request {
        let n = self.targets.len().max(1);
        self.seq += 1;
        let picked = self.pick_node(n);
        match &self.kind {
            WorkloadKind::Probe { .. } => Request {
                // Round-robin (when not bound) so every node is probed alike.
                node: self
                    .home
                    .unwrap_or(NodeId((self.id as usize + self.seq as usize) % n)),
                kind: OpKind::Probe,
                key: None,
                value: None,
                expect: None,
            },
            WorkloadKind::Ledger => Request {
                node: picked,
                kind: OpKind::Append,
                key: None,
                value: Some(format!("tx-{}-{}", self.id, self.seq)),
                expect: None,
            },
            WorkloadKind::Kv { keys, mix, .. } => {
                let node = picked;
                let key = format!("k{}", self.rng.random_range(0..(*keys).max(1)));
                let value = format!("{}.{}", self.id, self.seq);
                match pick(&mut self.rng, mix) {
                    OpKind::Read => Request {
                        node,
                        kind: OpKind::Read,
                        key: Some(key),
                        value: None,
                        expect: None,
                    },
                    OpKind::Cas => {
                        let expect = self.last_seen.get(&key).cloned().flatten();
                        Request {
                            node,
                            kind: OpKind::Cas,
                            key: Some(key),
                            value: Some(value),
                            expect,
                        }
                    }
                    _ => Request {
                        node,
                        kind: OpKind::Write,
                        key: Some(key),
                        value: Some(value),
                        expect: None,
                    },
                }
            }
        }
    }

    fn observe(&mut self, req: &Request, resp: &Response) {
        let Some(key) = &req.key else { return };
        match (req.kind, resp.outcome) {
            (OpKind::Read, Outcome::Ok) => {
                self.last_seen.insert(key.clone(), resp.result.clone());
            }
            (OpKind::Write | OpKind::Cas, Outcome::Ok) => {
                self.last_seen.insert(key.clone(), req.value.clone());
            }
            (OpKind::Cas, Outcome::Fail) if resp.status == Some(409) => {
                self.last_seen.insert(key.clone(), resp.result.clone());
            }
            _ => {}
        }
    }

    async fn execute(&self, req: &Request) -> Response {
        let addr = self.targets.get(req.node.index()).copied();
        let Some(addr) = addr else {
            return Response {
                outcome: Outcome::Fail,
                result: None,
                status: None,
                error: Some("no such node".into()),
            };
        };
        let base = format!("http://{addr}");
        let key = req.key.as_deref().unwrap_or_default();
        let sent = match (&self.kind, req.kind) {
            (WorkloadKind::Probe { method, path, .. }, _) => {
                let method =
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
                self.http
                    .request(method, format!("{base}{path}"))
                    .send()
                    .await
            }
            (WorkloadKind::Kv { http, .. }, OpKind::Read | OpKind::Write | OpKind::Cas) => {
                let adapter = http.as_deref().unwrap_or(&SAMPLE_NODE_API);
                let op = match req.kind {
                    OpKind::Read => Some(&adapter.read),
                    OpKind::Write => Some(&adapter.write),
                    _ => adapter.cas.as_ref(),
                };
                let Some(op) = op else {
                    return Response {
                        outcome: Outcome::Fail,
                        result: None,
                        status: None,
                        error: Some("the HTTP adapter has no cas operation".into()),
                    };
                };
                let vars = Vars {
                    key,
                    value: req.value.as_deref(),
                    expect: req.expect.as_deref(),
                };
                adapter_request(&self.http, &base, op, &vars).send().await
            }
            (_, OpKind::Read) => self.http.get(format!("{base}/kv/{key}")).send().await,
            (_, OpKind::Write) => {
                self.http
                    .put(format!("{base}/kv/{key}"))
                    .body(req.value.clone().unwrap_or_default())
                    .send()
                    .await
            }
            (_, OpKind::Cas) => {
                let body = serde_json::json!({"expect": req.expect, "value": req.value});
                self.http
                    .post(format!("{base}/kv/{key}/cas"))
                    .json(&body)
                    .send()
                    .await
            }
            (_, OpKind::Append) => {
                self.http
                    .post(format!("{base}/ledger"))
                    .body(req.value.clone().unwrap_or_default())
                    .send()
                    .await
            }
            (_, OpKind::Probe) => self.http.get(format!("{base}/health")).send().await,
        };
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return transport_failure(req.kind, &e),
        };
        let status = resp.status().as_u16();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                let mut r = transport_failure(req.kind, &e);
                r.status = Some(status);
                return r;
            }
        };
        classify(&self.kind, req.kind, status, &body)
    }
}

/// The sample node's API as an adapter: what a kv workload without
/// `[workload.http]` speaks.
static SAMPLE_NODE_API: std::sync::LazyLock<HttpKv> = std::sync::LazyLock::new(HttpKv::sample_node);

/// The values an adapter template can name.
struct Vars<'a> {
    key: &'a str,
    value: Option<&'a str>,
    expect: Option<&'a str>,
}

/// Fills `{key}`, `{value}`, `{expect}` (raw text; empty when absent) and
/// `{value_json}`, `{expect_json}` (a JSON string or `null`). Other text,
/// JSON braces included, is kept as it is.
fn render(template: &str, v: &Vars<'_>) -> String {
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

fn adapter_request(
    http: &reqwest::Client,
    base: &str,
    op: &HttpOp,
    vars: &Vars<'_>,
) -> reqwest::RequestBuilder {
    let method = reqwest::Method::from_bytes(op.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut rb = http.request(method, format!("{base}{}", render(&op.path, vars)));
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

/// Reads one key from one node as the workload's reads do, for the checks
/// after the run: `Some(value or absent)`, or `None` when the read failed.
pub async fn final_read(
    http: &reqwest::Client,
    spec: &WorkloadSpec,
    addr: SocketAddr,
    key: &str,
) -> Option<Option<String>> {
    let WorkloadKind::Kv { http: adapter, .. } = &spec.kind else {
        return None;
    };
    let adapter = adapter.as_deref().unwrap_or(&SAMPLE_NODE_API);
    let vars = Vars {
        key,
        value: None,
        expect: None,
    };
    let resp = adapter_request(http, &format!("http://{addr}"), &adapter.read, &vars)
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.ok()?;
    let r = classify(&spec.kind, OpKind::Read, status, &body);
    (r.outcome == Outcome::Ok).then_some(r.result)
}

/// Maps an answer of the HTTP adapter to an outcome.
fn classify_adapter(op: &HttpOp, kind: OpKind, status: u16, body: &[u8]) -> Response {
    let err_text = || Some(String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    let mk = |outcome, result, error| Response {
        outcome,
        result,
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
        OpKind::Read => mk(Outcome::Fail, None, err_text()),
        _ if ok => mk(Outcome::Ok, None, None),
        // The cas was evaluated and refused: no effect, and it may tell the value.
        OpKind::Cas if op.precondition_failed.contains(&status) => {
            mk(Outcome::Fail, extract(&op.value, body).ok().flatten(), None)
        }
        OpKind::Cas if not_found => mk(Outcome::Fail, None, None),
        // The service says it refused before any effect.
        _ if op.refused.contains(&status) => mk(Outcome::Fail, None, err_text()),
        // A client error is refused before it is applied.
        _ if (400..500).contains(&status) => mk(Outcome::Fail, None, err_text()),
        // 5xx (or anything unexpected) after the request was sent: it may have applied.
        _ => mk(Outcome::Unknown, None, err_text()),
    }
}

fn pick(rng: &mut ChaCha8Rng, mix: &KvMix) -> OpKind {
    let x: f64 = rng.random();
    if x < mix.read {
        OpKind::Read
    } else if x < mix.read + mix.write {
        OpKind::Write
    } else {
        OpKind::Cas
    }
}

/// A request that got no HTTP answer. A refused connection never reached the
/// node, so nothing was applied; any other failure may have been applied.
fn transport_failure(kind: OpKind, e: &reqwest::Error) -> Response {
    let definitely_not_sent = e.is_connect();
    let outcome = if definitely_not_sent || matches!(kind, OpKind::Read | OpKind::Probe) {
        Outcome::Fail
    } else {
        Outcome::Unknown
    };
    let what = if e.is_timeout() {
        "timeout".to_string()
    } else if e.is_connect() {
        "connect failed".to_string()
    } else {
        format!("transport: {e}")
    };
    Response {
        outcome,
        result: None,
        status: None,
        error: Some(what),
    }
}

/// Maps an HTTP answer to an outcome: the one place an answer is judged.
///
/// Contract with `Op::served`: a definite, correct refusal (a cas refused on
/// its precondition, a not-found) is `Fail` with no error; every other
/// failing or unknown answer carries error text.
fn classify(workload: &WorkloadKind, kind: OpKind, status: u16, body: &[u8]) -> Response {
    let json = || serde_json::from_slice::<serde_json::Value>(body).ok();
    let text_field = |v: &serde_json::Value, f: &str| -> Option<String> {
        match v.get(f)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    };
    let err_text = || Some(String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    let mk = |outcome, result, error| Response {
        outcome,
        result,
        status: Some(status),
        error,
    };
    if let WorkloadKind::Probe { ok_status, .. } = workload {
        return if ok_status.contains(&status) {
            mk(Outcome::Ok, None, None)
        } else {
            mk(Outcome::Fail, None, err_text())
        };
    }
    if let WorkloadKind::Kv { http, .. } = workload {
        let adapter = http.as_deref().unwrap_or(&SAMPLE_NODE_API);
        let op = match kind {
            OpKind::Read => Some(&adapter.read),
            OpKind::Write => Some(&adapter.write),
            OpKind::Cas => adapter.cas.as_ref(),
            _ => None,
        };
        if let Some(op) = op {
            return classify_adapter(op, kind, status, body);
        }
    }
    match (kind, status) {
        (OpKind::Read, 200) => mk(
            Outcome::Ok,
            json().and_then(|v| text_field(&v, "value")),
            None,
        ),
        (OpKind::Read, 404) => mk(Outcome::Ok, None, None),
        (OpKind::Append, 200) => mk(
            Outcome::Ok,
            json().and_then(|v| text_field(&v, "index")),
            None,
        ),
        (_, 200) => mk(Outcome::Ok, None, None),
        // The cas was evaluated and refused: no effect, and it tells the value.
        (OpKind::Cas, 409) => mk(
            Outcome::Fail,
            json().and_then(|v| text_field(&v, "current")),
            None,
        ),
        // Reads change nothing, so any failure is a definite one.
        (OpKind::Read | OpKind::Probe, _) => mk(Outcome::Fail, None, err_text()),
        // A client error is refused before it is applied; the sample node's
        // 503 means the same (504 is its "not committed in time").
        (_, 400..=499 | 503) => mk(Outcome::Fail, None, err_text()),
        // 5xx after the request was sent: it may have been applied.
        _ => mk(Outcome::Unknown, None, err_text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv() -> WorkloadKind {
        WorkloadKind::Kv {
            keys: 3,
            mix: KvMix {
                read: 0.5,
                write: 0.3,
                cas: 0.2,
            },
            http: None,
        }
    }

    #[test]
    fn writes_answered_with_5xx_are_unknown_but_503_reads_are_failures() {
        // The sample node's 503: refused, never proposed.
        assert_eq!(
            classify(&kv(), OpKind::Write, 503, b"{}").outcome,
            Outcome::Fail
        );
        assert_eq!(
            classify(&kv(), OpKind::Write, 504, b"{}").outcome,
            Outcome::Unknown
        );
        assert_eq!(
            classify(&WorkloadKind::Ledger, OpKind::Append, 503, b"{}").outcome,
            Outcome::Fail
        );
        assert_eq!(
            classify(&WorkloadKind::Ledger, OpKind::Append, 504, b"{}").outcome,
            Outcome::Unknown
        );
        assert_eq!(
            classify(&kv(), OpKind::Cas, 500, b"").outcome,
            Outcome::Unknown
        );
        assert_eq!(
            classify(&kv(), OpKind::Read, 503, b"").outcome,
            Outcome::Fail
        );
        assert_eq!(
            classify(&kv(), OpKind::Write, 400, b"").outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn reads_and_refused_cas_carry_values() {
        let r = classify(&kv(), OpKind::Read, 200, br#"{"value":"7.1","index":3}"#);
        assert_eq!((r.outcome, r.result.as_deref()), (Outcome::Ok, Some("7.1")));
        let r = classify(&kv(), OpKind::Read, 404, b"{}");
        assert_eq!((r.outcome, r.result), (Outcome::Ok, None));
        let r = classify(&kv(), OpKind::Cas, 409, br#"{"current":"2.2"}"#);
        assert_eq!(
            (r.outcome, r.result.as_deref()),
            (Outcome::Fail, Some("2.2"))
        );
    }

    #[test]
    fn probe_success_is_the_status_set() {
        let probe = WorkloadKind::Probe {
            method: "GET".into(),
            path: "/".into(),
            ok_status: vec![200, 204],
        };
        assert_eq!(
            classify(&probe, OpKind::Probe, 204, b"").outcome,
            Outcome::Ok
        );
        assert_eq!(
            classify(&probe, OpKind::Probe, 404, b"").outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn clients_stick_to_a_node_only_when_every_node_gets_one() {
        let homes: Vec<Option<NodeId>> = (0..6).map(|c| home_node(c, 6, 3)).collect();
        assert_eq!(homes, [0, 1, 2, 0, 1, 2].map(|i| Some(NodeId(i))));
        assert_eq!(home_node(1, 2, 3), None);
        assert_eq!(home_node(0, 1, 0), None);
    }

    #[test]
    fn mix_weights_select_every_kind() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mix = KvMix {
            read: 0.5,
            write: 0.3,
            cas: 0.2,
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(pick(&mut rng, &mix));
        }
        assert_eq!(seen.len(), 3);
    }

    fn adapter() -> HttpKv {
        let mut a = HttpKv::sample_node();
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
        let kind = WorkloadKind::Kv {
            keys: 1,
            mix: KvMix {
                read: 1.0,
                write: 0.0,
                cas: 0.0,
            },
            http: Some(Box::new(adapter())),
        };
        let r = classify(&kind, OpKind::Read, 203, br#"{"data":{"v":"x"}}"#);
        assert_eq!((r.outcome, r.result.as_deref()), (Outcome::Ok, Some("x")));
        let r = classify(&kind, OpKind::Read, 200, br#"{"data":{}}"#);
        assert_eq!((r.outcome, r.result), (Outcome::Ok, None));
        assert_eq!(
            classify(&kind, OpKind::Read, 200, b"not json").outcome,
            Outcome::Fail
        );
        assert_eq!(
            classify(&kind, OpKind::Write, 204, b"").outcome,
            Outcome::Ok
        );
        // 200 is not in this adapter's ok list for writes: unexpected, maybe applied.
        assert_eq!(
            classify(&kind, OpKind::Write, 200, b"").outcome,
            Outcome::Unknown
        );
        let r = classify(&kind, OpKind::Cas, 412, b"cur");
        assert_eq!(
            (r.outcome, r.result.as_deref()),
            (Outcome::Fail, Some("cur"))
        );
        let r = classify(&kind, OpKind::Cas, 404, b"");
        assert_eq!((r.outcome, r.result), (Outcome::Fail, None));
        assert_eq!(
            classify(&kind, OpKind::Cas, 503, b"").outcome,
            Outcome::Unknown
        );
        // `refused` turns a 5xx into a definite failure, for that operation only.
        assert_eq!(
            classify(&kind, OpKind::Write, 503, b"no leader").outcome,
            Outcome::Fail
        );
        assert_eq!(
            classify(&kind, OpKind::Write, 502, b"").outcome,
            Outcome::Unknown
        );
    }

    #[test]
    fn only_correct_refusals_fail_without_error_text() {
        let adapter = WorkloadKind::Kv {
            keys: 1,
            mix: KvMix {
                read: 1.0,
                write: 0.0,
                cas: 0.0,
            },
            http: Some(Box::new(adapter())),
        };
        let probe = WorkloadKind::Probe {
            method: "GET".into(),
            path: "/".into(),
            ok_status: vec![204],
        };
        for (w, status) in [(&kv(), 409), (&adapter, 412), (&adapter, 404)] {
            let r = classify(w, OpKind::Cas, status, b"");
            assert_eq!((r.outcome, r.error), (Outcome::Fail, None), "{status}");
        }
        let kinds = [kv(), adapter, probe, WorkloadKind::Ledger];
        let ops = [
            OpKind::Read,
            OpKind::Write,
            OpKind::Cas,
            OpKind::Append,
            OpKind::Probe,
        ];
        for w in &kinds {
            for kind in ops {
                for status in [200, 201, 204, 400, 404, 409, 412, 500, 503, 504] {
                    let r = classify(w, kind, status, b"");
                    if r.outcome == Outcome::Fail && r.error.is_none() {
                        // Only a cas refusal may be silent.
                        assert!(
                            kind == OpKind::Cas && matches!(status, 404 | 409 | 412),
                            "{w:?} {kind:?} {status}"
                        );
                    }
                    if r.outcome == Outcome::Unknown {
                        assert!(r.error.is_some(), "{w:?} {kind:?} {status}");
                    }
                }
            }
        }
    }
}
