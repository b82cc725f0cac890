//! The last phase before judging: every fault undone, then measured — how
//! long until every node serves again, whether the nodes converge, and what
//! each node holds (final.json), through the plan's adapter.
//!
//! Reads only through [`Adapter`]; never knows which system it talks to.

use super::apply::Nemesis;
use crate::adapter::Adapter;
use crate::check::{Chains, CheckerId, FinalState, FINAL_STATE_VERSION};
use crate::cluster::Cluster;
use crate::plan::{Plan, WorkloadKind};
use crate::report::Convergence;
use crate::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long followers get to catch up with the leader's chain before the
/// chains are compared as they are.
const CHAIN_SETTLE: Duration = Duration::from_secs(3);

/// What the final heal measured.
#[derive(Default)]
pub(super) struct Finish {
    /// Seconds from the final heal until every node served again.
    pub recovery_s: Option<f64>,
    pub convergence: Option<Convergence>,
    pub final_state: FinalState,
}

/// Where the final checks look.
pub(super) struct At<'a> {
    pub cluster: &'a Cluster,
    pub adapter: &'a dyn Adapter,
    /// Where the workload reached each node.
    pub targets: &'a [SocketAddr],
    /// final.json goes here.
    pub run_dir: &'a Path,
}

/// Heals everything, then measures recovery, convergence and final reads,
/// and writes final.json.
pub(super) async fn finish(
    nemesis: &mut Nemesis<'_>,
    at: At<'_>,
    plan: &Plan,
    recovery_bound: Duration,
) -> Finish {
    let At {
        cluster,
        adapter,
        targets,
        run_dir,
    } = at;
    nemesis.heal_everything().await;
    let healed_at = Instant::now();
    let serve_by = healed_at + recovery_bound.max(Duration::from_secs(5)) * 2;
    let kv = matches!(plan.workload.kind, WorkloadKind::Kv { .. });
    let recovery_s = wait_all_serve(cluster, adapter, targets, kv, serve_by)
        .await
        .then(|| healed_at.elapsed().as_secs_f64());
    let convergence = if adapter.reports_heads() {
        let converge_by = Instant::now() + recovery_bound.max(Duration::from_secs(5));
        Some(converge(adapter, targets, healed_at, converge_by).await)
    } else {
        None
    };
    let final_state = read_everything(adapter, targets, plan).await;
    write_final_state(run_dir, &final_state);
    Finish {
        recovery_s,
        convergence,
        final_state,
    }
}

/// Polls until every node answers its readiness probe and, for the
/// key-value workload, a read; false if the deadline passes first.
async fn wait_all_serve(
    cluster: &Cluster,
    adapter: &dyn Adapter,
    targets: &[SocketAddr],
    kv: bool,
    deadline: Instant,
) -> bool {
    let mut pending: Vec<NodeId> = (0..targets.len()).map(NodeId).collect();
    while Instant::now() < deadline {
        let mut still = Vec::new();
        for n in pending {
            // A key-value service must also answer a read the way the
            // workload reads.
            let ok = cluster.is_ready(n).await
                && (!kv || adapter.read_key(targets[n.index()], "k0").await.is_some());
            if !ok {
                still.push(n);
            }
        }
        if still.is_empty() {
            return true;
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Polls every node's head until all agree (a promise of systems whose
/// adapter reports heads) or `deadline` passes.
async fn converge(
    adapter: &dyn Adapter,
    targets: &[SocketAddr],
    since: Instant,
    deadline: Instant,
) -> Convergence {
    const NO_ANSWER: &str = "no answer";
    loop {
        let mut heads = BTreeMap::new();
        for (i, &addr) in targets.iter().enumerate() {
            let head = adapter.head(addr).await;
            heads.insert(NodeId(i), head.unwrap_or_else(|| NO_ANSWER.into()));
        }
        let first = heads.values().next().cloned();
        let same = first.is_some_and(|f| f != NO_ANSWER && heads.values().all(|h| *h == f));
        if same {
            return Convergence {
                seconds: Some(since.elapsed().as_secs_f64()),
                heads,
            };
        }
        if Instant::now() >= deadline {
            return Convergence {
                seconds: None,
                heads,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What every node holds after the final heal: every key (kv workload) or
/// the committed chain, for the checkers that compare the history with the
/// end state.
async fn read_everything(adapter: &dyn Adapter, targets: &[SocketAddr], plan: &Plan) -> FinalState {
    let mut out = FinalState {
        version: FINAL_STATE_VERSION,
        ..Default::default()
    };
    match &plan.workload.kind {
        WorkloadKind::Kv { keys, .. } => {
            for (i, &addr) in targets.iter().enumerate() {
                let mut values = BTreeMap::new();
                for k in 0..*keys {
                    let key = format!("k{k}");
                    if let Some(v) = adapter.read_key(addr, &key).await {
                        values.insert(key, v);
                    }
                }
                out.kv.insert(NodeId(i), values);
            }
        }
        WorkloadKind::Ledger
        | WorkloadKind::Probe { .. }
        | WorkloadKind::Set { .. }
        | WorkloadKind::ListAppend { .. } => {}
    }
    // The chain is read under any workload the ledger checker is asked for.
    if matches!(plan.workload.kind, WorkloadKind::Ledger)
        || plan.expect.checkers().contains(&CheckerId::LedgerAgreement)
    {
        out.ledgers = read_chains(adapter, targets).await;
    }
    out
}

/// Every node's committed chain, read until all nodes report the same
/// length (a follower may trail the leader by a heartbeat) or
/// [`CHAIN_SETTLE`] passes.
async fn read_chains(adapter: &dyn Adapter, targets: &[SocketAddr]) -> Chains {
    let deadline = Instant::now() + CHAIN_SETTLE;
    loop {
        let mut chains = Chains::new();
        for (i, &addr) in targets.iter().enumerate() {
            chains.insert(NodeId(i), adapter.chain(addr).await);
        }
        let lengths: std::collections::BTreeSet<Option<usize>> =
            chains.values().map(|c| c.as_ref().map(Vec::len)).collect();
        let settled = lengths.len() == 1 && !lengths.contains(&None);
        if settled || Instant::now() >= deadline {
            return chains;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes final.json beside history.jsonl, so `rift check RUN_DIR` can re-run
/// every checker later; a failure only loses that convenience.
fn write_final_state(run_dir: &Path, fin: &FinalState) {
    let path = run_dir.join("final.json");
    let res = serde_json::to_vec_pretty(fin)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&path, bytes));
    if let Err(e) = res {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}
