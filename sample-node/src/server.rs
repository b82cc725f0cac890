//! The IO shell: a core thread that drives [`RaftCore`] (WAL, group commit, apply, replies),
//! per-peer sender tasks, and the axum HTTP API for clients and peers. It never decides a
//! Raft rule itself, and never acknowledges a client before the WAL holds what it promised.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::raft::{hex, Action, Body, Config, Event, Hash, Message, RaftCore, Role};
use crate::state::{Command, KvState, Outcome};
use crate::wal::{Record, Wal, WalError};

/// Logical time step of the core.
const TICK: Duration = Duration::from_millis(10);
/// How long a client request waits for commit (or a read for confirmation) before a 504.
const CLIENT_DEADLINE: Duration = Duration::from_millis(400);
/// Deadline of a request a follower forwards to the leader.
const FORWARD_DEADLINE: Duration = Duration::from_millis(550);
/// Deadline of one peer message batch.
const PEER_DEADLINE: Duration = Duration::from_millis(300);
/// Largest client body.
pub const MAX_BODY: usize = 1 << 20;
/// Longest key, in bytes.
pub const MAX_KEY: usize = 256;
/// Header marking a request already forwarded once (forwarding never loops).
const FORWARDED: &str = "x-rift-forwarded";
/// Header marking a request a stopping leader passed on to its successor: the one second
/// hop forwarding allows (the successor was elected after the first hop, so it cannot loop).
const HANDED_OVER: &str = "x-rift-handed-over";
/// Longest a stopping leader spends handing leadership over before it stops anyway.
const HANDOFF_DEADLINE: Duration = Duration::from_millis(500);

/// Switches that break the node on purpose, for proving checkers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    pub stale_reads: bool,
    pub ack_before_commit: bool,
    pub unsafe_vote: bool,
    /// Acknowledge set adds once appended locally, before a majority has them.
    pub lossy_set: bool,
    /// Answer `GET /list` from the local log, uncommitted entries included, on any node.
    pub dirty_list_reads: bool,
    /// The leader answers `GET /kv` from local state while a lease holds that
    /// it computes from its *wall clock*: the lease starts when a read round
    /// confirmed leadership and lasts [`LEASE`]. Safe while clocks behave;
    /// a leader whose wall clock jumps back or runs slow keeps serving after
    /// a new leader was elected.
    pub lease_reads: bool,
    /// The WAL is written but never fsynced: writes are acknowledged once
    /// they are in the page cache, and a power loss takes them back.
    pub no_fsync: bool,
    /// Each committed entry takes this much longer to apply (the apply loop
    /// sleeps): a slower build, not a broken one, for `rift compare`.
    pub slow_apply: Option<Duration>,
}

/// How long a confirmed read round lets the leader (`--bug lease-reads`)
/// answer reads locally: shorter than the shortest election timeout
/// (15 ticks of 10 ms), so that with true clocks no new leader can have
/// been elected while it holds.
const LEASE: Duration = Duration::from_millis(100);

/// Everything a node needs to run.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: String,
    pub listen: SocketAddr,
    /// Peer id and the address this node sends that peer's messages to.
    pub peers: Vec<(String, SocketAddr)>,
    pub data_dir: PathBuf,
    pub bugs: Bugs,
}

#[derive(Debug, Error)]
pub enum NodeError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("http server: {0}")]
    Serve(std::io::Error),
    #[error("core stopped: {0}")]
    Core(String),
    #[error("cannot start core thread: {0}")]
    Thread(std::io::Error),
}

/// Answers from the core thread to HTTP handlers.
#[derive(Debug)]
enum Reply {
    Written {
        index: u64,
        hash: Hash,
    },
    Conflict(Option<String>),
    Value(Option<(String, u64)>),
    /// A set add committed.
    Added,
    /// A list append committed at this position of its list.
    Appended(u64),
    /// A set (sorted) or a list (in order).
    Values(Vec<String>),
    NotLeader(Option<String>),
    /// Held during a leadership handoff; the successor, if one was elected.
    HandedOver(Option<String>),
    /// The proposal's log slot committed with another entry: it never will.
    Overwritten,
}

