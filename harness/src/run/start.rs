//! The first phase of a run: the run directory, ports, the network backend
//! and the nodes, up to the moment every node is ready and (when the plan
//! asks who leads) a leader is known.
//!
//! Every exit path drops what it started: `Cluster` and the network kill
//! and close their parts on drop.

use super::{RunError, RunOptions};
use crate::cgroup::RunCgroup;
use crate::cluster::{self, Cluster, ClusterError, NodeEvent};
use crate::net::wire::CaptureTo;
use crate::net::{self, NetError, Network, NodeEndpoints};
use crate::plan::{Action, ClientRoute, ClusterSpec, PauseHow, Plan, Step};
use crate::NodeId;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// A cluster whose nodes are all ready, and the network between them.
pub(super) struct Started {
    pub cluster: Cluster,
    pub net: Box<dyn Network>,
    pub events: mpsc::UnboundedReceiver<NodeEvent>,
    /// From the first node's spawn to every node ready, in seconds.
    pub ready_s: f64,
}

/// The cluster as this run starts it: the plan's, with libfaketime
/// preloaded into every node when a step moves a clock
/// ([`Plan::uses_clock_faults`]). A node that cannot take it (libfaketime
/// missing, a static binary) then stops the run before it starts, with one
/// line, as a missing privilege does for `network = "netns"`.
pub(super) fn cluster_spec(plan: &Plan) -> ClusterSpec {
    let mut spec = plan.cluster.clone();
    spec.clock.faketime = plan.uses_clock_faults();
    spec
}

/// Creates `<plan_dir>/<id>/{nodes,data}` and points `latest` at it.
pub(super) fn run_dir(plan_dir: &Path, id: &str) -> Result<std::path::PathBuf, RunError> {
    let run_dir = plan_dir.join(id);
    for d in [run_dir.join("nodes"), run_dir.join("data")] {
        std::fs::create_dir_all(&d).map_err(|source| RunError::RunDir {
            path: d.display().to_string(),
            source,
        })?;
    }
    point_latest(plan_dir, id);
    Ok(run_dir)
}

