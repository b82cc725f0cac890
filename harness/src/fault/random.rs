//! The random nemesis: draws the concrete faults of `[nemesis]` from the
//! run's seed, up front, into ordinary plan [`Step`]s that then go through
//! the schedule and the runner like the plan's own steps.
//!
//! Pure: no I/O, no clock. The same spec, seed, duration, cluster size and
//! network give the same steps. Roles (`leader`, `random`, ...) stay roles
//! here; the runner resolves them when each step is applied.

use crate::plan::{
    can_isolate, drawable, Action, ClockChange, ClockOffset, Degradation, DurationRange, FaultKind,
    KillHow, LinkSelector, NemesisSpec, NetworkMode, Step, Target, Topology, TopologyChoice,
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

/// The plan's own steps and the drawn ones, in one list sorted by `at`; at
/// equal times the plan's own come first.
pub fn merged(steps: &[Step], drawn: &[Step]) -> Vec<Step> {
    let mut all: Vec<Step> = steps.iter().chain(drawn).cloned().collect();
    // Stable: equal times keep the order above.
    all.sort_by_key(|s| s.at);
    all
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
            power_loss: pick_kill(rng, &spec.kills)?.power_loss(),
        }),
        FaultKind::Pause => Some(Action::Pause {
            target: pick(rng, &spec.targets)?,
            for_: Some(d),
            how: pick(rng, &spec.pauses)?,
        }),
        FaultKind::Slow => {
            let target = pick(rng, &spec.targets)?;
            let (lo, hi) = spec.slow_cpu;
            // Two decimals: a share a plan writes back exactly.
            let cpu = (rng.random_range(lo..=hi) * 100.0).round() / 100.0;
            Some(Action::Slow {
                target,
                cpu: cpu.max(0.01),
                for_: Some(d),
            })
        }
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
        FaultKind::Clock => Some(Action::Clock {
            target: pick(rng, &spec.targets)?,
            change: draw_clock_change(rng, spec),
            for_: Some(d),
        }),
        FaultKind::Disk => Some(Action::Disk {
            target: pick(rng, &spec.targets)?,
            faults: draw_disk_faults(rng),
            for_: Some(d),
        }),
        FaultKind::Restart | FaultKind::Resume | FaultKind::Heal | FaultKind::Restore => None,
    }
}

/// One disk fault, a fifth of the time each: fsync EIO, write EIO, write
/// ENOSPC, latency 1-50 ms, or corrupt reads with a probability of
/// 0.001-0.01. Every draw is made whichever is chosen, so the stream does
/// not shift with the choice.
fn draw_disk_faults(rng: &mut ChaCha8Rng) -> crate::disk::DiskFaults {
    use crate::disk::{DiskFaults, Errno};
    let which = rng.random_range(0..5u8);
    let latency = Duration::from_millis(rng.random_range(1..=50u64));
    // Four decimals: a probability a plan writes back exactly.
    let corrupt = (rng.random_range(0.001..=0.01f64) * 10_000.0).round() / 10_000.0;
    match which {
        0 => DiskFaults {
            fsync: Some(Errno::Eio),
            ..DiskFaults::default()
        },
        1 => DiskFaults {
            write: Some(Errno::Eio),
            ..DiskFaults::default()
        },
        2 => DiskFaults {
            write: Some(Errno::Enospc),
            ..DiskFaults::default()
        },
        3 => DiskFaults {
            latency: Some(latency),
            ..DiskFaults::default()
        },
        _ => DiskFaults {
            corrupt: Some(corrupt),
            ..DiskFaults::default()
        },
    }
}

