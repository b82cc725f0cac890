//! Asks nodes questions where they listen (loopback, or their own address
//! on the netns wire): are you ready, who leads.
//!
//! Every request has a short timeout; a node that does not answer is simply
//! "not ready" or "no opinion", never an error that stops the run. An answer
//! from anything but the node itself (a squatter on its port, one of rift's
//! own proxies) must never count as the node being ready.

use super::identity::{self, Holder};
use super::{log_tail, ClusterError, Inner};
use crate::plan::{LeaderQuery, NodeCommand, ReadyProbe};
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
    SocketAddr::new(l.host, l.port)
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

pub(crate) async fn leader(inner: &Arc<Inner>) -> Option<NodeId> {
    let query = inner.spec.leader.clone()?;
    let mut set = tokio::task::JoinSet::new();
    for shared in &inner.nodes {
        if shared.lock().state == NodeState::Up {
            set.spawn(ask_leader(inner.clone(), shared.id, query.clone()));
        }
    }
    let mut votes: BTreeMap<NodeId, usize> = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(Some(id)) = joined {
            *votes.entry(id).or_default() += 1;
        }
    }
    let best = votes.values().copied().max()?;
    let mut top = votes.iter().filter(|(_, &n)| n == best).map(|(&id, _)| id);
    match (top.next(), top.next()) {
        (Some(id), None) => Some(id),
        // Two candidates with equal support: nobody knows who leads.
        _ => None,
    }
}

async fn ask_leader(inner: Arc<Inner>, node: NodeId, query: LeaderQuery) -> Option<NodeId> {
    let request = inner
        .http
        .get(url(&inner, node, &query.path))
        .timeout(LEADER_TIMEOUT);
    let response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    parse_leader(body.pointer(&query.pointer)?, inner.layout.len())
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
}
