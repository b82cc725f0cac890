//! `rift compare BASE NEW`: every run of each plan on both sides, metric by
//! metric, with a verdict that tells a regression from noise
//! (docs/compare.md has the rule table).
//!
//! It reads reports only; it never runs anything. Latency percentiles are
//! recomputed from the stored histograms, not taken from rounded figures.
//! Reports of another schema version are refused, never guessed at. The
//! statistics are [`super::stats`]'s; the HTML page is
//! [`super::compare_html`]'s.

use super::stats::{self, Difference, Summary, MIN_RUNS};
use super::text::{md_cell, verdict_word};
use super::{Report, ReportError};
use crate::check::verdict::Verdict;
use crate::check::CheckerId;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// How much worse a metric may get before it counts as a regression.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Thresholds {
    /// Relative latency increase allowed (p50, p99): 0.20 = 20 %.
    pub max_latency_regression: f64,
    /// Latency increases smaller than this many milliseconds are noise.
    pub latency_slack_ms: f64,
    /// Smallest change of availability accepted, as a fraction: -0.005 =
    /// a drop of half a percentage point.
    pub min_availability_delta: f64,
    /// Relative increase of recovery times allowed.
    pub max_recovery_regression: f64,
    /// Recovery increases smaller than this many seconds are noise.
    pub recovery_slack_s: f64,
    /// Relative drop of throughput (ops/s) allowed.
    pub max_throughput_drop: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_latency_regression: 0.20,
            latency_slack_ms: 2.0,
            min_availability_delta: -0.005,
            max_recovery_regression: 0.50,
            recovery_slack_s: 0.5,
            max_throughput_drop: 0.20,
        }
    }
}

/// Everything that shapes a comparison besides the reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Options {
    pub thresholds: Thresholds,
    /// Confidence level of the interval of the difference (0.95).
    pub confidence: f64,
    /// Only the newest N runs of each plan on each side; `None`: all.
    pub latest: Option<usize>,
    /// Judge liveness metrics even when the sides ran different seeds.
    pub across_schedules: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            thresholds: Thresholds::default(),
            confidence: 0.95,
            latest: None,
            across_schedules: false,
        }
    }
}

/// Parses `20%` or `0.2` into 0.2, `-0.5%` into -0.005.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v / scale),
        _ => Err(format!(
            "expected a number or a percentage such as 20% or -0.5%, found `{s}`"
        )),
    }
}

/// Why a metric could not be judged either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unsure {
    /// One run per side: how much a run varies by itself is unknown.
    NoiseUnknown,
    /// Fewer than three runs on a side (and no base noise to judge by).
    TooFewRuns,
    /// The interval of the difference reaches past the threshold and
    /// includes zero.
    WideInterval,
}

/// Why a metric is shown but not judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotJudged {
    /// Never judged (a count kept for context).
    Context,
    /// The sides ran different seeds, hence different fault schedules.
    DifferentSchedules,
    /// A side has no value (nothing served, nothing to recover from).
    NotMeasured,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricVerdict {
    /// The difference's interval includes zero and lies within ±threshold.
    Same,
    LikelyBetter,
    /// Worse beyond noise, but within the threshold.
    LikelyWorse,
    Regression,
    Inconclusive {
        /// Runs per side that would likely settle it (`None`: unknown).
        runs_needed: Option<usize>,
        why: Unsure,
    },
    /// Shown, not judged.
    Info {
        why: NotJudged,
    },
}

impl MetricVerdict {
    pub fn is_regression(self) -> bool {
        matches!(self, MetricVerdict::Regression)
    }

    /// What the table, Markdown and HTML say.
    pub fn word(self) -> String {
        match self {
            MetricVerdict::Same => "same".into(),
            MetricVerdict::LikelyBetter => "likely better".into(),
            MetricVerdict::LikelyWorse => "likely worse (within threshold)".into(),
            MetricVerdict::Regression => "REGRESSION".into(),
            MetricVerdict::Inconclusive { runs_needed, why } => {
                let why = match why {
                    Unsure::NoiseUnknown => "inconclusive: noise unknown (1 run per side)",
                    Unsure::TooFewRuns => "inconclusive: too few runs (< 3 on a side)",
                    Unsure::WideInterval => "inconclusive: interval too wide",
                };
                match runs_needed {
                    Some(k) => format!("{why}; ~{k} runs per side needed"),
                    None => why.to_string(),
                }
            }
            MetricVerdict::Info { why } => match why {
                NotJudged::Context | NotJudged::NotMeasured => String::new(),
                NotJudged::DifferentSchedules => "not compared: different schedules".into(),
            },
        }
    }
}

/// One metric of one plan over all runs of both sides.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricDelta {
    pub metric: String,
    pub unit: &'static str,
    /// One value per run that measured it (finite values only).
    pub base_values: Vec<f64>,
    pub new_values: Vec<f64>,
    /// Runs that gave this metric a value (or a verdict), per side.
    pub base_runs: usize,
    pub new_runs: usize,
    pub base: Option<Summary>,
    pub new: Option<Summary>,
    /// NEW − BASE of the medians, its interval and the cross-check.
    pub difference: Option<Difference>,
    /// The change that counts as a regression, in `unit`, towards worse.
    pub threshold: Option<f64>,
    /// For liveness metrics: whether a larger value is better.
    pub higher_is_better: bool,
    /// The same for people.
    pub base_text: String,
    pub new_text: String,
    pub delta_text: String,
    pub verdict: MetricVerdict,
    /// Why it is a regression (the runs named, the threshold crossed), or
    /// what else to know; may be empty.
    pub note: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanPresence {
    Both,
    /// In BASE only: the new side did not run it (shown, not a regression).
    BaseOnly,
    NewOnly,
}