/// A jump, a rate or a strobe, a third of the time each, within
/// `spec.clock`. Every draw is made whichever is chosen, so the stream
/// does not shift with the choice.
fn draw_clock_change(rng: &mut ChaCha8Rng, spec: &NemesisSpec) -> ClockChange {
    let b = &spec.clock;
    let which = rng.random_range(0..3u8);
    let offset = ClockOffset {
        negative: rng.random_bool(0.5),
        magnitude: draw_range(rng, b.offset),
    };
    // Two decimals: a factor a plan writes back exactly.
    let rate = (rng.random_range(b.rate.0..=b.rate.1) * 100.0).round() / 100.0;
    let every = draw_range(rng, b.strobe_every);
    match which {
        0 => ClockChange::Offset(offset),
        1 => ClockChange::Rate(rate.clamp(0.01, ClockChange::MAX_RATE)),
        _ => ClockChange::Strobe { offset, every },
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
    // Only what the run's network can make (the table validation uses).
    let makes = |key: &str| {
        FaultKind::Degrade
            .key_needs(key)
            .is_none_or(|needs| needs == network)
    };
    Degradation {
        latency: Some(latency).filter(|_| makes("latency")),
        // Jitter is never more than the latency it varies.
        jitter: jitter
            .filter(|_| jitter_on && makes("jitter"))
            .map(|j| j.min(latency)),
        bandwidth: bandwidth.filter(|_| bandwidth_on && makes("bandwidth")),
        loss: loss.filter(|p| loss_on && makes("loss") && *p > 0.0),
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

/// How a kill ends its target: drawn only when more than one way has
/// weight, so that plans without `kills` draw the same streams as before
/// it existed.
fn pick_kill(rng: &mut ChaCha8Rng, kills: &[(KillHow, u32)]) -> Option<KillHow> {
    let mut live = kills.iter().filter(|(_, w)| *w > 0);
    match (live.next(), live.next()) {
        (Some((only, _)), None) => Some(*only),
        (Some(_), Some(_)) => pick(rng, kills),
        (None, _) => None,
    }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::{parse, parse_with, Overrides, Plan};
    use std::collections::BTreeMap;
    use std::path::Path;

    fn plan(nemesis: &str) -> Plan {
        plan_under(NetworkMode::Proxy, nemesis)
    }

    fn plan_under(network: NetworkMode, nemesis: &str) -> Plan {
        let src = format!(
            "name = \"t\"\nduration = \"60s\"\n[cluster]\nsize = 5\n[workload]\nkind = \"kv\"\n[nemesis]\n{nemesis}"
        );
        let overrides = Overrides {
            network: Some(network),
        };
        match parse_with(&src, Path::new("p.toml"), &overrides) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn spec(p: &Plan) -> &NemesisSpec {
        match &p.nemesis {
            Some(s) => s,
            None => panic!("no [nemesis]"),
        }
    }

    fn draw(p: &Plan, seed: u64) -> Vec<Step> {
        generate(spec(p), seed, p.duration, p.cluster.size, p.cluster.network)
    }

    /// How long a drawn step lasts.
    fn lasts(s: &Step) -> Duration {
        match &s.action {
            Action::Kill {
                restart_after: Some(d),
                ..
            }
            | Action::Pause { for_: Some(d), .. }
            | Action::Partition { for_: Some(d), .. }
            | Action::Degrade { for_: Some(d), .. } => *d,
            other => panic!("a drawn step must undo itself: {other:?}"),
        }
    }

    #[test]
    fn drawn_steps_are_scheduled_with_the_plans_own() {
        let p = plan("");
        let drawn = draw(&p, 3);
        let first = drawn[0].at;
        let own = vec![
            Step {
                at: first,
                action: Action::Heal,
                line: 99,
            },
            Step {
                at: Duration::ZERO,
                action: Action::Heal,
                line: 98,
            },
        ];
        let all = merged(&own, &drawn);
        assert_eq!(all.len(), drawn.len() + 2);
        assert!(all.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(all[0].line, 98);
        // At the same moment, the plan's own step first.
        assert_eq!(
            (all[1].line, all[2].line),
            (99, p.nemesis.as_ref().map_or(0, |s| s.line))
        );
    }

    #[test]
    fn the_same_seed_draws_the_same_steps_and_other_seeds_others() {
        let p = plan("");
        let a = draw(&p, 7);
        assert!(a.len() > 3, "{a:?}");
        assert_eq!(a, draw(&p, 7));
        for other in [8, 9, 1 << 40] {
            assert_ne!(a, draw(&p, other), "seed {other}");
        }
    }

    #[test]
    fn nothing_in_the_quiet_period_or_the_final_phase_and_durations_in_range() {
        let p = plan("quiet = \"7s\"\nfinal = \"12s\"\ndurations = [\"1500ms\", \"4s\"]\n");
        let limit = p.duration - Duration::from_secs(12);
        for seed in 0..200 {
            for s in draw(&p, seed) {
                assert!(s.at >= Duration::from_secs(7), "seed {seed}: {s:?}");
                let d = lasts(&s);
                assert!(
                    (Duration::from_millis(1500)..=Duration::from_secs(4)).contains(&d),
                    "seed {seed}: {s:?}"
                );
                assert!(s.at + d <= limit, "seed {seed}: {s:?} ends after {limit:?}");
                assert_eq!(s.at.subsec_nanos() % 1_000_000, 0, "whole milliseconds");
            }
        }
    }

    #[test]
    fn concurrency_bounds_the_faults_in_force() {
        for c in [1usize, 2, 3] {
            let p = plan(&format!(
                "concurrency = {c}\ninterval = [\"100ms\", \"1s\"]\ndurations = [\"2s\", \"5s\"]\n"
            ));
            let mut most = 0;
            for seed in 0..100 {
                let steps = draw(&p, seed);
                for s in &steps {
                    // Faults in force just after `s` starts (an undo at the
                    // same moment comes first).
                    let live = steps
                        .iter()
                        .filter(|o| o.at <= s.at && o.at + lasts(o) > s.at)
                        .count();
                    assert!(
                        live <= c,
                        "seed {seed}, concurrency {c}: {live} at {:?}",
                        s.at
                    );
                    most = most.max(live);
                }
            }
            assert_eq!(most, c, "concurrency {c} is reached");
        }
    }

    #[test]
    fn weights_are_respected_and_zero_is_never_drawn() {
        let p = plan(
            "mix = { kill = 3, pause = 1, partition = 0, degrade = 0 }\ntargets = { leader = 1, n2 = 0, random = 1 }\ninterval = \"1s\"\ndurations = \"1s\"\n",
        );
        let mut kinds: BTreeMap<FaultKind, usize> = BTreeMap::new();
        let mut targets: BTreeMap<String, usize> = BTreeMap::new();
        for seed in 0..300 {
            for s in draw(&p, seed) {
                *kinds.entry(s.action.kind()).or_default() += 1;
                let t = match &s.action {
                    Action::Kill { target, .. } | Action::Pause { target, .. } => {
                        crate::plan::target_text(target)
                    }
                    other => panic!("not in the mix: {other:?}"),
                };
                *targets.entry(t).or_default() += 1;
            }
        }
        let kill = kinds[&FaultKind::Kill] as f64;
        let pause = kinds[&FaultKind::Pause] as f64;
        let ratio = kill / pause;
        assert!(
            (2.7..3.3).contains(&ratio),
            "kill/pause = {ratio} ({kinds:?})"
        );
        assert!(!targets.contains_key("n2"), "{targets:?}");
        let lr = targets["leader"] as f64 / targets["random"] as f64;
        assert!((0.9..1.1).contains(&lr), "{targets:?}");
    }

    #[test]
    fn degrade_draws_only_what_the_network_makes() {
        let mix = "mix = { degrade = 1 }\n";
        let mut loss_seen = false;
        for (network, loss_ok) in [(NetworkMode::Proxy, false), (NetworkMode::Netns, true)] {
            let p = plan_under(network, mix);
            for seed in 0..50 {
                for s in draw(&p, seed) {
                    let Action::Degrade { degradation, .. } = &s.action else {
                        panic!("{s:?}");
                    };
                    assert!(degradation.latency.is_some());
                    assert!(degradation.jitter <= degradation.latency);
                    if !loss_ok {
                        assert_eq!(degradation.loss, None, "{network}");
                    }
                    loss_seen |= degradation.loss.is_some();
                    assert_eq!(degradation.reset, None);
                    assert_eq!(degradation.stall, None);
                }
            }
        }
        assert!(loss_seen, "netns draws loss sometimes");
    }

    #[test]
    fn isolate_never_takes_a_target_that_cannot_be_isolated() {
        let p = plan(
            "mix = { partition = 1 }\ntopologies = { isolate = 1 }\ntargets = { all = 5, leader = 1 }\n",
        );
        for seed in 0..50 {
            for s in draw(&p, seed) {
                assert_eq!(
                    s.action,
                    Action::Partition {
                        topology: Topology::Isolate(Target::Leader),
                        oneway: false,
                        for_: Some(lasts(&s)),
                    }
                );
            }
        }
    }

    /// Every drawn step, rendered as a `[[step]]` and parsed back, is the
    /// same step.
    #[test]
    fn drawn_steps_render_to_steps_that_parse_back_the_same() {
        for network in [NetworkMode::Proxy, NetworkMode::Netns] {
            let p = plan_under(
                network,
                "mix = { kill = 1, pause = 1, partition = 1, degrade = 1, clock = 1, slow = 1 }\npauses = { sigstop = 1, freeze = 1 }\ntargets = { leader = 1, random = 1, minority = 1, majority = 1, all = 1, n3 = 1, \"random(2)\" = 1 }\n",
            );
            let mut seen: BTreeMap<FaultKind, usize> = BTreeMap::new();
            for seed in 0..40 {
                for s in draw(&p, seed) {
                    *seen.entry(s.action.kind()).or_default() += 1;
                    round_trip(&s, network);
                }
            }
            assert_eq!(seen.len(), 6, "{seen:?}");
        }
    }

    pub(crate) fn round_trip(s: &Step, network: NetworkMode) {
        let text = crate::plan::step_toml(s);
        let via = match network {
            NetworkMode::Proxy => "via = \"proxy\"\n",
            NetworkMode::Netns | NetworkMode::None => "",
        };
        let src = format!(
            "name = \"t\"\nduration = \"600s\"\n[cluster]\nsize = 5\nnetwork = \"{network}\"\ndisk = \"faulty\"\n[workload]\nkind = \"kv\"\n{via}{text}"
        );
        let parsed = match parse(&src, Path::new("p.toml")) {
            Ok(p) => p,
            Err(e) => panic!("{text}: {e}"),
        };
        assert_eq!(parsed.steps.len(), 1);
        assert_eq!(parsed.steps[0].at, s.at, "{text}");
        assert_eq!(parsed.steps[0].action, s.action, "{text}");
    }
}
