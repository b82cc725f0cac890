//! The exit codes of `rift`, defined once: every command ends in an
//! [`Exit`], and only here does an [`Exit`] become a number.
//!
//! Owns the numbers and how a run's typed ending ([`RunEnd`]) maps to them.
//! Must never print or decide an outcome itself: commands choose the
//! [`Exit`], this module only names and numbers it.

use crate::run::many::RunEnd;
use std::process::ExitCode;

/// How a `rift` invocation ends. Ordered from best to worst, so where
/// several outcomes combine the worst wins (`max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Exit {
    /// Every expectation held (or there was nothing to do, e.g. `--help`).
    Pass = 0,
    /// An expectation failed, a checker could not decide, or `compare` found
    /// a regression.
    Fail = 1,
    /// The plan, the input files or the command line are invalid.
    Invalid = 2,
    /// The experiment could not run (binary missing, node never ready, …).
    CannotRun = 3,
    /// Interrupted by SIGINT or SIGTERM.
    Interrupted = 130,
}

impl Exit {
    /// The process exit status.
    pub const fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

impl From<RunEnd> for Exit {
    fn from(end: RunEnd) -> Exit {
        match end {
            RunEnd::Passed => Exit::Pass,
            RunEnd::Failed => Exit::Fail,
            RunEnd::CannotRun => Exit::CannotRun,
            RunEnd::Interrupted => Exit::Interrupted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Exit; 5] = [
        Exit::Pass,
        Exit::Fail,
        Exit::Invalid,
        Exit::CannotRun,
        Exit::Interrupted,
    ];

    #[test]
    fn codes_are_the_documented_ones() {
        let codes: Vec<u8> = ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 130]);
    }

    #[test]
    fn worse_is_greater_and_agrees_with_the_numbers() {
        for a in ALL {
            for b in ALL {
                assert_eq!(a.cmp(&b), a.code().cmp(&b.code()), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn run_ends_map_in_the_same_order() {
        let ends = [
            RunEnd::Passed,
            RunEnd::Failed,
            RunEnd::CannotRun,
            RunEnd::Interrupted,
        ];
        let codes: Vec<u8> = ends.iter().map(|e| Exit::from(*e).code()).collect();
        assert_eq!(codes, [0, 1, 3, 130]);
        for a in ends {
            for b in ends {
                assert_eq!(a.cmp(&b), Exit::from(a).cmp(&Exit::from(b)));
            }
        }
    }
}