/// One run as the comparison used it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRef {
    pub run_id: String,
    pub path: String,
    pub seed: u64,
    pub started_at: String,
    pub verdict: Verdict,
    pub plan_hash: String,
    pub rift_version: String,
    pub label: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanComparison {
    pub plan: String,
    pub presence: PlanPresence,
    pub base_runs: Vec<RunRef>,
    pub new_runs: Vec<RunRef>,
    /// Whether both sides ran the same set of seeds.
    pub same_schedules: bool,
    /// Plan-level remarks: mixed plan hashes on a side, seeds that differ.
    pub notes: Vec<String>,
    pub metrics: Vec<MetricDelta>,
}

/// What one side holds, for the header.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SideInfo {
    pub path: String,
    pub runs: usize,
    pub seeds: Vec<u64>,
    pub plan_hashes: Vec<String>,
    pub rift_versions: Vec<String>,
    pub labels: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub schema_version: u32,
    pub base: SideInfo,
    pub new: SideInfo,
    pub options: Options,
    /// What differs between the sides, said before anything else.
    pub warnings: Vec<String>,
    pub plans: Vec<PlanComparison>,
    pub regressions: usize,
}

/// A report and the file it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub report: Report,
}

/// Reads every report named by `path`: a report.json file; a run directory
/// holding one; a plan's results directory (all its runs); or a results
/// tree (all runs of every plan), searched three levels deep without
/// following links (`latest`). Runs are found by scanning, so runs deleted
/// by hand, or a missing or stale runs.json, change nothing.
pub fn load_reports(path: &Path) -> Result<Vec<Loaded>, ReportError> {
    if path.is_file() {
        return Ok(vec![Loaded {
            path: path.to_path_buf(),
            report: Report::read(path)?,
        }]);
    }
    let direct = path.join("report.json");
    if direct.is_file() {
        return Ok(vec![Loaded {
            report: Report::read(&direct)?,
            path: direct,
        }]);
    }
    if !path.is_dir() {
        return Err(ReportError::Read {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        });
    }
    let mut found = Vec::new();
    find_reports(path, 3, &mut found);
    found.sort();
    if found.is_empty() {
        return Err(ReportError::NoReports {
            path: path.display().to_string(),
        });
    }
    found
        .into_iter()
        .map(|p| {
            Ok(Loaded {
                report: Report::read(&p)?,
                path: p,
            })
        })
        .collect()
}

fn find_reports(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        // Symlinks (`latest`) point at runs found anyway.
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_symlink() {
            continue;
        }
        if ft.is_file() && p.file_name().is_some_and(|n| n == "report.json") {
            out.push(p);
        } else if ft.is_dir() && depth > 0 {
            find_reports(&p, depth - 1, out);
        }
    }
}

/// The runs of each plan, oldest first, the newest `latest` kept.
fn by_plan(set: &[Loaded], latest: Option<usize>) -> BTreeMap<&str, Vec<&Loaded>> {
    let mut m: BTreeMap<&str, Vec<&Loaded>> = BTreeMap::new();
    for l in set {
        m.entry(l.report.plan.name.as_str()).or_default().push(l);
    }
    for runs in m.values_mut() {
        runs.sort_by(|a, b| {
            (&a.report.started_at, &a.report.run_id).cmp(&(&b.report.started_at, &b.report.run_id))
        });
        if let Some(n) = latest {
            let drop = runs.len().saturating_sub(n.max(1));
            runs.drain(..drop);
        }
    }
    m
}

fn run_ref(l: &Loaded) -> RunRef {
    let r = &l.report;
    RunRef {
        run_id: r.run_id.clone(),
        path: l.path.display().to_string(),
        seed: r.seed,
        started_at: r.started_at.clone(),
        verdict: r.verdict,
        plan_hash: r.plan.hash.clone(),
        rift_version: r.rift_version.clone(),
        label: r.label.clone(),
    }
}

fn distinct<T: Ord + Clone>(it: impl Iterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = it.collect();
    v.sort();
    v.dedup();
    v
}

/// An empty hash or version (not recorded) reads as `unknown`.
fn known(s: &str) -> String {
    if s.is_empty() {
        "unknown".into()
    } else {
        s.to_string()
    }
}

fn side_info(path: &str, plans: &BTreeMap<&str, Vec<&Loaded>>) -> SideInfo {
    let runs = || plans.values().flatten().map(|l| &l.report);
    SideInfo {
        path: path.to_string(),
        runs: runs().count(),
        seeds: distinct(runs().map(|r| r.seed)),
        plan_hashes: distinct(runs().map(|r| known(&r.plan.hash))),
        rift_versions: distinct(runs().map(|r| known(&r.rift_version))),
        labels: distinct(runs().filter_map(|r| r.label.clone())),
    }
}

