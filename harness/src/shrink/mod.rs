//! `rift shrink RUN_DIR`: turns a failed run into the smallest plan that
//! still fails the same way.
//!
//! The run's concrete schedule (the plan's own steps and every decision of
//! a seeded nemesis, see [`source`]) becomes a list of faults; [`algo`]
//! shrinks it with real runs as the oracle: a candidate is kept when it
//! fails at least `need` of `attempts` runs with one of the original run's
//! failed checkers or expectations. Last the plan's duration is cut to the
//! end of the last fault plus a tail. Every run goes under a results root
//! of its own; the budget (`max_runs`) bounds them all.
//!
//! Owns the search over real runs and what a candidate plan is. Must never
//! print (progress lines go to a callback) or choose an exit code.

pub mod algo;
pub mod source;

use crate::plan::{self, NetworkMode, Overrides};
use crate::report::RunStatus;
use crate::run::{self, ProgressMode, RunError, RunOptions};
use algo::{Attempt, Move, Oracle, Tally};
use source::{Failure, Fault, RunReport};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// What `rift shrink` was asked to do.
#[derive(Clone, Debug)]
pub struct ShrinkOptions {
    pub run_dir: PathBuf,
    /// Failures needed ...
    pub need: usize,
    /// ... of this many attempts per candidate.
    pub attempts: usize,
    /// Runs the whole shrink may spend, the reproduction included.
    pub max_runs: usize,
    /// Where the smallest failing plan goes; `RUN_DIR/shrunk.toml` when
    /// absent.
    pub out: Option<PathBuf>,
    /// The results root of the shrink's own runs; `RUN_DIR/shrink/` when
    /// absent.
    pub results: Option<PathBuf>,
}

/// Why a shrink could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    /// The run directory, its report or its plan cannot be used (exit 2).
    #[error("{message}")]
    Input { message: String },
    /// No run could be carried out, or the result could not be written
    /// (exit 3).
    #[error("{message}")]
    CannotRun { message: String },
}

/// How a shrink ended.
#[derive(Debug)]
pub enum ShrinkEnd {
    /// A failing plan was written.
    Written(Summary),
    /// The original schedule did not fail `need` of `attempts` times; no
    /// plan was written.
    NotReproduced { tally: Tally, runs: usize },
    /// Interrupted (Ctrl-C) before a plan was written.
    Interrupted { runs: usize },
}

/// What a written shrink amounts to.
#[derive(Debug)]
pub struct Summary {
    pub out: PathBuf,
    /// How the written plan reproduced the failure (its own attempts).
    pub tally: Tally,
    pub failure: String,
    pub faults_before: usize,
    pub faults_after: usize,
    pub duration_before: Duration,
    pub duration_after: Duration,
    /// Total fault time (`for`, `restart_after`) before and after.
    pub fault_time_before: Duration,
    pub fault_time_after: Duration,
    pub runs: usize,
    /// The budget ran out (or Ctrl-C came) before the search ended, so the
    /// plan may not be minimal.
    pub exhausted: bool,
    /// The written plan's steps, described.
    pub steps: Vec<String>,
}

impl Summary {
    /// Whether anything was removed or shortened.
    pub fn smaller(&self) -> bool {
        self.faults_after < self.faults_before
            || self.fault_time_after < self.fault_time_before
            || self.duration_after < self.duration_before
    }
}

