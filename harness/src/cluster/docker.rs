//! The container backend of the cluster (`[cluster] backend = "docker"`):
//! each node is a container of a Docker engine, reached through
//! [`crate::docker`] (the engine's API; never the `docker` command).
//!
//! What differs from a process: a start is the engine starting the node's
//! container (the same container every time, so its `/data` volume
//! survives a restart); signals, SIGSTOP included, go through the engine's
//! kill; a freeze is the engine's pause; an exit is seen by polling the
//! engine's state of the container. The engine's operations are async and
//! the cluster's kill/pause/resume are not, so each node has one task that
//! carries out its operations in the order they were asked for; the node's
//! state changes at once, as it does for a process.
//!
//! It must never remove anything itself: every container, volume and image
//! of the run carries the run's labels, and the runner removes them all
//! at the end (`docker::remove_run`), however the run ends.

use super::{ClusterError, Inner, NodeEvent, NodeEventKind, NodeShared};
use crate::docker::{Container, ContainerExtras, ContainerNet, ContainerSpec, Engine, RunLabels};
use crate::plan::{ClusterSpec, DockerImage};
use crate::{NodeId, NodeState};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often a running container's state is read, to see it exit.
const POLL: Duration = Duration::from_millis(100);

/// What the runner prepared before the nodes start: the engine, the
/// run's labels, the image the nodes run, and the network each node's
/// container joins.
#[derive(Clone, Debug)]
pub struct DockerSetup {
    pub engine: Engine,
    pub labels: RunLabels,
    /// The image every node container runs.
    pub image: String,
    /// Per node, in node order: the network its container starts with.
    pub nets: Vec<ContainerNet>,
    /// With `binary = ...` and no `command`: the sample node's program
    /// inside the image (and `sample-node` before its arguments when the
    /// binary is rift itself).
    pub sample_program: Option<super::SampleNodeProgram>,
    /// Host paths mounted into every node container and the host's IPC
    /// namespace: what libfaketime needs when the plan moves clocks.
    pub extras: ContainerExtras,
    /// Publish each node's client port on the engine's host at the same
    /// number (a remote engine's bridge: rift reaches the nodes there).
    pub publish: bool,
}

/// The per-node network holders of a run on the wire: a container each
/// that owns a network namespace (the node's container joins it), and
/// its main process's pid on this machine.
pub struct Holders {
    pub containers: Vec<Container>,
    pub pids: Vec<u32>,
}

/// The image the nodes run: the plan's `image` (which the engine must
/// have: it has no registry to pull from), or one built from `binary`,
/// with `extra_files` (libfaketime, when clocks move) at their host paths.
pub async fn node_image(
    engine: &Engine,
    source: &DockerImage,
    labels: &RunLabels,
    extra_files: &[std::path::PathBuf],
) -> Result<String, ClusterError> {
    match source {
        DockerImage::Image(image) => {
            let found = crate::docker::image_exists(engine, image)
                .await
                .map_err(|source| ClusterError::Docker {
                    what: format!("look up image {image}"),
                    source,
                })?;
            if found {
                Ok(image.clone())
            } else {
                Err(ClusterError::ImageMissing {
                    image: image.clone(),
                })
            }
        }
        DockerImage::Binary(binary) => {
            if !super::is_executable(binary) {
                return Err(ClusterError::BinaryMissing {
                    program: binary.display().to_string(),
                });
            }
            crate::docker::build_image(engine, binary, extra_files, labels, "node")
                .await
                .map(|r| r.0)
                .map_err(|source| ClusterError::Docker {
                    what: format!("build an image of {}", binary.display()),
                    source,
                })
        }
    }
}

/// Starts one network holder per node (see [`Holders`]).
pub async fn start_holders(
    engine: &Engine,
    labels: &RunLabels,
    size: usize,
) -> Result<Holders, ClusterError> {
    let started = futures_util::future::try_join_all((0..size).map(|i| async move {
        let node = NodeId(i);
        crate::docker::start_holder(engine, labels, &node.name())
            .await
            .map_err(|source| ClusterError::Docker {
                what: format!("start the network holder of {node}"),
                source,
            })
    }))
    .await?;
    let (containers, pids) = started.into_iter().unzip();
    Ok(Holders { containers, pids })
}