/// Compares every plan found on either side.
pub fn compare(
    base_name: &str,
    base: &[Loaded],
    new_name: &str,
    new: &[Loaded],
    opts: &Options,
) -> Comparison {
    let (bp, np) = (by_plan(base, opts.latest), by_plan(new, opts.latest));
    let names = distinct(bp.keys().chain(np.keys()).copied());
    let mut plans = Vec::new();
    for name in names {
        let b = bp.get(name).map(Vec::as_slice).unwrap_or_default();
        let n = np.get(name).map(Vec::as_slice).unwrap_or_default();
        plans.push(compare_plan(name, b, n, opts));
    }
    let regressions = plans
        .iter()
        .flat_map(|p| &p.metrics)
        .filter(|m| m.verdict.is_regression())
        .count();
    let (bi, ni) = (side_info(base_name, &bp), side_info(new_name, &np));
    let mut warnings = Vec::new();
    if bi.plan_hashes != ni.plan_hashes {
        warnings.push(format!(
            "plan hashes differ: base {}, new {}",
            short_hashes(&bi.plan_hashes),
            short_hashes(&ni.plan_hashes)
        ));
    }
    if bi.rift_versions != ni.rift_versions {
        warnings.push(format!(
            "rift versions differ: base {}, new {}",
            bi.rift_versions.join(", "),
            ni.rift_versions.join(", ")
        ));
    }
    let differing: Vec<&str> = plans
        .iter()
        .filter(|p| p.presence == PlanPresence::Both && !p.same_schedules)
        .map(|p| p.plan.as_str())
        .collect();
    if !differing.is_empty() {
        warnings.push(format!(
            "seeds differ between the sides ({}): {}",
            differing.join(", "),
            if opts.across_schedules {
                "liveness judged anyway (--across-schedules)"
            } else {
                "liveness metrics shown, not judged (--across-schedules judges them)"
            }
        ));
    }
    Comparison {
        schema_version: super::REPORT_SCHEMA_VERSION,
        base: bi,
        new: ni,
        options: opts.clone(),
        warnings,
        plans,
        regressions,
    }
}

fn short_hashes(h: &[String]) -> String {
    h.iter()
        .map(|x| x.chars().take(12).collect::<String>())
        .collect::<Vec<_>>()
        .join(", ")
}

fn compare_plan(name: &str, b: &[&Loaded], n: &[&Loaded], opts: &Options) -> PlanComparison {
    let presence = match (b.is_empty(), n.is_empty()) {
        (false, false) => PlanPresence::Both,
        (false, true) => PlanPresence::BaseOnly,
        (true, _) => PlanPresence::NewOnly,
    };
    let seeds = |s: &[&Loaded]| distinct(s.iter().map(|l| l.report.seed));
    let same_schedules = seeds(b) == seeds(n);
    let mut notes = Vec::new();
    for (side, runs) in [("base", b), ("new", n)] {
        let hashes = distinct(runs.iter().map(|l| known(&l.report.plan.hash)));
        if hashes.len() > 1 {
            notes.push(format!(
                "{side} mixes {} versions of the plan (hashes {}); all its runs are used",
                hashes.len(),
                short_hashes(&hashes)
            ));
        }
    }
    if presence == PlanPresence::Both && !same_schedules {
        notes.push(format!(
            "seeds differ: base {}, new {}",
            seeds_text(&seeds(b)),
            seeds_text(&seeds(n))
        ));
    }
    let metrics = if presence == PlanPresence::Both {
        let base: Vec<&Report> = b.iter().map(|l| &l.report).collect();
        let new: Vec<&Report> = n.iter().map(|l| &l.report).collect();
        let judge_liveness = same_schedules || opts.across_schedules;
        metrics(&base, &new, opts, judge_liveness)
    } else {
        Vec::new()
    };
    PlanComparison {
        plan: name.to_string(),
        presence,
        base_runs: b.iter().map(|l| run_ref(l)).collect(),
        new_runs: n.iter().map(|l| run_ref(l)).collect(),
        same_schedules,
        notes,
        metrics,
    }
}

/// `42`, `42, 43, 44`, or `42..51 (10 seeds)` for a consecutive run.
pub fn seeds_text(s: &[u64]) -> String {
    match s {
        [] => "-".into(),
        [one] => one.to_string(),
        [first, .., last] if s.len() > 3 && last.wrapping_sub(*first) == s.len() as u64 - 1 => {
            format!("{first}..{last} ({} seeds)", s.len())
        }
        _ if s.len() > 5 => format!("{} seeds ({}, ...)", s.len(), s[0]),
        _ => s.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
    }
}

fn ms_text(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else {
        format!("{v:.1}ms")
    }
}

fn s_text(v: f64) -> String {
    format!("{v:.2}s")
}

