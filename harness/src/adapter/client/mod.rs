//! The client protocol (docs/client-protocol.md): rift drives a system
//! through client processes in any language, one per logical client of
//! the workload, speaking JSON lines on their stdin and stdout.
//!
//! [`ClientPool`] holds what every client process of a run shares (the
//! program, the nodes, the id allocator, the recorded [`ClientProblems`]);
//! a [`Session`] is one logical client: it starts a process, hands it one
//! operation at a time and replaces it (with a new client id) when it
//! misbehaves. The pool is also an [`Adapter`], through a session of its
//! own, for the runner's final reads. Nothing a client does panics or
//! hangs rift: every wait has a deadline, every line a length bound.

mod process;
pub mod test;
pub mod wire;

pub use wire::NodeAddr;

use super::{Adapter, Call, Request, Response};
use crate::history::{OpKind, Outcome};
use crate::plan::{ClientSpec, WorkloadSpec};
use crate::NodeId;
use process::{Argv, Proc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use wire::{Func, WireError};

/// How long a client gets to answer the hello.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// What rift adds to the operation timeout before it gives up on an
/// answer, so a client that times its own requests out at `timeout_ms`
/// still has time to answer `info`.
pub const ANSWER_GRACE: Duration = Duration::from_millis(500);
/// After a client failed to start, the session waits this long before
/// starting another (operations meanwhile fail without being sent).
const RESTART_BACKOFF: Duration = Duration::from_millis(500);
/// How many problem messages are kept (all are counted).
const KEPT_PROBLEMS: usize = 20;

/// What went wrong with client processes during a run: shown by the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientProblems {
    /// Every problem, counted.
    pub count: u64,
    /// The first messages (at most 20), oldest first.
    pub first: Vec<String>,
    /// Client processes started (replacements included).
    pub started: u64,
}

/// Why a client pool cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "the {0} workload has no client protocol model (client drives kv, set and list-append)"
    )]
    NoModel(&'static str),
    #[error("cannot create the client log directory {path}: {source}")]
    LogDir {
        path: String,
        source: std::io::Error,
    },
}

/// What every client process of a run shares.
pub struct Shared {
    argv: Argv,
    model: &'static str,
    nodes: Vec<NodeAddr>,
    vars: std::collections::BTreeMap<String, String>,
    timeout: Duration,
    log_dir: PathBuf,
    next_id: AtomicU32,
    started: AtomicU64,
    problems: Mutex<ClientProblems>,
}

impl Shared {
    fn problem(&self, msg: String) {
        tracing::warn!("client problem: {msg}");
        let mut p = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
        p.count += 1;
        if p.first.len() < KEPT_PROBLEMS {
            p.first.push(msg);
        }
    }

    fn node_name(&self, node: NodeId) -> String {
        self.nodes
            .get(node.index())
            .map(|n| n.name.clone())
            .unwrap_or_else(|| node.name())
    }
}

/// The client processes of one run.
pub struct ClientPool {
    shared: Arc<Shared>,
    /// The session of the runner's own reads (final reads, recovery).
    own: tokio::sync::Mutex<Option<Session>>,
    addrs: Vec<SocketAddr>,
}

impl ClientPool {
    /// `targets`: where clients reach each node (names `n0`, `n1`, ...);
    /// logs go to `<log_dir>/<client-id>.log`. Client ids `0..clients` are
    /// the logical clients' first processes; replacements count on.
    pub fn new(
        spec: &ClientSpec,
        workload: &WorkloadSpec,
        targets: &[SocketAddr],
        log_dir: &Path,
    ) -> Result<ClientPool, ClientError> {
        let model =
            wire::model(&workload.kind).ok_or(ClientError::NoModel(match workload.kind {
                crate::plan::WorkloadKind::Ledger => "ledger",
                crate::plan::WorkloadKind::Probe { .. } => "probe",
                crate::plan::WorkloadKind::Kv { .. }
                | crate::plan::WorkloadKind::Set { .. }
                | crate::plan::WorkloadKind::ListAppend { .. } => "this",
            }))?;
        std::fs::create_dir_all(log_dir).map_err(|source| ClientError::LogDir {
            path: log_dir.display().to_string(),
            source,
        })?;
        let nodes = targets
            .iter()
            .enumerate()
            .map(|(i, a)| NodeAddr {
                name: NodeId(i).name(),
                host: a.ip().to_string(),
                port: a.port(),
            })
            .collect();
        Ok(ClientPool {
            shared: Arc::new(Shared {
                argv: Argv {
                    program: spec.command.clone(),
                    args: spec.args.clone(),
                    env: spec
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                },
                model,
                nodes,
                vars: spec.vars.clone(),
                timeout: workload.timeout,
                log_dir: log_dir.to_path_buf(),
                next_id: AtomicU32::new(workload.clients.max(1) as u32),
                started: AtomicU64::new(0),
                problems: Mutex::new(ClientProblems::default()),
            }),
            own: tokio::sync::Mutex::new(None),
            addrs: targets.to_vec(),
        })
    }

