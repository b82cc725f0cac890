//! `rift compare BASE NEW`: two sets of reports side by side, plan by plan
//! and metric by metric, with a verdict per metric against thresholds.
//!
//! It reads reports only; it never runs anything. Latency percentiles are
//! recomputed from the stored histograms, not taken from rounded figures.
//! Reports of another schema version are refused, never guessed at.

use super::text::md_cell;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricVerdict {
    Same,
    Better,
    /// Worse, but within the threshold.
    Worse,
    Regression,
    /// Shown, not judged.
    Info,
}

impl MetricVerdict {
    pub fn word(self) -> &'static str {
        match self {
            MetricVerdict::Same => "same",
            MetricVerdict::Better => "better",
            MetricVerdict::Worse => "worse (within threshold)",
            MetricVerdict::Regression => "REGRESSION",
            MetricVerdict::Info => "",
        }
    }
}

/// One metric of one plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricDelta {
    pub metric: String,
    /// Numbers for machines (`None` for text metrics or when absent).
    pub base: Option<f64>,
    pub new: Option<f64>,
    pub unit: &'static str,
    /// The same for people.
    pub base_text: String,
    pub new_text: String,
    pub delta_text: String,
    pub verdict: MetricVerdict,
    /// Why it is a regression (the threshold crossed), else empty.
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

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanComparison {
    pub plan: String,
    pub presence: PlanPresence,
    pub base_report: Option<String>,
    pub new_report: Option<String>,
    pub metrics: Vec<MetricDelta>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub schema_version: u32,
    pub base: String,
    pub new: String,
    pub base_label: Option<String>,
    pub new_label: Option<String>,
    pub thresholds: Thresholds,
    pub plans: Vec<PlanComparison>,
    pub regressions: usize,
}

/// A report and the file it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub report: Report,
}

/// Reads the reports named by `path`: a report.json file; a run directory
/// holding one; or a results tree, searched three levels deep, keeping the
/// newest run of each plan (`latest` links are not followed twice).
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
    let mut newest: BTreeMap<String, Loaded> = BTreeMap::new();
    for p in found {
        let report = Report::read(&p)?;
        let key = report.plan.name.clone();
        let newer = newest.get(&key).is_none_or(|old| {
            (&report.started_at, &report.run_id) > (&old.report.started_at, &old.report.run_id)
        });
        if newer {
            newest.insert(key, Loaded { path: p, report });
        }
    }
    if newest.is_empty() {
        return Err(ReportError::NoReports {
            path: path.display().to_string(),
        });
    }
    Ok(newest.into_values().collect())
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

/// Compares every plan found on either side.
pub fn compare(
    base_name: &str,
    base: &[Loaded],
    new_name: &str,
    new: &[Loaded],
    t: &Thresholds,
) -> Comparison {
    let mut names: Vec<&str> = base
        .iter()
        .chain(new.iter())
        .map(|l| l.report.plan.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let find = |set: &'_ [Loaded], n: &str| -> Option<usize> {
        set.iter().position(|l| l.report.plan.name == n)
    };
    let mut plans = Vec::new();
    for name in names {
        let b = find(base, name).and_then(|i| base.get(i));
        let n = find(new, name).and_then(|i| new.get(i));
        let (presence, metrics) = match (b, n) {
            (Some(b), Some(n)) => (PlanPresence::Both, compare_one(&b.report, &n.report, t)),
            (Some(_), None) => (PlanPresence::BaseOnly, Vec::new()),
            _ => (PlanPresence::NewOnly, Vec::new()),
        };
        plans.push(PlanComparison {
            plan: name.to_string(),
            presence,
            base_report: b.map(|l| l.path.display().to_string()),
            new_report: n.map(|l| l.path.display().to_string()),
            metrics,
        });
    }
    let regressions = plans
        .iter()
        .flat_map(|p| &p.metrics)
        .filter(|m| m.verdict == MetricVerdict::Regression)
        .count();
    let label = |set: &[Loaded]| set.first().and_then(|l| l.report.label.clone());
    Comparison {
        schema_version: super::REPORT_SCHEMA_VERSION,
        base: base_name.to_string(),
        new: new_name.to_string(),
        base_label: label(base),
        new_label: label(new),
        thresholds: t.clone(),
        plans,
        regressions,
    }
}

fn ms_text(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else {
        format!("{v:.1}ms")
    }
}