fn pct_text(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn pp_text(v: f64) -> String {
    format!("{:.2}pp", v * 100.0)
}

fn ops_text(v: f64) -> String {
    format!("{v:.0}")
}

fn count_text(v: f64) -> String {
    format!("{v:.0}")
}

/// How one liveness metric is read, shown and judged.
struct Liveness {
    name: &'static str,
    unit: &'static str,
    fmt: fn(f64) -> String,
    /// How a difference is shown (availability in points).
    diff_fmt: fn(f64) -> String,
    higher_is_better: bool,
    /// The regression threshold on the difference of medians, from the
    /// base median.
    threshold: Box<dyn Fn(f64) -> f64>,
}

/// A run's value of one metric; `None` when the run did not measure it.
type Reader = Box<dyn Fn(&Report) -> Option<f64>>;

fn metrics(b: &[&Report], n: &[&Report], opts: &Options, judged: bool) -> Vec<MetricDelta> {
    let t = &opts.thresholds;
    let mut out = vec![verdict_row(b, n, opts, judged)];
    let (lr, ls) = (t.max_latency_regression, t.latency_slack_ms);
    let (rr, rs) = (t.max_recovery_regression, t.recovery_slack_s);
    let (avail, drop) = (t.min_availability_delta.abs(), t.max_throughput_drop);
    let latency = |name, q: f64| {
        (
            Liveness {
                name,
                unit: "ms",
                fmt: ms_text,
                diff_fmt: ms_text,
                higher_is_better: false,
                threshold: Box::new(move |m: f64| (lr * m).max(ls)),
            },
            // Nothing served on a run: its latency is n/a, not 0 ms.
            Box::new(move |r: &Report| r.latency.served().then(|| r.latency.quantile_ms(q)))
                as Reader,
        )
    };
    let recovery = |name| Liveness {
        name,
        unit: "s",
        fmt: s_text,
        diff_fmt: s_text,
        higher_is_better: false,
        threshold: Box::new(move |m: f64| (rr * m).max(rs)),
    };
    let final_s = |r: &Report| {
        // An aborted run never reached the final heal.
        r.abort_reason
            .is_none()
            .then(|| r.final_recovery_s.unwrap_or(f64::INFINITY))
    };
    let rows: Vec<(Liveness, Reader)> = vec![
        (
            Liveness {
                name: "availability",
                unit: "ratio",
                fmt: pct_text,
                diff_fmt: pp_text,
                higher_is_better: true,
                threshold: Box::new(move |_| avail),
            },
            Box::new(|r: &Report| Some(r.availability.overall.ratio())),
        ),
        latency("p50_latency", 0.5),
        latency("p99_latency", 0.99),
        (
            recovery("worst_recovery"),
            Box::new(|r: &Report| r.worst_recovery_s()),
        ),
        (recovery("final_recovery"), Box::new(final_s)),
        (
            Liveness {
                name: "ops_per_s",
                unit: "ops/s",
                fmt: ops_text,
                diff_fmt: ops_text,
                higher_is_better: true,
                threshold: Box::new(move |m: f64| drop * m),
            },
            Box::new(|r: &Report| Some(r.ops.per_second)),
        ),
    ];
    for (l, read) in rows {
        let values = |rs: &[&Report]| -> Vec<(f64, String)> {
            rs.iter()
                .filter_map(|r| read(r).map(|v| (v, r.run_id.clone())))
                .collect()
        };
        out.push(liveness_row(&l, &values(b), &values(n), opts, judged));
    }
    out.extend(checker_rows(b, n));
    out.push(exits_row(b, n));
    let exits = |rs: &[&Report]| -> Vec<f64> {
        rs.iter()
            .map(|r| r.node_events.iter().filter(|e| e.event == "exited").count() as f64)
            .collect()
    };
    let (eb, en) = (exits(b), exits(n));
    out.push(MetricDelta {
        base_runs: eb.len(),
        new_runs: en.len(),
        base_text: spread_text(Summary::of(&eb).as_ref(), count_text),
        new_text: spread_text(Summary::of(&en).as_ref(), count_text),
        base: Summary::of(&eb),
        new: Summary::of(&en),
        base_values: eb,
        new_values: en,
        ..plain(
            "node_exits",
            "count",
            MetricVerdict::Info {
                why: NotJudged::Context,
            },
        )
    });
    out
}

fn plain(metric: &str, unit: &'static str, verdict: MetricVerdict) -> MetricDelta {
    MetricDelta {
        metric: metric.into(),
        unit,
        base_values: Vec::new(),
        new_values: Vec::new(),
        base_runs: 0,
        new_runs: 0,
        base: None,
        new: None,
        difference: None,
        threshold: None,
        higher_is_better: false,
        base_text: String::new(),
        new_text: String::new(),
        delta_text: String::new(),
        verdict,
        note: String::new(),
    }
}

/// `41.2ms [38.0..45.1]`: the median and the interquartile range; one
/// value alone.
fn spread_text(s: Option<&Summary>, fmt: fn(f64) -> String) -> String {
    match s {
        None => "n/a".into(),
        Some(s) if s.n == 1 || s.q1 == s.q3 => fmt(s.median),
        Some(s) => format!("{} [{}..{}]", fmt(s.median), fmt(s.q1), fmt(s.q3)),
    }
}

fn signed(v: f64, fmt: fn(f64) -> String) -> String {
    if v > 0.0 {
        format!("+{}", fmt(v))
    } else if v == 0.0 {
        format!("±{}", fmt(0.0))
    } else {
        fmt(v)
    }
}

fn liveness_row(
    l: &Liveness,
    b: &[(f64, String)],
    n: &[(f64, String)],
    opts: &Options,
    judged: bool,
) -> MetricDelta {
    let never = |s: &[(f64, String)]| -> Vec<String> {
        s.iter()
            .filter(|(v, _)| v.is_infinite())
            .map(|(_, id)| id.clone())
            .collect()
    };
    let finite = |s: &[(f64, String)]| -> Vec<f64> {
        s.iter()
            .map(|(v, _)| *v)
            .filter(|v| v.is_finite())
            .collect()
    };
    let (nb, nn) = (never(b), never(n));
    let (bv, nv) = (finite(b), finite(n));
    let (bs, ns) = (Summary::of(&bv), Summary::of(&nv));
    let difference = stats::difference(&bv, &nv, opts.confidence);
    let threshold = bs.as_ref().map(|s| (l.threshold)(s.median));
    let mut note = Vec::new();
    for (side, ids) in [("base", &nb), ("new", &nn)] {
        if !ids.is_empty() {
            note.push(format!("never recovered in {side} run {}", ids.join(", ")));
        }
    }
    let verdict = if b.is_empty() || n.is_empty() {
        MetricVerdict::Info {
            why: NotJudged::NotMeasured,
        }
    } else if !judged {
        MetricVerdict::Info {
            why: NotJudged::DifferentSchedules,
        }
    } else if !nn.is_empty() && nb.is_empty() {
        // A node that never serves again is an outage, whatever the noise.
        MetricVerdict::Regression
    } else {
        match (&bs, &ns, threshold) {
            (Some(bs), Some(ns), Some(t)) => {
                let (v, why) = judge(bs, ns, &nv, difference.as_ref(), t, l, opts);
                if let Some(w) = why {
                    note.push(w);
                }
                v
            }
            _ => MetricVerdict::Info {
                why: NotJudged::NotMeasured,
            },
        }
    };
    let delta_text = match &difference {
        None => String::new(),
        Some(d) => {
            let mut s = signed(d.diff, l.diff_fmt);
            if let (Some(r), false) = (d.relative, l.unit == "ratio") {
                let _ = write!(s, " ({:+.0}%)", r * 100.0);
            }
            if let Some(ci) = d.ci {
                let _ = write!(
                    s,
                    " [{}, {}]",
                    signed(ci.lo, l.diff_fmt),
                    signed(ci.hi, l.diff_fmt)
                );
            }
            s
        }
    };
    let side_text = |s: Option<&Summary>, never: usize| {
        let t = spread_text(s, l.fmt);
        match (never, s) {
            (0, _) => t,
            (k, None) => format!("never ×{k}"),
            (k, Some(_)) => format!("{t} +never ×{k}"),
        }
    };
    MetricDelta {
        metric: l.name.into(),
        unit: l.unit,
        base_runs: bv.len() + nb.len(),
        new_runs: nv.len() + nn.len(),
        base_text: side_text(bs.as_ref(), nb.len()),
        new_text: side_text(ns.as_ref(), nn.len()),
        base_values: bv,
        new_values: nv,
        base: bs,
        new: ns,
        difference,
        threshold,
        higher_is_better: l.higher_is_better,
        delta_text,
        verdict,
        note: note.join("; "),
    }
}

/// The rule table of docs/compare.md, for one liveness metric with values
/// on both sides. `t` is the threshold on the difference, towards worse.
fn judge(
    bs: &Summary,
    ns: &Summary,
    nv: &[f64],
    d: Option<&Difference>,
    t: f64,
    l: &Liveness,
    opts: &Options,
) -> (MetricVerdict, Option<String>) {
    // Oriented so that positive is worse.
    let sign = if l.higher_is_better { -1.0 } else { 1.0 };
    let worse = sign * (ns.median - bs.median);
    let target = stats::decisive_half_width(worse, t);
    let runs_needed = stats::runs_needed(bs, ns, target, opts.confidence);
    let beyond = format!("worse by more than {}", (l.diff_fmt)(t));
    if bs.n >= MIN_RUNS && ns.n >= MIN_RUNS {
        let Some((ci, p)) = d.and_then(|d| d.ci.zip(d.mann_whitney_p)) else {
            return (
                MetricVerdict::Inconclusive {
                    runs_needed,
                    why: Unsure::TooFewRuns,
                },
                None,
            );
        };
        let (lo, hi) = if sign > 0.0 {
            (ci.lo, ci.hi)
        } else {
            (-ci.hi, -ci.lo)
        };
        let pct = opts.confidence * 100.0;
        // The bootstrap is overconfident at tiny K (3 against 3 apart gives
        // an interval that excludes 0 every time): the rank test must agree.
        let shifted = p < 1.0 - opts.confidence;
        return if shifted && lo > 0.0 && worse > t {
            (
                MetricVerdict::Regression,
                Some(format!(
                    "{beyond}; the {pct:.0}% interval excludes 0, Mann-Whitney {}",
                    if p < 0.001 {
                        "p<0.001".to_string()
                    } else {
                        format!("p={p:.3}")
                    }
                )),
            )
        } else if shifted && lo > 0.0 {
            (MetricVerdict::LikelyWorse, None)
        } else if shifted && hi < 0.0 {
            (MetricVerdict::LikelyBetter, None)
        } else if -t <= lo && hi <= t {
            (MetricVerdict::Same, None)
        } else {
            let n = bs.n.min(ns.n);
            (
                MetricVerdict::Inconclusive {
                    runs_needed: stats::runs_needed_from_interval(n, ci.half_width(), target),
                    why: Unsure::WideInterval,
                },
                None,
            )
        };
    }
    if bs.n >= MIN_RUNS {
        // Baseline noise: a new side of one or two runs against the range
        // of the base's runs.
        let oriented = |v: &f64| sign * v;
        let (bmin, bmax) = (sign * bs.min, sign * bs.max);
        let (bworst, bbest) = (bmin.max(bmax), bmin.min(bmax));
        let all_worse = nv.iter().map(oriented).all(|v| v > bworst);
        let all_better = nv.iter().map(oriented).all(|v| v < bbest);
        return if all_worse && worse > t {
            (
                MetricVerdict::Regression,
                Some(format!("{beyond}; outside the range of {} base runs", bs.n)),
            )
        } else if all_worse {
            (MetricVerdict::LikelyWorse, None)
        } else if all_better {
            (MetricVerdict::LikelyBetter, None)
        } else if worse.abs() <= t {
            (MetricVerdict::Same, Some("within the base's range".into()))
        } else {
            (
                MetricVerdict::Inconclusive {
                    runs_needed,
                    why: Unsure::WideInterval,
                },
                None,
            )
        };
    }
    let why = if bs.n == 1 && ns.n == 1 {
        Unsure::NoiseUnknown
    } else {
        Unsure::TooFewRuns
    };
    let runs_needed = match why {
        Unsure::NoiseUnknown => None,
        Unsure::TooFewRuns | Unsure::WideInterval => runs_needed,
    };
    (MetricVerdict::Inconclusive { runs_needed, why }, None)
}

fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Pass => 0,
        Verdict::Unknown => 1,
        Verdict::Fail => 2,
    }
}

