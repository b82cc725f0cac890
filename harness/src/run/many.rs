//! `rift run PLAN...`: many plans in turn, then one aggregate table, one
//! junit.xml and one summary.md in the results root, and one exit code.
//!
//! Owns the order of plans, `--fail-fast` and how the plans' outcomes combine
//! into an exit code. It never judges a run itself: verdicts come from the
//! runner's reports.

use super::{run, RunOptions};
use crate::plan::Plan;
use crate::report::{aggregate_markdown, junit_xml_runs, PlanRun, ReportError};
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// Exit codes of `rift run`, worst wins: 0 every plan passed, 1 an
/// expectation failed, 3 a plan could not run, 130 interrupted.
pub const EXIT_PASS: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_CANNOT_RUN: u8 = 3;
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, thiserror::Error)]
pub enum PlanPathError {
    #[error("cannot read the directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("no plan (*.toml) in the directory {0}")]
    Empty(String),
}

/// Plan files named on the command line: files as given, a directory as
/// every `*.toml` directly inside it, sorted by name (not recursive).
pub fn expand_plan_paths(args: &[PathBuf]) -> Result<Vec<PathBuf>, PlanPathError> {
    let mut out = Vec::new();
    for a in args {
        if !a.is_dir() {
            out.push(a.clone());
            continue;
        }
        let entries = std::fs::read_dir(a).map_err(|source| PlanPathError::Dir {
            path: a.display().to_string(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
            .collect();
        if files.is_empty() {
            return Err(PlanPathError::Empty(a.display().to_string()));
        }
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

/// What `rift run` did with every plan, in order.
pub struct ManyOutcome {
    pub runs: Vec<PlanRun>,
    pub exit_code: u8,
}

/// The exit code one plan's outcome asks for.
pub fn exit_code_of(run: &PlanRun) -> u8 {
    match run {
        PlanRun::Ran { report, .. } if report.abort_reason.is_some() => EXIT_INTERRUPTED,
        PlanRun::Ran { .. } if run.passed() => EXIT_PASS,
        PlanRun::Ran { .. } => EXIT_FAIL,
        PlanRun::CannotRun { .. } => EXIT_CANNOT_RUN,
        PlanRun::Skipped { .. } => EXIT_PASS,
    }
}

/// Runs `plans` one after another. `each` sees every outcome as soon as it
/// is known (to print it). With `fail_fast` the plans after the first one
/// that did not pass are skipped; an interrupt skips the rest and makes the
/// exit code 130.
pub async fn run_many(
    plans: &[Plan],
    opts: &RunOptions,
    fail_fast: bool,
    abort: watch::Receiver<bool>,
    mut each: impl FnMut(&PlanRun),
) -> ManyOutcome {
    let mut runs = Vec::with_capacity(plans.len());
    let mut code = EXIT_PASS;
    let mut stop_reason: Option<String> = None;
    for plan in plans {
        if *abort.borrow() && stop_reason.is_none() {
            stop_reason = Some("not run: interrupted".into());
            code = code.max(EXIT_INTERRUPTED);
        }
        let outcome = match &stop_reason {
            Some(reason) => PlanRun::Skipped {
                plan: plan.name.clone(),
                reason: reason.clone(),
            },
            None => match run(plan, opts, abort.clone()).await {
                Ok(o) => PlanRun::Ran {
                    report: Box::new(o.report),
                    run_dir: o.run_dir,
                },
                Err(e) => PlanRun::CannotRun {
                    plan: plan.name.clone(),
                    error: e.to_string(),
                    log_tail: e.log_tail().map(str::to_string),
                },
            },
        };
        code = code.max(exit_code_of(&outcome));
        if fail_fast
            && stop_reason.is_none()
            && !matches!(outcome, PlanRun::Skipped { .. })
            && !outcome.passed()
        {
            stop_reason = Some(format!("not run: --fail-fast after {} failed", plan.name));
        }
        each(&outcome);
        runs.push(outcome);
    }
    ManyOutcome {
        runs,
        exit_code: code,
    }
}

/// OUT/junit.xml and OUT/summary.md over every plan of the invocation.
pub fn write_aggregate(out: &Path, runs: &[PlanRun]) -> Result<(), ReportError> {
    std::fs::create_dir_all(out).map_err(|source| ReportError::Write {
        path: out.display().to_string(),
        source,
    })?;
    crate::report::write_file(&out.join("junit.xml"), junit_xml_runs(runs).as_bytes())?;
    crate::report::write_file(&out.join("summary.md"), aggregate_markdown(runs).as_bytes())?;
    Ok(())
}
