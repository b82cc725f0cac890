//! Experiment plans: TOML in, a validated [`Plan`] out, or an error naming
//! file, line, column and field. Never panics on any input and never touches
//! processes or the network.
//!
//! Two layers, as in ripgrep's low/high arguments: toml's spanned document
//! tree is the raw layer (every key and value keeps its byte span), and
//! `validate` walks it once, resolving names and durations into a [`Plan`]
//! that cannot be invalid, collecting every error it can on the way.

mod duration;
mod error;
mod fault_kind;
mod nemesis;
mod render;
mod target;
mod template;
mod types;
mod validate;

pub use duration::{format_duration, parse_duration, parse_rate, parse_size};
pub use error::PlanError;
pub use fault_kind::FaultKind;
pub use nemesis::{
    can_isolate, drawable, drawable_names, drawn_by_default, ClockBounds, DegradeBounds,
    DurationRange, KillHow, NemesisSpec, TopologyChoice,
};
pub use render::{links_value, step_table, step_toml, target_text, topology_value};
pub use target::{parse_signal, parse_target, parse_topology};
pub use template::TemplateScope;
pub use types::*;
pub use validate::errno_name;

use sha2::{Digest, Sha256};
use std::path::Path;

/// What the command line changes in a plan before it is validated (the plan
/// is then validated as if the file said so; errors still point into the
/// file). The default changes nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces `[cluster] network` (`rift run --network MODE`). Which steps
    /// and settings are valid depends on it, so it must be known here.
    pub network: Option<NetworkMode>,
}

/// Reads and validates the plan at `path`. The plan's `hash` is the hex
/// SHA-256 of the file's bytes.
pub fn load(path: &Path) -> Result<Plan, PlanError> {
    load_with(path, &Overrides::default())
}

/// [`load`], with `overrides` applied before validation. The hash is still
/// that of the file's bytes.
pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Plan, PlanError> {
    let bytes = std::fs::read(path).map_err(|source| PlanError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let src = String::from_utf8(bytes).map_err(|e| {
        let (line, column) = error::position(
            &String::from_utf8_lossy(e.as_bytes()),
            e.utf8_error().valid_up_to(),
        );
        PlanError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: "the file is not valid UTF-8".to_string(),
        }
    })?;
    parse_with(&src, path, overrides)
}

/// Validates plan source text; `path` is only recorded and used in messages.
/// The hash is that of `src`'s bytes, the same as [`load`] gives.
pub fn parse(src: &str, path: &Path) -> Result<Plan, PlanError> {
    parse_with(src, path, &Overrides::default())
}

/// [`parse`], with `overrides` applied before validation.
pub fn parse_with(src: &str, path: &Path, overrides: &Overrides) -> Result<Plan, PlanError> {
    validate::validate(src, path, hash_hex(src.as_bytes()), overrides)
}

fn hash_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
