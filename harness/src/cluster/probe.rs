//! Asks nodes questions where they listen (loopback, or their own address
//! on the netns wire): are you ready, who leads.
//!
//! Every request has a short timeout; a node that does not answer is simply
//! "not ready" or "no opinion", never an error that stops the run. An answer
//! from anything but the node itself (a squatter on its port, one of rift's
//! own proxies) must never count as the node being ready.

use super::identity::{self, Holder};
use super::{log_tail, ClusterError, Inner};
use crate::plan::{LeaderBy, NodeCommand, ReadyProbe};
use crate::NodeId;
use crate::NodeState;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Timeout of one readiness probe.
pub(crate) const PER_TRY: Duration = Duration::from_millis(500);
/// Pause between readiness probes of one node: from `POLL_FIRST`, doubling
/// up to `POLL_EVERY`, so a node that binds at once is seen at once.
const POLL_FIRST: Duration = Duration::from_millis(5);
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Timeout of one leader question; nodes are asked concurrently.
const LEADER_TIMEOUT: Duration = Duration::from_millis(300);

fn url(inner: &Inner, node: NodeId, path: &str) -> String {
    let addr = addr(inner, node);
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!("http://{addr}{slash}{path}")
}

/// What one readiness probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    Ready,
    NotReady,
    /// Something answered on the node's port, but not the node: another
    /// process holds the port, or a sample node with another id answered.
    WrongProcess(String),
}

/// One readiness probe: the spec's probe, then proof that what answered is
/// the node itself (see [`confirm_identity`]).
pub(crate) async fn probe(inner: &Inner, node: NodeId, per_try: Duration) -> Probe {
    let Some(shared) = inner.nodes.get(node.index()) else {
        return Probe::NotReady;
    };
    let Some(pid) = shared.lock().pid else {
        return Probe::NotReady;
    };
    // The /health body, when the probe fetched it.
    let health = match &inner.spec.ready.probe {
        ReadyProbe::Http { path } => match http_ok(inner, node, path, per_try).await {
            Some(body) => (path == HEALTH).then_some(body),
            None => return Probe::NotReady,
        },
        ReadyProbe::Tcp => {
            let connect = tokio::net::TcpStream::connect(addr(inner, node));
            match tokio::time::timeout(per_try, connect).await {
                Ok(Ok(_)) => None,
                Ok(Err(_)) | Err(_) => return Probe::NotReady,
            }
        }
    };
    let sample_id = match inner.spec.command {
        NodeCommand::SampleNode { .. } => {
            // Probed elsewhere than /health, it still tells its id there.
            let body = match health {
                Some(body) => body,
                None => match http_ok(inner, node, HEALTH, per_try).await {
                    Some(body) => body,
                    None => return Probe::NotReady,
                },
            };
            Some(health_id(&body))
        }
        NodeCommand::External { .. } => None,
    };
    confirm_identity(inner, node, pid, sample_id).await
}

/// The sample node's health path, which answers `{"id": "<name>", ...}`.
const HEALTH: &str = crate::adapter::sample_node::HEALTH_PATH;

/// GETs `path` on the node: the body of a 2xx answer, `None` otherwise.
async fn http_ok(inner: &Inner, node: NodeId, path: &str, per_try: Duration) -> Option<Vec<u8>> {
    let request = inner.http.get(url(inner, node, path)).timeout(per_try);
    let response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.bytes().await.ok().map(|b| b.to_vec())
}

/// The `id` a sample node's /health body names, if any.
fn health_id(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("id")?.as_str().map(str::to_string)
}