/// `10 PASS` or `8 PASS, 2 FAIL`.
fn verdicts_text(vs: &[Verdict]) -> String {
    let mut parts = Vec::new();
    for v in [Verdict::Pass, Verdict::Unknown, Verdict::Fail] {
        let k = vs.iter().filter(|x| **x == v).count();
        if k > 0 {
            parts.push(format!("{k} {}", verdict_word(v)));
        }
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// A safety row: any run on the new side worse than every base run is a
/// regression, named.
fn safety_row(
    metric: String,
    b: &[Verdict],
    n: &[(Verdict, String)],
    extra: String,
) -> MetricDelta {
    let nv: Vec<Verdict> = n.iter().map(|(v, _)| *v).collect();
    let base_worst = b.iter().map(|v| rank(*v)).max();
    let new_worst = nv.iter().map(|v| rank(*v)).max();
    let mut row = plain(&metric, "", MetricVerdict::Same);
    row.base_runs = b.len();
    row.new_runs = n.len();
    row.base_text = verdicts_text(b);
    row.new_text = verdicts_text(&nv);
    let (Some(bw), Some(nw)) = (base_worst, new_worst) else {
        row.verdict = MetricVerdict::Info {
            why: NotJudged::NotMeasured,
        };
        return row;
    };
    let worse: Vec<String> = n
        .iter()
        .filter(|(v, _)| rank(*v) > bw)
        .map(|(v, id)| format!("{id} {}", verdict_word(*v)))
        .collect();
    if !worse.is_empty() {
        row.verdict = MetricVerdict::Regression;
        let worst_base = b.iter().copied().max_by_key(|v| rank(*v));
        let was = worst_base.map_or("-", verdict_word);
        row.note = format!("new run {} (base at worst {was}){extra}", worse.join(", "));
    } else if nw < bw {
        row.verdict = MetricVerdict::LikelyBetter;
    } else if bw > 0 {
        row.note = "as bad in base".into();
    }
    row
}

/// What a failed expectation says about a run: a safety property broke,
/// or a liveness bound (availability, latency, recovery) was missed, which
/// a run's own noise can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExpectationKind {
    Safety,
    Liveness,
}

/// Expectations are named in report.json; any name not known to be a
/// liveness bound counts as safety.
fn expectation_kind(name: &str) -> ExpectationKind {
    match name {
        "availability" | "p50_latency" | "p99_latency" | "recovery" => ExpectationKind::Liveness,
        _ => ExpectationKind::Safety,
    }
}

/// A run's verdict split in two: what its safety expectations (and
/// whatever the liveness bounds do not explain) say, and whether a
/// liveness bound failed.
fn split_verdict(r: &Report) -> (Verdict, bool) {
    let worst = |kind: ExpectationKind| {
        r.expectations
            .iter()
            .filter(|e| expectation_kind(&e.name) == kind)
            .map(|e| e.verdict)
            .max_by_key(|v| rank(*v))
            .unwrap_or(Verdict::Pass)
    };
    let (safe, live) = (
        worst(ExpectationKind::Safety),
        worst(ExpectationKind::Liveness),
    );
    let safety = if rank(r.verdict) > rank(live) && rank(r.verdict) > rank(safe) {
        r.verdict
    } else {
        safe
    };
    (safety, live != Verdict::Pass)
}

/// The plan's verdict: a new run whose safety part is worse than every
/// base run's is a regression (named); runs that missed only liveness
/// bounds are counted, and more of them on the new side is a regression
/// only when Fisher's exact test says so at the confidence level.
fn verdict_row(b: &[&Report], n: &[&Report], opts: &Options, judged: bool) -> MetricDelta {
    let id = |r: &Report| {
        if r.abort_reason.is_some() {
            format!("{} (aborted)", r.run_id)
        } else {
            r.run_id.clone()
        }
    };
    let bs: Vec<Verdict> = b.iter().map(|r| split_verdict(r).0).collect();
    let ns: Vec<(Verdict, String)> = n.iter().map(|r| (split_verdict(r).0, id(r))).collect();
    let mut row = safety_row("verdict".into(), &bs, &ns, String::new());
    row.base_text = verdicts_text(&b.iter().map(|r| r.verdict).collect::<Vec<_>>());
    row.new_text = verdicts_text(&n.iter().map(|r| r.verdict).collect::<Vec<_>>());
    if row.verdict.is_regression() {
        return row;
    }
    let missed = |rs: &[&Report]| -> Vec<String> {
        rs.iter()
            .filter(|r| split_verdict(r).1)
            .map(|r| id(r))
            .collect()
    };
    let (mb, mn) = (missed(b), missed(n));
    if mb.is_empty() && mn.is_empty() {
        return row;
    }
    let p = stats::fisher_greater(mn.len(), n.len(), mb.len(), b.len());
    let counts = format!(
        "liveness bounds missed in {} of {} new runs ({}), {} of {} base",
        mn.len(),
        n.len(),
        mn.join(", "),
        mb.len(),
        b.len()
    );
    let more = mn.len() * b.len() > mb.len() * n.len();
    if more && judged && b.len() >= MIN_RUNS && n.len() >= MIN_RUNS && p < 1.0 - opts.confidence {
        row.verdict = MetricVerdict::Regression;
        row.note = format!("{counts}; Fisher p={p:.3}");
    } else if more {
        let why = if judged {
            format!("within noise (Fisher p={p:.3})")
        } else {
            "not compared: different schedules".to_string()
        };
        row.note = format!("{counts}: {why}");
    } else {
        row.note = counts;
    }
    row
}

/// One row per checker in any report, by name: judged by its expectation
/// when the plan has one (a plan that must find a bug wants a failing
/// checker), else by the checker's verdict.
fn checker_rows(b: &[&Report], n: &[&Report]) -> Vec<MetricDelta> {
    let mut checkers: Vec<CheckerId> = b
        .iter()
        .chain(n.iter())
        .flat_map(|r| r.checks.iter().map(|c| c.checker))
        .collect();
    // By name: the order comparisons have always listed them in.
    checkers.sort_unstable_by_key(|c| c.name());
    checkers.dedup();
    let judged = |r: &Report, c: CheckerId| -> Option<Verdict> {
        let check = r.checks.iter().find(|x| x.checker == c).map(|x| x.verdict);
        let expect = r
            .expectations
            .iter()
            .find(|x| x.name == c.name())
            .map(|x| x.verdict);
        expect.or(check)
    };
    let mut out = Vec::new();
    for c in checkers {
        let bv: Vec<Verdict> = b.iter().filter_map(|r| judged(r, c)).collect();
        let nv: Vec<(Verdict, String)> = n
            .iter()
            .filter_map(|r| judged(r, c).map(|v| (v, r.run_id.clone())))
            .collect();
        out.push(safety_row(format!("checker {c}"), &bv, &nv, String::new()));
    }
    out
}

/// Unexpected exits by count: a new run with more than any base run is a
/// regression.
fn exits_row(b: &[&Report], n: &[&Report]) -> MetricDelta {
    let counts =
        |rs: &[&Report]| -> Vec<f64> { rs.iter().map(|r| r.unexpected_exits() as f64).collect() };
    let (cb, cn) = (counts(b), counts(n));
    let base_max = cb.iter().copied().fold(0.0, f64::max);
    let new_max = cn.iter().copied().fold(0.0, f64::max);
    let worse: Vec<String> = n
        .iter()
        .filter(|r| r.unexpected_exits() as f64 > base_max)
        .map(|r| format!("{} ({})", r.run_id, r.unexpected_exits()))
        .collect();
    let text = |v: &[f64]| {
        let max = v.iter().copied().fold(0.0, f64::max);
        let total: f64 = v.iter().sum();
        format!("{total:.0} (max {max:.0} per run)")
    };
    let mut row = plain(
        "unexpected_exits",
        "count",
        if !worse.is_empty() {
            MetricVerdict::Regression
        } else if new_max < base_max {
            MetricVerdict::LikelyBetter
        } else {
            MetricVerdict::Same
        },
    );
    if !worse.is_empty() {
        row.note = format!(
            "a node exited on its own in new run {} (base at most {base_max:.0})",
            worse.join(", ")
        );
    }
    row.base_runs = cb.len();
    row.new_runs = cn.len();
    row.base_text = text(&cb);
    row.new_text = text(&cn);
    row.base = Summary::of(&cb);
    row.new = Summary::of(&cn);
    row.base_values = cb;
    row.new_values = cn;
    row
}

pub(super) fn verdict_cell(m: &MetricDelta) -> String {
    let w = m.verdict.word();
    match (w.is_empty(), m.note.is_empty()) {
        (_, true) => w,
        (true, false) => m.note.clone(),
        (false, false) => format!("{w} ({})", m.note),
    }
}

/// `results-a: 10 runs, seeds 42, plan 1a2b3c4d5e6f, rift 0.1.0, build v1`.
pub(super) fn side_line(s: &SideInfo) -> String {
    let mut t = format!(
        "{}: {} run{}, seeds {}, plan {}, rift {}",
        s.path,
        s.runs,
        if s.runs == 1 { "" } else { "s" },
        seeds_text(&s.seeds),
        short_hashes(&s.plan_hashes),
        s.rift_versions.join(", ")
    );
    if !s.labels.is_empty() {
        let _ = write!(t, ", build {}", s.labels.join(", "));
    }
    t
}

pub fn closing_line(c: &Comparison) -> String {
    let plans: Vec<&str> = c
        .plans
        .iter()
        .filter(|p| p.metrics.iter().any(|m| m.verdict.is_regression()))
        .map(|p| p.plan.as_str())
        .collect();
    let unsure = c
        .plans
        .iter()
        .flat_map(|p| &p.metrics)
        .filter(|m| matches!(m.verdict, MetricVerdict::Inconclusive { .. }))
        .count();
    let mut s = if c.regressions == 0 {
        "no regression".to_string()
    } else {
        format!(
            "{} regression{} in {}",
            c.regressions,
            if c.regressions == 1 { "" } else { "s" },
            plans.join(", ")
        )
    };
    if unsure > 0 {
        let _ = write!(s, " ({unsure} inconclusive)");
    }
    s
}

pub(super) fn presence_note(p: &PlanComparison) -> Option<&'static str> {
    match p.presence {
        PlanPresence::Both => None,
        PlanPresence::BaseOnly => Some("only in base: not run by the new build"),
        PlanPresence::NewOnly => Some("only in new: nothing to compare against"),
    }
}

