//! The experiment runner: ties plan, cluster, network, nemesis, workload,
//! checkers and report together for one run.
//!
//! It owns the order of things and the cleanup promise; the subsystems below
//! it never call back into it.

mod apply;
mod clock;
pub mod many;
mod progress;

pub use clock::{run_id, utc_rfc3339};
pub use progress::ProgressMode;

use crate::check::availability::{availability, latency, Judge};
use crate::check::verdict::{CheckResult, Verdict};
use crate::check::{FinalState, LedgerEntry, FINAL_STATE_VERSION};
use crate::cluster::{self, Cluster, ClusterError, NodeEvent, NodeEventKind};
use crate::fault::{self, NodeState, World};
use crate::history::{Op, Outcome};
use crate::net::{NetError, ProxyMesh};
use crate::plan::{ClientRoute, NetworkMode, NodeCommand, Plan, WorkloadKind};
use crate::report::{
    ClusterInfo, Convergence, ExpectationResult, LinkRecord, NodeEventRecord, NodeInfo, OpCounts,
    PlanInfo, Report, ReportError, RunStatus, REPORT_SCHEMA_VERSION,
};
use crate::workload::{self, Recorder};
use crate::NodeId;
use apply::Nemesis;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How a run is carried out, beyond the plan itself.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Root of the results tree: runs go to `<out>/<plan>/<run-id>/`.
    pub out: PathBuf,
    /// Overrides the plan's seed.
    pub seed: Option<u64>,
    /// Build label recorded in the report (`--label`).
    pub label: Option<String>,
    /// Overrides the plan's duration.
    pub duration: Option<Duration>,
    pub progress: ProgressMode,
    /// The program that runs the bundled sample node; rift's own executable
    /// (`rift sample-node ...`) by default.
    pub sample_node_program: Option<cluster::SampleNodeProgram>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            out: PathBuf::from("results"),
            seed: None,
            label: None,
            duration: None,
            progress: ProgressMode::Auto,
            sample_node_program: None,
        }
    }
}

/// Why a run could not be carried out (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot create run directory {path}: {source}")]
    RunDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot start the proxy mesh: {0}")]
    Net(#[from] NetError),
    #[error("no leader was elected within {0:?} after the nodes became ready")]
    NoLeader(Duration),
    #[error("network = \"netns\" is not supported yet; use \"proxy\"")]
    NetnsUnsupported,
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("interrupted before the cluster was ready")]
    Interrupted,
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

impl RunError {
    /// The last lines of a failing node's log, to show under the message.
    pub fn log_tail(&self) -> Option<&str> {
        match self {
            RunError::Cluster(e) => e.last_log_lines(),
            _ => None,
        }
    }
}

pub struct RunOutcome {
    pub report: Report,
    pub run_dir: PathBuf,
}

/// Default for the recovery window when the plan does not set `expect.recovery`.
const DEFAULT_RECOVERY: Duration = Duration::from_secs(5);