/// A probe that got an answer counts only if the node itself gave it: a
/// sample node must name itself (`sample_id` is what /health said), and the
/// socket listening on the node's port must belong to the node's process
/// group. When /proc cannot tell, the answer counts (rift's behaviour before
/// the check existed), with a debug log.
async fn confirm_identity(
    inner: &Inner,
    node: NodeId,
    pid: u32,
    sample_id: Option<Option<String>>,
) -> Probe {
    if let Some(wrong) = sample_id.and_then(|id| not_the_sample_node(node, id.as_deref())) {
        return Probe::WrongProcess(wrong);
    }
    if inner.layout[node.index()].reach.is_some() {
        // Reached at a remote engine's host: its /proc is another
        // machine's, so the sample node's own id is all there is to check.
        return Probe::Ready;
    }
    let at = addr(inner, node);
    // /proc reads block; keep them off the runtime's workers, which also
    // run the proxy mesh.
    let holder = tokio::task::spawn_blocking(move || identity::holder(at, pid))
        .await
        .unwrap_or_else(|e| Holder::Unknown(format!("the /proc check failed: {e}")));
    match holder {
        Holder::Node => Probe::Ready,
        Holder::Other {
            pid: other,
            command,
        } => Probe::WrongProcess(format!(
            "{at} is held by process {other} ({command}), not by {node} (pid {pid})"
        )),
        Holder::Unknown(why) => {
            tracing::debug!(%node, %at, "cannot tell who holds the node's port ({why}); trusting the probe");
            Probe::Ready
        }
    }
}

/// Why a sample node's /health answer (naming `id`) is not `node`'s own.
fn not_the_sample_node(node: NodeId, id: Option<&str>) -> Option<String> {
    match id {
        Some(id) if id == node.name() => None,
        Some(id) => Some(format!("node {id} answered on {node}'s port")),
        None => Some(format!("a server without an id answered on {node}'s port")),
    }
}

fn addr(inner: &Inner, node: NodeId) -> SocketAddr {
    let l = &inner.layout[node.index()];
    SocketAddr::new(l.reach.unwrap_or(l.host), l.port)
}

/// Polls one node until it is ready, it exits, or `deadline` passes. A
/// probe answered by another process never counts; if that is still so at
/// the deadline, the error is [`ClusterError::PortTaken`].
pub(crate) async fn wait_one(
    inner: Arc<Inner>,
    node: NodeId,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let exited = |inner: &Inner| -> Option<ClusterError> {
        let st = inner.nodes[node.index()].lock();
        match st.state {
            NodeState::Up | NodeState::Paused => None,
            NodeState::Down | NodeState::Exited => {
                let log = inner.layout[node.index()].log_path.clone();
                let (code, signal) = st.last_exit.map_or((None, None), |e| (e.code, e.signal));
                Some(ClusterError::Exited {
                    node,
                    code,
                    signal,
                    last_log_lines: log_tail(&log),
                    log,
                })
            }
        }
    };
    let mut poll = POLL_FIRST;
    loop {
        if let Some(e) = exited(&inner) {
            return Err(e);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let per_try = PER_TRY.min(left).max(Duration::from_millis(20));
        let wrong = match probe(&inner, node, per_try).await {
            Probe::Ready => {
                tracing::debug!(%node, "ready");
                return Ok(());
            }
            Probe::NotReady => None,
            Probe::WrongProcess(who) => {
                tracing::debug!(%node, "{who}; not ready");
                Some(who)
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // An exit explains more than a timeout does.
            if let Some(e) = exited(&inner) {
                return Err(e);
            }
            let log = inner.layout[node.index()].log_path.clone();
            let last_log_lines = log_tail(&log);
            return Err(match wrong {
                Some(holder) => ClusterError::PortTaken {
                    node,
                    holder,
                    log,
                    last_log_lines,
                },
                None => ClusterError::NeverReady {
                    node,
                    timeout,
                    last_log_lines,
                    log,
                },
            });
        }
        tokio::time::sleep(poll.min(left)).await;
        poll = (poll * 2).min(POLL_EVERY);
    }
}

/// What one node said when asked who leads (or its own member id).
#[derive(Clone, Debug, PartialEq)]
pub enum LeaderAnswer {
    /// Not asked: the node was not up (paused, stopped or exited).
    NotAsked(NodeState),
    /// No HTTP answer: refused, reset or timed out.
    NoAnswer(String),
    /// An answer with a status other than 2xx.
    Status(u16),
    /// A 2xx answer whose body is not JSON.
    NotJson,
    /// A JSON answer without the pointer's member.
    Missing(String),
    /// The value at the pointer.
    Value(serde_json::Value),
}

impl std::fmt::Display for LeaderAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaderAnswer::NotAsked(NodeState::Paused) => f.write_str("paused, not asked"),
            LeaderAnswer::NotAsked(NodeState::Up | NodeState::Down | NodeState::Exited) => {
                f.write_str("not running, not asked")
            }
            LeaderAnswer::NoAnswer(why) => write!(f, "no answer ({why})"),
            LeaderAnswer::Status(s) => write!(f, "HTTP {s}"),
            LeaderAnswer::NotJson => f.write_str("an answer that is not JSON"),
            LeaderAnswer::Missing(p) => write!(f, "no `{p}` in the answer"),
            LeaderAnswer::Value(v) => write!(f, "{v}"),
        }
    }
}

