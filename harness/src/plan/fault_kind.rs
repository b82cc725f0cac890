//! The closed set of fault kinds a `[[step]]` may name, and the one table of
//! the step keys each kind accepts. Validation, messages and the runner all
//! derive from here; it must never grow a wildcard arm (a new kind is one
//! variant, and the compiler lists every place that must handle it).

use super::types::Action;
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
}

impl FaultKind {
    /// Every kind, in the order messages list them.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Kill,
        FaultKind::Restart,
        FaultKind::Pause,
        FaultKind::Resume,
        FaultKind::Partition,
        FaultKind::Heal,
        FaultKind::Degrade,
        FaultKind::Restore,
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
        }
    }

    /// The kind a plan names, if any.
    pub fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Every name, for messages and suggestions.
    pub fn names() -> [&'static str; 8] {
        FaultKind::ALL.map(FaultKind::name)
    }

    /// The keys a step of this kind accepts, `at` and `fault` included, in
    /// the order messages list them.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            FaultKind::Kill => &["at", "fault", "target", "signal", "restart_after"],
            FaultKind::Restart | FaultKind::Resume => &["at", "fault", "target"],
            FaultKind::Pause => &["at", "fault", "target", "for"],
            FaultKind::Partition => &["at", "fault", "topology", "oneway", "for"],
            FaultKind::Heal => &["at", "fault"],
            FaultKind::Degrade => &[
                "at",
                "fault",
                "links",
                "latency",
                "jitter",
                "bandwidth",
                "reset",
                "stall",
                "for",
            ],
            FaultKind::Restore => &["at", "fault", "links"],
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
            FaultKind::Kill | FaultKind::Restart | FaultKind::Pause | FaultKind::Resume => false,
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
                "for",
                "topology",
                "oneway",
                "links",
                "latency",
                "jitter",
                "bandwidth",
                "reset",
                "stall",
            ]
        );
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
