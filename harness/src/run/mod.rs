//! The experiment runner: ties plan, cluster, network, nemesis, workload,
//! checkers and report together for one run, phase by phase: `start`
//! (directory, ports, network, nodes), `drive` (the schedule while the
//! workload runs), `finish` (final heal, recovery, final reads), `judge`
//! (checkers and expectations), and the report.
//!
//! It owns the order of things and the cleanup promise; the subsystems below
//! it never call back into it.

mod apply;
mod clock;
mod docker;
mod drive;
mod finish;
pub mod index;
mod judge;
pub mod many;
mod progress;
mod record;
mod start;

pub use clock::{run_id, utc_rfc3339};
pub use progress::ProgressMode;

use crate::adapter::client::{ClientError, ClientPool, ClientProblems};
use crate::cluster::{self, ClusterError};
use crate::fault;
use crate::net::NetError;
use crate::report::{Report, ReportError};
use crate::workload::{self, Recorder};
use apply::Nemesis;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

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
    #[error("cannot start the network: {0}")]
    Net(#[from] NetError),
    #[error("no leader was elected within {timeout:?} after the nodes became ready; the nodes answered: {answers}")]
    NoLeader {
        timeout: Duration,
        /// What each node answered the last time it was asked.
        answers: String,
    },
    #[error(
        "network = \"netns\" {0}; run rift as root, or use network = \"proxy\" (unprivileged)"
    )]
    NeedsPrivilege(String),
    /// A step needs cgroups (`pause how = "freeze"`, `slow`) that this
    /// machine or user cannot make.
    #[error("{0}")]
    NeedsCgroup(String),
    /// `[cluster] disk = "faulty"` where the faulty disk cannot be used, or
    /// a node's disk could not be mounted.
    #[error("{0}")]
    Disk(String),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("interrupted before the cluster was ready")]
    Interrupted,
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("Docker engine: cannot {what}: {source}")]
    Docker {
        what: String,
        #[source]
        source: crate::docker::DockerError,
    },
    #[error("network = \"netns\" puts rift's wire into each container's namespace, which needs the engine on rift's own machine, but it answers at {0}")]
    DockerRemote(String),
    #[error(
        "containers on network = \"{0}\" are not supported: they have no address on this machine's loopback; use network = \"netns\" (the wire) or \"none\""
    )]
    DockerNetwork(&'static str),
    #[error("the run's bridge network {subnet} has no address left for {nodes} nodes")]
    DockerBridgeFull { subnet: String, nodes: usize },
    #[error("cannot tell the address of the remote Docker engine {0}: clients reach the nodes' ports it publishes there")]
    DockerRemoteHost(String),
}

impl RunError {
    /// The last lines of a failing node's log, to show under the message.
    pub fn log_tail(&self) -> Option<&str> {
        match self {
            RunError::Cluster(e) => e.last_log_lines(),
            RunError::RunDir { .. }
            | RunError::Net(_)
            | RunError::NoLeader { .. }
            | RunError::NeedsPrivilege(_)
            | RunError::NeedsCgroup(_)
            | RunError::Disk(_)
            | RunError::Report(_)
            | RunError::Interrupted
            | RunError::Http(_)
            | RunError::Client(_)
            | RunError::Docker { .. }
            | RunError::DockerRemote(_)
            | RunError::DockerNetwork(_)
            | RunError::DockerBridgeFull { .. }
            | RunError::DockerRemoteHost(_) => None,
        }
    }
}

pub struct RunOutcome {
    pub report: Report,
    pub run_dir: PathBuf,
    /// What went wrong with client processes (client protocol workloads
    /// only); also written to `clients/problems.json` when any did.
    pub client_problems: Option<ClientProblems>,
}

/// Default for the recovery window when the plan does not set `expect.recovery`.
const DEFAULT_RECOVERY: Duration = Duration::from_secs(5);

