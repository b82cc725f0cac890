//! The cluster under test: lays out logs and data dirs, starts real node
//! processes on the ports [`Ports`] reserved, watches them, probes readiness
//! (and that what answers is the node itself), stops and restarts them.
//!
//! Cleanup is a promise: no node process may outlive rift — not on success,
//! failure, Ctrl-C, a panic, nor when rift itself is SIGKILLed. This module
//! must never signal a pid it has already reaped, and never panics because a
//! node misbehaves: a node that dies on its own is an event, not an error.
//!
//! How the promise is kept: each node leads its own process group, so every
//! signal reaches whatever it forked; a node's leader gets PR_SET_PDEATHSIG
//! (SIGKILL) so it dies with rift even when rift gets no chance to clean up;
//! `Drop` SIGKILLs every live group; and when a leader exits, the rest of its
//! group is killed before the leader is reaped. Processes a node forks do
//! not inherit the death signal; a guard shell that outlives rift by a
//! moment SIGKILLs their groups when rift dies (see `spawn`).

mod command;
mod docker;
mod identity;
mod ports;
mod probe;
mod process;
mod spawn;

pub use docker::{node_image, start_holders, DockerSetup, Holders};
pub use ports::Ports;
pub use probe::{LeaderAnswer, LeaderPoll, NodeAnswer};
pub(crate) use spawn::die_with_parent;

use crate::cgroup::{CgroupError, NodeCgroup};
use crate::plan::{ClusterSpec, NodeCommand, PauseHow};
use crate::{NodeId, NodeState};
use command::NodeArgv;
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use ports::NodeListeners;
use spawn::ExitInfo;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc::UnboundedSender, watch};

/// Where one node lives: its ports, data dir and log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLayout {
    pub id: NodeId,
    /// The address the node listens on: loopback, or its own address on
    /// the netns wire.
    pub host: IpAddr,
    /// Where clients (and readiness probes) reach the node.
    pub port: u16,
    /// Where peers reach the node. Equal to `port` when the spec has no
    /// separate peer port (always for the sample node).
    pub peer_port: u16,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    /// The network namespace the node runs in, when the network gives it
    /// one (`network = "netns"`); `host` is then its address there.
    pub netns: Option<crate::netns::Netns>,
    /// Where rift (probes, clients, the leader query) reaches the node when
    /// that is not `host`: the host of a remote Docker engine, which
    /// publishes the node's port there.
    pub reach: Option<IpAddr>,
    /// The node's cgroup (see [`crate::cgroup`]), when the run has one: the
    /// node enters it between fork and exec, at every start.
    pub cgroup: Option<crate::cgroup::NodeCgroup>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEvent {
    pub at: Instant,
    pub node: NodeId,
    pub kind: NodeEventKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEventKind {
    Started {
        pid: u32,
    },
    /// `expected` is true when rift had asked the node to stop or die.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
        expected: bool,
    },
    Paused,
    Resumed,
    /// The node was still running `after` its SIGTERM (the spec's
    /// `stop_timeout`), so rift SIGKILLed its process group.
    Escalated {
        after: Duration,
    },
}

/// The program that runs [`NodeCommand::SampleNode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleNodeProgram {
    pub program: PathBuf,
    /// Arguments before the node's own (`["sample-node"]` for rift itself,
    /// empty for the standalone `sample-node` binary).
    pub leading_args: Vec<String>,
}

