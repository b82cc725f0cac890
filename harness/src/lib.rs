//! rift: a chaos-testing harness for real multi-process clusters.
//!
//! Data flows one way: [`plan`] -> [`run`] -> ([`cluster`], [`net`], [`fault`],
//! [`workload`]) -> [`history`] + events -> [`check`] -> [`report`].
//! Modules below the runner never call back into it; they talk through plain
//! data and channels.

pub mod adapter;
pub mod cgroup;
pub mod check;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod disk;
pub mod docker;
pub mod fault;
pub mod history;
pub mod ids;
pub mod net;
pub mod netns;
pub mod node;
pub mod plan;
pub mod report;
pub mod run;
pub mod shrink;
pub mod workload;

pub use ids::NodeId;
pub use node::NodeState;