/// Runs the shrink of `opts.run_dir`. Runs are driven on `rt`; `abort`
/// turning true (Ctrl-C) stops the current run and the search. Every
/// progress line goes to `progress`.
pub fn shrink_run(
    opts: &ShrinkOptions,
    rt: &tokio::runtime::Runtime,
    abort: watch::Receiver<bool>,
    progress: &mut dyn FnMut(&str),
) -> Result<ShrinkEnd, ShrinkError> {
    if opts.need == 0 || opts.attempts == 0 || opts.need > opts.attempts {
        return Err(ShrinkError::Input {
            message: format!(
                "--need {} --attempts {}: need 1 <= need <= attempts",
                opts.need, opts.attempts
            ),
        });
    }
    // `results/<plan>/latest` moves with the next run: name the run itself.
    if opts.max_runs == 0 {
        return Err(ShrinkError::Input {
            message: "--max-runs 0: the failure must be reproduced at least once".into(),
        });
    }
    let run_dir = resolve_latest(&opts.run_dir);
    let opts = &ShrinkOptions {
        run_dir,
        ..opts.clone()
    };
    let report = RunReport::read(&opts.run_dir)?;
    let failure = report.must_have_failed()?;
    let src = source::plan_source(&opts.run_dir, &report)?;
    if let Some(w) = &src.warning {
        progress(&format!("warning: {w}"));
    }
    let schedule = source::schedule(&src, &report)?;
    let overrides = Overrides {
        network: NetworkMode::from_name(&report.cluster.network),
    };
    let results = opts
        .results
        .clone()
        .unwrap_or_else(|| opts.run_dir.join("shrink"));
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| opts.run_dir.join("shrunk.toml"));
    let candidates_dir = results.join("candidates");
    std::fs::create_dir_all(&candidates_dir).map_err(|e| ShrinkError::CannotRun {
        message: format!("cannot create {}: {e}", candidates_dir.display()),
    })?;
    // What runs is the schedule made explicit (no `[nemesis]`): that must
    // validate. Written out, so that its errors point into a file.
    let explicit = source::candidate_text(
        &schedule.doc,
        &schedule.faults,
        report.seed,
        None,
        &[format!(
            "the schedule of run {}, made explicit",
            report.run_id
        )],
    );
    let explicit_path = candidates_dir.join("000.toml");
    std::fs::write(&explicit_path, &explicit).map_err(|e| ShrinkError::CannotRun {
        message: format!("cannot write {}: {e}", explicit_path.display()),
    })?;
    let original = plan::load_with(&explicit_path, &overrides).map_err(|e| {
        let all: Vec<String> = e.errors().iter().map(|e| e.to_string()).collect();
        ShrinkError::Input {
            message: format!(
                "the run's schedule, made explicit from {}, does not validate:\n{}",
                src.path.display(),
                all.join("\n")
            ),
        }
    })?;
    // A run shortened with `--duration` records how long it lasted.
    let ran_for = Duration::from_millis((report.duration_s * 1000.0).round() as u64);
    let duration = if ran_for.abs_diff(original.duration) > Duration::from_millis(500) {
        progress(&format!(
            "the run lasted {} (the plan says {}): candidates use {}",
            plan::format_duration(ran_for),
            plan::format_duration(original.duration),
            plan::format_duration(ran_for)
        ));
        ran_for
    } else {
        original.duration
    };
    progress(&format!(
        "shrinking run {} of {} (seed {}): failed {}; {} faults ({} from the nemesis); \
runs go to {}",
        report.run_id,
        report.plan.name,
        report.seed,
        failure.text(),
        schedule.faults.len(),
        schedule.from_nemesis,
        results.display()
    ));

    let mut oracle = ClusterOracle {
        rt,
        abort,
        doc: &schedule.doc,
        seed: report.seed,
        overrides,
        results: &results,
        candidates_dir: &candidates_dir,
        failure: &failure,
        need: opts.need,
        attempts: opts.attempts,
        max_runs: opts.max_runs,
        runs: 0,
        candidates: 0,
        could_not_run: 0,
        interrupted: false,
        duration,
        progress,
        current: schedule.faults.clone(),
        last_kept: None,
    };

    // The whole schedule first: does the failure reproduce at all?
    let faults = schedule.faults.clone();
    let first = oracle.attempt_all(&faults, &Move::Original);
    if oracle.interrupted {
        return Ok(ShrinkEnd::Interrupted { runs: oracle.runs });
    }
    if !first.reproduced(opts.need) {
        if first.ran > 0 && oracle.could_not_run == first.ran {
            return Err(ShrinkError::CannotRun {
                message: format!(
                    "the original schedule could not run ({} attempt(s)); see above",
                    first.ran
                ),
            });
        }
        return Ok(ShrinkEnd::NotReproduced {
            tally: first,
            runs: oracle.runs,
        });
    }

    let shrunk = algo::shrink(faults, &mut oracle);
    let mut kept = shrunk.faults;
    // The tally of what is kept: the last failing candidate is the result.
    let mut tally = match &oracle.last_kept {
        Some((f, t, d)) if *f == kept && *d == oracle.duration => *t,
        Some(_) | None => first,
    };
    // Whether the search (or the cut) was stopped by the budget or Ctrl-C.
    let mut exhausted = shrunk.exhausted || oracle.exhausted();
    if !oracle.exhausted() {
        if let Some(cut) = source::cut_duration(&kept, oracle.duration) {
            let before = oracle.duration;
            oracle.duration = cut;
            let what = format!(
                "cut the duration to {} (from {})",
                plan::format_duration(cut),
                plan::format_duration(before)
            );
            let t = oracle.attempt(&kept, &what);
            if t.reproduced(opts.need) {
                tally = t;
            } else {
                oracle.duration = before;
                // Undecided: the attempts it needed were not run.
                exhausted |= t.failed + (opts.attempts - t.ran) >= opts.need;
            }
        }
    }
    if oracle.interrupted {
        return Ok(ShrinkEnd::Interrupted { runs: oracle.runs });
    }
    kept.sort_by_key(|f| f.at().unwrap_or_default());

    let mut header = vec![
        format!(
            "Shrunk by `rift shrink` from run {} of plan {} ({}), seed {}.",
            report.run_id,
            report.plan.name,
            opts.run_dir.display(),
            report.seed
        ),
        format!(
            "Failed the same way ({}) in {} of {} attempts; {} faults before, {} after; {} runs spent{}.",
            failure.text(),
            tally.failed,
            tally.ran,
            schedule.faults.len(),
            kept.len(),
            oracle.runs,
            if exhausted {
                " (budget spent: may not be minimal)"
            } else {
                ""
            }
        ),
        "Relative paths (client programs, scripts) are as in the original plan: relative to \
where rift is run."
            .to_string(),
    ];
    if i64::try_from(report.seed).is_err() {
        header.push(format!(
            "The seed {} does not fit a plan: run this plan with `rift run --seed {}`.",
            report.seed, report.seed
        ));
    }
    let text = source::candidate_text(
        &schedule.doc,
        &kept,
        report.seed,
        Some(oracle.duration),
        &header,
    );
    plan::parse_with(&text, &out, &oracle.overrides).map_err(|e| ShrinkError::CannotRun {
        message: format!("the shrunk plan does not validate (a bug in rift shrink): {e}"),
    })?;
    std::fs::write(&out, &text).map_err(|e| ShrinkError::CannotRun {
        message: format!("cannot write {}: {e}", out.display()),
    })?;
    Ok(ShrinkEnd::Written(Summary {
        out,
        tally,
        failure: failure.text(),
        faults_before: schedule.faults.len(),
        faults_after: kept.len(),
        duration_before: duration,
        duration_after: oracle.duration,
        fault_time_before: schedule.faults.iter().map(Fault::total).sum(),
        fault_time_after: kept.iter().map(Fault::total).sum(),
        runs: oracle.runs,
        exhausted,
        steps: kept.iter().map(Fault::describe).collect(),
    }))
}

