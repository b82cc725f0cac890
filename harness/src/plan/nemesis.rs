//! `[nemesis]`: a seeded random mix of faults, as validated. The spec only
//! describes what may be drawn; `fault::random` draws the concrete steps
//! from the run's seed. Nothing here touches a process or the network.

use super::fault_kind::FaultKind;
use super::types::Target;
use std::time::Duration;

/// A closed range of durations, `lo <= hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationRange {
    pub lo: Duration,
    pub hi: Duration,
}

impl DurationRange {
    pub const fn fixed(d: Duration) -> DurationRange {
        DurationRange { lo: d, hi: d }
    }
}

/// The named topologies a random partition may draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TopologyChoice {
    /// `isolate(target)`, its target drawn from the nemesis' target mix.
    Isolate,
    MajorityMinority,
    Halves,
    Ring,
    Bridge,
}

impl TopologyChoice {
    pub const ALL: [TopologyChoice; 5] = [
        TopologyChoice::Isolate,
        TopologyChoice::MajorityMinority,
        TopologyChoice::Halves,
        TopologyChoice::Ring,
        TopologyChoice::Bridge,
    ];

    /// The name `topologies = { ... }` uses.
    pub fn name(self) -> &'static str {
        match self {
            TopologyChoice::Isolate => "isolate",
            TopologyChoice::MajorityMinority => "majority-minority",
            TopologyChoice::Halves => "halves",
            TopologyChoice::Ring => "ring",
            TopologyChoice::Bridge => "bridge",
        }
    }

    pub fn from_name(name: &str) -> Option<TopologyChoice> {
        TopologyChoice::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Fewest nodes the topology needs (as `plan::parse_topology` checks).
    pub fn min_nodes(self) -> usize {
        match self {
            TopologyChoice::Isolate | TopologyChoice::MajorityMinority | TopologyChoice::Halves => {
                2
            }
            TopologyChoice::Ring | TopologyChoice::Bridge => 3,
        }
    }
}

/// Bounds of the effects a random degrade draws. Latency is always drawn;
/// each other effect, when enabled, half of the time.
#[derive(Clone, Debug, PartialEq)]
pub struct DegradeBounds {
    pub latency: DurationRange,
    pub jitter: Option<DurationRange>,
    /// Bytes per second.
    pub bandwidth: Option<(u64, u64)>,
    /// Probability per packet; drawn only when the run's network is netns.
    pub loss: Option<(f64, f64)>,
}

impl Default for DegradeBounds {
    fn default() -> Self {
        DegradeBounds {
            latency: DurationRange {
                lo: Duration::from_millis(20),
                hi: Duration::from_millis(200),
            },
            jitter: Some(DurationRange {
                lo: Duration::from_millis(1),
                hi: Duration::from_millis(50),
            }),
            bandwidth: Some((256 * 1000, 4 * 1000 * 1000)),
            loss: Some((0.01, 0.1)),
        }
    }
}

/// `[nemesis]`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct NemesisSpec {
    /// Weight of each drawable kind (see [`drawable`]), in
    /// [`FaultKind::ALL`] order; zero weights are kept and never drawn.
    pub mix: Vec<(FaultKind, u32)>,
    /// Weight of each topology of a random partition.
    pub topologies: Vec<(TopologyChoice, u32)>,
    /// Weight of each target of kill, pause, degrade and isolate.
    pub targets: Vec<(Target, u32)>,
    /// Time between the starts of two faults (and from the end of the
    /// quiet period to the first).
    pub interval: DurationRange,
    /// How long each fault lasts (kill: until the restart).
    pub durations: DurationRange,
    /// No fault starts before this.
    pub quiet: Duration,
    /// Most faults in force at once; 1: each is undone before the next.
    pub concurrency: usize,
    /// The last stretch of the run: no fault starts in it and every
    /// nemesis fault is undone before it begins.
    pub final_: Duration,
    pub degrade: DegradeBounds,
    pub clock: ClockBounds,
    /// CPUs a drawn `slow` leaves its target, drawn in `lo..=hi` (two
    /// decimals).
    pub slow_cpu: (f64, f64),
    /// How a drawn `pause` stops its target, by weight (`pauses = {
    /// sigstop = 1, freeze = 1 }`); default SIGSTOP only, as `freeze`
    /// needs the cgroup freezer.
    pub pauses: Vec<(super::types::PauseHow, u32)>,
    /// How a drawn `kill` ends its target, by weight (`kills = { signal =
    /// 1, power_loss = 1, torn = 1 }`); default SIGKILL only, as power
    /// losses need the faulty disk.
    pub kills: Vec<(KillHow, u32)>,
    /// 1-based line of `[nemesis]` in the plan: the line of every step it draws.
    pub line: usize,
}