/// The column headings every rendering shares.
pub(super) fn headings(c: &Comparison) -> [String; 6] {
    [
        "metric".into(),
        "runs".into(),
        "base median [IQR]".into(),
        "new median [IQR]".into(),
        format!("new - base [{:.0}% CI]", c.options.confidence * 100.0),
        "verdict".into(),
    ]
}

fn plan_line(p: &PlanComparison) -> String {
    format!(
        "{} ({} base run{}, {} new run{})",
        p.plan,
        p.base_runs.len(),
        if p.base_runs.len() == 1 { "" } else { "s" },
        p.new_runs.len(),
        if p.new_runs.len() == 1 { "" } else { "s" },
    )
}

/// `10/10`: runs with a value, base/new.
pub(super) fn runs_text(m: &MetricDelta) -> String {
    format!("{}/{}", m.base_runs, m.new_runs)
}

/// The terminal table.
pub fn render_table(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "base: {}", side_line(&c.base));
    let _ = writeln!(s, "new:  {}", side_line(&c.new));
    for w in &c.warnings {
        let _ = writeln!(s, "note: {w}");
    }
    s.push('\n');
    let h = headings(c);
    let width = |i: usize, f: &dyn Fn(&MetricDelta) -> usize| {
        c.plans
            .iter()
            .flat_map(|p| p.metrics.iter().map(f))
            .max()
            .unwrap_or(0)
            .max(h[i].chars().count())
    };
    let w0 = width(0, &|m| m.metric.chars().count());
    let w1 = width(1, &|m| runs_text(m).chars().count());
    let w2 = width(2, &|m| m.base_text.chars().count());
    let w3 = width(3, &|m| m.new_text.chars().count());
    let w4 = width(4, &|m| m.delta_text.chars().count());
    for p in &c.plans {
        let _ = writeln!(s, "{}", plan_line(p));
        for n in &p.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        if let Some(note) = presence_note(p) {
            let _ = writeln!(s, "  {note}\n");
            continue;
        }
        let _ = writeln!(
            s,
            "  {:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {}",
            h[0], h[1], h[2], h[3], h[4], h[5]
        );
        for m in &p.metrics {
            let line = format!(
                "  {:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {}",
                m.metric,
                runs_text(m),
                m.base_text,
                m.new_text,
                m.delta_text,
                verdict_cell(m)
            );
            let _ = writeln!(s, "{}", line.trim_end());
        }
        s.push('\n');
    }
    let _ = writeln!(s, "{}", closing_line(c));
    s
}