/// Runs one plan. `abort` turning true (Ctrl-C) stops the run early with a
/// partial report marked aborted.
pub async fn run(
    plan: &crate::plan::Plan,
    opts: &RunOptions,
    abort: watch::Receiver<bool>,
) -> Result<RunOutcome, RunError> {
    let wall = Instant::now();
    let started_at = utc_rfc3339(std::time::SystemTime::now());
    let seed = opts.seed.or(plan.seed).unwrap_or_else(clock::random_seed);
    let duration = opts.duration.unwrap_or(plan.duration);
    let id = run_id(std::time::SystemTime::now());
    let run_dir = start::run_dir(&opts.out.join(&plan.name), &id)?;
    start::copy_plan(plan, &run_dir);
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
    let adapter = crate::adapter::for_plan(plan).map_err(|e| RunError::Http(e.to_string()))?;
    // `[nemesis]`: its steps drawn from the seed, up front, and scheduled
    // together with the plan's own.
    let drawn = plan.nemesis.as_ref().map(|spec| {
        fault::random::generate(
            spec,
            seed,
            duration,
            plan.cluster.size,
            plan.cluster.network,
        )
    });
    if drawn.as_ref().is_some_and(Vec::is_empty) {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "rift: [nemesis] drew no fault: its quiet period, interval, shortest duration and final phase leave no room in {}",
            crate::plan::format_duration(duration)
        );
    }
    let all_steps = match &drawn {
        Some(d) => fault::random::merged(&plan.steps, d),
        None => plan.steps.clone(),
    };
    // Containers: the engine answers (or the run stops here), and what
    // dead runs left in it is removed. Declared before everything the run
    // starts, so it is dropped last: its Drop removes every object of the
    // run from the engine on any exit path.
    let docker = docker::begin(plan, &id).await?;
    // Declared before the cluster so it is dropped after it: its Drop
    // removes the run's cgroups once the nodes are gone. Containers live
    // in the engine's cgroups, not rift's.
    let cgroups = match docker {
        Some(_) => None,
        None => start::cgroups(&id, &all_steps)?,
    };
    // The same for the faulty disks: unmounted once the nodes are gone.
    let disks = start::disks(plan, &all_steps, &id, &run_dir, seed)?;
    let mut abort = abort;
    // Dropping the start on Ctrl-C drops whatever it started (Drop kills).
    let spec = start::cluster_spec(plan);
    let started = tokio::select! {
        r = start::start_cluster(&spec, plan.workload.via, &run_dir, seed, opts, cgroups.as_ref(), docker.as_ref()) => r?,
        _ = crate::workload::until_true(&mut abort) => return Err(RunError::Interrupted),
    };
    let start::Started {
        cluster,
        net,
        mut events,
        ready_s,
    } = started;
    // From here on every exit path must shut the cluster down: `Cluster`'s
    // Drop kills what is left if an error returns early.
    let mut aborted_by = start::wait_for_leader(&cluster, &plan.cluster, &mut abort).await?;

    // The clock of the run: every history and timeline time is measured from here.
    let origin = Instant::now();
    let history_path = run_dir.join("history.jsonl");
    let recorder = Recorder::create(&history_path).map_err(|source| RunError::RunDir {
        path: history_path.display().to_string(),
        source,
    })?;
    let targets: workload::Targets = Arc::new(
        (0..plan.cluster.size)
            .map(|j| net.client_addr(crate::NodeId(j)))
            .collect(),
    );
    let window = workload::Window {
        origin,
        deadline: origin + duration,
    };
    // The client protocol: client processes instead of a built-in adapter,
    // for the workload and for the final reads alike.
    let pool = match &plan.workload.client {
        Some(spec) => Some(Arc::new(ClientPool::new(
            spec,
            &plan.workload,
            &targets,
            &run_dir.join("clients"),
        )?)),
        None => None,
    };
    let (adapter, link) = match &pool {
        Some(p) => (
            p.clone() as Arc<dyn crate::adapter::Adapter>,
            workload::Link::Processes(p.clone()),
        ),
        None => (adapter.clone(), workload::Link::Adapter(adapter)),
    };
    let load = Load::launch(plan, opts, link, &targets, seed, window, &recorder);
    if aborted_by.is_some() {
        load.stop.send_replace(true);
    }

    let mut nemesis = Nemesis::new(plan, seed, &cluster, net.as_ref(), origin);
    nemesis.disks = disks.as_ref();
    if let Some(p) = &pool {
        nemesis.leader_via(p.clone());
    }
    let schedule = fault::schedule(&all_steps);
    let mut log = drive::NodeLog::default();
    if aborted_by.is_none() {
        aborted_by = drive::drive(
            &mut nemesis,
            &schedule,
            window,
            &mut events,
            &mut log,
            &load.phase,
            &mut abort,
        )
        .await;
    }
    let end = origin.elapsed().min(duration);
    load.finish(aborted_by.is_some()).await;

    // Undo every fault still in force, then measure how long until all serve.
    let recovery_bound = plan.expect.recovery.unwrap_or(DEFAULT_RECOVERY);
    let mut fin = finish::Finish::default();
    if aborted_by.is_none() {
        let at = finish::At {
            cluster: &cluster,
            adapter: adapter.as_ref(),
            targets: &targets,
            run_dir: &run_dir,
        };
        fin = finish::finish(&mut nemesis, at, plan, recovery_bound).await;
    }
    let client_problems = match &pool {
        Some(p) => {
            p.shutdown().await;
            Some(note_client_problems(p, &run_dir))
        }
        None => None,
    };
    drive::drain(&mut events, origin, &mut nemesis, &mut log);
    let timeline = std::mem::take(&mut nemesis.timeline);
    let snapshots = nemesis.world.snapshots().to_vec();
    let power_losses = std::mem::take(&mut nemesis.power_losses);
    drop(nemesis);
    let mut cluster_info = record::cluster_info(plan, &cluster, net.as_ref(), &run_dir);
    cluster_info.disks = disks
        .as_ref()
        .map(|d| record::disk_records(d, &power_losses));
    cluster_info.ready_s = Some(ready_s);
    cluster_info.clients = client_problems.clone();
    // Teardown, bounded: an interrupted run must exit promptly.
    let teardown = if aborted_by.is_some() {
        Duration::from_millis(800)
    } else {
        plan.cluster.stop_timeout + Duration::from_secs(2)
    };
    if tokio::time::timeout(teardown, cluster.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("teardown took longer than {teardown:?}; remaining nodes were killed");
    }
    net.shutdown().await;
    if let Some(d) = docker {
        d.end().await;
    }
    record::teardown_events(&mut events, origin, &mut log);

    let (ops, write_error) = recorder.finish();
    if let Some(e) = write_error {
        tracing::warn!("history.jsonl is incomplete: {e}");
    }
    let header = record::Header {
        run_id: id,
        seed,
        started_at,
        label: opts.label.clone(),
        wall,
        duration,
        recovery_bound,
    };
    let evidence = record::Evidence {
        end,
        aborted_by,
        cluster: cluster_info,
        timeline,
        node_log: log,
        snapshots,
        finish: fin,
        nemesis: drawn.map(|d| (seed, d)),
    };
    // Checking a long history takes a while: off the runtime's one thread,
    // so a second Ctrl-C still forces rift out meanwhile.
    let plan = plan.clone();
    let dir = run_dir.clone();
    let judged = tokio::task::spawn_blocking(move || {
        let report = record::report(&plan, header, evidence, &ops);
        report.write(&dir, &ops).map(|()| report)
    })
    .await;
    let report = match judged {
        Ok(written) => written?,
        // A panic in a checker is a bug in rift: surface it as one.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    // Best effort: the run itself is complete without its index entry.
    if let (Some(plan_dir), Some(dir)) = (run_dir.parent(), run_dir.file_name()) {
        if let Err(e) = index::record(plan_dir, &dir.to_string_lossy(), &report) {
            tracing::warn!("{e}");
        }
    }
    Ok(RunOutcome {
        report,
        run_dir,
        client_problems,
    })
}

