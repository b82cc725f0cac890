//! The process backend of the cluster (`[cluster] backend = "process"`,
//! the default): a node is a process of this machine, forked by
//! `spawn.rs` into a process group of its own (its namespace and cgroup
//! entered between fork and exec), watched by a reaper thread. Signals,
//! freezes and CPU limits are `Cluster`'s dispatch arms for `Process`
//! (`signal_group`, the node's cgroup).

use super::{
    is_executable, signal_group, spawn, Cluster, ClusterError, NodeEvent, NodeEventKind, NodeShared,
};
use crate::NodeState;
use nix::sys::signal::Signal;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

impl Cluster {
    /// Spawns the node's process (the previous one already reaped), with
    /// the same command line, ports and data dir as before; its log gets a
    /// marker line, then the new output appended.
    pub(super) async fn spawn_process(&self, shared: &Arc<NodeShared>) -> Result<(), ClusterError> {
        let node = shared.id;
        let layout = &self.inner.layout[node.index()];
        let argv = self.inner.commands[node.index()].clone();
        let program = argv.program.display().to_string();
        if !is_executable(&argv.program) {
            return Err(ClusterError::BinaryMissing { program });
        }
        let io_err = |action, source| ClusterError::Io {
            action,
            path: layout.log_path.clone(),
            source,
        };
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&layout.log_path)
            .map_err(|e| io_err("open log", e))?;
        let start_no = shared.lock().starts + 1;
        writeln!(log, "--- rift: starting {node} (start #{start_no}) ---")
            .and_then(|()| writeln!(log, "--- rift: command: {}", argv.shell_line()))
            .map_err(|e| io_err("write log", e))?;
        fs::create_dir_all(&layout.data_dir).map_err(|source| ClusterError::Io {
            action: "create data dir",
            path: layout.data_dir.clone(),
            source,
        })?;
        // The node's ports were held until now so nothing else could take
        // them; the node binds them itself right after exec.
        let held = self
            .inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(node.index())
            .and_then(Option::take);
        drop(held);
        if let Some(ft) = &self.inner.faketime {
            ft.prepare_spawn(node).map_err(|source| ClusterError::Io {
                action: "create libfaketime's shared memory (/dev/shm) for",
                path: layout.log_path.clone(),
                source,
            })?;
        }
        // A cgroup left frozen would freeze the new process at birth.
        if let Some(cg) = self.cgroup(node) {
            if cg.is_frozen() {
                cg.thaw()
                    .map_err(|source| ClusterError::Cgroup { node, source })?;
            }
        }
        self.inner.first_spawn.get_or_init(Instant::now);
        let child = spawn::spawn(argv, log)
            .await
            .map_err(|source| ClusterError::Spawn {
                node,
                program,
                source,
            })?;
        // The guard (started by the first spawn) removes the run's and the
        // node's cgroups if rift dies without removing them itself.
        if let Some(cg) = self.cgroup(node) {
            for dir in cg.dirs() {
                if let Some(run) = dir.parent() {
                    spawn::remove_cgroup_when_rift_dies(run);
                }
                spawn::remove_cgroup_when_rift_dies(&dir);
            }
        }
        let pid = child.id();
        shared.lock().started(pid, start_no);
        tracing::debug!(%node, pid, "spawned");
        if let (Some(ft), 1) = (&self.inner.faketime, start_no) {
            // The guard exists once a node was spawned.
            for f in ft.shm_files() {
                spawn::remove_when_rift_dies(&f);
            }
        }
        self.emit(node, NodeEventKind::Started { pid });

        let before = shared.clone();
        let after = shared.clone();
        let events = self.inner.events.clone();
        let watched = spawn::supervise(
            node.name(),
            child,
            move |info| {
                let mut st = before.lock();
                st.pid = None;
                st.paused_by = None;
                st.last_exit = Some(info);
                st.state = if st.stop_requested {
                    NodeState::Down
                } else {
                    NodeState::Exited
                };
            },
            move |info| {
                let expected = {
                    let mut st = after.lock();
                    st.alive = false;
                    st.stop_requested
                };
                after.reaped.send_modify(|n| *n += 1);
                let _ = events.send(NodeEvent {
                    at: Instant::now(),
                    node,
                    kind: NodeEventKind::Exited {
                        code: info.code,
                        signal: info.signal,
                        expected,
                    },
                });
            },
        );
        if let Err(source) = watched {
            // Without a watcher nobody would reap it or report its exit.
            let mut st = shared.lock();
            if let Some(pid) = st.pid.take() {
                let _ = signal_group(node, pid, Signal::SIGKILL);
            }
            st.state = NodeState::Down;
            st.alive = false;
            return Err(ClusterError::Supervise { node, source });
        }
        Ok(())
    }
}
