//! The random nemesis: draws the concrete faults of `[nemesis]` from the
//! run's seed, up front, into ordinary plan [`Step`]s that then go through
//! the schedule and the runner like the plan's own steps.
//!
//! Pure: no I/O, no clock. The same spec, seed, duration, cluster size and
//! network give the same steps. Roles (`leader`, `random`, ...) stay roles
//! here; the runner resolves them when each step is applied.

use crate::plan::{
    can_isolate, drawable, Action, Degradation, DurationRange, FaultKind, LinkSelector, NemesisSpec,
    NetworkMode, Step, Target, TopologyChoice, Topology,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Mixed into the seed: the nemesis' decisions have a stream of their own,
/// apart from the workload's and from the runner's target picks.
const STREAM: u64 = 0x6e65_6d65_7369_7321;

/// The steps `spec` draws for a run of `duration` over `size` nodes under
/// `network`, sorted by `at`. Every step starts at or after `spec.quiet`,
/// and ends (is undone) no later than `duration - spec.final_`; at most
/// `spec.concurrency` are in force at any moment.
pub fn generate(
    spec: &NemesisSpec,
    seed: u64,
    duration: Duration,
    size: usize,
    network: NetworkMode,
) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ STREAM);
    let limit = duration.saturating_sub(spec.final_);
    let mut steps = Vec::new();
    // End times of the faults drawn so far that may still be in force.
    let mut ends: Vec<Duration> = Vec::new();
    let mut t = spec.quiet;
    // Bounded, whatever the spec: one step per millisecond at most.
    let most = limit.as_millis().min(100_000) as usize;
    while steps.len() < most {
        t += draw_range(&mut rng, spec.interval);
        ends.retain(|e| *e > t);
        if ends.len() >= spec.concurrency.max(1) {
            // Wait for the first fault in force to be undone.
            if let Some(first) = ends.iter().min().copied() {
                t = t.max(first);
            }
            ends.retain(|e| *e > t);
        }
        let room = limit.saturating_sub(t);
        if t >= limit || room < spec.durations.lo {
            break;
        }
        let d = draw_range(
            &mut rng,
            DurationRange {
                lo: spec.durations.lo,
                hi: spec.durations.hi.min(room),
            },
        );
        let Some(kind) = pick(&mut rng, &spec.mix) else {
            break;
        };
        let Some(action) = draw_action(&mut rng, spec, kind, d, size, network) else {
            continue;
        };
        ends.push(t + d);
        steps.push(Step {
            at: t,
            action,
            line: spec.line,
        });
    }
    steps
}

/// The action of one decision of `kind`, lasting `d`; `None` for kinds the
/// nemesis never draws, or when nothing fits (no target can be isolated).
fn draw_action(
    rng: &mut ChaCha8Rng,
    spec: &NemesisSpec,
    kind: FaultKind,
    d: Duration,
    size: usize,
    network: NetworkMode,
) -> Option<Action> {
    if !drawable(kind) {
        return None;
    }
    match kind {
        FaultKind::Kill => Some(Action::Kill {
            target: pick(rng, &spec.targets)?,
            signal: libc::SIGKILL,
            restart_after: Some(d),
        }),
        FaultKind::Pause => Some(Action::Pause {
            target: pick(rng, &spec.targets)?,
            for_: Some(d),
        }),
        FaultKind::Partition => {
            let topology = match pick(rng, &spec.topologies)? {
                TopologyChoice::Isolate => {
                    let isolatable: Vec<(Target, u32)> = spec
                        .targets
                        .iter()
                        .filter(|(t, _)| can_isolate(t, size))
                        .cloned()
                        .collect();
                    Topology::Isolate(pick(rng, &isolatable)?)
                }
                TopologyChoice::MajorityMinority => Topology::MajorityMinority,
                TopologyChoice::Halves => Topology::Halves,
                TopologyChoice::Ring => Topology::Ring,
                TopologyChoice::Bridge => Topology::Bridge,
            };
            Some(Action::Partition {
                topology,
                oneway: false,
                for_: Some(d),
            })
        }
        FaultKind::Degrade => {
            let links = match pick(rng, &spec.targets)? {
                Target::All => LinkSelector::All,
                t @ (Target::Nodes(_)
                | Target::Random(_)
                | Target::Leader
                | Target::Followers
                | Target::Minority
                | Target::Majority) => LinkSelector::Nodes(t),
            };
            Some(Action::Degrade {
                links,
                degradation: draw_degradation(rng, spec, network),
                for_: Some(d),
            })
        }
        FaultKind::Restart | FaultKind::Resume | FaultKind::Heal | FaultKind::Restore => None,
    }
}

/// Latency always; jitter, bandwidth and (netns only) loss each half of
/// the time when enabled. Every draw is made whatever the network, so the
/// stream does not shift with it.
fn draw_degradation(rng: &mut ChaCha8Rng, spec: &NemesisSpec, network: NetworkMode) -> Degradation {
    let b = &spec.degrade;
    let latency = draw_range(rng, b.latency);
    let jitter_on = rng.random_bool(0.5);
    let jitter = b.jitter.map(|r| draw_range(rng, r));
    let bandwidth_on = rng.random_bool(0.5);
    let bandwidth = b.bandwidth.map(|(lo, hi)| rng.random_range(lo..=hi));
    let loss_on = rng.random_bool(0.5);
    // Three decimals: a probability a plan writes back exactly.
    let loss = b
        .loss
        .map(|(lo, hi)| (rng.random_range(lo..=hi) * 1000.0).round() / 1000.0);
    let loss_made = match network {
        NetworkMode::Netns => true,
        NetworkMode::Proxy | NetworkMode::None => false,
    };
    Degradation {
        latency: Some(latency),
        // Jitter is never more than the latency it varies.
        jitter: jitter.filter(|_| jitter_on).map(|j| j.min(latency)),
        bandwidth: bandwidth.filter(|_| bandwidth_on),
        loss: loss.filter(|p| loss_on && loss_made && *p > 0.0),
        ..Degradation::default()
    }
}


/// A whole number of milliseconds in the range (so a plan writes it back
/// exactly); the range's ends rounded inwards.
fn draw_range(rng: &mut ChaCha8Rng, r: DurationRange) -> Duration {
    let lo = r.lo.as_nanos().div_ceil(1_000_000) as u64;
    let hi = (r.hi.as_millis() as u64).max(lo);
    Duration::from_millis(rng.random_range(lo..=hi))
}

/// One item by weight; `None` when every weight is zero.
fn pick<T: Clone>(rng: &mut ChaCha8Rng, items: &[(T, u32)]) -> Option<T> {
    let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let mut x = rng.random_range(0..total);
    for (item, w) in items {
        let w = u64::from(*w);
        if x < w {
            return Some(item.clone());
        }
        x -= w;
    }
    None
}