/// Writes `clients/problems.json` and says on stderr when a client
/// misbehaved; returns the problems.
fn note_client_problems(pool: &ClientPool, run_dir: &std::path::Path) -> ClientProblems {
    let problems = pool.problems();
    if problems.count > 0 {
        use std::io::Write as _;
        let path = run_dir.join("clients").join("problems.json");
        let res = serde_json::to_vec_pretty(&problems)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&path, bytes));
        if let Err(e) = res {
            tracing::warn!("cannot write {}: {e}", path.display());
        }
        let first = problems.first.first().map(String::as_str).unwrap_or("");
        let _ = writeln!(
            std::io::stderr(),
            "rift: {} client problem(s) ({} client processes started); first: {first}; see {}",
            problems.count,
            problems.started,
            path.display()
        );
    }
    problems
}

/// The workload and the progress display, running.
struct Load {
    workload: tokio::task::JoinHandle<()>,
    progress: tokio::task::JoinHandle<()>,
    /// Turning true stops both.
    stop: watch::Sender<bool>,
    phase: progress::Phase,
}

impl Load {
    fn launch(
        plan: &crate::plan::Plan,
        opts: &RunOptions,
        link: workload::Link,
        targets: &workload::Targets,
        seed: u64,
        window: workload::Window,
        recorder: &Recorder,
    ) -> Load {
        let (stop, stop_rx) = watch::channel(false);
        let phase = progress::Phase::default();
        let workload = tokio::spawn(workload::run(
            plan.workload.clone(),
            link,
            targets.clone(),
            seed,
            window,
            recorder.clone(),
            stop_rx.clone(),
        ));
        let progress = tokio::spawn(progress::show(
            opts.progress,
            plan.name.clone(),
            window,
            recorder.counters.clone(),
            phase.clone(),
            stop_rx,
        ));
        Load {
            workload,
            progress,
            stop,
            phase,
        }
    }