#[derive(Debug, serde::Serialize)]
struct Health {
    id: String,
    role: Role,
    term: u64,
    leader: Option<String>,
    commit: u64,
    head: String,
    /// The node's own wall clock (CLOCK_REALTIME), milliseconds since the
    /// Unix epoch: what a clock fault moves.
    wall_ms: u64,
    /// The node's own monotonic clock (CLOCK_MONOTONIC), milliseconds:
    /// what a time namespace offsets.
    mono_ms: u64,
}

/// Milliseconds of the node's wall clock since the Unix epoch (0 if the
/// clock reads before it).
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Milliseconds of the node's CLOCK_MONOTONIC, read directly (Rust's
/// `Instant` has no absolute value to report).
fn mono_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// What a read asks for.
#[derive(Debug)]
enum ReadOf {
    Kv(String),
    Set(String),
    List(String),
}

enum Input {
    Propose(Command, oneshot::Sender<Reply>),
    Read(ReadOf, oneshot::Sender<Reply>),
    Peer(Vec<Message>),
    Health(oneshot::Sender<Health>),
    Ledger {
        from: u64,
        limit: u64,
        reply: oneshot::Sender<Value>,
    },
    /// Graceful stop is starting: hand leadership over; answers the new leader, if known.
    Handoff(oneshot::Sender<Option<String>>),
    Shutdown,
}

/// A leadership handoff the shell is waiting on before it stops.
struct Handoff {
    deadline: Instant,
    done: oneshot::Sender<Option<String>>,
}

/// The core thread's state: everything that must change in step with the Raft core.
struct Shell {
    core: RaftCore,
    wal: Wal,
    kv: KvState,
    bugs: Bugs,
    peers: HashMap<String, mpsc::Sender<Message>>,
    next_req: u64,
    proposals: HashMap<u64, oneshot::Sender<Reply>>,
    writes: HashMap<u64, (u64, oneshot::Sender<Reply>)>,
    reads: HashMap<u64, (ReadOf, oneshot::Sender<Reply>)>,
    ready_reads: Vec<(u64, ReadOf, oneshot::Sender<Reply>)>,
    applied: u64,
    handoff: Option<Handoff>,
    /// Proposals refused during a handoff, answered (and so forwarded) once it ends.
    held: Vec<oneshot::Sender<Reply>>,
    /// `--bug lease-reads`: the wall-clock time until which this leader
    /// answers reads locally, and when each read round in flight started.
    lease_until: Option<std::time::SystemTime>,
    read_started: HashMap<u64, std::time::SystemTime>,
}

impl Shell {
    /// `--bug lease-reads`: this node has applied all it committed and its
    /// wall clock says the lease it took as leader still holds. The lease is
    /// trusted over everything else: a leader that stepped down since (no
    /// quorum heard within an election timeout) keeps serving while it holds,
    /// which true clocks make safe (the lease ends before any new leader can
    /// be elected) and a clock that jumps back does not.
    fn lease_holds(&self) -> bool {
        self.bugs.lease_reads
            && self.applied >= self.core.commit()
            && self
                .lease_until
                .is_some_and(|u| std::time::SystemTime::now() < u)
    }

    fn send(&self, m: Message) {
        if let Some(tx) = self.peers.get(&m.to) {
            // A full queue means the peer is slow or gone; Raft retransmits on the next heartbeat.
            let _ = tx.try_send(m);
        }
    }

