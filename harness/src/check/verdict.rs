//! Verdicts and the result every checker returns.
//!
//! Owns how verdicts combine (Fail > Unknown > Pass) and the serialisable
//! shape of a checker's answer: which checker, its verdict, and its typed
//! details, read back from report.json by the checker's name. It must never
//! turn "could not decide" into a pass: Unknown only ever loses to Fail.

use super::id::CheckerId;
use super::ledger::LedgerDetails;
use super::linearizable::LinearizableDetails;
use super::list_append::ListAppendDetails;
use super::lost_writes::LostWritesDetails;
use super::set::SetDetails;
use crate::history::Op;
use serde::{Deserialize, Deserializer, Serialize};
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
///
/// `checker` always names the checker of `details` ([`CheckResult::new`]
/// sets it so); report.json holds both, and `details` is read back by the
/// `checker` beside it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckResult {
    /// The checker, written as plans and reports name it (`linearizable`, ...).
    pub checker: CheckerId,
    pub verdict: Verdict,
    /// One or two sentences a person can read in a terminal.
    pub summary: String,
    /// The smallest set of recorded operations that shows the violation,
    /// in invocation order; empty unless the verdict is Fail.
    pub counterexample: Vec<Op>,
    /// Checker-specific figures (per-key verdicts, step counts, ...).
    pub details: CheckDetails,
    /// The verdict is Unknown because the history held nothing this checker
    /// judges (no acknowledged operation of its kinds): an expectation on
    /// it fails rather than passing on nothing. Absent from report.json
    /// when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nothing_to_check: bool,
}

impl CheckResult {
    /// A result of the checker whose details these are.
    pub fn new(
        verdict: Verdict,
        summary: String,
        counterexample: Vec<Op>,
        details: CheckDetails,
    ) -> CheckResult {
        CheckResult {
            checker: details.checker(),
            verdict,
            summary,
            counterexample,
            details,
            nothing_to_check: false,
        }
    }

    /// The honest form of a pass on nothing: when `judged` is zero and the
    /// verdict is Pass, the result becomes Unknown with the summary
    /// "nothing to check: no acknowledged {what}" and `nothing_to_check`
    /// set. A Fail or Unknown stays as it is (a violation found in final
    /// reads alone is still a violation).
    pub fn unless_nothing_to_check(mut self, judged: usize, what: &str) -> CheckResult {
        if judged == 0 && self.verdict == Verdict::Pass {
            self.verdict = Verdict::Unknown;
            self.summary = format!("{NOTHING_TO_CHECK}: no acknowledged {what}");
            self.nothing_to_check = true;
        }
        self
    }
}

/// How the summary of a checker with nothing to judge begins.
pub const NOTHING_TO_CHECK: &str = "nothing to check";

/// The figures behind one checker's verdict. In report.json they are the
/// `details` object beside `"checker"`, with no tag of their own.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CheckDetails {
    Linearizable(LinearizableDetails),
    LostWrites(LostWritesDetails),
    LedgerAgreement(LedgerDetails),
    Set(SetDetails),
    ListAppend(ListAppendDetails),
}

impl CheckDetails {
    /// The checker these details belong to.
    pub fn checker(&self) -> CheckerId {
        match self {
            CheckDetails::Linearizable(_) => CheckerId::Linearizable,
            CheckDetails::LostWrites(_) => CheckerId::LostWrites,
            CheckDetails::LedgerAgreement(_) => CheckerId::LedgerAgreement,
            CheckDetails::Set(_) => CheckerId::Set,
            CheckDetails::ListAppend(_) => CheckerId::ListAppend,
        }
    }

    pub fn linearizable(&self) -> Option<&LinearizableDetails> {
        match self {
            CheckDetails::Linearizable(d) => Some(d),
            CheckDetails::LostWrites(_)
            | CheckDetails::LedgerAgreement(_)
            | CheckDetails::Set(_)
            | CheckDetails::ListAppend(_) => None,
        }
    }

    pub fn lost_writes(&self) -> Option<&LostWritesDetails> {
        match self {
            CheckDetails::LostWrites(d) => Some(d),
            CheckDetails::Linearizable(_)
            | CheckDetails::LedgerAgreement(_)
            | CheckDetails::Set(_)
            | CheckDetails::ListAppend(_) => None,
        }
    }

    pub fn ledger_agreement(&self) -> Option<&LedgerDetails> {
        match self {
            CheckDetails::LedgerAgreement(d) => Some(d),
            CheckDetails::Linearizable(_)
            | CheckDetails::LostWrites(_)
            | CheckDetails::Set(_)
            | CheckDetails::ListAppend(_) => None,
        }
    }

    pub fn set(&self) -> Option<&SetDetails> {
        match self {
            CheckDetails::Set(d) => Some(d),
            CheckDetails::Linearizable(_)
            | CheckDetails::LostWrites(_)
            | CheckDetails::LedgerAgreement(_)
            | CheckDetails::ListAppend(_) => None,
        }
    }

    pub fn list_append(&self) -> Option<&ListAppendDetails> {
        match self {
            CheckDetails::ListAppend(d) => Some(d),
            CheckDetails::Linearizable(_)
            | CheckDetails::LostWrites(_)
            | CheckDetails::LedgerAgreement(_)
            | CheckDetails::Set(_) => None,
        }
    }

    /// Reads the `details` of `checker` as report.json holds them. Missing
    /// fields (and a `null`) read as empty: details inform people, nothing
    /// judges a reread report by them.
    pub fn from_json(
        checker: CheckerId,
        details: serde_json::Value,
    ) -> Result<CheckDetails, serde_json::Error> {
        let details = match details {
            serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
            other => other,
        };
        Ok(match checker {
            CheckerId::Linearizable => CheckDetails::Linearizable(serde_json::from_value(details)?),
            CheckerId::LostWrites => CheckDetails::LostWrites(serde_json::from_value(details)?),
            CheckerId::LedgerAgreement => {
                CheckDetails::LedgerAgreement(serde_json::from_value(details)?)
            }
            CheckerId::Set => CheckDetails::Set(serde_json::from_value(details)?),
            CheckerId::ListAppend => CheckDetails::ListAppend(serde_json::from_value(details)?),
        })
    }
}

impl<'de> Deserialize<'de> for CheckResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// report.json's shape, details still untyped until the checker is known.
        #[derive(Deserialize)]
        struct Stored {
            checker: CheckerId,
            verdict: Verdict,
            summary: String,
            counterexample: Vec<Op>,
            #[serde(default)]
            details: serde_json::Value,
            #[serde(default)]
            nothing_to_check: bool,
        }
        let s = Stored::deserialize(d)?;
        let details = CheckDetails::from_json(s.checker, s.details).map_err(|e| {
            serde::de::Error::custom(format_args!("details of checker `{}`: {e}", s.checker))
        })?;
        Ok(CheckResult {
            checker: s.checker,
            verdict: s.verdict,
            summary: s.summary,
            counterexample: s.counterexample,
            details,
            nothing_to_check: s.nothing_to_check,
        })
    }
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