/// Whether a run ended because Ctrl-C came before its cluster was ready;
/// every other error is a run that could not run.
fn interrupted_before_ready(e: &RunError) -> bool {
    match e {
        RunError::Interrupted => true,
        RunError::RunDir { .. }
        | RunError::Cluster(_)
        | RunError::Net(_)
        | RunError::NoLeader { .. }
        | RunError::NeedsPrivilege(_)
        | RunError::NeedsCgroup(_)
        | RunError::Disk(_)
        | RunError::Report(_)
        | RunError::Http(_)
        | RunError::Client(_)
        | RunError::Docker { .. }
        | RunError::DockerRemote(_)
        | RunError::DockerNetwork(_)
        | RunError::DockerBridgeFull { .. }
        | RunError::DockerRemoteHost(_) => false,
    }
}

/// `dir` with a final symlink (`latest`) replaced by what it points at.
fn resolve_latest(dir: &Path) -> PathBuf {
    match std::fs::read_link(dir) {
        Ok(target) if target.is_relative() => match dir.parent() {
            Some(parent) => parent.join(target),
            None => target,
        },
        Ok(target) => target,
        Err(_) => dir.to_path_buf(),
    }
}

/// Real runs of candidate plans as the oracle.
struct ClusterOracle<'a> {
    rt: &'a tokio::runtime::Runtime,
    abort: watch::Receiver<bool>,
    doc: &'a toml::Table,
    seed: u64,
    overrides: Overrides,
    results: &'a Path,
    candidates_dir: &'a Path,
    failure: &'a Failure,
    need: usize,
    attempts: usize,
    max_runs: usize,
    runs: usize,
    candidates: usize,
    /// Attempts that could not run at all.
    could_not_run: usize,
    interrupted: bool,
    /// The duration candidates run for.
    duration: Duration,
    progress: &'a mut dyn FnMut(&str),
    /// The list the search holds now (the last that failed).
    current: Vec<Fault>,
    /// The last candidate that failed, its tally and duration.
    last_kept: Option<(Vec<Fault>, Tally, Duration)>,
}

