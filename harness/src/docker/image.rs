//! A minimal image from a host binary: the binary, the loader and the
//! shared libraries it links, at their host paths, `FROM scratch`.

use std::path::{Path, PathBuf};

use super::{DockerError, Engine, RunLabels};

/// A local image reference (`repository:tag` or an id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef(pub String);

/// Builds an image holding `binary` (at its host path), its loader and
/// libraries, and `extra_files` (each at its host path, with its libraries),
/// with empty `/tmp` and `/data`. `name` becomes part of the tag.
pub async fn build_image(
    _e: &Engine,
    _binary: &Path,
    _extra_files: &[PathBuf],
    _labels: &RunLabels,
    _name: &str,
) -> Result<ImageRef, DockerError> {
    Err(DockerError::NotYet)
}

/// Whether the engine has `image` locally.
pub async fn image_exists(_e: &Engine, _image: &str) -> Result<bool, DockerError> {
    Err(DockerError::NotYet)
}