fn s_text(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(s) if s.is_finite() => format!("{s:.2}s"),
        Some(_) => "never".into(),
    }
}

fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Pass => 0,
        Verdict::Unknown => 1,
        Verdict::Fail => 2,
    }
}

/// A text metric judged by verdict rank: any step towards Fail regresses.
fn verdict_metric(
    metric: String,
    base: Verdict,
    new: Verdict,
    shown: (String, String),
) -> MetricDelta {
    let (verdict, note) = match rank(new).cmp(&rank(base)) {
        std::cmp::Ordering::Equal => (MetricVerdict::Same, String::new()),
        std::cmp::Ordering::Less => (MetricVerdict::Better, String::new()),
        std::cmp::Ordering::Greater => {
            (MetricVerdict::Regression, format!("was {base}, now {new}"))
        }
    };
    MetricDelta {
        metric,
        base: None,
        new: None,
        unit: "",
        base_text: shown.0,
        new_text: shown.1,
        delta_text: String::new(),
        verdict,
        note,
    }
}

/// A "lower is better" number: regression when it grew by more than
/// `rel` of the base and more than `slack` in absolute terms.
fn lower_is_better(
    metric: &str,
    base: f64,
    new: f64,
    rel: f64,
    slack: f64,
    unit: &'static str,
    fmt: fn(f64) -> String,
) -> MetricDelta {
    let delta = new - base;
    let (verdict, note) = if !base.is_finite() || !new.is_finite() {
        match (base.is_finite(), new.is_finite()) {
            (true, false) => (MetricVerdict::Regression, "never recovered".to_string()),
            (false, true) => (MetricVerdict::Better, String::new()),
            _ => (MetricVerdict::Same, String::new()),
        }
    } else if delta.abs() <= f64::EPSILON * base.abs().max(1.0) {
        (MetricVerdict::Same, String::new())
    } else if delta < 0.0 {
        (MetricVerdict::Better, String::new())
    } else if delta > slack && new > base * (1.0 + rel) {
        (
            MetricVerdict::Regression,
            format!("> +{:.0}% and > +{}", rel * 100.0, fmt(slack)),
        )
    } else {
        (MetricVerdict::Worse, String::new())
    };
    let delta_text = if base.is_finite() && new.is_finite() {
        if base > 0.0 {
            format!("{:+.1}%", delta / base * 100.0)
        } else {
            let sign = if delta >= 0.0 { "+" } else { "" };
            format!("{sign}{}", fmt(delta))
        }
    } else {
        String::new()
    };
    let finite = |v: f64| v.is_finite().then_some(v);
    MetricDelta {
        metric: metric.into(),
        base: finite(base),
        new: finite(new),
        unit,
        base_text: if base.is_finite() {
            fmt(base)
        } else {
            "never".into()
        },
        new_text: if new.is_finite() {
            fmt(new)
        } else {
            "never".into()
        },
        delta_text,
        verdict,
        note,
    }
}

