//! Removing a run's objects, and those of every run whose rift is gone.

use super::{DockerError, Engine, RunLabels};

/// How many objects of each kind were removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Containers.
    pub containers: usize,
    /// Volumes.
    pub volumes: usize,
    /// Images.
    pub images: usize,
    /// Networks.
    pub networks: usize,
}

/// Removes everything of runs whose rift process is gone.
pub async fn sweep_stale(_e: &Engine) -> Result<Swept, DockerError> {
    Err(DockerError::NotYet)
}

/// Removes everything labelled with `run_id`.
pub async fn remove_run(_e: &Engine, _run_id: &str) -> Result<Swept, DockerError> {
    Err(DockerError::NotYet)
}

/// Creates the run's labelled bridge network; returns its name.
pub async fn create_bridge(_e: &Engine, _labels: &RunLabels) -> Result<String, DockerError> {
    Err(DockerError::NotYet)
}
