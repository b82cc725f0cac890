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

/// How `--seeds` spreads the seeds of `--repeat K`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SeedMode {
    /// seed, seed+1, ..., seed+K-1: K different experiments.
    #[default]
    Consecutive,
    /// The same seed K times: how much a run varies by itself (noise).
    Same,
}

impl SeedMode {
    pub fn from_name(name: &str) -> Option<SeedMode> {
        match name {
            "consecutive" => Some(SeedMode::Consecutive),
            "same" => Some(SeedMode::Same),
            _ => None,
        }
    }

    /// The seed of run `i` (from 0) of a repetition starting at `base`.
    pub fn seed(self, base: u64, i: usize) -> u64 {
        match self {
            SeedMode::Consecutive => base.wrapping_add(i as u64),
            SeedMode::Same => base,
        }
    }
}

/// `--repeat K --seeds MODE`: each plan runs `times` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    /// At least 1.
    pub times: usize,
    pub seeds: SeedMode,
}

impl Default for Repeat {
    fn default() -> Self {
        Repeat {
            times: 1,
            seeds: SeedMode::Consecutive,
        }
    }
}

/// One run of a repeated plan: its seed, how it ended and why it did not pass.
#[derive(Debug, Clone, PartialEq)]
pub struct RepeatRow {
    pub seed: u64,
    /// `PASS`, `FAIL`, `UNKNOWN`, `ABORTED`, `CANNOT RUN` or `SKIPPED`.
    pub verdict: String,
    /// Each failed (or undecided) expectation by name, or why it could not
    /// run; empty when it passed.
    pub why: Vec<String>,
    pub passed: bool,
}

impl RepeatRow {
    pub fn of(seed: u64, run: &PlanRun) -> RepeatRow {
        let (verdict, why) = match run {
            PlanRun::Ran { report, .. } => (
                report.outcome_word().to_string(),
                report
                    .expectations
                    .iter()
                    .filter(|e| e.verdict != crate::check::verdict::Verdict::Pass)
                    .map(|e| {
                        let word = crate::report::verdict_word(e.verdict);
                        if e.message.is_empty() {
                            format!(
                                "{} {word}: measured {}, bound {}",
                                e.name, e.measured, e.bound
                            )
                        } else {
                            format!("{} {word}: {}", e.name, e.message)
                        }
                    })
                    .chain(report.abort_reason.iter().cloned())
                    .collect(),
            ),
            PlanRun::CannotRun { error, .. } => ("CANNOT RUN".to_string(), vec![error.clone()]),
            PlanRun::Skipped { reason, .. } => ("SKIPPED".to_string(), vec![reason.clone()]),
        };
        RepeatRow {
            seed,
            verdict,
            why,
            passed: run.passed(),
        }
    }
}

/// The runs of one plan under `--repeat`.
#[derive(Debug, Clone, PartialEq)]
pub struct Repeated {
    pub plan: String,
    /// The plan file, as the replay command names it.
    pub path: PathBuf,
    pub rows: Vec<RepeatRow>,
}

impl Repeated {
    /// The table `rift run --repeat` ends with: seed, verdict, why (one line
    /// each), then the command that replays each failed seed. `flags` are
    /// the run's flags a replay needs too (`--network proxy`).
    pub fn table(&self, flags: &str) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let passed = self.rows.iter().filter(|r| r.passed).count();
        let _ = writeln!(
            s,
            "{}: {} of {} runs passed",
            self.plan,
            passed,
            self.rows.len()
        );
        let width = self
            .rows
            .iter()
            .map(|r| r.seed.to_string().len())
            .max()
            .unwrap_or(0)
            .max(4);
        let _ = writeln!(s, "  {:<width$}  {:<10}  why", "seed", "verdict");
        for r in &self.rows {
            let mut why = r.why.iter();
            let line = format!(
                "  {:<width$}  {:<10}  {}",
                r.seed,
                r.verdict,
                why.next().map(String::as_str).unwrap_or("")
            );
            let _ = writeln!(s, "{}", line.trim_end());
            for w in why {
                let _ = writeln!(s, "  {:<width$}  {:<10}  {w}", "", "");
            }
        }
        let mut replayed: Vec<u64> = Vec::new();
        for r in self.rows.iter().filter(|r| !r.passed) {
            if replayed.contains(&r.seed) {
                continue;
            }
            replayed.push(r.seed);
            let _ = writeln!(
                s,
                "  replay seed {}: rift run {} --seed {}{flags}",
                r.seed,
                shell_word(&self.path.display().to_string()),
                r.seed
            );
        }
        s
    }
}