/// One node's answer, and what rift made of it when it did not count.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeAnswer {
    pub node: NodeId,
    pub answer: LeaderAnswer,
    /// Why a value did not name a leader (`no node has that id`), if so.
    pub note: Option<String>,
}

impl std::fmt::Display for NodeAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.node, self.answer)?;
        match &self.note {
            Some(n) => write!(f, " ({n})"),
            None => Ok(()),
        }
    }
}

/// One round of asking every node who leads.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaderPoll {
    /// The leader the answers agree on, if they do.
    pub leader: Option<NodeId>,
    /// Each node's answer to the leader question, by node.
    pub answers: Vec<NodeAnswer>,
    /// With `ids = { .. }`: each node's answer to "what is your member id".
    pub ids: Vec<NodeAnswer>,
    /// Why the answers name no leader, when they do not.
    pub why: Option<String>,
}

impl std::fmt::Display for LeaderPoll {
    /// `n0: "3a1f" (no node has that id), n1: HTTP 503, n2: no answer (...)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |a: &[NodeAnswer]| {
            a.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        f.write_str(&list(&self.answers))?;
        if !self.ids.is_empty() {
            write!(f, "; member ids: {}", list(&self.ids))?;
        }
        match &self.why {
            Some(why) => write!(f, "; {why}"),
            None => Ok(()),
        }
    }
}

/// Asks every running, unpaused node who leads; `None` without a query.
pub(crate) async fn leader_poll(inner: &Arc<Inner>) -> Option<LeaderPoll> {
    let query = inner.spec.leader.clone()?;
    let leaders = ask_all(inner, &query.path, &query.pointer).await;
    let ids = match &query.by {
        LeaderBy::Ids { path, pointer } => ask_all(inner, path, pointer).await,
        LeaderBy::Name | LeaderBy::Equals(_) => Vec::new(),
    };
    Some(decide(&query.by, inner.layout.len(), leaders, ids))
}

/// Every node's answer at `path`/`pointer`, by node; nodes that are not up
/// are not asked.
async fn ask_all(inner: &Arc<Inner>, path: &str, pointer: &str) -> Vec<(NodeId, LeaderAnswer)> {
    let mut set = tokio::task::JoinSet::new();
    let mut out = Vec::new();
    for shared in &inner.nodes {
        let state = shared.lock().state;
        if state == NodeState::Up {
            let (inner, node) = (inner.clone(), shared.id);
            let (path, pointer) = (path.to_string(), pointer.to_string());
            set.spawn(async move { (node, ask(&inner, node, &path, &pointer).await) });
        } else {
            out.push((shared.id, LeaderAnswer::NotAsked(state)));
        }
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(answer) => out.push(answer),
            // A question task cannot panic short of a bug in rift; surface it.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    out.sort_by_key(|(node, _)| *node);
    out
}

async fn ask(inner: &Inner, node: NodeId, path: &str, pointer: &str) -> LeaderAnswer {
    let why = |e: &reqwest::Error| {
        if e.is_timeout() {
            format!("timed out after {LEADER_TIMEOUT:?}")
        } else if e.is_connect() {
            "could not connect".to_string()
        } else {
            "the connection failed".to_string()
        }
    };
    let request = inner
        .http
        .get(url(inner, node, path))
        .timeout(LEADER_TIMEOUT);
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return LeaderAnswer::NoAnswer(why(&e)),
    };
    let status = response.status();
    if !status.is_success() {
        return LeaderAnswer::Status(status.as_u16());
    }
    let bytes = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return LeaderAnswer::NoAnswer(why(&e)),
    };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return LeaderAnswer::NotJson;
    };
    match body.pointer(pointer) {
        Some(v) => LeaderAnswer::Value(v.clone()),
        None => LeaderAnswer::Missing(pointer.to_string()),
    }
}