    fn handle_inputs(&mut self, inputs: Vec<Input>, tick: bool) -> Result<bool, WalError> {
        let mut events = Vec::new();
        let mut batch: Vec<(u64, String)> = Vec::new();
        let mut stop = false;
        for input in inputs {
            // Consecutive proposals become one event: one append, one broadcast, one fsync.
            if !matches!(input, Input::Propose(..)) && !batch.is_empty() {
                events.push(Event::Propose(std::mem::take(&mut batch)));
            }
            match input {
                Input::Propose(cmd, tx) => {
                    self.next_req += 1;
                    self.proposals.insert(self.next_req, tx);
                    batch.push((self.next_req, cmd.encode()));
                }
                Input::Read(what, tx) => match what {
                    ReadOf::Kv(key) if self.bugs.stale_reads => {
                        let _ = tx.send(Reply::Value(self.kv.get(&key).cloned()));
                    }
                    ReadOf::Kv(key) if self.lease_holds() => {
                        let _ = tx.send(Reply::Value(self.kv.get(&key).cloned()));
                    }
                    ReadOf::List(key) if self.bugs.dirty_list_reads => {
                        let _ =
                            tx.send(Reply::Values(self.local_list(&key, self.core.last_index())));
                    }
                    what @ (ReadOf::Kv(_) | ReadOf::Set(_) | ReadOf::List(_)) => {
                        self.next_req += 1;
                        if self.bugs.lease_reads {
                            self.read_started
                                .insert(self.next_req, std::time::SystemTime::now());
                        }
                        self.reads.insert(self.next_req, (what, tx));
                        events.push(Event::Read(self.next_req));
                    }
                },
                Input::Peer(msgs) => events.extend(msgs.into_iter().map(Event::Message)),
                Input::Health(tx) => {
                    let _ = tx.send(Health {
                        id: self.core.id().to_string(),
                        role: self.core.role(),
                        term: self.core.term(),
                        leader: self.core.leader().map(str::to_string),
                        commit: self.core.commit(),
                        head: hex(&self.core.head()),
                        wall_ms: wall_ms(),
                        mono_ms: mono_ms(),
                    });
                }
                Input::Ledger { from, limit, reply } => {
                    let to = self
                        .core
                        .commit()
                        .min(from.saturating_add(limit).saturating_sub(1));
                    let entries: Vec<Value> = (from.max(1)..=to)
                        .filter_map(|i| self.core.entry(i))
                        .map(|e| {
                            let payload = serde_json::from_str::<Value>(&e.data).unwrap_or(Value::String(e.data.clone()));
                            json!({"index": e.index, "term": e.term, "prev": hex(&e.prev), "hash": hex(&e.hash), "payload": payload})
                        })
                        .collect();
                    let _ = reply.send(json!({ "entries": entries }));
                }
                Input::Handoff(done) => {
                    let leads = self.core.role() == Role::Leader;
                    if leads && !self.peers.is_empty() && self.handoff.is_none() {
                        let ticks = (HANDOFF_DEADLINE.as_millis() / TICK.as_millis()) as u32;
                        events.push(Event::TransferLeadership { ticks });
                        self.handoff = Some(Handoff {
                            deadline: Instant::now() + HANDOFF_DEADLINE,
                            done,
                        });
                    } else {
                        let _ = done.send(self.other_leader());
                    }
                }
                Input::Shutdown => stop = true,
            }
        }
        if !batch.is_empty() {
            events.push(Event::Propose(batch));
        }
        if tick {
            events.push(Event::Tick);
        }
        let before = (self.core.role(), self.core.term());
        let mut actions = Vec::new();
        for e in events {
            actions.extend(self.core.step(e));
        }
        self.execute(actions)?;
        if before != (self.core.role(), self.core.term()) {
            tracing::info!(role = ?self.core.role(), term = self.core.term(), leader = ?self.core.leader(), last = self.core.last_index(), commit = self.core.commit(), "role or term changed");
        }
        self.check_handoff();
        Ok(stop)
    }

    /// The leader, when it is another node.
    fn other_leader(&self) -> Option<String> {
        self.core
            .leader()
            .filter(|l| *l != self.core.id())
            .map(str::to_string)
    }

    /// Ends the handoff once a successor leads and every write this node accepted has been
    /// answered (its commit reaches us from the successor), when the transfer was abandoned,
    /// or at the deadline.
    fn check_handoff(&mut self) {
        let Some(h) = &self.handoff else { return };
        let successor = self.other_leader();
        let done = match &successor {
            Some(_) => self.writes.is_empty(),
            None => self.core.role() == Role::Leader && self.core.transfer_target().is_none(),
        };
        if !done && Instant::now() < h.deadline {
            return;
        }
        let Some(h) = self.handoff.take() else { return };
        match &successor {
            Some(l) => tracing::info!(pending = self.writes.len(), "leadership transferred to {l}"),
            None => tracing::warn!("leadership transfer did not complete; stopping anyway"),
        }
        for tx in self.held.drain(..) {
            let _ = tx.send(Reply::HandedOver(successor.clone()));
        }
        let _ = h.done.send(successor);
    }