impl SampleNodeProgram {
    /// rift re-executing itself with the hidden `sample-node` subcommand.
    pub fn current_exe() -> Result<SampleNodeProgram, ClusterError> {
        let program = std::env::current_exe().map_err(|source| ClusterError::Io {
            action: "find rift's own executable",
            path: PathBuf::from("/proc/self/exe"),
            source,
        })?;
        Ok(SampleNodeProgram {
            program,
            leading_args: vec!["sample-node".into()],
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("node program `{program}` not found: no executable file at that path or on PATH")]
    BinaryMissing { program: String },
    #[error("could not start {node} (`{program}`): {source}")]
    Spawn {
        node: NodeId,
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("{node} was not ready within {timeout:?} (log: {})", .log.display())]
    NeverReady {
        node: NodeId,
        timeout: Duration,
        log: PathBuf,
        last_log_lines: String,
    },
    #[error("{node} {} before it was ready (log: {})", exit_phrase(*.code, *.signal), .log.display())]
    Exited {
        node: NodeId,
        code: Option<i32>,
        signal: Option<i32>,
        log: PathBuf,
        last_log_lines: String,
    },
    #[error("{node}'s port answered, but not from {node}: {holder} (log: {})", .log.display())]
    PortTaken {
        node: NodeId,
        /// Who answered instead.
        holder: String,
        log: PathBuf,
        last_log_lines: String,
    },
    #[error("could not reserve free loopback ports: {0}")]
    PortAllocation(#[source] io::Error),
    #[error("cluster host `{host}` is not a loopback IP address")]
    BadHost { host: String },
    #[error("could not {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{node} is not part of this cluster")]
    UnknownNode { node: NodeId },
    #[error("{node} is not running")]
    NotRunning { node: NodeId },
    #[error("{node} is already running")]
    AlreadyRunning { node: NodeId },
    #[error("{node} still runs after SIGKILL")]
    StopTimeout { node: NodeId },
    #[error("{signal} is not a signal number")]
    BadSignal { signal: i32 },
    #[error("could not signal {node}: {source}")]
    Signal {
        node: NodeId,
        #[source]
        source: Errno,
    },
    #[error("rift could not watch {node}: {source}")]
    Supervise {
        node: NodeId,
        #[source]
        source: io::Error,
    },
    /// The nodes cannot have the clocks the plan asks for (libfaketime
    /// missing, a static binary, no time namespaces): one line saying why.
    #[error("{0}")]
    Clock(String),
    #[error("Docker engine: cannot {what}: {source}")]
    Docker {
        what: String,
        #[source]
        source: crate::docker::DockerError,
    },
    #[error("the Docker engine has no image `{image}`, and it has no registry to pull from: load or build it first, or give `binary = \"path\"` and rift builds one")]
    ImageMissing { image: String },
    #[error("{node} has no cgroup in this run (cgroups are unavailable here)")]
    NoCgroup { node: NodeId },
    #[error("cgroup of {node}: {source}")]
    Cgroup {
        node: NodeId,
        #[source]
        source: CgroupError,
    },
}

impl ClusterError {
    /// The tail of the node's log for errors that have one.
    pub fn last_log_lines(&self) -> Option<&str> {
        match self {
            ClusterError::NeverReady { last_log_lines, .. }
            | ClusterError::Exited { last_log_lines, .. }
            | ClusterError::PortTaken { last_log_lines, .. } => Some(last_log_lines),
            ClusterError::BinaryMissing { .. }
            | ClusterError::Spawn { .. }
            | ClusterError::PortAllocation(_)
            | ClusterError::BadHost { .. }
            | ClusterError::Io { .. }
            | ClusterError::UnknownNode { .. }
            | ClusterError::NotRunning { .. }
            | ClusterError::AlreadyRunning { .. }
            | ClusterError::StopTimeout { .. }
            | ClusterError::BadSignal { .. }
            | ClusterError::Signal { .. }
            | ClusterError::Supervise { .. }
            | ClusterError::Clock(_)
            | ClusterError::Docker { .. }
            | ClusterError::ImageMissing { .. }
            | ClusterError::NoCgroup { .. }
            | ClusterError::Cgroup { .. } => None,
        }
    }
}

fn exit_phrase(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => match Signal::try_from(s) {
            Ok(sig) => format!("was killed by {sig}"),
            Err(_) => format!("was killed by signal {s}"),
        },
        (None, None) => "stopped".to_string(),
    }
}

/// How many log lines errors carry.
const LOG_TAIL_LINES: usize = 20;
/// How long a SIGKILLed process group may take to be reaped.
const KILL_GRACE: Duration = Duration::from_secs(5);

struct Proc {
    /// The one public state of the node (see [`crate::NodeState`]): `Down`
    /// from the moment rift asks it to stop or die, before it is reaped.
    state: NodeState,
    /// How the node was paused, while it is `Paused`: resuming does the
    /// matching thing (SIGCONT, or a thaw of its cgroup).
    paused_by: Option<PauseHow>,
    /// Some while the process may receive signals: set at spawn, cleared
    /// before the leader is reaped.
    pid: Option<u32>,
    /// True from spawn until the leader has been reaped.
    alive: bool,
    /// A start is in flight (guards against two concurrent starts).
    starting: bool,
    /// rift asked this incarnation to stop or die.
    stop_requested: bool,
    starts: u64,
    last_exit: Option<ExitInfo>,
}

impl Proc {
    /// Incarnation `start_no` is up as `pid`, whichever backend started it.
    fn started(&mut self, pid: u32, start_no: u64) {
        self.state = NodeState::Up;
        self.paused_by = None;
        self.pid = Some(pid);
        self.alive = true;
        self.stop_requested = false;
        self.starts = start_no;
        self.last_exit = None;
    }
}

struct NodeShared {
    id: NodeId,
    state: Mutex<Proc>,
    /// Bumped after each reap, so waiters can await an exit.
    reaped: watch::Sender<u64>,
}

impl NodeShared {
    fn lock(&self) -> MutexGuard<'_, Proc> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the current incarnation (if any) has been reaped.
    async fn wait_reaped(&self, timeout: Duration) -> bool {
        let mut rx = self.reaped.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if !self.lock().alive {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return !self.lock().alive,
            }
        }
    }
}

/// Sends `sig` to the process group led by `pid`. Must be called with the
/// node's state locked and `pid` taken from it, which guarantees the leader
/// is not reaped yet. A group that is already gone is not an error.
fn signal_group(node: NodeId, pid: u32, sig: Signal) -> Result<(), ClusterError> {
    match killpg(Pid::from_raw(pid as i32), sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(source) => Err(ClusterError::Signal { node, source }),
    }
}

/// What the nodes run as: the one seam between the cluster's model of its
/// nodes (state, events, readiness) and the mechanism that runs them.
enum Backend {
    /// Processes of this machine (`spawn.rs`: fork, process groups,
    /// signals, cgroups).
    Process,
    /// Containers of a Docker engine (`docker.rs`).
    Docker(Box<docker::Nodes>),
}

struct Inner {
    backend: Backend,
    spec: ClusterSpec,
    layout: Vec<NodeLayout>,
    commands: Vec<NodeArgv>,
    nodes: Vec<Arc<NodeShared>>,
    /// Each node's ports, bound until just before its first spawn.
    held: Mutex<Vec<Option<NodeListeners>>>,
    /// When the first node was first spawned.
    first_spawn: OnceLock<Instant>,
    events: UnboundedSender<NodeEvent>,
    http: reqwest::Client,
    /// The nodes' wall clocks, when libfaketime is preloaded.
    faketime: Option<Arc<crate::clock::Faketime>>,
}

/// A running cluster. Dropping it SIGKILLs every node still alive; call
/// [`Cluster::shutdown`] for a graceful stop.
pub struct Cluster {
    inner: Arc<Inner>,
}

impl Cluster {
    /// Starts every node (without waiting for readiness; see
    /// [`Cluster::wait_ready`]) on the ports `ports` holds, releasing each
    /// node's ports just before that node spawns. `peer_addr(from, to)` is
    /// the address `from` must dial to reach `to`: a proxy, or `to`'s peer
    /// port. The sample node is rift itself re-executed with `sample-node`.
    pub async fn start(
        spec: &ClusterSpec,
        ports: Ports,
        peer_addr: impl Fn(NodeId, NodeId) -> SocketAddr,
        events: UnboundedSender<NodeEvent>,
    ) -> Result<Cluster, ClusterError> {
        let sample = match spec.command {
            NodeCommand::SampleNode { .. } => SampleNodeProgram::current_exe()?,
            // Unused for external commands; avoid failing on current_exe.
            NodeCommand::External { .. } => SampleNodeProgram {
                program: PathBuf::new(),
                leading_args: Vec::new(),
            },
        };
        Cluster::start_with(spec, ports, peer_addr, events, sample).await
    }