/// Who leads, by the answers: pure, so every form is unit-tested.
///
/// - `Name`: each value names a node; the most common named node (a tie:
///   nobody).
/// - `Equals(v)`: the one node whose value equals `v` (none or several:
///   nobody).
/// - `Ids`: each value is a member id, mapped to the node that answered that
///   id as its own; then as `Name`.
fn decide(
    by: &LeaderBy,
    size: usize,
    leaders: Vec<(NodeId, LeaderAnswer)>,
    ids: Vec<(NodeId, LeaderAnswer)>,
) -> LeaderPoll {
    let plain = |v: Vec<(NodeId, LeaderAnswer)>| -> Vec<NodeAnswer> {
        v.into_iter()
            .map(|(node, answer)| NodeAnswer {
                node,
                answer,
                note: None,
            })
            .collect()
    };
    let mut answers = plain(leaders);
    let mut ids = plain(ids);
    let mut votes: BTreeMap<NodeId, usize> = BTreeMap::new();
    let leader;
    let mut why = None;
    match by {
        LeaderBy::Name | LeaderBy::Ids { .. } => {
            // With ids: member id text -> the nodes that answered it as their own.
            let mut owners: BTreeMap<String, Vec<NodeId>> = BTreeMap::new();
            for a in &ids {
                match &a.answer {
                    LeaderAnswer::Value(v) => {
                        if let Some(id) = id_text(v) {
                            owners.entry(id).or_default().push(a.node);
                        }
                    }
                    LeaderAnswer::NotAsked(_)
                    | LeaderAnswer::NoAnswer(_)
                    | LeaderAnswer::Status(_)
                    | LeaderAnswer::NotJson
                    | LeaderAnswer::Missing(_) => {}
                }
            }
            for a in &mut ids {
                if let LeaderAnswer::Value(v) = &a.answer {
                    match id_text(v).and_then(|id| owners.get(&id)) {
                        None => a.note = Some("not a member id".into()),
                        Some(o) if o.len() > 1 => {
                            a.note = Some(format!("also the id of {}", names(o, Some(a.node))))
                        }
                        Some(_) => {}
                    }
                }
            }
            for a in &mut answers {
                let LeaderAnswer::Value(v) = &a.answer else {
                    continue;
                };
                let named = match by {
                    LeaderBy::Ids { .. } => {
                        match id_text(v).map(|id| owners.get(&id).map(Vec::as_slice)) {
                            None => Err("no leader known".to_string()),
                            Some(None) => Err("no node has that id".to_string()),
                            Some(Some([one])) => Ok(*one),
                            Some(Some(several)) => Err(format!(
                                "several nodes have that id: {}",
                                names(several, None)
                            )),
                        }
                    }
                    LeaderBy::Name | LeaderBy::Equals(_) => {
                        parse_leader(v, size).ok_or_else(|| {
                            if v.is_null() || v.as_str() == Some("") {
                                "no leader known".to_string()
                            } else {
                                format!("names no node of {size}")
                            }
                        })
                    }
                };
                match named {
                    Ok(node) => *votes.entry(node).or_default() += 1,
                    Err(note) => a.note = Some(note),
                }
            }
            leader = most_common(&votes);
            if leader.is_none() && votes.len() > 1 {
                why = Some("the answers disagree with equal support".to_string());
            }
        }
        LeaderBy::Equals(want) => {
            let claim: Vec<NodeId> = answers
                .iter()
                .filter(|a| a.answer == LeaderAnswer::Value(want.clone()))
                .map(|a| a.node)
                .collect();
            leader = match claim.as_slice() {
                [one] => Some(*one),
                [] => {
                    why = Some(format!("no node answered {want}"));
                    None
                }
                several => {
                    why = Some(format!(
                        "several nodes answered {want}: {}",
                        names(several, None)
                    ));
                    None
                }
            };
        }
    }
    if leader.is_none() && why.is_none() {
        why = Some("no answer names a leader".to_string());
    }
    LeaderPoll {
        leader,
        answers,
        ids,
        why,
    }
}

