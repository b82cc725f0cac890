//! `rift run PLAN...`: many plans in turn, then one aggregate table, one
//! junit.xml and one summary.md in the results root, and one [`RunEnd`].
//!
//! Owns the order of plans, `--fail-fast` and how the plans' outcomes combine
//! into one [`RunEnd`]. It never judges a run itself: verdicts come from the
//! runner's reports; and it never defines exit codes: `crate::cli::exit`
//! maps a [`RunEnd`] to one.

use super::{run, RunOptions};
use crate::plan::Plan;
use crate::report::{aggregate_markdown, junit_xml_runs, PlanRun, ReportError};
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// How a plan's run ended, ordered from best to worst: where several plans
/// combine, the worst wins (`max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunEnd {
    /// Every expectation held, or the plan was skipped (`--fail-fast` or an
    /// interrupt; the cause is counted on its own).
    Passed,
    /// An expectation failed.
    Failed,
    /// The experiment could not run.
    CannotRun,
    /// Interrupted by SIGINT or SIGTERM.
    Interrupted,
}

impl RunEnd {
    /// How one plan's outcome ended.
    pub fn of(run: &PlanRun) -> RunEnd {
        match run {
            PlanRun::Ran { report, .. } if report.abort_reason.is_some() => RunEnd::Interrupted,
            PlanRun::Ran { .. } if run.passed() => RunEnd::Passed,
            PlanRun::Ran { .. } => RunEnd::Failed,
            PlanRun::CannotRun { .. } => RunEnd::CannotRun,
            PlanRun::Skipped { .. } => RunEnd::Passed,
        }
    }
}

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
    /// The worst [`RunEnd`] of all plans ([`RunEnd::Passed`] for none).
    pub end: RunEnd,
}

/// Runs `plans` one after another. `each` sees every outcome as soon as it
/// is known (to print it). With `fail_fast` the plans after the first one
/// that did not pass are skipped; an interrupt skips the rest and makes the
/// end [`RunEnd::Interrupted`].
pub async fn run_many(
    plans: &[Plan],
    opts: &RunOptions,
    fail_fast: bool,
    abort: watch::Receiver<bool>,
    mut each: impl FnMut(&PlanRun),
) -> ManyOutcome {
    let mut runs = Vec::with_capacity(plans.len());
    let mut end = RunEnd::Passed;
    let mut stop_reason: Option<String> = None;
    for plan in plans {
        if *abort.borrow() && stop_reason.is_none() {
            stop_reason = Some("not run: interrupted".into());
            end = end.max(RunEnd::Interrupted);
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
        end = end.max(RunEnd::of(&outcome));
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
    ManyOutcome { runs, end }
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