/// `--format md`: one table per plan, for a CI job summary.
pub fn render_markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## rift compare: {}\n", closing_line(c));
    let _ = writeln!(s, "- base: {}", md_cell(&side_line(&c.base)));
    let _ = writeln!(s, "- new: {}", md_cell(&side_line(&c.new)));
    for w in &c.warnings {
        let _ = writeln!(s, "- **note:** {}", md_cell(w));
    }
    s.push('\n');
    let h = headings(c);
    for p in &c.plans {
        let _ = writeln!(s, "### {}\n", md_cell(&plan_line(p)));
        for n in &p.notes {
            let _ = writeln!(s, "- note: {}", md_cell(n));
        }
        if !p.notes.is_empty() {
            s.push('\n');
        }
        if let Some(note) = presence_note(p) {
            let _ = writeln!(s, "{note}\n");
            continue;
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            h[0], h[1], h[2], h[3], h[4], h[5]
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---|");
        for m in &p.metrics {
            let v = verdict_cell(m);
            let v = if m.verdict.is_regression() {
                format!("**{v}**")
            } else {
                v
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                md_cell(&m.metric),
                runs_text(m),
                md_cell(&m.base_text),
                md_cell(&m.new_text),
                md_cell(&m.delta_text),
                md_cell(&v)
            );
        }
        s.push('\n');
    }
    s
}

/// `--format json`.
pub fn render_json(c: &Comparison) -> String {
    serde_json::to_string_pretty(c).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