    /// Carries out actions: leader appends go out at once (the leader's own fsync runs in
    /// parallel with replication), then one fsync for all log and vote changes, then the rest.
    fn execute(&mut self, mut actions: Vec<Action>) -> Result<(), WalError> {
        while !actions.is_empty() {
            let mut written: Option<(u64, u64)> = None;
            let mut dirty = false;
            let mut rest = Vec::with_capacity(actions.len());
            for a in actions {
                match a {
                    Action::Send(m) if matches!(m.body, Body::Append { .. }) => self.send(m),
                    Action::SaveHardState { term, vote } => {
                        self.wal.push(&Record::HardState { term, vote });
                        dirty = true;
                    }
                    Action::TruncateLog { from } => {
                        self.wal.push(&Record::Truncate { from });
                        dirty = true;
                    }
                    Action::AppendLog(entries) => {
                        for e in &entries {
                            self.wal.push(&Record::Entry {
                                index: e.index,
                                term: e.term,
                                data: e.data.clone(),
                            });
                            written = Some((e.index, e.term));
                        }
                        dirty = true;
                    }
                    other => rest.push(other),
                }
            }
            if dirty {
                self.wal.sync()?;
            }
            for a in rest {
                match a {
                    Action::Send(m) => self.send(m),
                    Action::Proposed { req, index, term } => {
                        if let Some(tx) = self.proposals.remove(&req) {
                            self.writes.insert(index, (term, tx));
                        }
                    }
                    Action::ProposeRejected { req, leader } => {
                        if let Some(tx) = self.proposals.remove(&req) {
                            if self.handoff.is_some() {
                                // Answered when the successor is known, so the handler can
                                // forward it there instead of failing it now.
                                self.held.push(tx);
                            } else {
                                let _ = tx.send(Reply::NotLeader(leader));
                            }
                        }
                    }
                    Action::ReadReady { req, index } => {
                        if let Some(started) = self.read_started.remove(&req) {
                            // Leadership was confirmed for a round sent at `started`.
                            let until = started + LEASE;
                            if self.lease_until.is_none_or(|u| u < until) {
                                self.lease_until = Some(until);
                            }
                        }
                        if let Some((what, tx)) = self.reads.remove(&req) {
                            self.ready_reads.push((index, what, tx));
                        }
                    }
                    Action::ReadRejected { req, leader } => {
                        self.read_started.remove(&req);
                        if let Some((_, tx)) = self.reads.remove(&req) {
                            let _ = tx.send(Reply::NotLeader(leader));
                        }
                    }
                    Action::Apply(entries) => {
                        for e in entries {
                            if let Some(d) = self.bugs.slow_apply {
                                // The core's own thread: a slow state machine
                                // delays everything behind it, as a real one would.
                                std::thread::sleep(d);
                            }
                            let outcome = self.kv.apply(e.index, &e.data);
                            self.applied = e.index;
                            if let Some((term, tx)) = self.writes.remove(&e.index) {
                                // A different term at this index means our proposal was overwritten.
                                if term != e.term {
                                    let _ = tx.send(Reply::Overwritten);
                                } else {
                                    let _ = tx.send(match outcome {
                                        Outcome::Done => Reply::Written {
                                            index: e.index,
                                            hash: e.hash,
                                        },
                                        Outcome::Conflict(cur) => Reply::Conflict(cur),
                                        Outcome::Added => Reply::Added,
                                        Outcome::Appended(at) => Reply::Appended(at),
                                    });
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            // After `Proposed` above, so the entries just written are known as writes.
            if let Some((index, _)) = written {
                let early = self.bugs.ack_before_commit || self.bugs.lossy_set;
                if early && self.core.role() == Role::Leader {
                    self.ack_early(index);
                }
            }
            self.serve_reads();
            actions = match written {
                Some((index, term)) => self.core.step(Event::Persisted { index, term }),
                None => Vec::new(),
            };
        }
        Ok(())
    }

    /// Bug on purpose: acknowledge writes once durable locally, before a majority has them
    /// (`ack-before-commit`: every write; `lossy-set`: set adds only).
    fn ack_early(&mut self, upto: u64) {
        let mut done: Vec<u64> = self.writes.keys().copied().filter(|i| *i <= upto).collect();
        done.sort_unstable();
        for index in done {
            let Some((term, data, hash)) = self
                .core
                .entry(index)
                .map(|e| (e.term, e.data.clone(), e.hash))
            else {
                continue;
            };
            let cmd = serde_json::from_str::<Command>(&data).ok();
            let reply = match cmd {
                Some(Command::SetAdd { .. }) => Reply::Added,
                Some(Command::ListAppend { key, .. }) if self.bugs.ack_before_commit => {
                    let at = self.local_list(&key, index).len().saturating_sub(1);
                    Reply::Appended(at as u64)
                }
                Some(
                    Command::Noop
                    | Command::Put { .. }
                    | Command::Cas { .. }
                    | Command::Tx { .. }
                    | Command::ListAppend { .. },
                )
                | None => {
                    if !self.bugs.ack_before_commit {
                        continue;
                    }
                    Reply::Written { index, hash }
                }
            };
            if let Some((t, tx)) = self.writes.remove(&index) {
                if t == term {
                    let _ = tx.send(reply);
                }
            }
        }
    }

    /// The list at `key` as this node's own log has it up to `upto`: the applied list, then
    /// the appends of entries not yet applied (committed or not).
    fn local_list(&self, key: &str, upto: u64) -> Vec<String> {
        let mut list = self.kv.list(key);
        for i in self.applied + 1..=upto {
            let Some(e) = self.core.entry(i) else { break };
            if let Ok(Command::ListAppend { key: k, value }) = serde_json::from_str(&e.data) {
                if k == key {
                    list.push(value);
                }
            }
        }
        list
    }

    /// A confirmed read's answer, from the applied state.
    fn answer(&self, what: &ReadOf) -> Reply {
        match what {
            ReadOf::Kv(key) => Reply::Value(self.kv.get(key).cloned()),
            ReadOf::Set(key) => Reply::Values(self.kv.set(key)),
            ReadOf::List(key) => Reply::Values(self.kv.list(key)),
        }
    }

    fn serve_reads(&mut self) {
        if self.ready_reads.is_empty() {
            return;
        }
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ready_reads)
            .into_iter()
            .partition(|r| r.0 <= applied);
        self.ready_reads = waiting;
        for (_, what, tx) in ready {
            let _ = tx.send(self.answer(&what));
        }
    }
}

fn core_loop(mut shell: Shell, rx: std_mpsc::Receiver<Input>) -> Result<(), NodeError> {
    let mut next_tick = Instant::now() + TICK;
    loop {
        let mut inputs = Vec::new();
        let wait = next_tick.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(i) => inputs.push(i),
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
        while inputs.len() < 4096 {
            match rx.try_recv() {
                Ok(i) => inputs.push(i),
                Err(_) => break,
            }
        }
        let now = Instant::now();
        let tick = now >= next_tick;
        if tick {
            next_tick += TICK;
            if next_tick < now {
                next_tick = now + TICK;
            }
        }
        if shell.handle_inputs(inputs, tick)? {
            return Ok(());
        }
    }
}

async fn peer_loop(client: reqwest::Client, addr: SocketAddr, mut rx: mpsc::Receiver<Message>) {
    let url = format!("http://{addr}/raft/msg");
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        match client
            .post(&url)
            .timeout(PEER_DEADLINE)
            .json(&batch)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::debug!(%addr, status = %r.status(), "peer rejected messages"),
            Err(e) => tracing::debug!(%addr, error = %e, "peer unreachable"),
        }
    }
}

#[derive(Clone)]
struct App {
    id: String,
    tx: std_mpsc::Sender<Input>,
    peers: HashMap<String, SocketAddr>,
    http: reqwest::Client,
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "error": msg }))).into_response()
}