/// `s` quoted for a POSIX shell when it needs it.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// What `rift run` did with every plan, in order.
pub struct ManyOutcome {
    /// With `--repeat`, each plan's runs in a row: `times` entries per plan.
    pub runs: Vec<PlanRun>,
    /// With `--repeat K` (K > 1): each plan's runs by seed.
    pub repeated: Vec<Repeated>,
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
    repeat: Repeat,
    fail_fast: bool,
    abort: watch::Receiver<bool>,
    mut each: impl FnMut(&PlanRun),
) -> ManyOutcome {
    let mut runs = Vec::with_capacity(plans.len() * repeat.times.max(1));
    let mut repeated = Vec::new();
    let mut end = RunEnd::Passed;
    let mut stop_reason: Option<String> = None;
    for plan in plans {
        // Without --repeat the runner picks (and prints) a seed if none is given.
        let base = match (repeat.times > 1, opts.seed.or(plan.seed)) {
            (false, seed) => seed,
            (true, Some(seed)) => Some(seed),
            (true, None) => {
                let seed = super::clock::random_seed();
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "rift: {}: no seed given; repeating from seed {seed}",
                    plan.name
                );
                Some(seed)
            }
        };
        let mut rows = Vec::new();
        for i in 0..repeat.times.max(1) {
            let mut opts = opts.clone();
            opts.seed = base.map(|b| repeat.seeds.seed(b, i));
            if *abort.borrow() && stop_reason.is_none() {
                stop_reason = Some("not run: interrupted".into());
                end = end.max(RunEnd::Interrupted);
            }
            let (outcome, seed) = match &stop_reason {
                Some(reason) => (
                    PlanRun::Skipped {
                        plan: plan.name.clone(),
                        reason: reason.clone(),
                    },
                    opts.seed,
                ),
                None => match run(plan, &opts, abort.clone()).await {
                    Ok(o) => {
                        let seed = o.report.seed;
                        (
                            PlanRun::Ran {
                                report: Box::new(o.report),
                                run_dir: o.run_dir,
                            },
                            Some(seed),
                        )
                    }
                    Err(e) => (
                        PlanRun::CannotRun {
                            plan: plan.name.clone(),
                            error: e.to_string(),
                            log_tail: e.log_tail().map(str::to_string),
                        },
                        opts.seed,
                    ),
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
            if let Some(seed) = seed {
                rows.push(RepeatRow::of(seed, &outcome));
            }
            runs.push(outcome);
        }
        if repeat.times > 1 {
            repeated.push(Repeated {
                plan: plan.name.clone(),
                path: plan.path.clone(),
                rows,
            });
        }
    }
    ManyOutcome {
        runs,
        repeated,
        end,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_consecutive_or_the_same() {
        assert_eq!(SeedMode::Consecutive.seed(41, 2), 43);
        assert_eq!(SeedMode::Consecutive.seed(u64::MAX, 1), 0);
        assert_eq!(SeedMode::Same.seed(41, 2), 41);
        assert_eq!(SeedMode::from_name("same"), Some(SeedMode::Same));
        assert_eq!(SeedMode::from_name("random"), None);
    }

    #[test]
    fn the_repeat_table_says_why_and_how_to_replay() {
        let row = |seed, passed: bool, why: &[&str]| RepeatRow {
            seed,
            verdict: if passed { "PASS" } else { "FAIL" }.into(),
            why: why.iter().map(|s| s.to_string()).collect(),
            passed,
        };
        let r = Repeated {
            plan: "p".into(),
            path: PathBuf::from("plans/my plan.toml"),
            rows: vec![
                row(7, true, &[]),
                row(
                    8,
                    false,
                    &["linearizable FAIL: 1 key", "lost_writes FAIL: 2 lost"],
                ),
            ],
        };
        assert_eq!(
            r.table(" --network proxy"),
            "p: 1 of 2 runs passed\n\
\x20 seed  verdict     why\n\
\x20 7     PASS\n\
\x20 8     FAIL        linearizable FAIL: 1 key\n\
\x20                   lost_writes FAIL: 2 lost\n\
\x20 replay seed 8: rift run 'plans/my plan.toml' --seed 8 --network proxy\n"
        );
    }
}
