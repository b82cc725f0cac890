//! The nemesis: what a plan's steps do to nodes and links, over time.
//!
//! Owns the schedule (steps plus their automatic undo), target resolution
//! (seeded), partition topologies and the model of which nodes should serve.
//! Never touches a process or socket itself: the runner applies its decisions.

pub mod random;
mod schedule;
mod target;
mod topology;
mod world;

pub use schedule::{schedule, Scheduled, Timed};
pub use target::resolve;
pub use topology::{components, cut_links, Cut};
pub use world::{classify, NodeClass, NodeState, Snapshot, World};
