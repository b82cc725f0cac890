//! `rift compare` over many runs per side, from synthetic reports (no
//! cluster): the verdict rules of docs/compare.md on samples with known
//! answers, snapshots of the table and the HTML page, and the command line.

use rift::check::verdict::Verdict;
use rift::report::compare::{
    compare, render_table, Comparison, Loaded, MetricDelta, MetricVerdict, NotJudged, Options,
    Unsure,
};
use rift::report::compare_html;
use rift::report::{ExpectationResult, Report};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The recorded v1 report, made a passing run.
fn template() -> Report {
    let mut r = Report::read(Path::new("tests/fixtures/report-v1/report.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    r.verdict = Verdict::Pass;
    for c in &mut r.checks {
        c.verdict = Verdict::Pass;
    }
    for e in &mut r.expectations {
        e.verdict = Verdict::Pass;
    }
    r.label = None;
    r.plan.hash = "00ff00ff00ff00ff".into();
    r
}

/// Deterministic noise in [0, 1).
fn noise(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// One run of `plan` whose latencies centre on `p50_ms`, with its
/// slowest recovery `recovery_s`.
fn run(plan: &str, i: usize, side: &str, p50_ms: f64, recovery_s: f64, seed: u64) -> Loaded {
    let mut r = template();
    r.plan.name = plan.into();
    r.run_id = format!("{side}-{i:02}");
    r.started_at = format!("2026-01-01T00:00:{i:02}Z");
    r.seed = seed;
    r.latency.histogram_us = (0..100u64)
        .map(|k| [(p50_ms * 1000.0 * (0.6 + 0.8 * k as f64 / 100.0)) as u64, 1])
        .collect();
    r.latency.count = 100;
    r.recovery.truncate(1);
    if let Some(x) = r.recovery.first_mut() {
        x.seconds = Some(recovery_s);
    }
    Loaded {
        path: PathBuf::from(format!("{side}/{plan}/{}/report.json", r.run_id)),
        report: r,
    }
}

/// `k` runs whose p50 is `p50_ms` give or take `jitter` (relative).
fn side(plan: &str, side: &str, k: usize, p50_ms: f64, jitter: f64, salt: u64) -> Vec<Loaded> {
    (0..k)
        .map(|i| {
            let u = noise(salt * 1000 + i as u64);
            let v = p50_ms * (1.0 + jitter * (2.0 * u - 1.0));
            run(plan, i, side, v, 0.2 + 0.3 * u, 42)
        })
        .collect()
}

fn metric<'a>(c: &'a Comparison, plan: &str, name: &str) -> &'a MetricDelta {
    c.plans
        .iter()
        .find(|p| p.plan == plan)
        .and_then(|p| p.metrics.iter().find(|m| m.metric == name))
        .unwrap_or_else(|| panic!("no {name} in {plan}"))
}

fn cmp(b: &[Loaded], n: &[Loaded]) -> Comparison {
    compare("base", b, "new", n, &Options::default())
}

#[test]
fn equal_distributions_are_the_same() {
    let c = cmp(
        &side("p", "b", 10, 40.0, 0.1, 1),
        &side("p", "n", 10, 40.0, 0.1, 2),
    );
    let m = metric(&c, "p", "p50_latency");
    assert_eq!(m.verdict, MetricVerdict::Same, "{m:?}");
    assert!(m
        .difference
        .as_ref()
        .and_then(|d| d.ci)
        .is_some_and(|ci| ci.contains(0.0)));
    assert_eq!(c.regressions, 0);
}

#[test]
fn a_clear_shift_is_a_regression() {
    let c = cmp(
        &side("p", "b", 10, 40.0, 0.1, 3),
        &side("p", "n", 10, 55.0, 0.1, 4),
    );
    let m = metric(&c, "p", "p50_latency");
    assert_eq!(m.verdict, MetricVerdict::Regression, "{m:?}");
    assert!(m.note.contains("interval excludes 0"), "{}", m.note);
    // A shift beyond noise but within +20 % and 2 ms: likely worse only.
    let c = cmp(
        &side("p", "b", 10, 40.0, 0.02, 5),
        &side("p", "n", 10, 44.0, 0.02, 6),
    );
    let m = metric(&c, "p", "p50_latency");
    assert_eq!(m.verdict, MetricVerdict::LikelyWorse, "{m:?}");
}

#[test]
fn a_few_huge_outliers_do_not_flip_the_verdict() {
    let b = side("p", "b", 10, 40.0, 0.1, 7);
    let mut n = side("p", "n", 10, 40.0, 0.1, 8);
    for (i, l) in n.iter_mut().enumerate().take(2) {
        *l = run("p", i, "n", 4000.0, 0.3, 42);
    }
    let c = cmp(&b, &n);
    let m = metric(&c, "p", "p50_latency");
    assert!(!m.verdict.is_regression(), "{m:?}");
}

#[test]
fn one_run_per_side_says_noise_unknown_and_never_regresses_on_liveness() {
    let c = cmp(
        &side("p", "b", 1, 40.0, 0.0, 9),
        &side("p", "n", 1, 120.0, 0.0, 10),
    );
    let m = metric(&c, "p", "p50_latency");
    assert_eq!(
        m.verdict,
        MetricVerdict::Inconclusive {
            runs_needed: None,
            why: Unsure::NoiseUnknown
        }
    );
    assert!(render_table(&c).contains("noise unknown"));
    assert_eq!(c.regressions, 0);
}

#[test]
fn a_single_new_run_is_judged_against_the_base_noise() {
    let b = side("p", "b", 10, 40.0, 0.1, 11);
    let c = cmp(&b, &[run("p", 0, "n", 80.0, 0.3, 42)]);
    assert_eq!(
        metric(&c, "p", "p50_latency").verdict,
        MetricVerdict::Regression
    );
    let c = cmp(&b, &[run("p", 0, "n", 40.0, 0.3, 42)]);
    assert_eq!(metric(&c, "p", "p50_latency").verdict, MetricVerdict::Same);
}

#[test]
fn a_wide_interval_is_inconclusive_with_the_runs_needed() {
    let c = cmp(
        &side("p", "b", 3, 40.0, 0.6, 12),
        &side("p", "n", 3, 52.0, 0.6, 13),
    );
    let m = metric(&c, "p", "p50_latency");
    match m.verdict {
        MetricVerdict::Inconclusive {
            runs_needed: Some(k),
            why: Unsure::WideInterval,
        } => assert!(k > 3, "{k}"),
        v => panic!("{v:?}: {m:?}"),
    }
}

#[test]
fn different_seeds_are_shown_not_judged_unless_asked() {
    let b = side("p", "b", 5, 40.0, 0.1, 14);
    let mut n = side("p", "n", 5, 80.0, 0.1, 15);
    for (i, l) in n.iter_mut().enumerate() {
        l.report.seed = 100 + i as u64;
    }
    let c = cmp(&b, &n);
    assert_eq!(
        metric(&c, "p", "p99_latency").verdict,
        MetricVerdict::Info {
            why: NotJudged::DifferentSchedules
        }
    );
    assert!(
        c.warnings.iter().any(|w| w.contains("seeds differ")),
        "{:?}",
        c.warnings
    );
    let across = Options {
        across_schedules: true,
        ..Options::default()
    };
    let c = compare("base", &b, "new", &n, &across);
    assert_eq!(
        metric(&c, "p", "p99_latency").verdict,
        MetricVerdict::Regression
    );
}

#[test]
fn any_new_run_failing_a_checker_is_a_regression_named() {
    let b = side("p", "b", 5, 40.0, 0.1, 16);
    let mut n = side("p", "n", 5, 40.0, 0.1, 17);
    n[3].report.checks[1].verdict = Verdict::Fail;
    n[3].report.expectations[1].verdict = Verdict::Fail;
    n[3].report.verdict = Verdict::Fail;
    let c = cmp(&b, &n);
    let m = metric(&c, "p", "checker lost_writes");
    assert_eq!(m.verdict, MetricVerdict::Regression);
    assert!(m.note.contains("n-03"), "{}", m.note);
    assert_eq!(
        metric(&c, "p", "verdict").verdict,
        MetricVerdict::Regression
    );
    assert_eq!(c.regressions, 2);
}

/// A run that missed its availability bound (a liveness expectation).
fn missed_availability(l: &mut Loaded) {
    l.report.verdict = Verdict::Fail;
    l.report.expectations.push(ExpectationResult {
        name: "availability".into(),
        bound: ">= 99.00%".into(),
        measured: "98.86%".into(),
        verdict: Verdict::Fail,
        message: String::new(),
        not_observed: None,
    });
}

#[test]
fn runs_that_missed_a_liveness_bound_are_counted_not_absolute() {
    let b = side("p", "b", 10, 40.0, 0.1, 40);
    let mut n = side("p", "n", 10, 40.0, 0.1, 41);
    // One run of ten missing its availability bound is noise.
    missed_availability(&mut n[4]);
    let c = cmp(&b, &n);
    let m = metric(&c, "p", "verdict");
    assert!(!m.verdict.is_regression(), "{m:?}");
    assert!(m.note.contains("1 of 10 new runs (n-04)"), "{}", m.note);
    assert_eq!(m.new_text, "9 PASS, 1 FAIL");
    // Six of ten is not.
    for l in n.iter_mut().take(6) {
        missed_availability(l);
    }
    let c = cmp(&b, &n);
    let m = metric(&c, "p", "verdict");
    assert_eq!(m.verdict, MetricVerdict::Regression, "{m:?}");
    assert!(m.note.contains("Fisher"), "{}", m.note);
}

#[test]
fn latest_keeps_the_newest_runs_of_each_plan() {
    let opts = Options {
        latest: Some(3),
        ..Options::default()
    };
    let c = compare(
        "base",
        &side("p", "b", 10, 40.0, 0.1, 18),
        "new",
        &side("p", "n", 10, 40.0, 0.1, 19),
        &opts,
    );
    let ids: Vec<&str> = c.plans[0]
        .base_runs
        .iter()
        .map(|r| r.run_id.as_str())
        .collect();
    assert_eq!(ids, ["b-07", "b-08", "b-09"]);
}

/// A fixed comparison of two plans: one regressed, one the same; a third
/// only in base.
fn fixed() -> Comparison {
    let mut b = side("quickstart", "b", 10, 8.0, 0.15, 20);
    b.extend(side("partition-majority", "b", 10, 20.0, 0.2, 21));
    b.extend(side("gone", "b", 2, 5.0, 0.1, 22));
    let mut n = side("quickstart", "n", 10, 11.0, 0.15, 23);
    n.extend(side("partition-majority", "n", 10, 20.0, 0.2, 25));
    for l in &mut n {
        l.report.label = Some("v2 <rc>".into());
    }
    compare("results-v1", &b, "results-v2", &n, &Options::default())
}

/// Compares with a stored file; `RIFT_UPDATE_SNAPSHOTS=1` rewrites it.
fn snapshot(name: &str, text: &str) {
    let path = Path::new("tests/snapshots").join(name);
    if std::env::var_os("RIFT_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (RIFT_UPDATE_SNAPSHOTS=1 writes it)",
            path.display()
        )
    });
    assert!(
        want == text,
        "{} differs (RIFT_UPDATE_SNAPSHOTS=1 rewrites it); got:\n{text}",
        path.display()
    );
}

