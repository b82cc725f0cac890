//! Checkers: turn a recorded history into verdicts with counterexamples.
//!
//! Checkers read plain data (history records, final reads) and never touch
//! processes, sockets or the clock; each one returns a [`CheckResult`].

pub mod availability;
pub mod linearizable;
pub mod lost_writes;
pub mod verdict;

pub use linearizable::{check_linearizable, LinOptions};
pub use lost_writes::check_lost_writes;
pub use verdict::{CheckResult, Verdict};