    /// Stops both and waits for them; an aborted run does not wait for
    /// requests in flight.
    async fn finish(self, aborted: bool) {
        self.stop.send_replace(true);
        if aborted {
            self.workload.abort();
        }
        let _ = self.workload.await;
        let _ = self.progress.await;
    }
}

/// `rift client-test`: starts the plan's cluster, runs the scripted session
/// of [`crate::adapter::client::test::script`] through one client process
/// of the plan's `[workload] client`, stops the cluster; what is wrong with
/// the client, one line each (empty: the client is OK). Client logs go to
/// `<out>/<plan>/client-test-<id>/clients/`.
pub async fn client_test(
    plan: &crate::plan::Plan,
    spec: &crate::plan::ClientSpec,
    opts: &RunOptions,
) -> Result<Vec<String>, RunError> {
    let seed = opts.seed.or(plan.seed).unwrap_or_else(clock::random_seed);
    let id = format!("client-test-{}", run_id(std::time::SystemTime::now()));
    let run_dir = start::run_dir(&opts.out.join(&plan.name), &id)?;
    let cluster_spec = start::cluster_spec(plan);
    // Dropped last: removes the run's containers on every exit path.
    let docker = docker::begin(plan, &id).await?;
    let cgroups = match docker {
        Some(_) => None,
        None => start::cgroups(&id, &[])?,
    };
    let _disks = start::disks(plan, &[], &id, &run_dir, seed)?;
    let started = start::start_cluster(
        &cluster_spec,
        plan.workload.via,
        &run_dir,
        seed,
        opts,
        cgroups.as_ref(),
        docker.as_ref(),
    )
    .await?;
    let (_never, mut abort) = watch::channel(false);
    start::wait_for_leader(&started.cluster, &plan.cluster, &mut abort).await?;
    let targets: Vec<_> = (0..plan.cluster.size)
        .map(|j| started.net.client_addr(crate::NodeId(j)))
        .collect();
    let pool = ClientPool::new(spec, &plan.workload, &targets, &run_dir.join("clients"))?;
    let wrong = crate::adapter::client::test::script(&pool, &seed.to_string()).await;
    pool.shutdown().await;
    let _ = tokio::time::timeout(
        plan.cluster.stop_timeout + Duration::from_secs(2),
        started.cluster.shutdown(),
    )
    .await;
    started.net.shutdown().await;
    if let Some(d) = docker {
        d.end().await;
    }
    Ok(wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_leader_says_what_every_node_answered() {
        let e = RunError::NoLeader {
            timeout: Duration::from_secs(20),
            answers: r#"n0: "3a1f" (no node has that id), n1: HTTP 503"#.into(),
        };
        assert_eq!(
            e.to_string(),
            r#"no leader was elected within 20s after the nodes became ready; the nodes answered: n0: "3a1f" (no node has that id), n1: HTTP 503"#
        );
    }
}
