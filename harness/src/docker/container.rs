//! One container's lifecycle, its logs, and the network holder.

use std::path::PathBuf;

use super::{DockerError, Engine, RunLabels};

/// The network a container starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerNet {
    /// No network at all (only loopback).
    None,
    /// Join another container's network namespace (the holder's id).
    Join(String),
    /// A user-defined bridge network, by name.
    Bridge(String),
}

/// What to create.
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    /// Container name (unique in the engine).
    pub name: String,
    /// The node it runs (label `io.rift.node`).
    pub node: String,
    /// Image reference.
    pub image: String,
    /// Full argv (argv[0] is the program inside the image).
    pub argv: Vec<String>,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Its network.
    pub net: ContainerNet,
    /// Whether a labelled named volume is mounted at `/data`.
    pub data_volume: bool,
    /// TCP ports published on the host (same number), for a bridge network.
    pub publish: Vec<u16>,
    /// The run's labels.
    pub labels: RunLabels,
}

/// A container rift created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// Engine id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Its data volume's name, if it has one.
    pub volume: Option<String>,
}

/// What the engine says about a container now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerState {
    /// Running (paused counts as running, as the engine says).
    pub running: bool,
    /// Frozen by the engine.
    pub paused: bool,
    /// Its main process's pid on the engine's host, while running.
    pub pid: Option<u32>,
    /// Its last exit code, once it has exited.
    pub exit_code: Option<i64>,
    /// The engine's restart count.
    pub restarts_seen: u64,
}

impl Container {
    /// Creates the container (and its volume) without starting it.
    pub async fn create(_e: &Engine, _spec: &ContainerSpec) -> Result<Container, DockerError> {
        Err(DockerError::NotYet)
    }

    /// Starts it (again: the same container, its volume kept).
    pub async fn start(&self, _e: &Engine) -> Result<(), DockerError> {
        Err(DockerError::NotYet)
    }

    /// Sends `signal` to its main process.
    pub async fn kill(&self, _e: &Engine, _signal: i32) -> Result<(), DockerError> {
        Err(DockerError::NotYet)
    }

    /// Freezes it (the engine's freezer).
    pub async fn pause(&self, _e: &Engine) -> Result<(), DockerError> {
        Err(DockerError::NotYet)
    }

    /// Thaws it.
    pub async fn unpause(&self, _e: &Engine) -> Result<(), DockerError> {
        Err(DockerError::NotYet)
    }

    /// Its state now.
    pub async fn state(&self, _e: &Engine) -> Result<ContainerState, DockerError> {
        Err(DockerError::NotYet)
    }

    /// Removes it by force, and its volume.
    pub async fn remove(&self, _e: &Engine) -> Result<(), DockerError> {
        Err(DockerError::NotYet)
    }

    /// Appends its stdout and stderr to `to`, across restarts, until it is
    /// removed (or the task is aborted).
    pub fn follow_logs(&self, _e: &Engine, _to: PathBuf) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async {})
    }
}

/// Starts the network holder of `node`: a container with no network whose
/// only job is to own a network namespace. Returns it and its host pid.
pub async fn start_holder(
    _e: &Engine,
    _labels: &RunLabels,
    _node: &str,
) -> Result<(Container, u32), DockerError> {
    Err(DockerError::NotYet)
}