/// The 400 response for a key that is not one path segment of 1..=256 bytes, if it is not.
fn bad_key(key: &str) -> Option<Response> {
    (key.is_empty() || key.len() > MAX_KEY || key.contains('/')).then(|| {
        error(
            StatusCode::BAD_REQUEST,
            "key must be one path segment of 1..=256 bytes",
        )
    })
}

fn utf8(body: &Bytes) -> Option<String> {
    String::from_utf8(body.to_vec()).ok()
}

/// A request as received, kept so that a follower can forward it to the leader.
struct Original {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl App {
    async fn call(
        &self,
        orig: Original,
        make: impl FnOnce(oneshot::Sender<Reply>) -> Input,
    ) -> Response {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(make(tx)).is_err() {
            return error(StatusCode::SERVICE_UNAVAILABLE, "node stopping");
        }
        // 503 when the request surely took no effect, 504 when it may have
        // (proposed, but not known to be committed): clients and checkers
        // tell a failed write from an unknown one by the status alone. rift
        // believes a 503 write failed; a 503 after proposing would make its
        // checkers report violations that are not there.
        let reply = match tokio::time::timeout(CLIENT_DEADLINE, rx).await {
            Err(_) => return error(StatusCode::GATEWAY_TIMEOUT, "not committed in time"),
            // The core went away with the request pending (node stopping).
            Ok(Err(_)) => return error(StatusCode::GATEWAY_TIMEOUT, "outcome unknown"),
            Ok(Ok(r)) => r,
        };
        match reply {
            Reply::Written { index, hash } => {
                Json(json!({"index": index, "hash": hex(&hash)})).into_response()
            }
            Reply::Conflict(current) => {
                (StatusCode::CONFLICT, Json(json!({ "current": current }))).into_response()
            }
            Reply::Value(Some((value, index))) => {
                Json(json!({"value": value, "index": index})).into_response()
            }
            Reply::Value(None) => error(StatusCode::NOT_FOUND, "not found"),
            Reply::Added => Json(json!({})).into_response(),
            Reply::Appended(at) => Json(json!({ "index": at })).into_response(),
            Reply::Values(values) => Json(json!({ "values": values })).into_response(),
            Reply::Overwritten => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "not committed: overwritten by a new leader",
            ),
            Reply::NotLeader(leader) => self.forward(orig, leader, false).await,
            Reply::HandedOver(leader) => self.forward(orig, leader, true).await,
        }
    }

