//! The closed set of fault kinds a `[[step]]` may name, and the one table of
//! the step keys each kind accepts (and the network a key needs, when only
//! one network can make it). Validation, messages and the runner all derive
//! from here; it must never grow a wildcard arm (a new kind is one
//! variant, and the compiler lists every place that must handle it).

use super::types::{Action, NetworkMode};
use std::fmt;

/// What a step does, as plans name it (`fault = "kill"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    Kill,
    Restart,
    Pause,
    Resume,
    Partition,
    Heal,
    Degrade,
    Restore,
    Clock,
    Slow,
    Disk,
}

impl FaultKind {
    /// Every kind, in the order messages list them.
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Kill,
        FaultKind::Restart,
        FaultKind::Pause,
        FaultKind::Resume,
        FaultKind::Partition,
        FaultKind::Heal,
        FaultKind::Degrade,
        FaultKind::Restore,
        FaultKind::Clock,
        FaultKind::Slow,
        FaultKind::Disk,
    ];

    /// The name plans use.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Restart => "restart",
            FaultKind::Pause => "pause",
            FaultKind::Resume => "resume",
            FaultKind::Partition => "partition",
            FaultKind::Heal => "heal",
            FaultKind::Degrade => "degrade",
            FaultKind::Restore => "restore",
            FaultKind::Clock => "clock",
            FaultKind::Slow => "slow",
            FaultKind::Disk => "disk",
        }
    }

    /// The kind a plan names, if any.
    pub fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Every name, for messages and suggestions.
    pub fn names() -> [&'static str; 11] {
        FaultKind::ALL.map(FaultKind::name)
    }

    /// The keys a step of this kind accepts, `at` and `fault` included, in
    /// the order messages list them.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            FaultKind::Kill => &[
                "at",
                "fault",
                "target",
                "signal",
                "restart_after",
                "lose_unsynced",
                "torn",
            ],
            FaultKind::Restart | FaultKind::Resume => &["at", "fault", "target"],
            FaultKind::Pause => &["at", "fault", "target", "for", "how"],
            FaultKind::Partition => &["at", "fault", "topology", "oneway", "for"],
            FaultKind::Heal => &["at", "fault"],
            FaultKind::Degrade => &[
                "at",
                "fault",
                "links",
                "latency",
                "jitter",
                "distribution",
                "bandwidth",
                "loss",
                "duplicate",
                "reorder",
                "gap",
                "corrupt",
                "reset",
                "stall",
                "for",
            ],
            FaultKind::Restore => &["at", "fault", "links"],
            FaultKind::Clock => &["at", "fault", "target", "offset", "rate", "strobe", "for"],
            FaultKind::Slow => &["at", "fault", "target", "cpu", "for"],
            FaultKind::Disk => &[
                "at", "fault", "target", "fsync", "write", "read", "latency", "jitter", "corrupt",
                "for",
            ],
        }
    }

    /// The one network that can make `key` of a step of this kind, when
    /// only one can: a degrade step's `reset` and `stall` act on TCP
    /// connections, which only the proxy mesh relays; its `loss`,
    /// `duplicate`, `reorder`, `gap`, `corrupt` and `distribution` act on
    /// packets, which only the netns wire forwards. `None` for every other
    /// key (any network with faults makes it).
    pub fn key_needs(self, key: &str) -> Option<NetworkMode> {
        match self {
            FaultKind::Degrade => match key {
                "reset" | "stall" => Some(NetworkMode::Proxy),
                "distribution" | "loss" | "duplicate" | "reorder" | "gap" | "corrupt" => {
                    Some(NetworkMode::Netns)
                }
                _ => None,
            },
            FaultKind::Kill
            | FaultKind::Restart
            | FaultKind::Pause
            | FaultKind::Resume
            | FaultKind::Partition
            | FaultKind::Heal
            | FaultKind::Restore
            | FaultKind::Clock
            | FaultKind::Slow
            | FaultKind::Disk => None,
        }
    }

    /// Every key any step accepts: the union of [`FaultKind::keys`] in
    /// [`FaultKind::ALL`] order, each once.
    pub fn all_keys() -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for key in FaultKind::ALL.into_iter().flat_map(FaultKind::keys) {
            if !out.contains(key) {
                out.push(key);
            }
        }
        out
    }

    /// Whether the fault acts on the network (impossible with
    /// `network = "none"`).
    pub fn needs_network(self) -> bool {
        match self {
            FaultKind::Kill
            | FaultKind::Restart
            | FaultKind::Pause
            | FaultKind::Resume
            | FaultKind::Clock
            | FaultKind::Slow
            | FaultKind::Disk => false,
            FaultKind::Partition | FaultKind::Heal | FaultKind::Degrade | FaultKind::Restore => {
                true
            }
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Action {
    /// The fault kind this action is a step of.
    pub fn kind(&self) -> FaultKind {
        match self {
            Action::Kill { .. } => FaultKind::Kill,
            Action::Restart { .. } => FaultKind::Restart,
            Action::Pause { .. } => FaultKind::Pause,
            Action::Resume { .. } => FaultKind::Resume,
            Action::Partition { .. } => FaultKind::Partition,
            Action::Heal => FaultKind::Heal,
            Action::Degrade { .. } => FaultKind::Degrade,
            Action::Restore { .. } => FaultKind::Restore,
            Action::Clock { .. } => FaultKind::Clock,
            Action::Slow { .. } => FaultKind::Slow,
            Action::Disk { .. } => FaultKind::Disk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::from_name(k.name()), Some(k));
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!(FaultKind::from_name("kil"), None);
    }

    #[test]
    fn every_kind_takes_at_and_fault_and_the_union_keeps_table_order() {
        for k in FaultKind::ALL {
            assert_eq!(&k.keys()[..2], &["at", "fault"], "{k}");
        }
        assert_eq!(
            FaultKind::all_keys(),
            [
                "at",
                "fault",
                "target",
                "signal",
                "restart_after",
                "lose_unsynced",
                "torn",
                "for",
                "how",
                "topology",
                "oneway",
                "links",
                "latency",
                "jitter",
                "distribution",
                "bandwidth",
                "loss",
                "duplicate",
                "reorder",
                "gap",
                "corrupt",
                "reset",
                "stall",
                "offset",
                "rate",
                "strobe",
                "cpu",
                "fsync",
                "write",
                "read",
            ]
        );
    }

    #[test]
    fn only_degrade_keys_need_one_network() {
        let proxy = ["reset", "stall"];
        let netns = [
            "distribution",
            "loss",
            "duplicate",
            "reorder",
            "gap",
            "corrupt",
        ];
        for k in FaultKind::ALL {
            for key in k.keys() {
                let expected = if k != FaultKind::Degrade {
                    None
                } else if proxy.contains(key) {
                    Some(NetworkMode::Proxy)
                } else if netns.contains(key) {
                    Some(NetworkMode::Netns)
                } else {
                    None
                };
                assert_eq!(k.key_needs(key), expected, "{k}.{key}");
            }
        }
        // A key no kind takes needs nothing.
        assert_eq!(FaultKind::Degrade.key_needs("zap"), None);
    }

    #[test]
    fn actions_know_their_kind() {
        assert_eq!(Action::Heal.kind(), FaultKind::Heal);
        assert_eq!(
            Action::Restart {
                target: crate::plan::Target::All
            }
            .kind(),
            FaultKind::Restart
        );
    }
}