/// Copies the plan file into the run directory as `plan.toml` (what `rift
/// shrink` re-runs); best effort: a plan built in code has no file, and a
/// copy that fails only costs shrink its fallback to `report.plan.path`.
pub(super) fn copy_plan(plan: &crate::plan::Plan, run_dir: &Path) {
    if plan.path.as_os_str().is_empty() {
        return;
    }
    if let Err(e) = std::fs::copy(&plan.path, run_dir.join("plan.toml")) {
        tracing::debug!(
            "cannot copy {} into the run directory: {e}",
            plan.path.display()
        );
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

/// The faulty disks of a run (`[cluster] disk = "faulty"`), one per node,
/// mounted over the nodes' data directories before they first start. The
/// runner holds them longer than the cluster: dropped after the nodes are
/// gone, each unmounts itself.
pub(super) struct Disks {
    /// By node index.
    pub disks: Vec<crate::disk::FaultyDisk>,
}

impl Disks {
    pub fn get(&self, n: NodeId) -> Option<&crate::disk::FaultyDisk> {
        self.disks.get(n.0)
    }
}

/// Set to anything but empty or `0`: the runner acts as if the faulty disk
/// were unavailable here (to test what a plan that needs it does without).
pub const NO_FUSE_ENV: &str = "RIFT_NO_FUSE";

/// Whether the faulty disk can be used here (and `RIFT_NO_FUSE` is not
/// set); `Err` is one line saying what is missing.
pub fn faulty_disk_available() -> Result<(), String> {
    if std::env::var(NO_FUSE_ENV).is_ok_and(|v| !v.is_empty() && v != "0") {
        return Err(format!("{NO_FUSE_ENV} is set"));
    }
    crate::disk::FaultyDisk::check_available().map_err(|e| e.to_string())
}

/// Unmounts the faulty disks of dead runs ([`crate::disk::sweep`]), then,
/// with `[cluster] disk = "faulty"`, mounts one per node: backing
/// directory `run_dir/disk/<name>`, mountpoint the node's data directory
/// `run_dir/data/<name>`, label `rift-<run-id>.<pid>-<name>`, seeded from
/// the run's seed and the node. A plan that needs the faulty disk (the
/// `[cluster]` setting, or a `disk` step, the nemesis' drawn ones
/// included) on a machine without it fails with one line.
pub(super) fn disks(
    plan: &Plan,
    steps: &[Step],
    run_id: &str,
    run_dir: &Path,
    seed: u64,
) -> Result<Option<Disks>, RunError> {
    for line in crate::disk::sweep() {
        tracing::info!("{line}");
    }
    let faulty = match plan.disk {
        crate::plan::DiskMode::Plain => false,
        crate::plan::DiskMode::Faulty => true,
    };
    let needs = steps.iter().find_map(|s| match &s.action {
        Action::Disk { .. } => Some(format!("a disk step (plan line {})", s.line)),
        Action::Kill {
            power_loss: Some(_),
            ..
        } => Some(format!("a kill with lose_unsynced (plan line {})", s.line)),
        Action::Kill {
            power_loss: None, ..
        }
        | Action::Restart { .. }
        | Action::Pause { .. }
        | Action::Resume { .. }
        | Action::Partition { .. }
        | Action::Heal
        | Action::Degrade { .. }
        | Action::Restore { .. }
        | Action::Clock { .. }
        | Action::Slow { .. } => None,
    });
    if !faulty {
        return match needs {
            Some(what) => Err(RunError::Disk(format!(
                "{what} needs [cluster] disk = \"faulty\""
            ))),
            None => Ok(None),
        };
    }
    if let Err(why) = faulty_disk_available() {
        return Err(RunError::Disk(format!(
            "disk = \"faulty\" needs the faulty disk (FUSE), but {why}; run rift as root on a machine with /dev/fuse, or use disk = \"plain\""
        )));
    }
    let mut disks = Vec::new();
    for i in 0..plan.cluster.size {
        let name = NodeId(i).name();
        let backing = run_dir.join("disk").join(&name);
        let mountpoint = run_dir.join("data").join(&name);
        let label = crate::disk::FaultyDisk::label_for(run_id, &name);
        let node_seed = seed ^ (0x6469_736b_0000_0000u64.wrapping_add(i as u64));
        let disk = crate::disk::FaultyDisk::mount(&backing, &mountpoint, &label, node_seed)
            .map_err(|e| RunError::Disk(format!("cannot mount the faulty disk of {name}: {e}")))?;
        disks.push(disk);
    }
    Ok(Some(Disks { disks }))
}

/// Whether the run's cgroup can do what a step needs; `Err` says why not.
type Capability = fn(&RunCgroup) -> Result<(), String>;

/// Sweeps the cgroups of dead runs (see [`crate::cgroup::sweep`]), then
/// makes this run's cgroup. Where cgroups cannot be used, nodes run without
/// them (`Ok(None)`) unless a step needs them: a `pause` with
/// `how = "freeze"` or a `slow` step, which fail the run with one line
/// saying why.
pub(super) fn cgroups(run_id: &str, steps: &[Step]) -> Result<Option<Arc<RunCgroup>>, RunError> {
    let swept = crate::cgroup::sweep();
    for r in &swept.removed {
        tracing::info!(
            "removed the cgroup of a dead run: {} ({} processes killed)",
            r.path.display(),
            r.killed
        );
    }
    for f in &swept.failed {
        // Not a problem of this run (`rift clean` reports it, and an
        // unprivileged rift cannot remove root's cgroups at all).
        tracing::debug!("cannot remove the cgroup of a dead run: {f}");
    }
    let made = RunCgroup::create(run_id);
    for step in steps {
        let (what, can, instead): (&str, Capability, &str) = match &step.action {
            Action::Pause {
                how: PauseHow::Freeze,
                ..
            } => (
                "pause with how = \"freeze\"",
                RunCgroup::can_freeze,
                ", or use how = \"sigstop\"",
            ),
            Action::Slow { .. } => ("slow", RunCgroup::can_slow, ""),
            Action::Pause {
                how: PauseHow::Sigstop,
                ..
            }
            | Action::Kill { .. }
            | Action::Restart { .. }
            | Action::Resume { .. }
            | Action::Partition { .. }
            | Action::Heal
            | Action::Degrade { .. }
            | Action::Restore { .. }
            | Action::Clock { .. }
            | Action::Disk { .. } => continue,
        };
        let why = match &made {
            Ok(run) => can(run).err(),
            Err(why) => Some(why.clone()),
        };
        if let Some(why) = why {
            return Err(RunError::NeedsCgroup(format!(
                "{what} (plan line {}) needs cgroups, but {why}; run rift as root with a writable cgroup hierarchy{instead}",
                step.line
            )));
        }
    }
    match made {
        Ok(run) => Ok(Some(run)),
        Err(why) => {
            tracing::debug!("nodes run without cgroups: {why}");
            Ok(None)
        }
    }
}

/// A node that could not bind its port (another process took it between
/// rift reserving it and the node binding it), or whose port another
/// process answered on.
pub(super) fn port_clash(e: &ClusterError) -> bool {
    matches!(e, ClusterError::PortTaken { .. })
        || e.last_log_lines().is_some_and(|log| {
            let log = log.to_ascii_lowercase();
            log.contains("address already in use") || log.contains("address in use")
        })
}

/// Reserves every port of the run at once (nodes, peers, the network's
/// listeners; see [`cluster::Ports`]), starts the network on its share and
/// the nodes on theirs. A node whose port someone else took in the meantime
/// (it could not bind, or another process answered for it) is retried with
/// fresh ports (twice), so concurrent runs do not fail each other.
/// `ready_s` counts from the first node spawn of the first attempt.
pub(super) async fn start_cluster(
    spec: &ClusterSpec,
    via: ClientRoute,
    run_dir: &Path,
    seed: u64,
    opts: &RunOptions,
    cgroups: Option<&Arc<RunCgroup>>,
    docker: Option<&super::docker::DockerRun>,
) -> Result<Started, RunError> {
    // Containers: the node image and each node's network holder, once.
    let mut prepared = match docker {
        Some(d) => Some(d.prepare(spec, run_dir).await?),
        None => None,
    };
    // One cgroup per node for the whole run: a restart, or a second
    // attempt on other ports, enters the same one.
    let mut node_cgroups = Vec::new();
    if let Some(run) = cgroups {
        for i in 0..spec.size {
            let cg = run.node(&NodeId(i).name()).map_err(|e| {
                RunError::NeedsCgroup(format!("cannot make the cgroup of {}: {e}", NodeId(i)))
            })?;
            node_cgroups.push(cg);
        }
    }
    const ATTEMPTS: usize = 3;
    let listeners = net::listeners_needed(spec.network, via, spec.size);
    let mut first_spawn: Option<Instant> = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut ports = cluster::Ports::reserve(spec, run_dir, listeners)?;
        // Containers on the run's bridge listen at their addresses there.
        for (i, p) in prepared
            .as_ref()
            .and_then(|p| p.places.as_ref())
            .into_iter()
            .flatten()
            .enumerate()
        {
            ports.place_at(NodeId(i), p.listen, p.reach);
        }
        let layout = ports.layout().to_vec();
        let endpoints: Vec<NodeEndpoints> = layout
            .iter()
            .map(|l| NodeEndpoints {
                client: SocketAddr::new(l.reach.unwrap_or(l.host), l.port),
                peer: SocketAddr::new(
                    l.host,
                    if spec.separate_peer_port {
                        l.peer_port
                    } else {
                        l.port
                    },
                ),
            })
            .collect();
        let net = net::start(
            spec.network,
            via,
            spec.host,
            &endpoints,
            ports.take_proxies(listeners),
            seed,
            spec.capture.map(|c| CaptureTo {
                dir: run_dir.to_path_buf(),
                limit: c.limit,
            }),
            prepared.as_mut().and_then(|p| p.homes.take()),
        )
        .await
        .map_err(|e| match e {
            NetError::NeedsPrivilege(why) => RunError::NeedsPrivilege(why),
            other => RunError::Net(other),
        })?;
        // A backend that gives nodes homes of their own (the netns wire)
        // decides where they listen and which namespace they run in.
        for i in 0..spec.size {
            if let Some(home) = net.home(NodeId(i)) {
                ports.place(NodeId(i), home);
            }
        }
        for (i, cg) in node_cgroups.iter().enumerate() {
            ports.place_cgroup(NodeId(i), cg.clone());
        }
        let peer_addr = |from: NodeId, to: NodeId| net.peer_addr(from, to);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel::<NodeEvent>();
        let cluster = match (&prepared, &opts.sample_node_program) {
            (Some(d), _) => {
                Cluster::start_docker(spec, ports, peer_addr, ev_tx, d.setup.clone()).await
            }
            (None, Some(p)) => Cluster::start_with(spec, ports, peer_addr, ev_tx, p.clone()).await,
            (None, None) => Cluster::start(spec, ports, peer_addr, ev_tx).await,
        }?;
        let since = *first_spawn.get_or_insert(cluster.spawned_at().unwrap_or_else(Instant::now));
        let all: Vec<NodeId> = (0..spec.size).map(NodeId).collect();
        match cluster.wait_ready(&all, spec.ready.timeout).await {
            Ok(()) => {
                let ready_s = since.elapsed().as_secs_f64();
                tracing::debug!(ready_s, attempt, "every node is ready");
                return Ok(Started {
                    cluster,
                    net,
                    events: ev_rx,
                    ready_s,
                });
            }
            // Containers listen in namespaces of their own: no clash to
            // retry (and their names are the run's, once).
            Err(e) if port_clash(&e) && attempt < ATTEMPTS && prepared.is_none() => {
                tracing::warn!("a node's port was taken ({e}); starting again on other ports");
                let _ = cluster.shutdown().await;
                net.shutdown().await;
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

/// Waits until the nodes agree on a leader, when the plan says how to ask.
/// `Ok(Some(reason))` when `abort` turned true first.
pub(super) async fn wait_for_leader(
    cluster: &Cluster,
    spec: &ClusterSpec,
    abort: &mut watch::Receiver<bool>,
) -> Result<Option<String>, RunError> {
    const INTERRUPTED: &str = "interrupted before the cluster was ready";
    if *abort.borrow() {
        return Ok(Some(INTERRUPTED.into()));
    }
    if spec.leader.is_none() {
        return Ok(None);
    }
    let deadline = Instant::now() + spec.ready.timeout;
    loop {
        let Some(poll) = cluster.leader_poll().await else {
            return Ok(None);
        };
        if poll.leader.is_some() {
            return Ok(None);
        }
        if Instant::now() >= deadline {
            return Err(RunError::NoLeader {
                timeout: spec.ready.timeout,
                answers: poll.to_string(),
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = crate::workload::until_true(abort) => return Ok(Some(INTERRUPTED.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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