    /// Asks the core something that changes nothing (health, a ledger
    /// page) and answers it as JSON; 503 if the core is gone or too slow.
    async fn query<T: serde::Serialize>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Input,
    ) -> Response {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(make(tx)).is_err() {
            return error(StatusCode::SERVICE_UNAVAILABLE, "node stopping");
        }
        match tokio::time::timeout(CLIENT_DEADLINE, rx).await {
            Ok(Ok(v)) => Json(v).into_response(),
            _ => error(StatusCode::SERVICE_UNAVAILABLE, "core busy"),
        }
    }

    /// Proxies a request to the leader over the peer link (the peer address, not its listen address).
    /// `handed_over`: this node held the request while handing leadership to `leader`.
    async fn forward(&self, orig: Original, leader: Option<String>, handed_over: bool) -> Response {
        let hops_left = if orig.headers.contains_key(HANDED_OVER) {
            false
        } else {
            handed_over || !orig.headers.contains_key(FORWARDED)
        };
        let addr = match leader
            .as_ref()
            .filter(|l| **l != self.id)
            .and_then(|l| self.peers.get(l))
        {
            Some(a) if hops_left => *a,
            _ => return error(StatusCode::SERVICE_UNAVAILABLE, "no leader"),
        };
        let path = orig.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut req = self
            .http
            .request(orig.method, format!("http://{addr}{path}"))
            .header(FORWARDED, self.id.as_str())
            .timeout(FORWARD_DEADLINE)
            .body(orig.body);
        if handed_over {
            req = req.header(HANDED_OVER, self.id.as_str());
        }
        if let Some(ct) = orig.headers.get(axum::http::header::CONTENT_TYPE) {
            req = req.header(axum::http::header::CONTENT_TYPE, ct.clone());
        }
        match req.send().await {
            Ok(r) => {
                let status =
                    StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                match r.bytes().await {
                    Ok(b) => (
                        status,
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        b,
                    )
                        .into_response(),
                    Err(_) => error(StatusCode::GATEWAY_TIMEOUT, "leader connection lost"),
                }
            }
            // Never connected: the leader did not see the request.
            Err(e) if e.is_connect() => {
                error(StatusCode::SERVICE_UNAVAILABLE, "leader unreachable")
            }
            // Sent, perhaps received: the leader may have taken it.
            Err(_) => error(StatusCode::GATEWAY_TIMEOUT, "leader did not answer"),
        }
    }
}