/// Runs one plan. `abort` turning true (Ctrl-C) stops the run early with a
/// partial report marked aborted.
pub async fn run(
    plan: &Plan,
    opts: &RunOptions,
    abort: watch::Receiver<bool>,
) -> Result<RunOutcome, RunError> {
    let wall = Instant::now();
    let started_at = utc_rfc3339(std::time::SystemTime::now());
    let seed = opts.seed.or(plan.seed).unwrap_or_else(clock::random_seed);
    let duration = opts.duration.unwrap_or(plan.duration);
    let id = run_id(std::time::SystemTime::now());
    let plan_dir = opts.out.join(&plan.name);
    let run_dir = plan_dir.join(&id);
    for d in [run_dir.join("nodes"), run_dir.join("data")] {
        std::fs::create_dir_all(&d).map_err(|source| RunError::RunDir {
            path: d.display().to_string(),
            source,
        })?;
    }
    point_latest(&plan_dir, &id);
    tracing::info!(plan = %plan.name, seed, run_dir = %run_dir.display(), "starting run");
    {
        use std::io::Write as _;
        // A closed stderr must not stop the run.
        let _ = writeln!(
            std::io::stderr(),
            "rift: running {} (seed {seed}) -> {}",
            plan.name,
            run_dir.display()
        );
    }

    let spec = &plan.cluster;
    let size = spec.size;
    let mut abort = abort;
    // Dropping the start on Ctrl-C drops whatever it started (Drop kills).
    let (cluster, mesh, mut ev_rx, ready_s) = tokio::select! {
        r = start_cluster(spec, plan.workload.via, &run_dir, seed, opts) => r?,
        _ = crate::workload::until_true(&mut abort) => return Err(RunError::Interrupted),
    };
    // From here on every exit path must shut the cluster down: `Cluster`'s
    // Drop kills what is left if an error returns early.
    let mut aborted_by: Option<String> = None;
    if *abort.borrow() {
        aborted_by = Some("interrupted before the cluster was ready".into());
    }
    if aborted_by.is_none() && spec.leader.is_some() {
        let deadline = Instant::now() + spec.ready.timeout;
        loop {
            if cluster.leader().await.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(RunError::NoLeader(spec.ready.timeout));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = crate::workload::until_true(&mut abort) => { aborted_by = Some("interrupted before the cluster was ready".into()); break }
            }
        }
    }

    // The clock of the run: every history and timeline time is measured from here.
    let origin = Instant::now();
    let deadline = origin + duration;
    let recorder =
        Recorder::create(&run_dir.join("history.jsonl")).map_err(|source| RunError::RunDir {
            path: run_dir.join("history.jsonl").display().to_string(),
            source,
        })?;
    // Through the client proxies when the plan asks for them.
    let targets: workload::Targets = Arc::new(
        cluster
            .layout()
            .iter()
            .enumerate()
            .map(|(j, l)| {
                mesh.as_ref()
                    .and_then(|m| m.client_addr(NodeId(j)))
                    .unwrap_or_else(|| socket(&l.host, l.port))
            })
            .collect(),
    );
    let (stop_tx, stop_rx) = watch::channel(aborted_by.is_some());
    let phase = progress::Phase::default();
    let workload_task = tokio::spawn(workload::run(
        plan.workload.clone(),
        targets.clone(),
        seed,
        origin,
        deadline,
        recorder.clone(),
        stop_rx.clone(),
    ));
    let progress_task = tokio::spawn(progress::show(
        opts.progress,
        plan.name.clone(),
        duration,
        origin,
        recorder.counters.clone(),
        phase.clone(),
        stop_rx.clone(),
    ));

    let mut nemesis = Nemesis::new(plan, seed, &cluster, mesh.as_ref(), origin);
    let schedule = fault::schedule(&plan.steps);
    let mut node_events: Vec<NodeEventRecord> = Vec::new();
    let mut unexpected_exits: Vec<String> = Vec::new();
    let mut next = 0usize;
    phase.set("steady");
    while aborted_by.is_none() {
        let due = schedule
            .get(next)
            .filter(|s| s.at < duration)
            .map(|s| origin + s.at);
        let wake = due.unwrap_or(deadline).min(deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {
                if Instant::now() >= deadline && due.is_none_or(|d| d >= deadline) {
                    break;
                }
                if let Some(s) = schedule.get(next) {
                    nemesis.apply(next, s, &schedule).await;
                    phase.set(nemesis.world.snapshots().last().map(|s| s.label.clone()).unwrap_or_default());
                    next += 1;
                }
            }
            Some(ev) = ev_rx.recv() => {
                note_node_event(&ev, origin, &mut nemesis.world, &mut node_events, &mut unexpected_exits);
                phase.set(nemesis.world.snapshots().last().map(|s| s.label.clone()).unwrap_or_default());
            }
            _ = crate::workload::until_true(&mut abort) => aborted_by = Some("interrupted (SIGINT/SIGTERM)".into()),
        }
    }
    let _ = stop_tx.send(true);
    let end = origin.elapsed().min(duration);
    let end_ns = end.as_nanos() as u64;
    if aborted_by.is_some() {
        workload_task.abort();
    }
    let _ = workload_task.await;
    let _ = progress_task.await;

    // Undo every fault still in force, then measure how long until all serve.
    let mut final_recovery_s = None;
    let mut convergence: Option<Convergence> = None;
    let mut final_reads = FinalState::default();
    let recovery_bound = plan.expect.recovery.unwrap_or(DEFAULT_RECOVERY);
    if aborted_by.is_none() {
        nemesis.heal_everything().await;
        let healed_at = Instant::now();
        if wait_all_serve(
            &cluster,
            &plan.workload,
            &targets,
            healed_at + recovery_bound.max(Duration::from_secs(5)) * 2,
        )
        .await
        {
            final_recovery_s = Some(healed_at.elapsed().as_secs_f64());
        }
        if matches!(spec.command, NodeCommand::SampleNode { .. }) {
            let converge_by = Instant::now() + recovery_bound.max(Duration::from_secs(5));
            convergence = Some(converge_heads(&targets, healed_at, converge_by).await);
        }
        final_reads = read_everything(&targets, plan).await;
        write_final_state(&run_dir, &final_reads);
    }
    while let Ok(ev) = ev_rx.try_recv() {
        note_node_event(
            &ev,
            origin,
            &mut nemesis.world,
            &mut node_events,
            &mut unexpected_exits,
        );
    }
    let timeline = std::mem::take(&mut nemesis.timeline);
    let world = nemesis.world.clone();
    drop(nemesis);
    // Teardown, bounded: an interrupted run must exit promptly.
    let teardown = if aborted_by.is_some() {
        Duration::from_millis(800)
    } else {
        spec.stop_timeout + Duration::from_secs(2)
    };
    let cluster_info = ClusterInfo {
        size,
        command: match &spec.command {
            NodeCommand::SampleNode { bugs } if bugs.is_empty() => "sample-node (bundled)".into(),
            NodeCommand::SampleNode { bugs } => {
                format!("sample-node (bundled) --bug {}", bugs.join(" --bug "))
            }
            NodeCommand::External { program, .. } => program.clone(),
        },
        network: format!("{:?}", spec.network).to_lowercase(),
        workload: workload_name(&plan.workload.kind).into(),
        nodes: cluster
            .layout()
            .iter()
            .map(|l| NodeInfo {
                node: l.id,
                addr: socket(&l.host, l.port).to_string(),
                log: l
                    .log_path
                    .strip_prefix(&run_dir)
                    .unwrap_or(&l.log_path)
                    .display()
                    .to_string(),
            })
            .collect(),
        links: mesh.as_ref().map(link_records).unwrap_or_default(),
        ready_s: Some(ready_s),
    };
    if tokio::time::timeout(teardown, cluster.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("teardown took longer than {teardown:?}; remaining nodes were killed");
    }
    if let Some(m) = mesh {
        m.shutdown().await;
    }

    let (ops, write_error) = recorder.finish();
    if let Some(e) = write_error {
        tracing::warn!("history.jsonl is incomplete: {e}");
    }
    let window_ns = recovery_bound.as_nanos() as u64;
    let snapshots = world.snapshots().to_vec();
    let judged = Judge::new(&ops, &snapshots, window_ns, end_ns);
    let avail = availability(&ops, &judged, size, end_ns);
    let lat = latency(&ops, &judged);
    let recovery = judged.recoveries();
    let checks = run_checkers(plan, &ops, &final_reads);
    let counts = op_counts(&ops, end);
    let mut expectations = judge(
        plan,
        &avail,
        &lat,
        &recovery,
        final_recovery_s,
        &unexpected_exits,
        &checks,
    );
    if let Some(c) = &convergence {
        expectations.push(ExpectationResult {
            name: "convergence".into(),
            bound: "equal heads".into(),
            measured: match c.seconds {
                Some(s) => format!("{s:.2}s"),
                None => "diverged".into(),
            },
            verdict: pass_if(c.seconds.is_some()),
            message: c
                .heads
                .iter()
                .map(|(n, h)| format!("{n}: {h}"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let status = if aborted_by.is_some() {
        RunStatus::Aborted
    } else {
        RunStatus::Completed
    };
    if status == RunStatus::Aborted {
        expectations.push(ExpectationResult {
            name: "completed".into(),
            bound: "full run".into(),
            measured: format!(
                "{:.1}s of {:.0}s",
                end.as_secs_f64(),
                duration.as_secs_f64()
            ),
            verdict: Verdict::Unknown,
            message: aborted_by.clone().unwrap_or_default(),
        });
    }
    let verdict = expectations
        .iter()
        .fold(Verdict::Pass, |v, e| v.and(e.verdict));
    let report = Report {
        schema_version: REPORT_SCHEMA_VERSION,
        rift_version: env!("CARGO_PKG_VERSION").into(),
        run_id: id,
        plan: PlanInfo {
            name: plan.name.clone(),
            description: plan.description.clone(),
            path: plan.path.display().to_string(),
            hash: plan.hash.clone(),
        },
        label: opts.label.clone(),
        seed,
        started_at,
        wall_seconds: wall.elapsed().as_secs_f64(),
        duration_s: end.as_secs_f64(),
        status,
        abort_reason: aborted_by,
        verdict,
        cluster: cluster_info,
        timeline,
        node_events,
        periods: snapshots,
        ops: counts,
        availability: avail,
        latency: lat,
        recovery,
        final_recovery_s,
        convergence,
        checks,
        expectations,
    };
    report.write(&run_dir, &ops)?;
    Ok(RunOutcome { report, run_dir })
}

/// A node that could not bind its port: another process took it between
/// rift choosing it and the node binding it.
fn port_clash(e: &ClusterError) -> bool {
    e.last_log_lines().is_some_and(|log| {
        let log = log.to_ascii_lowercase();
        log.contains("address already in use") || log.contains("address in use")
    })
}

/// Reserves every port of the run at once (nodes, peers, proxies; see
/// [`cluster::Ports`]), starts the proxy mesh on its share and the nodes on
/// theirs. A node whose port someone else took in the meantime (it could
/// not bind, or another process answered for it) is retried with fresh
/// ports (twice), so concurrent runs do not fail each other. Also returns
/// the seconds from the first node spawn (of the first attempt, so retries
/// count) until every node was ready.
async fn start_cluster(
    spec: &crate::plan::ClusterSpec,
    via: ClientRoute,
    run_dir: &Path,
    seed: u64,
    opts: &RunOptions,
) -> Result<
    (
        Cluster,
        Option<ProxyMesh>,
        mpsc::UnboundedReceiver<NodeEvent>,
        f64,
    ),
    RunError,
> {
    const ATTEMPTS: usize = 3;
    let size = spec.size;
    let client_links = via == ClientRoute::Proxy;
    let with_mesh = match spec.network {
        NetworkMode::Proxy => size > 1 || client_links,
        NetworkMode::Netns => return Err(RunError::NetnsUnsupported),
        NetworkMode::None => false,
    };
    let proxies = match (with_mesh, client_links) {
        (false, _) => 0,
        (true, false) => ProxyMesh::peer_listeners(size),
        (true, true) => ProxyMesh::peer_listeners(size) + size,
    };
    let mut first_spawn: Option<Instant> = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut ports = cluster::Ports::reserve(spec, run_dir, proxies)?;
        let layout = ports.layout().to_vec();
        let peer_endpoint: Vec<SocketAddr> = layout
            .iter()
            .map(|l| {
                socket(
                    &l.host,
                    if spec.separate_peer_port {
                        l.peer_port
                    } else {
                        l.port
                    },
                )
            })
            .collect();
        let mesh = if with_mesh {
            let ep = peer_endpoint.clone();
            let listeners = ports.take_proxies(ProxyMesh::peer_listeners(size));
            let mut mesh = ProxyMesh::start(
                size,
                &spec.host,
                listeners,
                move |j: NodeId| ep[j.index()],
                seed,
            )
            .await?;
            if client_links {
                let listeners = ports.take_proxies(size);
                mesh.add_client_links(listeners, |j: NodeId| {
                    let l = &layout[j.index()];
                    socket(&l.host, l.port)
                })
                .await?;
            }
            Some(mesh)
        } else {
            None
        };
        let peer_addr = |from: NodeId, to: NodeId| match &mesh {
            Some(m) => m.addr(from, to),
            None => peer_endpoint[to.index()],
        };
        let (ev_tx, ev_rx) = mpsc::unbounded_channel::<NodeEvent>();
        let started = match &opts.sample_node_program {
            Some(p) => Cluster::start_with(spec, ports, peer_addr, ev_tx, p.clone()).await,
            None => Cluster::start(spec, ports, peer_addr, ev_tx).await,
        };
        let cluster = match started {
            Ok(c) => c,
            Err(e) => return Err(e.into()),
        };
        let since = *first_spawn.get_or_insert(cluster.spawned_at().unwrap_or_else(Instant::now));
        let all: Vec<NodeId> = (0..size).map(NodeId).collect();
        match cluster.wait_ready(&all, spec.ready.timeout).await {
            Ok(()) => {
                let ready_s = since.elapsed().as_secs_f64();
                tracing::debug!(ready_s, attempt, "every node is ready");
                return Ok((cluster, mesh, ev_rx, ready_s));
            }
            Err(e)
                if (port_clash(&e) || matches!(e, ClusterError::PortTaken { .. }))
                    && attempt < ATTEMPTS =>
            {
                tracing::warn!("a node's port was taken ({e}); starting again on other ports");
                let _ = cluster.shutdown().await;
                if let Some(m) = mesh {
                    m.shutdown().await;
                }
                // A fresh start: nothing from the failed attempt carries over.
                for l in &layout {
                    let _ = std::fs::remove_dir_all(&l.data_dir);
                    let _ = std::fs::create_dir_all(&l.data_dir);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn socket(host: &str, port: u16) -> SocketAddr {
    let ip = host
        .parse()
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    SocketAddr::new(ip, port)
}

/// The mesh's counters as the report keeps them.
fn link_records(mesh: &ProxyMesh) -> Vec<LinkRecord> {
    let record = |from: String, to: NodeId, s: crate::net::LinkStats| LinkRecord {
        from,
        to,
        connections: s.connections,
        bytes_forward: s.bytes_forward,
        bytes_back: s.bytes_back,
        resets: s.resets,
    };
    let mut v: Vec<LinkRecord> = mesh
        .links()
        .map(|(from, to)| record(from.to_string(), to, mesh.stats(from, to)))
        .collect();
    for j in 0..mesh.size() {
        if let Some(s) = mesh.client_stats(NodeId(j)) {
            v.push(record(LinkRecord::CLIENTS.into(), NodeId(j), s));
        }
    }
    v
}

fn workload_name(k: &WorkloadKind) -> &'static str {
    match k {
        WorkloadKind::Probe { .. } => "probe",
        WorkloadKind::Kv { .. } => "kv",
        WorkloadKind::Ledger => "ledger",
    }
}

/// `results/<plan>/latest` -> the newest run (a symlink; best effort).
fn point_latest(plan_dir: &Path, id: &str) {
    let link = plan_dir.join("latest");
    let _ = std::fs::remove_file(&link);
    #[cfg(unix)]
    if let Err(e) = std::os::unix::fs::symlink(id, &link) {
        tracing::warn!("cannot point {} at {id}: {e}", link.display());
    }
}

fn note_node_event(
    ev: &NodeEvent,
    origin: Instant,
    world: &mut World,
    records: &mut Vec<NodeEventRecord>,
    unexpected: &mut Vec<String>,
) {
    let at = ev.at.saturating_duration_since(origin);
    let (event, detail, expected) = match &ev.kind {
        NodeEventKind::Started { pid } => ("started", format!("pid {pid}"), None),
        NodeEventKind::Paused => ("paused", String::new(), None),
        NodeEventKind::Resumed => ("resumed", String::new(), None),
        NodeEventKind::Exited {
            code,
            signal,
            expected,
        } => {
            let how = match (code, signal) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(s)) => format!("signal {s}"),
                _ => "unknown status".into(),
            };
            if !expected {
                unexpected.push(format!(
                    "{} exited on its own at {:.2}s ({how})",
                    ev.node,
                    at.as_secs_f64()
                ));
                world.set_state(ev.node, NodeState::Exited);
                world.snapshot(at.as_nanos() as u64);
            }
            ("exited", how, Some(*expected))
        }
    };
    records.push(NodeEventRecord {
        at_s: at.as_secs_f64(),
        node: ev.node,
        event: event.into(),
        detail,
        expected,
    });
}

/// Polls until every node answers its readiness probe and, for the key-value
/// workload, a read; false if the deadline passes first.
async fn wait_all_serve(
    cluster: &Cluster,
    spec: &crate::plan::WorkloadSpec,
    targets: &workload::Targets,
    deadline: Instant,
) -> bool {
    let Ok(http) = workload::http_client(Duration::from_millis(500)) else {
        return false;
    };
    let mut pending: Vec<NodeId> = (0..targets.len()).map(NodeId).collect();
    while Instant::now() < deadline {
        let mut still = Vec::new();
        for n in pending {
            // A key-value service must also answer a read the way the
            // workload reads (through the HTTP adapter when there is one).
            let ok = cluster.is_ready(n).await
                && match spec.kind {
                    WorkloadKind::Kv { .. } => {
                        workload::final_read(&http, spec, targets[n.index()], "k0")
                            .await
                            .is_some()
                    }
                    _ => true,
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

/// Polls every node's `/health` until all report the same commit index and
/// chain head (the sample node's promise after a heal) or the deadline passes.
async fn converge_heads(
    targets: &workload::Targets,
    since: Instant,
    deadline: Instant,
) -> Convergence {
    let Ok(http) = workload::http_client(Duration::from_millis(500)) else {
        return Convergence {
            seconds: None,
            heads: BTreeMap::new(),
        };
    };
    loop {
        let mut heads = BTreeMap::new();
        for (i, addr) in targets.iter().enumerate() {
            let h = match http.get(format!("http://{addr}/health")).send().await {
                Ok(r) => r.json::<serde_json::Value>().await.ok(),
                Err(_) => None,
            };
            let head = h
                .map(|h| {
                    format!(
                        "commit {} head {}",
                        h["commit"],
                        h["head"].as_str().unwrap_or("?")
                    )
                })
                .unwrap_or_else(|| "no answer".into());
            heads.insert(NodeId(i), head);
        }
        let first = heads.values().next().cloned();
        let same = first.is_some_and(|f| f != "no answer" && heads.values().all(|h| *h == f));
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
/// the committed chain (ledger workload), for the checkers that compare the
/// history with the end state.
async fn read_everything(targets: &workload::Targets, plan: &Plan) -> FinalState {
    let spec = &plan.workload;
    let mut out = FinalState {
        version: FINAL_STATE_VERSION,
        ..Default::default()
    };
    let Ok(http) = workload::http_client(spec.timeout.max(Duration::from_secs(1))) else {
        return out;
    };
    match &spec.kind {
        WorkloadKind::Kv { keys, .. } => {
            for (i, addr) in targets.iter().enumerate() {
                let mut values = BTreeMap::new();
                for k in 0..*keys {
                    let key = format!("k{k}");
                    if let Some(v) = workload::final_read(&http, spec, *addr, &key).await {
                        values.insert(key, v);
                    }
                }
                out.kv.insert(NodeId(i), values);
            }
        }
        WorkloadKind::Ledger | WorkloadKind::Probe { .. } => {}
    }
    // The chain is read under any workload the ledger checker is asked for.
    let e = &plan.expect;
    if matches!(spec.kind, WorkloadKind::Ledger)
        || e.ledger_agreement == Some(true)
        || e.finds.iter().any(|f| f == "ledger_agreement")
    {
        out.ledgers = read_chains(&http, targets).await;
    }
    out
}

/// Most entries asked for per ledger page (the sample node's limit).
const LEDGER_PAGE: usize = 1000;
/// How long followers get to catch up with the leader's chain before the
/// chains are compared as they are.
const CHAIN_SETTLE: Duration = Duration::from_secs(3);

/// Every node's committed chain, read until all nodes report the same length
/// (a follower may trail the leader by a heartbeat) or [`CHAIN_SETTLE`] passes.
async fn read_chains(http: &reqwest::Client, targets: &workload::Targets) -> crate::check::Chains {
    let deadline = Instant::now() + CHAIN_SETTLE;
    loop {
        let mut chains = crate::check::Chains::new();
        for (i, addr) in targets.iter().enumerate() {
            chains.insert(NodeId(i), read_chain(http, *addr).await);
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

/// One node's chain through `GET /ledger?from=N&limit=M`, page by page;
/// `None` when the node does not answer or answers nonsense.
async fn read_chain(http: &reqwest::Client, addr: SocketAddr) -> Option<Vec<LedgerEntry>> {
    #[derive(serde::Deserialize)]
    struct Page {
        entries: Vec<LedgerEntry>,
    }
    let mut chain: Vec<LedgerEntry> = Vec::new();
    // Bounded: a node cannot keep rift paging forever.
    for _ in 0..10_000 {
        let from = chain.len() + 1;
        let url = format!("http://{addr}/ledger?from={from}&limit={LEDGER_PAGE}");
        let resp = http.get(url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let page: Page = resp.json().await.ok()?;
        let n = page.entries.len();
        chain.extend(page.entries);
        if n < LEDGER_PAGE {
            return Some(chain);
        }
    }
    Some(chain)
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

fn run_checkers(plan: &Plan, ops: &[Op], final_state: &FinalState) -> Vec<CheckResult> {
    let e = &plan.expect;
    let wants = |name: &str| e.finds.iter().any(|f| f == name);
    let sel = crate::check::Selection {
        linearizable: e.linearizable == Some(true) || wants("linearizable"),
        lost_writes: e.lost_writes.is_some() || wants("lost_writes"),
        ledger_agreement: e.ledger_agreement == Some(true) || wants("ledger_agreement"),
    };
    crate::check::run_checkers(&sel, ops, final_state)
}

fn op_counts(ops: &[Op], elapsed: Duration) -> OpCounts {
    let mut c = OpCounts {
        total: ops.len() as u64,
        ..Default::default()
    };
    for op in ops {
        match op.outcome {
            Outcome::Ok => c.ok += 1,
            Outcome::Fail => c.fail += 1,
            Outcome::Unknown => c.unknown += 1,
        }
    }
    c.per_second = c.total as f64 / elapsed.as_secs_f64().max(1e-3);
    c
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        format!("{ms:.1}ms")
    }
}

fn pass_if(ok: bool) -> Verdict {
    if ok {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

/// Holds every expectation of the plan against what was measured.
fn judge(
    plan: &Plan,
    avail: &crate::check::availability::Availability,
    lat: &crate::check::availability::Latency,
    recovery: &[crate::check::availability::Recovery],
    final_recovery_s: Option<f64>,
    unexpected_exits: &[String],
    checks: &[CheckResult],
) -> Vec<ExpectationResult> {
    let e = &plan.expect;
    let mut out = Vec::new();
    if let Some(min) = e.availability {
        let r = avail.overall.ratio();
        out.push(ExpectationResult {
            name: "availability".into(),
            bound: format!(">= {:.2}%", min * 100.0),
            measured: format!("{:.2}%", r * 100.0),
            verdict: pass_if(r >= min),
            message: format!(
                "{} of {} requests to nodes expected to serve succeeded",
                avail.overall.served, avail.overall.total
            ),
        });
    }
    for (name, bound, got) in [
        ("p50_latency", e.p50_latency, lat.p50_ms),
        ("p99_latency", e.p99_latency, lat.p99_ms),
    ] {
        if let Some(b) = bound {
            let got_d = Duration::from_secs_f64(got / 1000.0);
            out.push(ExpectationResult {
                name: name.into(),
                bound: format!("<= {}", ms(b)),
                measured: ms(got_d),
                verdict: pass_if(got_d <= b),
                message: format!("over {} served requests", lat.count),
            });
        }
    }
    if let Some(b) = e.recovery {
        let worst = recovery
            .iter()
            .map(|r| r.seconds.unwrap_or(f64::INFINITY))
            .fold(0.0f64, f64::max);
        let never: Vec<String> = recovery
            .iter()
            .filter(|r| r.seconds.is_none_or(|s| s > b.as_secs_f64()))
            .map(|r| format!("{} after `{}` at {:.1}s", r.node, r.label, r.at_s))
            .collect();
        let final_ok = final_recovery_s.is_some_and(|s| s <= b.as_secs_f64());
        let measured = if worst.is_finite() {
            format!("{worst:.2}s")
        } else {
            "not recovered".into()
        };
        let mut message = if never.is_empty() {
            "every node served again in time".to_string()
        } else {
            format!("too slow: {}", never.join(", "))
        };
        message.push_str(&match final_recovery_s {
            Some(s) => format!("; after the final heal all nodes served in {s:.2}s"),
            None => "; after the final heal not every node served again".into(),
        });
        out.push(ExpectationResult {
            name: "recovery".into(),
            bound: format!("<= {}", ms(b)),
            measured,
            verdict: pass_if(never.is_empty() && final_ok),
            message,
        });
    }
    if e.no_unexpected_exits {
        out.push(ExpectationResult {
            name: "no_unexpected_exits".into(),
            bound: "0".into(),
            measured: unexpected_exits.len().to_string(),
            verdict: pass_if(unexpected_exits.is_empty()),
            message: if unexpected_exits.is_empty() {
                "no node exited on its own".into()
            } else {
                unexpected_exits.join("; ")
            },
        });
    }
    for c in checks {
        let must_find = e.finds.contains(&c.checker);
        let verdict = if must_find {
            // A plan that proves a bug passes only when the bug is found.
            match c.verdict {
                Verdict::Fail => Verdict::Pass,
                Verdict::Pass => Verdict::Fail,
                Verdict::Unknown => Verdict::Unknown,
            }
        } else if let (Some(allowed), true) = (e.lost_writes, c.checker == "lost_writes") {
            // `lost_writes = N` tolerates up to N lost writes, never a value
            // that no one wrote.
            let lost = crate::check::lost_writes::lost_write_count(c);
            let phantoms = c.details["phantom_values"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            match c.verdict {
                Verdict::Unknown => Verdict::Unknown,
                _ => pass_if(lost <= allowed && !phantoms),
            }
        } else {
            c.verdict
        };
        out.push(ExpectationResult {
            name: c.checker.clone(),
            bound: if must_find {
                "must find a violation".into()
            } else {
                "no violation".into()
            },
            measured: format!("{:?}", c.verdict).to_lowercase(),
            verdict,
            message: c.summary.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never_ready(log: &str) -> ClusterError {
        ClusterError::NeverReady {
            node: NodeId(1),
            timeout: Duration::from_secs(1),
            log: PathBuf::from("n1.log"),
            last_log_lines: log.into(),
        }
    }

    #[test]
    fn only_a_taken_port_is_retried() {
        assert!(port_clash(&never_ready(
            "Error: Address already in use (os error 98)"
        )));
        assert!(port_clash(&never_ready("bind: address in use")));
        assert!(!port_clash(&never_ready("panicked: bad config")));
        assert!(!port_clash(&ClusterError::BinaryMissing {
            program: "x".into()
        }));
    }
}