fn compare_one(b: &Report, n: &Report, t: &Thresholds) -> Vec<MetricDelta> {
    let mut out = Vec::new();
    let status = |r: &Report| {
        if r.abort_reason.is_some() {
            format!("{} (aborted)", r.verdict)
        } else {
            r.verdict.to_string()
        }
    };
    out.push(verdict_metric(
        "verdict".into(),
        b.verdict,
        n.verdict,
        (status(b), status(n)),
    ));

    out.push(availability_delta(b, n, t));

    for (name, q) in [("p50_latency", 0.5), ("p99_latency", 0.99)] {
        // Nothing served on a side: its latency is n/a, not 0 ms.
        if !b.latency.served() || !n.latency.served() {
            let text = |r: &Report| {
                if r.latency.served() {
                    ms_text(r.latency.quantile_ms(q))
                } else {
                    "n/a".to_string()
                }
            };
            out.push(info(name, text(b), text(n)));
            continue;
        }
        out.push(lower_is_better(
            name,
            b.latency.quantile_ms(q),
            n.latency.quantile_ms(q),
            t.max_latency_regression,
            t.latency_slack_ms,
            "ms",
            ms_text,
        ));
    }

    let secs = |v: f64| format!("{v:.2}s");
    match (b.worst_recovery_s(), n.worst_recovery_s()) {
        (Some(rb), Some(rn)) => out.push(lower_is_better(
            "worst_recovery",
            rb,
            rn,
            t.max_recovery_regression,
            t.recovery_slack_s,
            "s",
            secs,
        )),
        (rb, rn) => out.push(info("worst_recovery", s_text(rb), s_text(rn))),
    }
    let final_s = |r: &Report| {
        if r.abort_reason.is_some() {
            None
        } else {
            Some(r.final_recovery_s.unwrap_or(f64::INFINITY))
        }
    };
    match (final_s(b), final_s(n)) {
        (Some(rb), Some(rn)) => out.push(lower_is_better(
            "final_recovery",
            rb,
            rn,
            t.max_recovery_regression,
            t.recovery_slack_s,
            "s",
            secs,
        )),
        (rb, rn) => out.push(info("final_recovery", s_text(rb), s_text(rn))),
    }

    out.push(throughput_delta(b, n, t));

    out.extend(checker_deltas(b, n));

    let (xb, xn) = (b.unexpected_exits(), n.unexpected_exits());
    out.push(MetricDelta {
        metric: "unexpected_exits".into(),
        base: Some(xb as f64),
        new: Some(xn as f64),
        unit: "count",
        base_text: xb.to_string(),
        new_text: xn.to_string(),
        delta_text: format!("{:+}", xn as i64 - xb as i64),
        verdict: match xn.cmp(&xb) {
            std::cmp::Ordering::Equal => MetricVerdict::Same,
            std::cmp::Ordering::Less => MetricVerdict::Better,
            std::cmp::Ordering::Greater => MetricVerdict::Regression,
        },
        note: if xn > xb {
            "a node exited on its own".into()
        } else {
            String::new()
        },
    });
    let exits = |r: &Report| r.node_events.iter().filter(|e| e.event == "exited").count();
    out.push(info(
        "node_exits",
        exits(b).to_string(),
        exits(n).to_string(),
    ));
    out
}

/// Availability of requests to nodes expected to serve, in points.
fn availability_delta(b: &Report, n: &Report, t: &Thresholds) -> MetricDelta {
    let (ab, an) = (
        b.availability.overall.ratio(),
        n.availability.overall.ratio(),
    );
    let delta = an - ab;
    let (verdict, note) = if delta.abs() < 1e-12 {
        (MetricVerdict::Same, String::new())
    } else if delta > 0.0 {
        (MetricVerdict::Better, String::new())
    } else if delta < t.min_availability_delta {
        (
            MetricVerdict::Regression,
            format!("< {:+.2}pp", t.min_availability_delta * 100.0),
        )
    } else {
        (MetricVerdict::Worse, String::new())
    };
    MetricDelta {
        metric: "availability".into(),
        base: Some(ab),
        new: Some(an),
        unit: "ratio",
        base_text: format!("{:.2}%", ab * 100.0),
        new_text: format!("{:.2}%", an * 100.0),
        delta_text: format!("{:+.2}pp", delta * 100.0),
        verdict,
        note,
    }
}

/// Throughput; a drop beyond the threshold is a regression.
fn throughput_delta(b: &Report, n: &Report, t: &Thresholds) -> MetricDelta {
    let (ob, on) = (b.ops.per_second, n.ops.per_second);
    let (verdict, note) = if (on - ob).abs() < 1e-9 {
        (MetricVerdict::Same, String::new())
    } else if on > ob {
        (MetricVerdict::Better, String::new())
    } else if on < ob * (1.0 - t.max_throughput_drop) {
        (
            MetricVerdict::Regression,
            format!("< -{:.0}%", t.max_throughput_drop * 100.0),
        )
    } else {
        (MetricVerdict::Worse, String::new())
    };
    MetricDelta {
        metric: "ops_per_s".into(),
        base: Some(ob),
        new: Some(on),
        unit: "ops/s",
        base_text: format!("{ob:.0}"),
        new_text: format!("{on:.0}"),
        delta_text: if ob > 0.0 {
            format!("{:+.1}%", (on - ob) / ob * 100.0)
        } else {
            String::new()
        },
        verdict,
        note,
    }
}