async fn health(State(app): State<App>) -> Response {
    app.query(Input::Health).await
}

async fn put_kv(
    State(app): State<App>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    let Some(value) = utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "body must be utf-8");
    };
    let orig = Original {
        method,
        uri,
        headers,
        body,
    };
    app.call(orig, |tx| Input::Propose(Command::Put { key, value }, tx))
        .await
}

async fn get_kv(
    State(app): State<App>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    let orig = Original {
        method,
        uri,
        headers,
        body: Bytes::new(),
    };
    app.call(orig, |tx| Input::Read(ReadOf::Kv(key), tx)).await
}

/// `POST /set/{key}` (body: the element) and `POST /list/{key}` (body: the value): proposes
/// the command `make` builds from the key and the body.
async fn post_collection(
    app: App,
    key: String,
    orig: Original,
    make: fn(String, String) -> Command,
) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    let Some(item) = utf8(&orig.body) else {
        return error(StatusCode::BAD_REQUEST, "body must be utf-8");
    };
    app.call(orig, |tx| Input::Propose(make(key, item), tx))
        .await
}

/// `GET /set/{key}` and `GET /list/{key}`: read like `GET /kv/{key}`.
async fn get_collection(
    app: App,
    key: String,
    orig: Original,
    what: fn(String) -> ReadOf,
) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    app.call(orig, |tx| Input::Read(what(key), tx)).await
}

async fn post_set(
    State(app): State<App>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let orig = Original {
        method,
        uri,
        headers,
        body,
    };
    post_collection(app, key, orig, |key, element| Command::SetAdd {
        key,
        element,
    })
    .await
}

async fn get_set(
    State(app): State<App>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let orig = Original {
        method,
        uri,
        headers,
        body: Bytes::new(),
    };
    get_collection(app, key, orig, ReadOf::Set).await
}

async fn post_list(
    State(app): State<App>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let orig = Original {
        method,
        uri,
        headers,
        body,
    };
    post_collection(app, key, orig, |key, value| Command::ListAppend {
        key,
        value,
    })
    .await
}

async fn get_list(
    State(app): State<App>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let orig = Original {
        method,
        uri,
        headers,
        body: Bytes::new(),
    };
    get_collection(app, key, orig, ReadOf::List).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasBody {
    expect: Option<String>,
    value: String,
}

async fn cas_kv(
    State(app): State<App>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    let cas: CasBody = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"expect\": string|null, \"value\": string}}: {e}"),
            )
        }
    };
    let orig = Original {
        method,
        uri,
        headers,
        body,
    };
    app.call(orig, |tx| {
        Input::Propose(
            Command::Cas {
                key,
                expect: cas.expect,
                value: cas.value,
            },
            tx,
        )
    })
    .await
}

async fn post_ledger(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(data) = utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "body must be utf-8");
    };
    let orig = Original {
        method,
        uri,
        headers,
        body,
    };
    app.call(orig, |tx| Input::Propose(Command::Tx { data }, tx))
        .await
}

#[derive(Deserialize)]
struct LedgerQuery {
    from: Option<u64>,
    limit: Option<u64>,
}

async fn get_ledger(
    State(app): State<App>,
    q: Result<Query<LedgerQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected ?from=N&limit=M (non-negative integers)",
        );
    };
    app.query(|reply| Input::Ledger {
        from: q.from.unwrap_or(1),
        limit: q.limit.unwrap_or(100).min(1000),
        reply,
    })
    .await
}

async fn raft_msg(State(app): State<App>, body: Bytes) -> Response {
    let msgs: Vec<Message> = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad peer message: {e}")),
    };
    if msgs
        .iter()
        .any(|m| m.to != app.id || !app.peers.contains_key(&m.from))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "message not from a known peer to this node",
        );
    }
    if app.tx.send(Input::Peer(msgs)).is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "node stopping");
    }
    StatusCode::NO_CONTENT.into_response()
}

