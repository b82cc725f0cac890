//! Verdicts and the result every checker returns.
//!
//! Owns how verdicts combine (Fail > Unknown > Pass) and the serialisable
//! shape of a checker's answer. It must never turn "could not decide" into a
//! pass: Unknown only ever loses to Fail.

use crate::history::Op;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The answer of one checker, or of several combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The property held on everything that was checked.
    #[default]
    Pass,
    /// The property is violated; a counterexample exists.
    Fail,
    /// The checker could not decide (budget exhausted, missing data).
    Unknown,
}

impl Verdict {
    /// Combines two verdicts: any Fail wins, then any Unknown, else Pass.
    pub fn and(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Fail, _) | (_, Verdict::Fail) => Verdict::Fail,
            (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
            (Verdict::Pass, Verdict::Pass) => Verdict::Pass,
        }
    }

    /// Combines any number of verdicts; no verdict at all is a Pass.
    pub fn all<I: IntoIterator<Item = Verdict>>(verdicts: I) -> Verdict {
        verdicts.into_iter().fold(Verdict::Pass, Verdict::and)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Unknown => "unknown",
        }
    }
}

impl FromIterator<Verdict> for Verdict {
    fn from_iter<I: IntoIterator<Item = Verdict>>(iter: I) -> Self {
        Verdict::all(iter)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a checker found, ready for report.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Checker name as used in plans and reports (`linearizable`, `lost_writes`).
    pub checker: String,
    pub verdict: Verdict,
    /// One or two sentences a person can read in a terminal.
    pub summary: String,
    /// The smallest set of recorded operations that shows the violation,
    /// in invocation order; empty unless the verdict is Fail.
    pub counterexample: Vec<Op>,
    /// Checker-specific figures (per-key verdicts, step counts, ...).
    pub details: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_beats_unknown_beats_pass() {
        use Verdict::*;
        let all = [Pass, Fail, Unknown];
        for a in all {
            for b in all {
                let expected = if a == Fail || b == Fail {
                    Fail
                } else if a == Unknown || b == Unknown {
                    Unknown
                } else {
                    Pass
                };
                assert_eq!(a.and(b), expected, "{a} and {b}");
                assert_eq!(a.and(b), b.and(a));
            }
        }
        assert_eq!(Verdict::all([]), Pass);
        assert_eq!(
            [Pass, Unknown, Pass].into_iter().collect::<Verdict>(),
            Unknown
        );
        assert_eq!([Unknown, Fail].into_iter().collect::<Verdict>(), Fail);
    }

    #[test]
    fn verdicts_serialise_lowercase() {
        assert_eq!(
            serde_json::to_string(&Verdict::Unknown).ok().as_deref(),
            Some("\"unknown\"")
        );
        let back: Result<Verdict, _> = serde_json::from_str("\"fail\"");
        assert_eq!(back.ok(), Some(Verdict::Fail));
    }
}