impl ClusterOracle<'_> {
    /// Runs a candidate the search made by `what` from the current list.
    fn attempt_all(&mut self, faults: &[Fault], what: &Move) -> Tally {
        let origins = |ix: &[usize]| -> String {
            ix.iter()
                .filter_map(|i| self.current.get(*i).map(|f| f.origin.clone()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let what = match what {
            Move::Original => "the original schedule".to_string(),
            Move::Delete { indices, chunks } => {
                format!("delete {} (1/{chunks} of the faults)", origins(indices))
            }
            Move::ShortenAll => "halve every duration".to_string(),
            Move::Shorten { index } => format!("halve the durations of {}", origins(&[*index])),
        };
        let t = self.attempt(faults, &what);
        if t.reproduced(self.need) {
            self.current = faults.to_vec();
        }
        t
    }

    /// Writes the candidate plan, runs it up to `attempts` times and prints
    /// one line.
    fn attempt(&mut self, faults: &[Fault], what: &str) -> Tally {
        self.candidates += 1;
        let n = self.candidates;
        let text = source::candidate_text(
            self.doc,
            faults,
            self.seed,
            Some(self.duration),
            &[format!("rift shrink candidate {n}: {what}")],
        );
        let path = self.candidates_dir.join(format!("{n:03}.toml"));
        let head = format!(
            "[{n}] {what}: {} fault(s), {}",
            faults.len(),
            plan::format_duration(self.duration)
        );
        if let Err(e) = std::fs::write(&path, &text) {
            (self.progress)(&format!("{head}: cannot write {}: {e}", path.display()));
            return Tally::default();
        }
        let plan = match plan::load_with(&path, &self.overrides) {
            Ok(p) => p,
            Err(e) => {
                let first = e
                    .errors()
                    .first()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                (self.progress)(&format!("{head}: not a valid plan ({first}); not kept"));
                return Tally::default();
            }
        };
        let opts = RunOptions {
            out: self.results.to_path_buf(),
            seed: Some(self.seed),
            label: Some("shrink".into()),
            duration: None,
            progress: ProgressMode::Quiet,
            sample_node_program: None,
        };
        let mut notes = Vec::new();
        let tally = algo::m_of_r(self.need, self.attempts, || {
            if self.interrupted || *self.abort.borrow() {
                self.interrupted = true;
                return Attempt::NotRun;
            }
            if self.runs >= self.max_runs {
                return Attempt::NotRun;
            }
            self.runs += 1;
            let ran = self.rt.block_on(run::run(&plan, &opts, self.abort.clone()));
            match ran {
                Err(e) if interrupted_before_ready(&e) => {
                    self.interrupted = true;
                    Attempt::NotRun
                }
                Err(e) => {
                    self.could_not_run += 1;
                    notes.push(format!("could not run: {e}"));
                    Attempt::Other
                }
                Ok(o) => {
                    if *self.abort.borrow() {
                        self.interrupted = true;
                    }
                    if o.report.status == RunStatus::Aborted {
                        notes.push("aborted".into());
                        return Attempt::Other;
                    }
                    let read = serde_json::to_value(&o.report)
                        .and_then(serde_json::from_value::<RunReport>);
                    let Ok(r) = read else {
                        notes.push("its report could not be read back".into());
                        return Attempt::Other;
                    };
                    if r.verdict == "pass" {
                        return Attempt::Passed;
                    }
                    let f = Failure::of(&r);
                    if self.failure.shared_by(&f) {
                        Attempt::SameFailure
                    } else {
                        notes.push(format!("failed differently: {}", f.text()));
                        Attempt::Other
                    }
                }
            }
        });
        let kept = tally.reproduced(self.need);
        if kept {
            self.last_kept = Some((faults.to_vec(), tally, self.duration));
        }
        let mut line = format!(
            "{head}: {}/{} failed{} -> {}",
            tally.failed,
            tally.ran,
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            },
            if kept { "kept" } else { "not kept" }
        );
        if tally.ran < self.attempts && !kept && self.runs >= self.max_runs {
            line.push_str(" (budget spent)");
        }
        (self.progress)(&line);
        tally
    }
}

impl Oracle<Fault> for ClusterOracle<'_> {
    fn fails(&mut self, faults: &[Fault], what: &Move) -> bool {
        self.attempt_all(faults, what).reproduced(self.need)
    }

    fn exhausted(&self) -> bool {
        self.interrupted || self.runs >= self.max_runs
    }
}
