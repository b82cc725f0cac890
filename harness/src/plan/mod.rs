//! Experiment plans: TOML in, a validated [`Plan`] out, or an error naming
//! file, line, column and field. Never panics on any input.

mod types;

pub use types::*;
