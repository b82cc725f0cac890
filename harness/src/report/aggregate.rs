//! The end of a run of many plans: one table for the terminal and one
//! Markdown summary over every plan. Pure rendering of finished results; it
//! never decides a verdict itself beyond combining the plans'.

use super::text::{md_cell, verdict_word};
use super::Report;
use crate::check::verdict::Verdict;
use std::fmt::Write;
use std::path::PathBuf;

/// What became of one plan in `rift run PLAN...`.
#[derive(Clone, Debug)]
pub enum PlanRun {
    /// The plan ran (possibly aborted part-way); its report was written.
    Ran {
        report: Box<Report>,
        run_dir: PathBuf,
    },
    /// The harness could not carry it out (exit code 3).
    CannotRun {
        plan: String,
        error: String,
        /// The last lines of a failing node's log, when a node was the cause.
        log_tail: Option<String>,
    },
    /// Not started: `--fail-fast` after an earlier failure, or an interrupt.
    Skipped { plan: String, reason: String },
}

impl PlanRun {
    pub fn plan(&self) -> &str {
        match self {
            PlanRun::Ran { report, .. } => &report.plan.name,
            PlanRun::CannotRun { plan, .. } | PlanRun::Skipped { plan, .. } => plan,
        }
    }

    /// `PASS`, `FAIL`, `UNKNOWN`, `ABORTED`, `CANNOT RUN` or `SKIPPED`.
    pub fn word(&self) -> &'static str {
        match self {
            PlanRun::Ran { report, .. } if report.abort_reason.is_some() => "ABORTED",
            PlanRun::Ran { report, .. } => verdict_word(report.verdict),
            PlanRun::CannotRun { .. } => "CANNOT RUN",
            PlanRun::Skipped { .. } => "SKIPPED",
        }
    }

    /// Whether the plan passed: ran to completion with every expectation held.
    pub fn passed(&self) -> bool {
        matches!(self, PlanRun::Ran { report, .. }
            if report.abort_reason.is_none() && report.verdict == Verdict::Pass)
    }

    fn figures(&self) -> [String; 4] {
        match self {
            PlanRun::Ran { report: r, .. } => [
                format!("{:.2}%", r.availability.overall.ratio() * 100.0),
                crate::check::availability::Latency::text(r.latency.p99(), ""),
                match r.worst_recovery_s() {
                    None => "-".into(),
                    Some(s) if s.is_finite() => format!("{s:.2}s"),
                    Some(_) => "never".into(),
                },
                format!("{:.0}", r.ops.per_second),
            ],
            _ => ["-".into(), "-".into(), "-".into(), "-".into()],
        }
    }

    /// Where a person should look: report.html of the run, else the reason.
    fn pointer(&self) -> String {
        match self {
            PlanRun::Ran { run_dir, .. } => run_dir.join("report.html").display().to_string(),
            PlanRun::CannotRun { error, .. } => error.clone(),
            PlanRun::Skipped { reason, .. } => reason.clone(),
        }
    }

    /// Failed (or undecided) expectations, as `name (measured X, bound Y)`.
    fn failures(&self) -> Vec<String> {
        match self {
            PlanRun::Ran { report, .. } => report
                .expectations
                .iter()
                .filter(|e| e.verdict != Verdict::Pass)
                .map(|e| format!("{} (measured {}, bound {})", e.name, e.measured, e.bound))
                .collect(),
            PlanRun::CannotRun { .. } | PlanRun::Skipped { .. } => Vec::new(),
        }
    }
}

const HEADERS: [&str; 7] = [
    "plan",
    "verdict",
    "availability",
    "p99",
    "recovery",
    "ops/s",
    "report",
];

/// The table printed after the last plan: one row per plan, and under a
/// failing row what failed.
pub fn aggregate_table(runs: &[PlanRun]) -> String {
    let plan_w = runs
        .iter()
        .map(|r| r.plan().len())
        .chain([HEADERS[0].len()])
        .max()
        .unwrap_or(4);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  {:<plan_w$}  {:<10}  {:>12}  {:>9}  {:>8}  {:>6}  {}",
        HEADERS[0], HEADERS[1], HEADERS[2], HEADERS[3], HEADERS[4], HEADERS[5], HEADERS[6]
    );
    for r in runs {
        let [a, p99, rec, ops] = r.figures();
        let _ = writeln!(
            s,
            "  {:<plan_w$}  {:<10}  {a:>12}  {p99:>9}  {rec:>8}  {ops:>6}  {}",
            r.plan(),
            r.word(),
            r.pointer()
        );
        for f in r.failures() {
            let _ = writeln!(s, "  {:<plan_w$}    failed: {f}", "");
        }
    }
    let passed = runs.iter().filter(|r| r.passed()).count();
    let _ = writeln!(
        s,
        "  {passed} of {} plans passed: {}",
        runs.len(),
        if passed == runs.len() { "PASS" } else { "FAIL" }
    );
    s
}

/// OUT/summary.md: the whole run for a CI job summary.
pub fn aggregate_markdown(runs: &[PlanRun]) -> String {
    let passed = runs.iter().filter(|r| r.passed()).count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## rift: {passed} of {} plans passed — {}\n",
        runs.len(),
        if passed == runs.len() { "PASS" } else { "FAIL" }
    );
    let _ = writeln!(s, "| {} | failed |", HEADERS.join(" | "));
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---|---|");
    for r in runs {
        let [a, p99, rec, ops] = r.figures();
        let failures = r.failures().join("; ");
        let _ = writeln!(
            s,
            "| {} | {} | {a} | {p99} | {rec} | {ops} | {} | {} |",
            md_cell(r.plan()),
            r.word(),
            md_cell(&r.pointer()),
            md_cell(&failures)
        );
    }
    s
}