/// The most common node; `None` without votes or on a tie.
fn most_common(votes: &BTreeMap<NodeId, usize>) -> Option<NodeId> {
    let best = votes.values().copied().max()?;
    let mut top = votes.iter().filter(|(_, &n)| n == best).map(|(&id, _)| id);
    match (top.next(), top.next()) {
        (Some(id), None) => Some(id),
        // Two candidates with equal support: nobody knows who leads.
        _ => None,
    }
}

/// `n0 n2`, leaving out `but`.
fn names(nodes: &[NodeId], but: Option<NodeId>) -> String {
    nodes
        .iter()
        .filter(|n| Some(**n) != but)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A member id as text: a string as it is, a number as written; `None` for
/// null, `""` and anything else (no id).
fn id_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(_)
        | serde_json::Value::Null
        | serde_json::Value::Bool(_)
        | serde_json::Value::Array(_)
        | serde_json::Value::Object(_) => None,
    }
}

/// `"n2"`, `"2"` or `2` name node 2; anything else (null, "", out of range)
/// means the node does not know a leader.
fn parse_leader(value: &serde_json::Value, size: usize) -> Option<NodeId> {
    let id = match value {
        serde_json::Value::String(s) => {
            NodeId::parse(s).or_else(|| s.parse::<usize>().ok().map(NodeId))?
        }
        serde_json::Value::Number(n) => NodeId(usize::try_from(n.as_u64()?).ok()?),
        _ => return None,
    };
    (id.index() < size).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sample_node_counts_only_when_it_names_itself() {
        let n1 = NodeId(1);
        let id = |body: &str| health_id(body.as_bytes());
        let own = id(r#"{"id":"n1","role":"follower","term":3}"#);
        assert_eq!(own.as_deref(), Some("n1"));
        assert_eq!(not_the_sample_node(n1, own.as_deref()), None);
        // The incident: n1's port led (through a proxy) to n0.
        let other = not_the_sample_node(n1, id(r#"{"id":"n0"}"#).as_deref());
        assert_eq!(other.as_deref(), Some("node n0 answered on n1's port"));
        for foreign in ["ok", "{}", r#"{"id":1}"#, "<html></html>", ""] {
            assert!(
                not_the_sample_node(n1, id(foreign).as_deref()).is_some(),
                "{foreign}"
            );
        }
    }

    #[test]
    fn leader_values_name_nodes_by_name_or_index() {
        assert_eq!(parse_leader(&json!("n2"), 3), Some(NodeId(2)));
        assert_eq!(parse_leader(&json!("1"), 3), Some(NodeId(1)));
        assert_eq!(parse_leader(&json!(0), 3), Some(NodeId(0)));
        for unknown in [
            json!(null),
            json!(""),
            json!("n3"),
            json!(7),
            json!(-1),
            json!(true),
        ] {
            assert_eq!(parse_leader(&unknown, 3), None, "{unknown}");
        }
    }

    fn v(x: serde_json::Value) -> LeaderAnswer {
        LeaderAnswer::Value(x)
    }

    fn n(i: usize) -> NodeId {
        NodeId(i)
    }

    #[test]
    fn equals_names_the_one_node_that_says_it_leads() {
        let by = LeaderBy::Equals(json!("leader"));
        let poll = decide(
            &by,
            3,
            vec![
                (n(0), v(json!("follower"))),
                (n(1), v(json!("leader"))),
                (n(2), LeaderAnswer::Status(503)),
            ],
            Vec::new(),
        );
        assert_eq!(poll.leader, Some(n(1)));
        let by = LeaderBy::Equals(json!(true));
        let two = decide(
            &by,
            3,
            vec![
                (n(0), v(json!(true))),
                (n(1), v(json!(false))),
                (n(2), v(json!(true))),
            ],
            Vec::new(),
        );
        assert_eq!(two.leader, None);
        assert_eq!(
            two.to_string(),
            "n0: true, n1: false, n2: true; several nodes answered true: n0 n2"
        );
        // "true" the string is not true the boolean.
        let none = decide(&by, 1, vec![(n(0), v(json!("true")))], Vec::new());
        assert_eq!(none.leader, None);
        assert_eq!(none.to_string(), "n0: \"true\"; no node answered true");
    }

    #[test]
    fn ids_map_the_leaders_member_id_to_the_node_that_has_it() {
        let by = LeaderBy::Ids {
            path: "/id".into(),
            pointer: "/id".into(),
        };
        let ids = vec![
            (n(0), v(json!("a1"))),
            (n(1), v(json!("b2"))),
            (n(2), v(json!(7))),
        ];
        let leaders = vec![
            (n(0), v(json!(7))),
            (n(1), v(json!("7"))),
            (n(2), v(json!(7))),
        ];
        assert_eq!(decide(&by, 3, leaders, ids.clone()).leader, Some(n(2)));
        let unknown = decide(
            &by,
            3,
            vec![
                (n(0), v(json!("3a1f"))),
                (n(1), LeaderAnswer::Status(503)),
                (n(2), LeaderAnswer::NoAnswer("could not connect".into())),
            ],
            ids,
        );
        assert_eq!(unknown.leader, None);
        assert_eq!(
            unknown.to_string(),
            "n0: \"3a1f\" (no node has that id), n1: HTTP 503, n2: no answer (could not connect); \
             member ids: n0: \"a1\", n1: \"b2\", n2: 7; no answer names a leader"
        );
        // Two nodes claiming one id name nobody.
        let dup = decide(
            &by,
            2,
            vec![(n(0), v(json!("x"))), (n(1), v(json!("x")))],
            vec![(n(0), v(json!("x"))), (n(1), v(json!("x")))],
        );
        assert_eq!(dup.leader, None);
        assert!(
            dup.to_string()
                .contains("several nodes have that id: n0 n1"),
            "{dup}"
        );
    }

    #[test]
    fn names_keep_the_most_common_answer_and_say_what_did_not_count() {
        let poll = decide(
            &LeaderBy::Name,
            3,
            vec![
                (n(0), v(json!("n2"))),
                (n(1), v(json!(null))),
                (n(2), v(json!("n9"))),
            ],
            Vec::new(),
        );
        assert_eq!(poll.leader, Some(n(2)));
        assert_eq!(poll.answers[1].to_string(), "n1: null (no leader known)");
        assert_eq!(
            poll.answers[2].to_string(),
            "n2: \"n9\" (names no node of 3)"
        );
        let paused = decide(
            &LeaderBy::Name,
            2,
            vec![
                (n(0), LeaderAnswer::NotAsked(NodeState::Paused)),
                (n(1), LeaderAnswer::Missing("/leader".into())),
            ],
            Vec::new(),
        );
        assert_eq!(
            paused.to_string(),
            "n0: paused, not asked, n1: no `/leader` in the answer; no answer names a leader"
        );
    }
}
