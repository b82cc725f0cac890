//! The Docker mechanism: rift's only door to a container engine.
//!
//! It talks to the engine's HTTP API through `bollard` (never the `docker`
//! command), negotiating the API version down to the engine's. Everything it
//! makes (containers, volumes, images, networks) carries the run's labels
//! ([`labels`]) so that a run's leftovers can always be found and removed
//! ([`sweep`]), even after rift itself was SIGKILLed.
//!
//! - [`image`]: a minimal image from a host binary and the libraries it links.
//! - [`container`]: one container's lifecycle, logs, and the per-node network
//!   holder whose namespace the wire reaches into.
//! - [`labels`]: the run's labels and what "stale" means.
//! - [`network`]: the run's bridge network, for containers off the wire.
//! - [`sweep`]: removal of one run's objects, or of every dead run's.

pub mod container;
pub mod engine;
pub mod image;
pub mod labels;
pub mod network;
pub mod sweep;

pub use container::{
    container_name, start_holder, Container, ContainerExtras, ContainerNet, ContainerSpec,
    ContainerState, DATA_DIR,
};
pub use engine::{classify, engine_at, Engine, EngineAt, CONNECT_TIMEOUT, DEFAULT_HOST};
pub use image::{build_image, image_exists, image_tag, ImageRef};
pub use labels::RunLabels;
pub use network::{create_bridge, create_bridge_subnet, Bridge};
pub use sweep::{count_run, remove_run, sweep_stale, Swept};

/// What can go wrong between rift and the engine.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine's address could not be used, or it answered with an error.
    #[error("no Docker engine answers at {at}: {source}")]
    Connect {
        /// The address tried.
        at: String,
        /// What the client said.
        source: bollard::errors::Error,
    },
    /// The engine did not answer in time.
    #[error("no Docker engine answers at {at} (nothing within {waited:?})")]
    NoAnswer {
        /// The address tried.
        at: String,
        /// How long rift waited.
        waited: std::time::Duration,
    },
    /// An engine call failed.
    #[error("Docker engine: {what}: {source}")]
    Api {
        /// What rift asked for.
        what: String,
        /// What the engine said.
        source: bollard::errors::Error,
    },
    /// A host file for an image could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A binary's shared libraries could not be resolved.
    #[error("cannot list the libraries of {path}: {reason}")]
    Libraries {
        /// The binary.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The engine's image build reported an error.
    #[error("building image {image}: {message}")]
    Build {
        /// The tag being built.
        image: String,
        /// The engine's message.
        message: String,
    },
    /// Every /24 of 198.19.0.0/16 is taken (by the engine's networks or
    /// this machine's routes).
    #[error("no free /24 in 198.19.0.0/16 for the run's bridge network")]
    NoSubnet,
    /// A container that should run has no process.
    #[error("container {name} is not running")]
    NotRunning {
        /// The container.
        name: String,
    },
}