/// One engine operation on a node's container, queued in order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Op {
    Signal(i32),
    Pause,
    Unpause,
    /// The CPU quota (`None` lifts it).
    Cpus(Option<f64>),
}

/// The containers of a running cluster and their operation queues.
pub(super) struct Nodes {
    setup: DockerSetup,
    /// By node index.
    containers: Vec<Container>,
    queues: Vec<mpsc::UnboundedSender<Op>>,
    tasks: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Nodes {
    /// Creates (without starting) every node's container, with its data
    /// volume, its network and the command `commands` rendered for it.
    pub(super) async fn create(
        setup: DockerSetup,
        spec: &ClusterSpec,
        layout: &[super::NodeLayout],
        commands: &[super::command::NodeArgv],
    ) -> Result<Nodes, ClusterError> {
        let began = Instant::now();
        let mut containers = Vec::with_capacity(spec.size);
        let mut queues = Vec::with_capacity(spec.size);
        let mut tasks = Vec::new();
        for (i, argv) in commands.iter().enumerate() {
            let node = NodeId(i);
            let net = setup.nets.get(i).cloned().unwrap_or(ContainerNet::None);
            let mut words = vec![argv.program.display().to_string()];
            words.extend(argv.args.iter().cloned());
            let c = Container::create_with(
                &setup.engine,
                &ContainerSpec {
                    name: crate::docker::container::container_name(
                        &setup.labels.run_id,
                        &node.name(),
                    ),
                    node: node.name(),
                    image: setup.image.clone(),
                    argv: words,
                    env: argv.env.clone(),
                    net,
                    data_volume: true,
                    publish: match layout.get(i) {
                        Some(l) if setup.publish => vec![l.port],
                        Some(_) | None => Vec::new(),
                    },
                    labels: setup.labels.clone(),
                },
                &setup.extras,
            )
            .await
            .map_err(|source| ClusterError::Docker {
                what: format!("create the container of {node}"),
                source,
            })?;
            let (tx, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(carry_out(setup.engine.clone(), c.clone(), node, rx));
            tasks.push(task.abort_handle());
            containers.push(c);
            queues.push(tx);
        }
        tracing::info!(
            "{} node containers created in {:.2} s",
            containers.len(),
            began.elapsed().as_secs_f64()
        );
        Ok(Nodes {
            setup,
            containers,
            queues,
            tasks: std::sync::Mutex::new(tasks),
        })
    }

    /// Queues an operation on the node's container.
    pub(super) fn queue(&self, node: NodeId, op: Op) {
        if let Some(q) = self.queues.get(node.index()) {
            // The task ends only when the cluster is dropped.
            let _ = q.send(op);
        }
    }

    fn keep(&self, task: tokio::task::AbortHandle) {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(task);
    }
}

impl Drop for Nodes {
    /// Stops rift's tasks; the containers themselves go with the run's
    /// labelled objects (`docker::remove_run`).
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
    }
}

/// Carries out a node's queued operations in order. A failure is logged:
/// the caller's state already says what rift asked for, and the exit (or
/// its absence) is what the engine then shows.
async fn carry_out(
    engine: Engine,
    c: Container,
    node: NodeId,
    mut ops: mpsc::UnboundedReceiver<Op>,
) {
    while let Some(op) = ops.recv().await {
        let done = match op {
            Op::Signal(sig) => c.kill(&engine, sig).await,
            Op::Pause => c.pause(&engine).await,
            Op::Unpause => c.unpause(&engine).await,
            Op::Cpus(cpus) => c.set_cpus(&engine, cpus).await,
        };
        if let Err(e) = done {
            tracing::warn!(%node, "engine could not {op:?} the container: {e}");
        }
    }
}

/// Starts the node's container (the first time, or again after it
/// stopped), then watches it until it stops.
pub(super) async fn start(
    inner: &Arc<Inner>,
    nodes: &Nodes,
    shared: &Arc<NodeShared>,
    start_no: u64,
) -> Result<(), ClusterError> {
    let node = shared.id;
    let engine = &nodes.setup.engine;
    let Some(c) = nodes.containers.get(node.index()) else {
        return Err(ClusterError::UnknownNode { node });
    };
    let layout = &inner.layout[node.index()];
    let argv = &inner.commands[node.index()];
    let log_err = |source| ClusterError::Io {
        action: "write log",
        path: layout.log_path.clone(),
        source,
    };
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&layout.log_path)
        .map_err(log_err)?;
    writeln!(log, "--- rift: starting {node} (start #{start_no}) ---")
        .and_then(|()| {
            writeln!(
                log,
                "--- rift: container {} runs: {}",
                c.name,
                argv.shell_line()
            )
        })
        .map_err(log_err)?;
    drop(log);
    if let Some(ft) = &inner.faketime {
        ft.prepare_spawn(node).map_err(|source| ClusterError::Io {
            action: "create libfaketime's shared memory (/dev/shm) for",
            path: layout.log_path.clone(),
            source,
        })?;
    }
    inner.first_spawn.get_or_init(Instant::now);
    c.start(engine)
        .await
        .map_err(|source| ClusterError::Docker {
            what: format!("start the container of {node}"),
            source,
        })?;
    let state = c
        .state(engine)
        .await
        .map_err(|source| ClusterError::Docker {
            what: format!("read the state of {node}'s container"),
            source,
        })?;
    // A remote engine's pid means nothing here; 0 says "unknown".
    let pid = state.pid.unwrap_or(0);
    shared.lock().started(pid, start_no);
    if start_no == 1 {
        // Follows the container across its restarts, until it is removed.
        let logs = c.follow_logs(engine, layout.log_path.clone());
        nodes.keep(logs.abort_handle());
    }
    let _ = inner.events.send(NodeEvent {
        at: Instant::now(),
        node,
        kind: NodeEventKind::Started { pid },
    });
    let watch = tokio::spawn(watch_exit(
        engine.clone(),
        c.clone(),
        shared.clone(),
        inner.events.clone(),
        pid,
    ));
    nodes.keep(watch.abort_handle());
    Ok(())
}