fn router(app: App) -> Router {
    let peer = Router::new()
        .route("/raft/msg", post(raft_msg))
        .layer(DefaultBodyLimit::max(256 << 20));
    Router::new()
        .route("/health", get(health))
        .route("/kv/{key}", put(put_kv).get(get_kv))
        .route("/kv/{key}/cas", post(cas_kv))
        .route("/set/{key}", post(post_set).get(get_set))
        .route("/list/{key}", post(post_list).get(get_list))
        .route("/ledger", post(post_ledger).get(get_ledger))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .merge(peer)
        .with_state(app)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Asks the core to hand leadership over and waits for it (bounded; the core has its own
/// deadline, this one only guards against a stuck core thread).
async fn handoff(tx: &std_mpsc::Sender<Input>) {
    let (done, rx) = oneshot::channel();
    if tx.send(Input::Handoff(done)).is_err() {
        return;
    }
    let _ = tokio::time::timeout(HANDOFF_DEADLINE + Duration::from_millis(200), rx).await;
}

/// Runs the node until SIGTERM/SIGINT (or a fatal core error).
pub async fn run(cfg: NodeConfig) -> Result<(), NodeError> {
    let (mut wal, rec) = Wal::open(&cfg.data_dir)?;
    if cfg.bugs.no_fsync {
        wal.skip_fsync();
    }
    if rec.truncated_bytes > 0 {
        tracing::warn!(
            bytes = rec.truncated_bytes,
            "WAL had a torn or corrupt tail; truncated it"
        );
    }
    tracing::info!(entries = rec.entries.len(), term = rec.term, vote = ?rec.vote, "recovered WAL");
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| NodeError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let mut rcfg = Config::new(
        cfg.id.clone(),
        cfg.peers.iter().map(|(p, _)| p.clone()).collect(),
    );
    rcfg.unsafe_vote = cfg.bugs.unsafe_vote;
    rcfg.seed = rand::random();
    let core = RaftCore::new(rcfg, rec.term, rec.vote, rec.entries);

    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(32)
        .build()
        .map_err(|e| NodeError::Core(format!("http client: {e}")))?;
    let mut peer_tx = HashMap::new();
    for (id, addr) in &cfg.peers {
        let (tx, rx) = mpsc::channel(1024);
        peer_tx.insert(id.clone(), tx);
        tokio::spawn(peer_loop(http.clone(), *addr, rx));
    }
    let shell = Shell {
        core,
        wal,
        kv: KvState::default(),
        bugs: cfg.bugs,
        peers: peer_tx,
        next_req: 0,
        proposals: HashMap::new(),
        writes: HashMap::new(),
        reads: HashMap::new(),
        ready_reads: Vec::new(),
        applied: 0,
        handoff: None,
        held: Vec::new(),
        lease_until: None,
        read_started: HashMap::new(),
    };
    let (tx, rx) = std_mpsc::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("raft-core".into())
        .spawn(move || {
            let r = core_loop(shell, rx);
            let _ = done_tx.send(());
            r
        })
        .map_err(NodeError::Thread)?;

    let app = App {
        id: cfg.id.clone(),
        tx: tx.clone(),
        peers: cfg.peers.iter().cloned().collect(),
        http,
    };
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    let handoff_tx = tx.clone();
    let served = axum::serve(listener, router(app))
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = shutdown_signal() => {
                    tracing::info!("signal received; stopping");
                    // The server keeps running meanwhile: the successor needs our Appends
                    // and votes, and held requests are forwarded to it.
                    handoff(&handoff_tx).await;
                }
                _ = done_rx => tracing::error!("core thread stopped"),
            }
        })
        .await;
    let _ = tx.send(Input::Shutdown);
    let core_result = tokio::task::spawn_blocking(move || thread.join())
        .await
        .map_err(|e| NodeError::Core(e.to_string()))?
        .map_err(|_| NodeError::Core("core thread panicked".into()))?;
    served.map_err(NodeError::Serve)?;
    core_result?;
    tracing::info!("stopped");
    Ok(())
}
