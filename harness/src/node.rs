//! The one model of a node's state, as rift made it: what the cluster
//! reports, what the nemesis reads to pick targets, and what every period
//! of the world records for the availability judge.
//!
//! Plain data only; the cluster is the single writer (see `cluster`).

use serde::{Deserialize, Serialize};

/// What rift did to a node's process, or what it did on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Running and not paused.
    Up,
    /// Stopped by rift: SIGSTOP, or its cgroup frozen (`how = "freeze"`).
    Paused,
    /// Killed or stopped by rift (from the moment it was signalled), or
    /// never started.
    Down,
    /// Exited on its own.
    Exited,
}