/// One row per checker in either report, by name.
fn checker_deltas(b: &Report, n: &Report) -> Vec<MetricDelta> {
    let mut out = Vec::new();
    // Checkers: judged by their expectation when the plan has one (a plan
    // that must find a bug wants a failing checker), else by the verdict.
    let mut checkers: Vec<CheckerId> = b
        .checks
        .iter()
        .chain(n.checks.iter())
        .map(|c| c.checker)
        .collect();
    // By name: the order comparisons have always listed them in.
    checkers.sort_unstable_by_key(|c| c.name());
    checkers.dedup();
    for c in checkers {
        let check = |r: &Report| r.checks.iter().find(|x| x.checker == c).map(|x| x.verdict);
        let expect = |r: &Report| {
            r.expectations
                .iter()
                .find(|x| x.name == c.name())
                .map(|x| x.verdict)
        };
        let shown = |v: Option<Verdict>| v.map_or("-".to_string(), |v| v.to_string());
        let (cb, cn) = (check(b), check(n));
        let judged = match (expect(b).or(cb), expect(n).or(cn)) {
            (Some(jb), Some(jn)) => {
                verdict_metric(format!("checker {c}"), jb, jn, (shown(cb), shown(cn)))
            }
            _ => info(&format!("checker {c}"), shown(cb), shown(cn)),
        };
        out.push(judged);
    }
    out
}

fn info(metric: &str, base: String, new: String) -> MetricDelta {
    MetricDelta {
        metric: metric.into(),
        base: None,
        new: None,
        unit: "",
        base_text: base,
        new_text: new,
        delta_text: String::new(),
        verdict: MetricVerdict::Info,
        note: String::new(),
    }
}

fn verdict_cell(m: &MetricDelta) -> String {
    if m.note.is_empty() {
        m.verdict.word().to_string()
    } else {
        format!("{} ({})", m.verdict.word(), m.note)
    }
}

fn side(name: &str, label: &Option<String>) -> String {
    match label {
        Some(l) => format!("{name} (build {l})"),
        None => name.to_string(),
    }
}

fn closing_line(c: &Comparison) -> String {
    let plans: Vec<&str> = c
        .plans
        .iter()
        .filter(|p| {
            p.metrics
                .iter()
                .any(|m| m.verdict == MetricVerdict::Regression)
        })
        .map(|p| p.plan.as_str())
        .collect();
    if c.regressions == 0 {
        "no regression".into()
    } else {
        format!(
            "{} regression{} in {}",
            c.regressions,
            if c.regressions == 1 { "" } else { "s" },
            plans.join(", ")
        )
    }
}

fn presence_note(p: &PlanComparison) -> Option<&'static str> {
    match p.presence {
        PlanPresence::Both => None,
        PlanPresence::BaseOnly => Some("only in base: not run by the new build"),
        PlanPresence::NewOnly => Some("only in new: nothing to compare against"),
    }
}

/// The terminal table.
pub fn render_table(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "base: {}\nnew:  {}\n",
        side(&c.base, &c.base_label),
        side(&c.new, &c.new_label)
    );
    let metric_w = c
        .plans
        .iter()
        .flat_map(|p| p.metrics.iter().map(|m| m.metric.len()))
        .max()
        .unwrap_or(6)
        .max(6);
    for p in &c.plans {
        let _ = writeln!(s, "{}", p.plan);
        if let Some(note) = presence_note(p) {
            let _ = writeln!(s, "  {note}\n");
            continue;
        }
        let _ = writeln!(
            s,
            "  {:<metric_w$}  {:>16}  {:>16}  {:>10}  verdict",
            "metric", "base", "new", "delta"
        );
        for m in &p.metrics {
            let _ = writeln!(
                s,
                "  {:<metric_w$}  {:>16}  {:>16}  {:>10}  {}",
                m.metric,
                m.base_text,
                m.new_text,
                m.delta_text,
                verdict_cell(m)
            );
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
    let _ = writeln!(
        s,
        "base `{}` · new `{}`\n",
        side(&c.base, &c.base_label),
        side(&c.new, &c.new_label)
    );
    for p in &c.plans {
        let _ = writeln!(s, "### {}\n", md_cell(&p.plan));
        if let Some(note) = presence_note(p) {
            let _ = writeln!(s, "{note}\n");
            continue;
        }
        let _ = writeln!(s, "| metric | base | new | delta | verdict |");
        let _ = writeln!(s, "|---|---:|---:|---:|---|");
        for m in &p.metrics {
            let v = verdict_cell(m);
            let v = if m.verdict == MetricVerdict::Regression {
                format!("**{v}**")
            } else {
                v
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                md_cell(&m.metric),
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
