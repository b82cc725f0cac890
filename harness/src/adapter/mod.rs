//! How rift talks to a system under test: one [`Adapter`] per kind of
//! service turns a logical operation into a request, and its answer into an
//! outcome — classified here, once, and recorded as such. Checkers and
//! reports read the recorded outcome; they never see a status code rule.
//!
//! Adapters: [`http_kv`] (any HTTP key-value service, `[workload.http]`),
//! [`sample_node`] (the bundled node: its kv paths, ledger, health, chain
//! and convergence) and [`probe`] (a request whose status is all that
//! counts). Never decides whether a node *should* have served.

pub mod http_kv;
pub mod probe;
pub mod sample_node;

use crate::check::LedgerEntry;
use crate::history::{OpKind, Outcome};
use crate::plan::{NodeCommand, Plan, WorkloadKind};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A future an adapter returns (boxed, so adapters can be trait objects).
pub type Call<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A logical operation, before it is sent to a node.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub kind: OpKind,
    pub key: Option<String>,
    pub value: Option<String>,
    /// cas: the value expected before; `None` means "absent".
    pub expect: Option<String>,
}

/// What came back, classified.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub outcome: Outcome,
    /// A read's value (`None` = absent), a refused cas's current value, an
    /// append's index.
    pub result: Option<String>,
    /// A collection read's elements (set: any order; list: in order).
    pub values: Option<Vec<String>>,
    pub status: Option<u16>,
    /// Set on every failure that is not a correct answer of a working
    /// service; a correct refusal (a cas whose expectation did not hold, a
    /// key not found) carries none. See docs/history.md.
    pub error: Option<String>,
}

impl Response {
    fn failed(error: impl Into<String>) -> Response {
        Response {
            outcome: Outcome::Fail,
            result: None,
            values: None,
            status: None,
            error: Some(error.into()),
        }
    }
}

/// The seam between the workload (and the runner's final checks) and a
/// system's client protocol.
pub trait Adapter: Send + Sync {
    /// Carries out one operation against the node at `addr`.
    fn call<'a>(&'a self, addr: SocketAddr, req: &'a Request) -> Call<'a, Response>;

    /// Reads one key as the workload's reads do: `Some(value or absent)`,
    /// or `None` when the read failed. `None` too for adapters without keys.
    fn read_key<'a>(&'a self, addr: SocketAddr, key: &'a str) -> Call<'a, Option<Option<String>>>;

    /// The node's committed chain, for the ledger checker: `None` when the
    /// node does not answer (or the system has no chain).
    fn chain(&self, _addr: SocketAddr) -> Call<'_, Option<Vec<LedgerEntry>>> {
        Box::pin(async { None })
    }

    /// Whether [`Adapter::head`] tells anything: a system whose nodes say
    /// what they have committed, so the runner can wait for convergence.
    fn reports_heads(&self) -> bool {
        false
    }

    /// What the node says it has committed (`commit 12 head ab3f`), or
    /// `None` when it does not answer.
    fn head(&self, _addr: SocketAddr) -> Call<'_, Option<String>> {
        Box::pin(async { None })
    }
}

/// The adapter a plan's workload speaks, built once per run.
pub fn for_plan(plan: &Plan) -> Result<Arc<dyn Adapter>, reqwest::Error> {
    let w = &plan.workload;
    let bundled = matches!(plan.cluster.command, NodeCommand::SampleNode { .. });
    Ok(match &w.kind {
        WorkloadKind::Probe {
            method,
            path,
            ok_status,
        } => Arc::new(probe::Probe::new(
            http_client(w.timeout)?,
            method,
            path,
            ok_status,
        )),
        WorkloadKind::Kv {
            http: Some(spec), ..
        } => Arc::new(http_kv::HttpKvAdapter::new(
            http_client(w.timeout)?,
            (**spec).clone(),
        )),
        WorkloadKind::Kv { http: None, .. }
        | WorkloadKind::Ledger
        | WorkloadKind::Set { .. }
        | WorkloadKind::ListAppend { .. } => Arc::new(sample_node::SampleNode::new(
            http_client(w.timeout)?,
            bundled,
        )),
    })
}

/// The HTTP client adapters share.
///
/// `no_proxy`: traffic must go straight to loopback nodes, whatever proxy
/// the environment configures.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_millis(500)))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
}

/// Sends a request and reads the whole answer: `(status, body)`, or the
/// classified failure when no answer came.
pub(crate) async fn exchange(
    kind: OpKind,
    request: reqwest::RequestBuilder,
) -> Result<(u16, bytes::Bytes), Response> {
    let resp = request
        .send()
        .await
        .map_err(|e| transport_failure(kind, &e))?;
    let status = resp.status().as_u16();
    resp.bytes().await.map(|b| (status, b)).map_err(|e| {
        let mut r = transport_failure(kind, &e);
        r.status = Some(status);
        r
    })
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
        values: None,
        status: None,
        error: Some(what),
    }
}

/// The start of an answer's body, as the error text of a failure.
fn error_text(body: &[u8]) -> Option<String> {
    Some(String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}