    /// The model the clients are asked for (`register`, `set`, `list-append`).
    pub fn model(&self) -> &'static str {
        self.shared.model
    }

    /// A session for logical client `logical`: its first process gets that
    /// id, later ones fresh ids.
    pub fn session(&self, logical: u32) -> Session {
        Session {
            shared: self.shared.clone(),
            proc: None,
            id: logical,
            fresh: true,
            next_op: 0,
            retry_at: None,
        }
    }

    /// Every problem so far.
    pub fn problems(&self) -> ClientProblems {
        let mut p = self
            .shared
            .problems
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        p.started = self.shared.started.load(Ordering::Relaxed);
        p
    }

    /// Kills the pool's own client process (sessions kill theirs on drop).
    pub async fn shutdown(&self) {
        self.own.lock().await.take();
    }

    async fn own_call(&self, addr: SocketAddr, req: &Request) -> Response {
        let Some(i) = self.addrs.iter().position(|a| *a == addr) else {
            return Response::failed(format!("no node at {addr}"));
        };
        let mut own = self.own.lock().await;
        let session = own.get_or_insert_with(|| {
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            let mut s = self.session(id);
            s.fresh = true;
            s
        });
        session.prepare().await;
        session.call(NodeId(i), req).await.1
    }
}

impl ClientPool {
    /// Who leads, as the client says when asked through each of `nodes`:
    /// the node most of the answers name (`None` on no answer or a tie).
    /// Uses the pool's own client process, as final reads do.
    pub async fn leader(&self, nodes: &[NodeId]) -> Option<NodeId> {
        let mut votes: std::collections::BTreeMap<NodeId, usize> = Default::default();
        let mut own = self.own.lock().await;
        let session = own.get_or_insert_with(|| {
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            let mut s = self.session(id);
            s.fresh = true;
            s
        });
        for &node in nodes {
            session.prepare().await;
            let (_, r) = session.leader(node).await;
            let named = match r.outcome {
                crate::history::Outcome::Ok => r.result.as_deref().and_then(NodeId::parse),
                crate::history::Outcome::Fail | crate::history::Outcome::Unknown => None,
            };
            if let Some(n) = named.filter(|n| n.index() < self.addrs.len()) {
                *votes.entry(n).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        let mut top = votes.iter().filter(|(_, v)| **v == best).map(|(n, _)| *n);
        match (top.next(), top.next()) {
            (Some(n), None) => Some(n),
            _ => None,
        }
    }
}

impl Adapter for ClientPool {
    fn call<'a>(&'a self, addr: SocketAddr, req: &'a Request) -> Call<'a, Response> {
        Box::pin(self.own_call(addr, req))
    }

    fn read_key<'a>(&'a self, addr: SocketAddr, key: &'a str) -> Call<'a, Option<Option<String>>> {
        Box::pin(async move {
            let req = Request {
                kind: OpKind::Read,
                key: Some(key.to_string()),
                value: None,
                expect: None,
            };
            let r = self.own_call(addr, &req).await;
            match r.outcome {
                Outcome::Ok => Some(r.result),
                Outcome::Fail | Outcome::Unknown => None,
            }
        })
    }
}

/// One logical client: at most one process at a time, one operation at a
/// time.
pub struct Session {
    shared: Arc<Shared>,
    proc: Option<Proc>,
    /// The client id of the current (or last) process.
    id: u32,
    /// Whether `id` has not been given to a process yet.
    fresh: bool,
    next_op: u64,
    retry_at: Option<Instant>,
}

impl Session {
    /// The client id operations are recorded under now.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Makes sure a process is running (starting one if needed, unless a
    /// failed start is too recent); returns the client id the next
    /// operation goes to. Call before taking the operation's invoke time,
    /// so a handshake is not counted as the operation's latency.
    pub async fn prepare(&mut self) -> u32 {
        if self.proc.is_some() || self.retry_at.is_some_and(|t| Instant::now() < t) {
            return self.id;
        }
        if !self.fresh {
            self.id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        }
        self.fresh = false;
        match self.start().await {
            Ok(p) => {
                self.proc = Some(p);
                self.retry_at = None;
            }
            Err(msg) => {
                self.shared.problem(msg);
                self.retry_at = Some(Instant::now() + RESTART_BACKOFF);
            }
        }
        self.id
    }

    async fn start(&self) -> Result<Proc, String> {
        let id = self.id;
        let log_path = self.shared.log_dir.join(format!("{id}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("client {id}: cannot create {}: {e}", log_path.display()))?;
        let mut p = Proc::spawn(self.shared.argv.clone(), log)
            .await
            .map_err(|e| {
                format!(
                    "client {id}: cannot start `{}`: {e}",
                    self.shared.argv.program
                )
            })?;
        self.shared.started.fetch_add(1, Ordering::Relaxed);
        let hello = wire::hello(
            id,
            self.shared.model,
            &self.shared.nodes,
            &self.shared.vars,
            self.shared.timeout,
        );
        let handshake = async {
            p.send(&hello)
                .await
                .map_err(|e| format!("writing hello: {e}"))?;
            let line = p.read_line().await.map_err(|e| e.to_string())?;
            wire::ready(&line).map_err(|e| e.to_string())
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(())) => Ok(p),
            Ok(Err(e)) => Err(format!("client {id} (pid {}): handshake: {e}", p.pid())),
            Err(_) => Err(format!(
                "client {id} (pid {}): no ready within {HANDSHAKE_TIMEOUT:?}",
                p.pid()
            )),
        }
    }

    /// Carries out one workload operation on `node`: the client id that
    /// carried it out, and its outcome.
    pub async fn call(&mut self, node: NodeId, req: &Request) -> (u32, Response) {
        self.call_func(node, Func::Op(req.kind), req).await
    }

    /// Asks `node` who leads through the client: `Ok` with the leader's
    /// name (or none) in `result`.
    pub async fn leader(&mut self, node: NodeId) -> (u32, Response) {
        let req = Request {
            kind: OpKind::Read,
            key: None,
            value: None,
            expect: None,
        };
        self.call_func(node, Func::Leader, &req).await
    }

    async fn call_func(&mut self, node: NodeId, f: Func, req: &Request) -> (u32, Response) {
        let id = self.prepare().await;
        let Some(p) = self.proc.as_mut() else {
            return (
                id,
                Response::failed("client process not running (not sent)"),
            );
        };
        self.next_op += 1;
        let op = self.next_op;
        let node_name = self.shared.node_name(node);
        let Some(line) = wire::invoke(op, f, req, &node_name) else {
            return (
                id,
                Response::failed("no client protocol operation for this kind"),
            );
        };
        let wait = self.shared.timeout + ANSWER_GRACE;
        let exchange = async {
            p.send(&line)
                .await
                .map_err(|e| format!("writing to the client: {e}"))?;
            let answer = p.read_line().await.map_err(|e| e.to_string())?;
            wire::answer(&answer, op, f).map_err(|e: WireError| e.to_string())
        };
        let problem = match tokio::time::timeout(wait, exchange).await {
            Ok(Ok(r)) => return (id, r),
            Ok(Err(e)) => format!("client {id}: op {op} ({}): {e}", f.name().unwrap_or("?")),
            Err(_) => format!(
                "client {id}: no answer to op {op} ({}) within {wait:?}",
                f.name().unwrap_or("?")
            ),
        };
        self.shared
            .problem(format!("{problem}; replaced by a new client"));
        // Killed now; the next operation starts a process with a new id.
        self.proc = None;
        (
            id,
            Response {
                outcome: Outcome::Unknown,
                result: None,
                values: None,
                status: None,
                error: Some(problem),
            },
        )
    }
}
