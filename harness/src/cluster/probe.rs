//! Asks nodes questions over loopback: are you ready, who leads.
//!
//! Every request has a short timeout; a node that does not answer is simply
//! "not ready" or "no opinion", never an error that stops the run.

use super::{log_tail, ClusterError, Inner};
use crate::plan::{LeaderQuery, ReadyProbe};
use crate::NodeId;
use crate::NodeState;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Timeout of one readiness probe.
pub(crate) const PER_TRY: Duration = Duration::from_millis(500);
/// Pause between readiness probes of one node.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Timeout of one leader question; nodes are asked concurrently.
const LEADER_TIMEOUT: Duration = Duration::from_millis(300);

fn url(inner: &Inner, node: NodeId, path: &str) -> String {
    let addr = std::net::SocketAddr::new(inner.ip, inner.layout[node.index()].port);
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!("http://{addr}{slash}{path}")
}

pub(crate) async fn is_ready(inner: &Inner, node: NodeId, per_try: Duration) -> bool {
    let Some(shared) = inner.nodes.get(node.index()) else {
        return false;
    };
    if shared.lock().pid.is_none() {
        return false;
    }
    match &inner.spec.ready.probe {
        ReadyProbe::Http { path } => {
            let request = inner.http.get(url(inner, node, path)).timeout(per_try);
            matches!(request.send().await, Ok(r) if r.status().is_success())
        }
        ReadyProbe::Tcp => {
            let addr = std::net::SocketAddr::new(inner.ip, inner.layout[node.index()].port);
            let connect = tokio::net::TcpStream::connect(addr);
            matches!(tokio::time::timeout(per_try, connect).await, Ok(Ok(_)))
        }
    }
}

/// Polls one node until it is ready, it exits, or `deadline` passes.
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
    loop {
        if let Some(e) = exited(&inner) {
            return Err(e);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let per_try = PER_TRY.min(left).max(Duration::from_millis(20));
        if is_ready(&inner, node, per_try).await {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // An exit explains more than a timeout does.
            if let Some(e) = exited(&inner) {
                return Err(e);
            }
            let log = inner.layout[node.index()].log_path.clone();
            return Err(ClusterError::NeverReady {
                node,
                timeout,
                last_log_lines: log_tail(&log),
                log,
            });
        }
        tokio::time::sleep(POLL_EVERY.min(left)).await;
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