#[test]
fn snapshot_of_the_table() {
    let c = fixed();
    assert!(c.regressions >= 1);
    snapshot("compare_table.txt", &render_table(&c));
}

#[test]
fn snapshot_of_the_html_page() {
    let page = compare_html::render(&fixed());
    // Self-contained and escaped.
    assert!(
        !page.contains("<script") && !page.contains("http"),
        "external or script"
    );
    assert!(page.contains("v2 &lt;rc&gt;") && !page.contains("v2 <rc>"));
    assert!(page.contains("<svg") && page.contains("REGRESSION"));
    snapshot("compare_page.html", &page);
}

// ---------------------------------------------------------------- command line

fn rift() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rift"));
    c.env_remove("RUST_LOG");
    c
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Writes the runs as a results tree under `root`.
fn tree(root: &Path, runs: &[Loaded]) {
    for l in runs {
        let d = root.join(&l.report.plan.name).join(&l.report.run_id);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
        let text = serde_json::to_string(&l.report).unwrap_or_default();
        std::fs::write(d.join("report.json"), text).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_command_compares_trees_plan_dirs_and_writes_one_html_page() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (base, new) = (dir.path().join("base"), dir.path().join("new"));
    tree(&base, &side("quickstart", "b", 10, 8.0, 0.15, 30));
    tree(&new, &side("quickstart", "n", 10, 12.0, 0.15, 31));
    let o = rift()
        .arg("compare")
        .arg(&base)
        .arg(&new)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("quickstart (10 base runs, 10 new runs)"),
        "{out}"
    );
    // A plan's results directory is every run of the plan; --latest 1 leaves
    // one run per side: noise unknown, no regression.
    let o = rift()
        .arg("compare")
        .arg(base.join("quickstart"))
        .arg(new.join("quickstart"))
        .args(["--latest", "1"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("noise unknown"));
    let page = dir.path().join("cmp.html");
    let o = rift()
        .arg("compare")
        .arg(&base)
        .arg(&new)
        .args(["--format", "html", "-o"])
        .arg(&page)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let html = std::fs::read_to_string(&page).unwrap_or_default();
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg"),
        "{html}"
    );
    let o = rift()
        .arg("compare")
        .arg(&base)
        .arg(&new)
        .args(["--format", "json"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    let p50 = &v["plans"][0]["metrics"][2];
    assert_eq!(p50["metric"], "p50_latency");
    assert_eq!(p50["verdict"], "regression");
    assert_eq!(p50["base"]["n"], 10);
    assert!(p50["difference"]["ci"]["lo"]
        .as_f64()
        .is_some_and(|lo| lo > 0.0));
}
