//! One test binary for the integration tests that only judge their own
//! runs: cargo runs test binaries one after another, so tests kept in one
//! binary run side by side (two at a time on two cores), and their
//! cluster runs, which mostly wait, overlap instead of queueing.
//!
//! Tests that assert on what a SIGKILLed rift left behind (cgroups, mounts,
//! containers, /dev/shm, processes) keep binaries of their own
//! (`cgroup.rs`, `clock.rs`, `cluster.rs`, `disk*.rs`, `docker*.rs`,
//! `wire_cleanup.rs`; `report.rs` for its snapshot paths): every run's start sweeps
//! the leftovers of dead rifts, and a run of another test starting in the
//! same binary could sweep them before the assertion looks.
//!
//! Filter by module: `cargo test -p rift --test suite safety::`.

mod browser;
mod cli;
mod client;
mod compare;
mod models;
mod nemesis;
mod net;
mod partition;
mod plan_errors;
mod real;
mod safety;
mod shrink;
mod wire;
