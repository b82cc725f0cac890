//! The one identity of every checker: plans name it (`finds`), the runner
//! selects by it, `rift check` reruns by it and reports key on it.
//!
//! Adding a checker is one variant here plus its module; the compiler then
//! lists every place that must handle it (no wildcard arms over this enum).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A checker that judges a recorded history (and the final state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckerId {
    /// Per-key register linearizability (reads, writes, cas).
    Linearizable,
    /// Acknowledged writes missing from the final state, or phantom values.
    LostWrites,
    /// Every node's hash chain agrees and holds each acknowledged append.
    LedgerAgreement,
    /// Set-full: every acknowledged add stays visible; no element appears
    /// that nobody added.
    Set,
    /// List-append: every read of a key is a prefix of one order of its
    /// appends, consistent with real time.
    ListAppend,
}

impl CheckerId {
    /// Every checker, in the order they run and are reported.
    pub const ALL: [CheckerId; 5] = [
        CheckerId::Linearizable,
        CheckerId::LostWrites,
        CheckerId::LedgerAgreement,
        CheckerId::Set,
        CheckerId::ListAppend,
    ];

    /// The name plans and reports use.
    pub fn name(self) -> &'static str {
        match self {
            CheckerId::Linearizable => "linearizable",
            CheckerId::LostWrites => "lost_writes",
            CheckerId::LedgerAgreement => "ledger_agreement",
            CheckerId::Set => "set",
            CheckerId::ListAppend => "list_append",
        }
    }

    /// The checker a plan or report names, if any.
    pub fn from_name(name: &str) -> Option<CheckerId> {
        CheckerId::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Every name, for messages and suggestions.
    pub fn names() -> [&'static str; 5] {
        CheckerId::ALL.map(CheckerId::name)
    }
}

impl fmt::Display for CheckerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so `{:<18}` lines checker names up in tables.
        f.pad(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serialise_as_plans_write_them() {
        for c in CheckerId::ALL {
            assert_eq!(CheckerId::from_name(c.name()), Some(c));
            assert_eq!(
                serde_json::to_string(&c).ok(),
                Some(format!("\"{}\"", c.name()))
            );
        }
        assert_eq!(CheckerId::from_name("availability"), None);
    }
}
