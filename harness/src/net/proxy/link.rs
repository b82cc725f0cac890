//! One directed link of the proxy mesh: its state as the fast path reads
//! it (atomics), its watched configuration, its seeded dice, its pacing and
//! its counters. Shared by the mesh (which sets it) and every connection
//! (which reads it).
//!
//! Holds no socket; never blocks.

use crate::net::{LinkState, LinkStats};
use crate::plan::Degradation;
use crate::NodeId;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Which way bytes flow on a connection of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// From the dialing node to the target.
    Forward,
    /// From the target back to the dialing node.
    Back,
}

/// The watched part of a link's configuration; waiters re-read it after
/// every change, so no wake-up is lost.
#[derive(Clone, Debug)]
pub(crate) struct Control {
    pub state: LinkState,
    pub degradation: Option<Degradation>,
    /// Bumped on every `set_degradation`; a connection rolls its reset and
    /// stall dice once per generation.
    pub generation: u64,
}

/// One directed link `from -> to`; `from` is `None` on a client link (the
/// workload's clients dialing node `to`).
pub(crate) struct Link {
    pub from: Option<NodeId>,
    pub to: NodeId,
    pub target: SocketAddr,
    /// Mirrors `control` for the per-chunk fast path (one atomic load).
    state: AtomicU8,
    degraded: AtomicBool,
    pub control: watch::Sender<Control>,
    /// Seeded per link, so a run with the same seed draws the same numbers
    /// in the same order on each link.
    pub rng: Mutex<ChaCha8Rng>,
    /// Bandwidth pacing per direction: when the link is next free to send.
    pace: [Mutex<Instant>; 2],
    connections: AtomicU64,
    bytes_forward: AtomicU64,
    bytes_back: AtomicU64,
    resets: AtomicU64,
}

impl Link {
    pub fn new(from: Option<NodeId>, to: NodeId, target: SocketAddr, seed: u64) -> Link {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // One independent stream per directed link, so links do not share draws;
        // client links take the upper half of the stream space.
        let from_bits = from.map_or(1 << 31, |n| n.0 as u64);
        rng.set_stream((from_bits << 32) | to.0 as u64);
        let (control, _) = watch::channel(Control {
            state: LinkState::Pass,
            degradation: None,
            generation: 0,
        });
        let now = Instant::now();
        Link {
            from,
            to,
            target,
            state: AtomicU8::new(LinkState::Pass.to_u8()),
            degraded: AtomicBool::new(false),
            control,
            rng: Mutex::new(rng),
            pace: [Mutex::new(now), Mutex::new(now)],
            connections: AtomicU64::new(0),
            bytes_forward: AtomicU64::new(0),
            bytes_back: AtomicU64::new(0),
            resets: AtomicU64::new(0),
        }
    }

    pub fn set_state(&self, state: LinkState) {
        self.control.send_modify(|c| {
            c.state = state;
            self.state.store(state.to_u8(), Ordering::Release);
        });
        tracing::debug!(from = %dialer(self.from), to = %self.to, ?state, "link state");
    }

    pub fn set_degradation(&self, d: Option<Degradation>) {
        let degraded = d.as_ref().is_some_and(has_effect);
        self.control.send_modify(|c| {
            c.degradation = if degraded { d } else { None };
            c.generation += 1;
            self.degraded.store(degraded, Ordering::Release);
        });
        tracing::debug!(from = %dialer(self.from), to = %self.to, degraded, "link degradation");
    }

    pub fn state_now(&self) -> LinkState {
        LinkState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    pub fn count_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_reset(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_bytes(&self, dir: Dir, n: usize) {
        let counter = match dir {
            Dir::Forward => &self.bytes_forward,
            Dir::Back => &self.bytes_back,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Reserves the link for `n` bytes at `rate` bytes/s in direction `dir`
    /// and returns when they are allowed to leave. Shared by every
    /// connection of the link, like the capacity of a real wire.
    pub fn pace_until(&self, dir: Dir, n: usize, rate: u64) -> Instant {
        let slot = match dir {
            Dir::Forward => &self.pace[0],
            Dir::Back => &self.pace[1],
        };
        let cost = Duration::from_secs_f64(n as f64 / rate.max(1) as f64);
        let now = Instant::now();
        // A poisoned lock only means another connection panicked mid-update
        // of an Instant; the value is still usable.
        let mut next = slot.lock().unwrap_or_else(|e| e.into_inner());
        let start = (*next).max(now);
        *next = start + cost;
        *next
    }

    pub fn stats(&self) -> LinkStats {
        LinkStats {
            connections: self.connections.load(Ordering::Relaxed),
            bytes_forward: self.bytes_forward.load(Ordering::Relaxed),
            bytes_back: self.bytes_back.load(Ordering::Relaxed),
            resets: self.resets.load(Ordering::Relaxed),
        }
    }
}

/// Whether a degradation changes anything; an all-empty one keeps the fast
/// path.
fn has_effect(d: &Degradation) -> bool {
    let positive = |p: Option<f64>| p.is_some_and(|p| p > 0.0);
    d.latency.is_some_and(|l| !l.is_zero())
        || d.jitter.is_some_and(|j| !j.is_zero())
        || d.bandwidth.is_some()
        || positive(d.reset)
        || positive(d.stall)
}

/// Who dials on a link, for messages: a node, or the workload's clients.
pub(super) fn dialer(from: Option<NodeId>) -> String {
    from.map_or_else(|| "clients".to_string(), |n| n.to_string())
}