/// Polls the container's state until it no longer runs (or runs another
/// process: a start rift did not ask for), then records the exit as the
/// process backend's reaper does.
async fn watch_exit(
    engine: Engine,
    c: Container,
    shared: Arc<NodeShared>,
    events: mpsc::UnboundedSender<NodeEvent>,
    pid: u32,
) {
    let exit_code = loop {
        tokio::time::sleep(POLL).await;
        match c.state(&engine).await {
            Ok(s) if s.running && s.pid.unwrap_or(0) == pid => continue,
            Ok(s) => break s.exit_code,
            Err(e) => {
                tracing::debug!(node = %shared.id, "container state unreadable: {e}");
                break None;
            }
        }
    };
    let (code, signal) = split_exit(exit_code);
    let info = super::spawn::ExitInfo { code, signal };
    let expected = {
        let mut st = shared.lock();
        st.pid = None;
        st.paused_by = None;
        st.last_exit = Some(info);
        st.state = if st.stop_requested {
            NodeState::Down
        } else {
            NodeState::Exited
        };
        st.alive = false;
        st.stop_requested
    };
    shared.reaped.send_modify(|n| *n += 1);
    let _ = events.send(NodeEvent {
        at: Instant::now(),
        node: shared.id,
        kind: NodeEventKind::Exited {
            code,
            signal,
            expected,
        },
    });
}

/// The engine reports a main process killed by signal `s` as exit code
/// 128 + s; anything else is the process's own exit code.
fn split_exit(code: Option<i64>) -> (Option<i32>, Option<i32>) {
    match code {
        Some(c) if (129..=128 + 64).contains(&c) => (None, i32::try_from(c - 128).ok()),
        Some(c) => (i32::try_from(c).ok(), None),
        None => (None, None),
    }
}

/// `{data_dir}` inside a container: where its data volume is mounted.
pub(super) fn data_dir() -> &'static Path {
    Path::new(crate::docker::container::DATA_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_above_128_are_signals() {
        assert_eq!(split_exit(Some(137)), (None, Some(9)));
        assert_eq!(split_exit(Some(143)), (None, Some(15)));
        assert_eq!(split_exit(Some(0)), (Some(0), None));
        assert_eq!(split_exit(Some(1)), (Some(1), None));
        assert_eq!(split_exit(None), (None, None));
    }
}