    /// Like [`Cluster::start`], running the sample node with `sample`.
    pub async fn start_with(
        spec: &ClusterSpec,
        ports: Ports,
        peer_addr: impl Fn(NodeId, NodeId) -> SocketAddr,
        events: UnboundedSender<NodeEvent>,
        sample: SampleNodeProgram,
    ) -> Result<Cluster, ClusterError> {
        let (layout, held) = ports.into_nodes();
        let mut commands = command::node_commands(spec, &layout, &peer_addr, &sample);
        // Resolve the program once, before any process starts, so a typo
        // fails the run cleanly instead of leaving half a cluster.
        for argv in &mut commands {
            argv.program = resolve_program(&argv.program)?;
        }
        let faketime = clock_setup(spec, &layout, &mut commands)?;
        for node in &layout {
            for (dir, action) in [
                (Some(node.data_dir.as_path()), "create data dir"),
                (node.log_path.parent(), "create log dir"),
            ] {
                if let Some(dir) = dir {
                    fs::create_dir_all(dir).map_err(|source| ClusterError::Io {
                        action,
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
            }
        }
        let cluster = Cluster::assemble(
            spec,
            layout,
            held,
            commands,
            events,
            faketime,
            Backend::Process,
        )?;
        for i in 0..cluster.inner.layout.len() {
            // On error `cluster` is dropped, which kills the nodes started so far.
            cluster.start_node(NodeId(i)).await?;
        }
        Ok(cluster)
    }

    /// The cluster's shared state around `backend`, before any node starts.
    fn assemble(
        spec: &ClusterSpec,
        layout: Vec<NodeLayout>,
        held: Vec<Option<NodeListeners>>,
        commands: Vec<NodeArgv>,
        events: UnboundedSender<NodeEvent>,
        faketime: Option<Arc<crate::clock::Faketime>>,
        backend: Backend,
    ) -> Result<Cluster, ClusterError> {
        let http = reqwest::Client::builder()
            // Probes go to loopback only; an HTTP_PROXY in the environment
            // must not reroute them, and pooled connections to a node that
            // was just restarted would only produce stale errors.
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| ClusterError::Io {
                action: "create the HTTP client for",
                path: PathBuf::from("readiness probes"),
                source: io::Error::other(e),
            })?;
        let nodes = layout
            .iter()
            .map(|n| {
                Arc::new(NodeShared {
                    id: n.id,
                    state: Mutex::new(Proc {
                        state: NodeState::Down,
                        paused_by: None,
                        pid: None,
                        alive: false,
                        starting: false,
                        stop_requested: false,
                        starts: 0,
                        last_exit: None,
                    }),
                    reaped: watch::Sender::new(0),
                })
            })
            .collect();
        Ok(Cluster {
            inner: Arc::new(Inner {
                backend,
                spec: spec.clone(),
                layout,
                commands,
                nodes,
                held: Mutex::new(held),
                first_spawn: OnceLock::new(),
                events,
                http,
                faketime,
            }),
        })
    }

    /// Starts every node as a container of the engine `setup` names (see
    /// `docker.rs`), on the port numbers `ports` reserved, each in the
    /// network `setup` gives it; `{data_dir}` is the container's `/data`
    /// volume. Like [`Cluster::start`], it does not wait for readiness.
    pub async fn start_docker(
        spec: &ClusterSpec,
        ports: Ports,
        peer_addr: impl Fn(NodeId, NodeId) -> SocketAddr,
        events: UnboundedSender<NodeEvent>,
        setup: DockerSetup,
    ) -> Result<Cluster, ClusterError> {
        let (mut layout, held) = ports.into_nodes();
        for l in &mut layout {
            l.data_dir = docker::data_dir().to_path_buf();
        }
        let sample = setup.sample_program.clone().unwrap_or(SampleNodeProgram {
            program: PathBuf::new(),
            leading_args: Vec::new(),
        });
        let mut commands = command::node_commands(spec, &layout, &peer_addr, &sample);
        // libfaketime as for a process: the library is in the image and the
        // spec files' directory and /dev/shm are shared (`setup.extras`).
        let faketime = clock_setup(spec, &layout, &mut commands)?;
        for dir in layout.iter().filter_map(|l| l.log_path.parent()) {
            fs::create_dir_all(dir).map_err(|source| ClusterError::Io {
                action: "create log dir",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let nodes = docker::Nodes::create(setup, spec, &layout, &commands).await?;
        let cluster = Cluster::assemble(
            spec,
            layout,
            held,
            commands,
            events,
            faketime,
            Backend::Docker(Box::new(nodes)),
        )?;
        let began = Instant::now();
        // The engine starts containers concurrently; on error `cluster`
        // is dropped, and the runner removes what the engine holds.
        futures_util::future::try_join_all(
            (0..cluster.inner.layout.len()).map(|i| cluster.start_node(NodeId(i))),
        )
        .await?;
        tracing::info!(
            "{} node containers started in {:.2} s",
            cluster.inner.layout.len(),
            began.elapsed().as_secs_f64()
        );
        Ok(cluster)
    }

    fn node(&self, node: NodeId) -> Result<&Arc<NodeShared>, ClusterError> {
        self.inner
            .nodes
            .get(node.index())
            .ok_or(ClusterError::UnknownNode { node })
    }

    /// Waits until every node in `nodes` passes its readiness probe, polling
    /// about every 50 ms. Fails as soon as one of them exits, or when
    /// `timeout` passes; the error carries the tail of the node's log.
    pub async fn wait_ready(
        &self,
        nodes: &[NodeId],
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let deadline = Instant::now() + timeout;
        let mut set = tokio::task::JoinSet::new();
        for &node in nodes {
            self.node(node)?;
            set.spawn(probe::wait_one(self.inner.clone(), node, deadline, timeout));
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                // A probe task cannot panic short of a bug in rift; surface it.
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        Ok(())
    }

    /// One readiness probe, with a short timeout. False for a node that is
    /// not alive; a paused node is really probed (and so, normally, fails).
    /// Only an answer from the node itself counts (see `probe`).
    pub async fn is_ready(&self, node: NodeId) -> bool {
        probe::probe(&self.inner, node, probe::PER_TRY).await == probe::Probe::Ready
    }

    /// Sends `signal` to the node's process group; its exit will be reported
    /// as expected. A paused node is continued so the signal takes effect.
    pub fn kill(&self, node: NodeId, signal: i32) -> Result<(), ClusterError> {
        let sig = Signal::try_from(signal).map_err(|_| ClusterError::BadSignal { signal })?;
        let shared = self.node(node)?;
        let mut st = shared.lock();
        let Some(pid) = st.pid else {
            return Err(ClusterError::NotRunning { node });
        };
        st.stop_requested = true;
        // The engine refuses to signal a paused container: thaw it first.
        let thawed_first = matches!(self.inner.backend, Backend::Docker(_))
            && st.paused_by == Some(PauseHow::Freeze);
        if thawed_first {
            self.thaw(node)?;
        }
        self.signal(node, pid, sig)?;
        if st.state == NodeState::Paused {
            match st.paused_by {
                Some(PauseHow::Freeze) if thawed_first => {}
                // A frozen task takes no signal (on v1 not even SIGKILL)
                // until it is thawed.
                Some(PauseHow::Freeze) => self.thaw(node)?,
                Some(PauseHow::Sigstop) | None if sig != Signal::SIGKILL => {
                    self.signal(node, pid, Signal::SIGCONT)?;
                }
                Some(PauseHow::Sigstop) | None => {}
            }
            if sig != Signal::SIGKILL {
                self.emit(node, NodeEventKind::Resumed);
            }
        }
        st.paused_by = None;
        // Down from now on: the nemesis and the judge must not wait for
        // the reaper to learn what rift did.
        st.state = NodeState::Down;
        Ok(())
    }

    /// SIGSTOPs the node's process group. Pausing a paused node is a no-op.
    pub fn pause(&self, node: NodeId) -> Result<(), ClusterError> {
        self.pause_with(node, PauseHow::Sigstop)
    }

    /// Pauses the node `how` the plan says: SIGSTOP to its process group,
    /// or a freeze of its cgroup (its whole process tree at once, with no
    /// signal the processes could see). Pausing a paused node is a no-op.
    pub fn pause_with(&self, node: NodeId, how: PauseHow) -> Result<(), ClusterError> {
        let shared = self.node(node)?;
        let mut st = shared.lock();
        let Some(pid) = st.pid else {
            return Err(ClusterError::NotRunning { node });
        };
        if st.state == NodeState::Up {
            match how {
                PauseHow::Sigstop => self.signal(node, pid, Signal::SIGSTOP)?,
                PauseHow::Freeze => self.freeze(node)?,
            }
            st.state = NodeState::Paused;
            st.paused_by = Some(how);
            self.emit(node, NodeEventKind::Paused);
        }
        Ok(())
    }

    /// Resumes a paused node the way it was paused (SIGCONT, or a thaw).
    /// Resuming a running node is a no-op.
    pub fn resume(&self, node: NodeId) -> Result<(), ClusterError> {
        let shared = self.node(node)?;
        let mut st = shared.lock();
        let Some(pid) = st.pid else {
            return Err(ClusterError::NotRunning { node });
        };
        if st.state == NodeState::Paused {
            match st.paused_by {
                Some(PauseHow::Freeze) => self.thaw(node)?,
                Some(PauseHow::Sigstop) | None => self.signal(node, pid, Signal::SIGCONT)?,
            }
            st.state = NodeState::Up;
            st.paused_by = None;
            self.emit(node, NodeEventKind::Resumed);
        }
        Ok(())
    }

    /// The node's cgroup, when the run gave it one.
    pub fn cgroup(&self, node: NodeId) -> Option<&NodeCgroup> {
        self.inner
            .layout
            .get(node.index())
            .and_then(|l| l.cgroup.as_ref())
    }

    fn node_cgroup(&self, node: NodeId) -> Result<&NodeCgroup, ClusterError> {
        self.cgroup(node).ok_or(ClusterError::NoCgroup { node })
    }

    /// Sends `sig` to the node: its process group, or its container's
    /// main process through the engine. For a process, the caller holds
    /// the node's state locked with `pid` taken from it.
    fn signal(&self, node: NodeId, pid: u32, sig: Signal) -> Result<(), ClusterError> {
        match &self.inner.backend {
            Backend::Process => signal_group(node, pid, sig),
            Backend::Docker(d) => {
                d.queue(node, docker::Op::Signal(sig as i32));
                Ok(())
            }
        }
    }

    /// Freezes the node: its cgroup, or its container (the engine's pause).
    fn freeze(&self, node: NodeId) -> Result<(), ClusterError> {
        match &self.inner.backend {
            Backend::Process => self
                .node_cgroup(node)?
                .freeze()
                .map_err(|source| ClusterError::Cgroup { node, source }),
            Backend::Docker(d) => {
                d.queue(node, docker::Op::Pause);
                Ok(())
            }
        }
    }

    fn thaw(&self, node: NodeId) -> Result<(), ClusterError> {
        match &self.inner.backend {
            Backend::Process => self
                .node_cgroup(node)?
                .thaw()
                .map_err(|source| ClusterError::Cgroup { node, source }),
            Backend::Docker(d) => {
                d.queue(node, docker::Op::Unpause);
                Ok(())
            }
        }
    }

    /// Limits the node to `cpu` CPUs through its cgroup (`0.1` is 10% of
    /// one CPU), or lifts the limit with `None`. The limit belongs to the
    /// node's cgroup, so it holds across restarts until lifted.
    pub fn set_cpu(&self, node: NodeId, cpu: Option<f64>) -> Result<(), ClusterError> {
        self.node(node)?;
        match &self.inner.backend {
            Backend::Process => self
                .node_cgroup(node)?
                .set_cpu(cpu)
                .map_err(|source| ClusterError::Cgroup { node, source }),
            // The engine's CPU quota of the container (kept across its
            // restarts, like a cgroup's).
            Backend::Docker(d) => {
                d.queue(node, docker::Op::Cpus(cpu));
                Ok(())
            }
        }
    }

    /// Stops the node gracefully: SIGCONT, SIGTERM, then SIGKILL after the
    /// spec's `stop_timeout`. Stopping a node that is not running is a no-op.
    pub async fn stop(&self, node: NodeId) -> Result<(), ClusterError> {
        let shared = self.node(node)?;
        self.request_stop(shared)?;
        self.finish_stop(std::slice::from_ref(shared)).await
    }

    /// Marks the node's exit as expected and sends SIGCONT + SIGTERM.
    fn request_stop(&self, shared: &NodeShared) -> Result<(), ClusterError> {
        let mut st = shared.lock();
        if let Some(pid) = st.pid {
            st.stop_requested = true;
            st.state = NodeState::Down;
            if st.paused_by.take() == Some(PauseHow::Freeze) {
                self.thaw(shared.id)?;
            }
            self.signal(shared.id, pid, Signal::SIGCONT)?;
            self.signal(shared.id, pid, Signal::SIGTERM)?;
        }
        Ok(())
    }

    /// Waits up to `stop_timeout` for the nodes to exit, SIGKILLs the rest and
    /// waits for them to be reaped.
    async fn finish_stop(&self, nodes: &[Arc<NodeShared>]) -> Result<(), ClusterError> {
        let began = Instant::now();
        let deadline = began + self.inner.spec.stop_timeout;
        for shared in nodes {
            let left = deadline.saturating_duration_since(Instant::now());
            if !shared.wait_reaped(left).await {
                let mut st = shared.lock();
                if let Some(pid) = st.pid {
                    st.stop_requested = true;
                    self.signal(shared.id, pid, Signal::SIGKILL)?;
                    self.emit(
                        shared.id,
                        NodeEventKind::Escalated {
                            after: began.elapsed(),
                        },
                    );
                }
            }
        }
        for shared in nodes {
            if !shared.wait_reaped(KILL_GRACE).await {
                return Err(ClusterError::StopTimeout { node: shared.id });
            }
        }
        Ok(())
    }

    /// Starts a node that is stopped or has exited, with the same command
    /// line, ports and data dir as before. Its log gets a marker line, then
    /// the new output appended.
    pub async fn start_node(&self, node: NodeId) -> Result<(), ClusterError> {
        let shared = self.node(node)?;
        {
            let mut st = shared.lock();
            if st.starting || st.pid.is_some() {
                return Err(ClusterError::AlreadyRunning { node });
            }
            st.starting = true;
        }
        let result = self.spawn_node(shared).await;
        shared.lock().starting = false;
        result
    }

    async fn spawn_node(&self, shared: &Arc<NodeShared>) -> Result<(), ClusterError> {
        let node = shared.id;
        // The previous incarnation may have exited but not been reaped yet.
        if !shared.wait_reaped(KILL_GRACE).await {
            return Err(ClusterError::AlreadyRunning { node });
        }
        match &self.inner.backend {
            Backend::Process => self.spawn_process(shared).await,
            Backend::Docker(d) => {
                // The node's port numbers were only reserved to be the same
                // as a process's; the container listens in its own namespace.
                let held = self
                    .inner
                    .held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_mut(node.index())
                    .and_then(Option::take);
                drop(held);
                let start_no = shared.lock().starts + 1;
                docker::start(&self.inner, d, shared, start_no).await
            }
        }
    }

    /// The node's state: the one model the nemesis and the judge read.
    pub fn state(&self, node: NodeId) -> NodeState {
        match self.node(node) {
            Ok(shared) => shared.lock().state,
            Err(_) => NodeState::Down,
        }
    }

    /// Every node's state, by index.
    pub fn states(&self) -> Vec<NodeState> {
        self.inner.nodes.iter().map(|n| n.lock().state).collect()
    }

    /// Waits (up to `timeout`) until the node's last process has been
    /// reaped, so it can be started again; true when it has.
    pub async fn wait_exited(&self, node: NodeId, timeout: Duration) -> bool {
        match self.node(node) {
            Ok(shared) => shared.wait_reaped(timeout).await,
            Err(_) => true,
        }
    }

    /// The pid of the node's process (also its process group id), while it
    /// can be signalled.
    pub fn pid(&self, node: NodeId) -> Option<u32> {
        self.node(node).ok().and_then(|s| s.lock().pid)
    }

    /// Where clients reach the node directly.
    pub fn client_addr(&self, node: NodeId) -> SocketAddr {
        self.inner.layout.get(node.index()).map_or_else(
            || SocketAddr::from(([127, 0, 0, 1], 0)),
            |l| SocketAddr::new(l.reach.unwrap_or(l.host), l.port),
        )
    }

    /// The nodes' wall clocks, when the cluster preloads libfaketime
    /// (`ClockSetup::faketime`).
    pub fn faketime(&self) -> Option<&crate::clock::Faketime> {
        self.inner.faketime.as_deref()
    }

    pub fn layout(&self) -> &[NodeLayout] {
        &self.inner.layout
    }

    /// When the first node was first spawned (`None` before any spawn).
    pub fn spawned_at(&self) -> Option<Instant> {
        self.inner.first_spawn.get().copied()
    }

    /// The program and arguments the node runs (for reports and messages).
    pub fn command_line(&self, node: NodeId) -> Option<(&Path, &[String])> {
        self.inner
            .commands
            .get(node.index())
            .map(|c| (c.program.as_path(), c.args.as_slice()))
    }

    /// The extra environment the node runs with (the plan's `env`, rendered).
    pub fn command_env(&self, node: NodeId) -> &[(String, String)] {
        self.inner
            .commands
            .get(node.index())
            .map_or(&[], |c| c.env.as_slice())
    }

    /// The node's command (environment, program, arguments) as one line a
    /// POSIX shell can run, as its log records it at every start.
    pub fn shell_line(&self, node: NodeId) -> Option<String> {
        self.inner
            .commands
            .get(node.index())
            .map(NodeArgv::shell_line)
    }

    /// Asks every running, unpaused node who leads (per the spec's leader
    /// query) and returns the most common answer; `None` without a query,
    /// without answers, or on a tie.
    /// Whether the plan says how to ask the nodes who leads.
    pub fn has_leader_query(&self) -> bool {
        self.inner.spec.leader.is_some()
    }

    pub async fn leader(&self) -> Option<NodeId> {
        self.leader_poll().await.and_then(|p| p.leader)
    }

    /// Asks every running, unpaused node who leads, keeping what each
    /// answered (for messages when no leader emerges); `None` without a
    /// leader query.
    pub async fn leader_poll(&self) -> Option<LeaderPoll> {
        probe::leader_poll(&self.inner).await
    }

    /// Stops every node: SIGCONT and SIGTERM to all, up to `stop_timeout` for
    /// them to exit, SIGKILL for the rest, then waits until all are reaped.
    /// Nodes that are already down are fine.
    pub async fn shutdown(self) -> Result<(), ClusterError> {
        let nodes = self.inner.nodes.clone();
        let mut first_err = None;
        for shared in &nodes {
            if let Err(e) = self.request_stop(shared) {
                first_err.get_or_insert(e);
            }
        }
        let finished = self.finish_stop(&nodes).await;
        // Drop (which SIGKILLs anything left) runs as `self` goes out of scope.
        match first_err {
            Some(e) => Err(e),
            None => finished,
        }
    }

    fn emit(&self, node: NodeId, kind: NodeEventKind) {
        // A runner that stopped listening is no reason to fail a node action.
        let _ = self.inner.events.send(NodeEvent {
            at: Instant::now(),
            node,
            kind,
        });
    }
}

impl Drop for Cluster {
    /// Best effort and synchronous, so a panic or an early return never
    /// leaks a node. Reaping is left to the supervisor threads.
    fn drop(&mut self) {
        for shared in &self.inner.nodes {
            let mut st = shared.lock();
            if let Some(pid) = st.pid {
                st.stop_requested = true;
                if st.paused_by.take() == Some(PauseHow::Freeze) {
                    let _ = self.thaw(shared.id);
                }
                let _ = self.signal(shared.id, pid, Signal::SIGCONT);
                let _ = self.signal(shared.id, pid, Signal::SIGKILL);
            }
        }
    }
}

/// What the plan asks of the nodes' clocks, checked before any node starts
/// (each refusal one line): libfaketime found and every program able to
/// take it, then its environment in every command; time namespaces
/// possible for the nodes with a monotonic offset.
fn clock_setup(
    spec: &ClusterSpec,
    layout: &[NodeLayout],
    commands: &mut [NodeArgv],
) -> Result<Option<Arc<crate::clock::Faketime>>, ClusterError> {
    let offsets: Vec<(String, crate::plan::ClockOffset)> = spec
        .clock
        .monotonic
        .iter()
        .map(|(n, o)| (n.name(), *o))
        .collect();
    crate::clock::timens::check(&offsets).map_err(ClusterError::Clock)?;
    if !spec.clock.faketime {
        return Ok(None);
    }
    let library = crate::clock::faketime::find_library().map_err(ClusterError::Clock)?;
    for argv in commands.iter() {
        crate::clock::check_preloadable(&argv.program).map_err(ClusterError::Clock)?;
    }
    let dir = layout
        .first()
        .and_then(|l| l.log_path.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    fs::create_dir_all(&dir).map_err(|source| ClusterError::Io {
        action: "create log dir",
        path: dir.clone(),
        source,
    })?;
    let names: Vec<String> = layout.iter().map(|l| l.id.name()).collect();
    let ft =
        crate::clock::Faketime::new(library, &dir, &names).map_err(|source| ClusterError::Io {
            action: "write the libfaketime specs in",
            path: dir.clone(),
            source,
        })?;
    let inherited = std::env::var("LD_PRELOAD").ok();
    for (i, argv) in commands.iter_mut().enumerate() {
        let own = argv
            .env
            .iter()
            .position(|(k, _)| k == "LD_PRELOAD")
            .map(|at| argv.env.remove(at).1);
        let preload = own.or_else(|| inherited.clone());
        argv.env.extend(ft.env(NodeId(i), preload.as_deref()));
    }
    Ok(Some(Arc::new(ft)))
}

/// Finds `program` as `Command` would (a path if it has a slash, else on
/// PATH), returning the path to run.
fn resolve_program(program: &Path) -> Result<PathBuf, ClusterError> {
    let missing = || ClusterError::BinaryMissing {
        program: program.display().to_string(),
    };
    if program.as_os_str().is_empty() {
        return Err(missing());
    }
    if program.components().count() > 1 || program.is_absolute() {
        return if is_executable(program) {
            Ok(program.to_path_buf())
        } else {
            Err(missing())
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(missing)
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The last [`LOG_TAIL_LINES`] lines of a log file (reading at most its last
/// 64 KiB), or a note saying why there are none.
pub(crate) fn log_tail(path: &Path) -> String {
    const MAX: u64 = 64 * 1024;
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            lines[start..].join("\n")
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}