impl NemesisSpec {
    pub const DEFAULT_SLOW_CPU: (f64, f64) = (0.05, 0.5);
    pub const DEFAULT_PAUSES: [(super::types::PauseHow, u32); 2] = [
        (super::types::PauseHow::Sigstop, 1),
        (super::types::PauseHow::Freeze, 0),
    ];
    pub const DEFAULT_KILLS: [(KillHow, u32); 3] = [
        (KillHow::Signal, 1),
        (KillHow::PowerLoss, 0),
        (KillHow::TornPowerLoss, 0),
    ];
    pub const DEFAULT_QUIET: Duration = Duration::from_secs(5);
    pub const DEFAULT_FINAL: Duration = Duration::from_secs(10);
    pub const DEFAULT_INTERVAL: DurationRange = DurationRange {
        lo: Duration::from_secs(2),
        hi: Duration::from_secs(6),
    };
    pub const DEFAULT_DURATIONS: DurationRange = DurationRange {
        lo: Duration::from_secs(2),
        hi: Duration::from_secs(6),
    };
}

/// Whether the nemesis can draw `kind`: the kinds that are faults with an
/// undo of their own. A new fault kind must be decided on here (no
/// wildcard arm), and then drawn in `fault::random`.
pub fn drawable(kind: FaultKind) -> bool {
    match kind {
        FaultKind::Kill
        | FaultKind::Pause
        | FaultKind::Partition
        | FaultKind::Degrade
        | FaultKind::Clock
        | FaultKind::Slow
        | FaultKind::Disk => true,
        FaultKind::Restart | FaultKind::Resume | FaultKind::Heal | FaultKind::Restore => false,
    }
}

/// Whether a `[nemesis]` without `mix` draws `kind`: the kinds that need
/// nothing beyond the network. Kinds that need a mechanism of their own on
/// the machine (libfaketime for `clock`, a cgroup CPU controller for `slow`,
/// the faulty disk for `disk`) are drawn only when `mix` names
/// them, so that a plan's default never needs more than it says.
pub fn drawn_by_default(kind: FaultKind) -> bool {
    match kind {
        FaultKind::Kill | FaultKind::Pause | FaultKind::Partition | FaultKind::Degrade => true,
        FaultKind::Clock | FaultKind::Slow | FaultKind::Disk => false,
        FaultKind::Restart | FaultKind::Resume | FaultKind::Heal | FaultKind::Restore => false,
    }
}

/// Bounds of the clock changes a random `clock` fault draws: one of an
/// offset (a jump either way), a rate, or a strobe, each a third of the
/// time.
#[derive(Clone, Debug, PartialEq)]
pub struct ClockBounds {
    /// Magnitude of a jump or of a strobe's offset; the sign is drawn.
    pub offset: DurationRange,
    /// Factor of a rate change, drawn in `lo..=hi` (two decimals).
    pub rate: (f64, f64),
    /// Time between a strobe's flips.
    pub strobe_every: DurationRange,
}

impl Default for ClockBounds {
    fn default() -> Self {
        ClockBounds {
            offset: DurationRange {
                lo: Duration::from_secs(1),
                hi: Duration::from_secs(30),
            },
            rate: (0.5, 2.0),
            strobe_every: DurationRange {
                lo: Duration::from_millis(100),
                hi: Duration::from_secs(1),
            },
        }
    }
}

/// Every kind the nemesis can draw, by name, for messages.
pub fn drawable_names() -> Vec<&'static str> {
    FaultKind::ALL
        .into_iter()
        .filter(|k| drawable(*k))
        .map(FaultKind::name)
        .collect()
}

/// Whether `isolate(target)` is a partition in a cluster of `size`.
pub fn can_isolate(target: &Target, size: usize) -> bool {
    match target {
        Target::All => false,
        Target::Random(k) => *k < size,
        Target::Nodes(ids) => ids.len() < size,
        Target::Leader | Target::Followers | Target::Minority | Target::Majority => true,
    }
}

/// How a drawn kill ends its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillHow {
    /// SIGKILL (the page cache survives: nothing written is lost).
    Signal,
    /// SIGKILL, then a power loss of its faulty disk (`lose_unsynced`).
    PowerLoss,
    /// The same with torn writes (`lose_unsynced` and `torn`).
    TornPowerLoss,
}

impl KillHow {
    pub const ALL: [KillHow; 3] = [KillHow::Signal, KillHow::PowerLoss, KillHow::TornPowerLoss];

    /// The name `kills = { ... }` uses.
    pub fn name(self) -> &'static str {
        match self {
            KillHow::Signal => "signal",
            KillHow::PowerLoss => "power_loss",
            KillHow::TornPowerLoss => "torn",
        }
    }

    /// What the kill does to the disk.
    pub fn power_loss(self) -> Option<super::types::PowerLoss> {
        match self {
            KillHow::Signal => None,
            KillHow::PowerLoss => Some(super::types::PowerLoss { torn: false }),
            KillHow::TornPowerLoss => Some(super::types::PowerLoss { torn: true }),
        }
    }
}
