//! The last phase before judging: every fault undone, then measured — how
//! long until every node serves again, whether the nodes converge, and what
//! each node holds (final.json), through the plan's adapter.
//!
//! Reads only through [`Adapter`]; never knows which system it talks to.

use super::apply::Nemesis;
use crate::adapter::{Adapter, Request};
use crate::check::{Chains, CheckerId, FinalState, FINAL_STATE_VERSION};
use crate::cluster::Cluster;
use crate::history::{OpKind, Outcome};
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
/// Attempts of one final set or list read (an election may still be
/// settling after the heal), and the pause between them.
const FINAL_READ_ATTEMPTS: u32 = 5;
const FINAL_READ_PAUSE: Duration = Duration::from_millis(100);

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
    let read = serving_read(&plan.workload.kind);
    let recovery_s = wait_all_serve(cluster, adapter, targets, read, serve_by)
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

/// The read a node must answer, beyond its readiness probe, to count as
/// serving again: the workload's own read, for workloads with keys.
fn serving_read(kind: &WorkloadKind) -> Option<OpKind> {
    match kind {
        WorkloadKind::Kv { .. } => Some(OpKind::Read),
        WorkloadKind::Set { .. } => Some(OpKind::ReadSet),
        WorkloadKind::ListAppend { .. } => Some(OpKind::ReadList),
        WorkloadKind::Ledger | WorkloadKind::Probe { .. } => None,
    }
}

/// Whether the node at `addr` answers the read `kind` of key `k0`.
async fn answers_read(adapter: &dyn Adapter, addr: SocketAddr, kind: OpKind) -> bool {
    match kind {
        OpKind::Read => adapter.read_key(addr, "k0").await.is_some(),
        OpKind::ReadSet | OpKind::ReadList => {
            read_collection(adapter, addr, kind, "k0").await.is_some()
        }
        OpKind::Write | OpKind::Cas | OpKind::Append | OpKind::Add | OpKind::Probe => true,
    }
}

/// One set or list read through the adapter, as the workload reads: the
/// elements, or `None` when the read did not succeed.
async fn read_collection(
    adapter: &dyn Adapter,
    addr: SocketAddr,
    kind: OpKind,
    key: &str,
) -> Option<Vec<String>> {
    let req = Request {
        kind,
        key: Some(key.to_string()),
        value: None,
        expect: None,
    };
    let resp = adapter.call(addr, &req).await;
    match resp.outcome {
        Outcome::Ok => resp.values,
        Outcome::Fail | Outcome::Unknown => None,
    }
}

/// Every node's collection (set or list, by `kind`) at keys `k0..k{keys-1}`,
/// each read retried a few times; keys a node never answered are left out.
async fn read_collections(
    adapter: &dyn Adapter,
    targets: &[SocketAddr],
    kind: OpKind,
    keys: usize,
) -> BTreeMap<NodeId, BTreeMap<String, Vec<String>>> {
    let mut out = BTreeMap::new();
    for (i, &addr) in targets.iter().enumerate() {
        let mut per_key = BTreeMap::new();
        for k in 0..keys {
            let key = format!("k{k}");
            for attempt in 0..FINAL_READ_ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(FINAL_READ_PAUSE).await;
                }
                if let Some(values) = read_collection(adapter, addr, kind, &key).await {
                    per_key.insert(key, values);
                    break;
                }
            }
        }
        out.insert(NodeId(i), per_key);
    }
    out
}

/// Polls until every node answers its readiness probe and, for workloads
/// with keys, a read as the workload reads; false if the deadline passes
/// first.
async fn wait_all_serve(
    cluster: &Cluster,
    adapter: &dyn Adapter,
    targets: &[SocketAddr],
    read: Option<OpKind>,
    deadline: Instant,
) -> bool {
    let mut pending: Vec<NodeId> = (0..targets.len()).map(NodeId).collect();
    while Instant::now() < deadline {
        let mut still = Vec::new();
        for n in pending {
            // A service with keys must also answer a read the way the
            // workload reads.
            let ok = cluster.is_ready(n).await
                && match read {
                    Some(kind) => answers_read(adapter, targets[n.index()], kind).await,
                    None => true,
                };
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

/// What every node holds after the final heal: every key (kv workload),
/// every set or list (set, list-append) or the committed chain, for the
/// checkers that compare the history with the end state.
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
        WorkloadKind::Set { keys, .. } => {
            out.sets = read_collections(adapter, targets, OpKind::ReadSet, *keys).await;
        }
        WorkloadKind::ListAppend { keys, .. } => {
            out.lists = read_collections(adapter, targets, OpKind::ReadList, *keys).await;
        }
        WorkloadKind::Ledger | WorkloadKind::Probe { .. } => {}
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
