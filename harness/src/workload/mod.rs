//! Clients that drive load against the nodes and record every operation.
//!
//! Owns request pacing, request shapes and outcome classification. Never
//! decides whether a node *should* have served: that is the checkers' job.

mod recorder;

pub use recorder::{read_history, LiveCounters, Recorder};

use crate::history::{Op, OpKind, Outcome};
use crate::plan::{KvMix, WorkloadKind, WorkloadSpec};
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
    let period = Duration::from_secs_f64(clients as f64 / spec.rate.max(0.001));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let client = Client {
            id: c as u32,
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

struct Client {
    id: u32,
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

    fn next_request(&mut self) -> Request {
        let n = self.targets.len().max(1);
        self.seq += 1;
        match &self.kind {
            WorkloadKind::Probe { .. } => Request {
                // Round-robin so every node is probed at the same rate.
                node: NodeId((self.id as usize + self.seq as usize) % n),
                kind: OpKind::Probe,
                key: None,
                value: None,
                expect: None,
            },
            WorkloadKind::Ledger => Request {
                node: NodeId(self.rng.random_range(0..n)),
                kind: OpKind::Append,
                key: None,
                value: Some(format!("tx-{}-{}", self.id, self.seq)),
                expect: None,
            },
            WorkloadKind::Kv { keys, mix } => {
                let node = NodeId(self.rng.random_range(0..n));
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

/// Maps an HTTP answer to an outcome.
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
        // A client error is refused before it is applied.
        (_, 400..=499) => mk(Outcome::Fail, None, err_text()),
        // 5xx after the request was sent: it may have been applied.
        _ => mk(Outcome::Unknown, None, err_text()),
    }
}

/// Whether a node answered the request as a working node would: the measure of
/// availability. A refused cas is a correct answer; a 5xx or silence is not.
pub fn served(op: &Op) -> bool {
    match op.status {
        Some(s) => {
            (200..300).contains(&s)
                || (op.kind != OpKind::Probe && (s == 404 || s == 409))
                || op.outcome == Outcome::Ok
        }
        None => false,
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
        }
    }

    #[test]
    fn writes_answered_with_5xx_are_unknown_reads_are_failures() {
        assert_eq!(
            classify(&kv(), OpKind::Write, 503, b"{}").outcome,
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
}
