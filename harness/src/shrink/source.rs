//! What `rift shrink` starts from: a failed run's report.json (read
//! generically: the fields shrink needs, and a `nemesis` field that newer
//! rifts record), the plan the run ran, the run's concrete schedule as
//! explicit steps, and candidate plans written from it (the original TOML
//! with `[nemesis]` removed, `[[step]]` replaced, `seed` set).
//!
//! Pure apart from reading the run directory; never runs anything.

use super::algo::Shorten;
use super::ShrinkError;
use crate::plan::{format_duration, parse_duration};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Durations are never halved below this.
pub const FLOOR: Duration = Duration::from_millis(500);

/// The workload keeps running this long after the last fault ends when the
/// plan's duration is cut.
pub const TAIL: Duration = Duration::from_secs(2);

/// The keys of a step that hold a fault's own duration (halved by shrink).
const DURATION_KEYS: [&str; 2] = ["for", "restart_after"];

/// The fields of report.json shrink reads.
#[derive(Debug, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    pub plan: PlanRef,
    pub seed: u64,
    pub status: String,
    pub verdict: String,
    #[serde(default)]
    pub abort_reason: Option<String>,
    pub duration_s: f64,
    pub cluster: ClusterRef,
    #[serde(default)]
    pub checks: Vec<Named>,
    #[serde(default)]
    pub expectations: Vec<Named>,
    /// The concrete schedule of a seeded nemesis, when the plan had one.
    #[serde(default)]
    pub nemesis: Option<NemesisRecord>,
}

#[derive(Debug, Deserialize)]
pub struct PlanRef {
    pub name: String,
    pub path: String,
    pub hash: String,
}

#[derive(Debug, Deserialize)]
pub struct ClusterRef {
    pub network: String,
}

/// A checker (`checker`) or an expectation (`name`) with its verdict.
#[derive(Debug, Deserialize)]
pub struct Named {
    #[serde(alias = "checker")]
    pub name: String,
    pub verdict: String,
}

#[derive(Debug, Deserialize)]
pub struct NemesisRecord {
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub decisions: Vec<Decision>,
}

#[derive(Debug, Deserialize)]
pub struct Decision {
    #[serde(default)]
    pub index: Option<u64>,
    /// Exactly the table a `[[step]]` would hold for this decision.
    pub step: serde_json::Map<String, serde_json::Value>,
}

/// What made a run fail: the expectations (`expect:NAME`) and checkers
/// (`check:NAME`) that failed. A later attempt fails "the same way" when it
/// fails at least one of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failure(pub BTreeSet<String>);

impl Failure {
    /// The failures of a report: every expectation whose verdict is `fail`,
    /// and every checker that failed unless an expectation of the same name
    /// passed (a `finds` plan wants that checker to fail). When nothing
    /// failed outright, the expectations that could not be decided.
    pub fn of(r: &RunReport) -> Failure {
        let mut out = BTreeSet::new();
        for e in &r.expectations {
            if e.verdict == "fail" {
                out.insert(format!("expect:{}", e.name));
            }
        }
        for c in &r.checks {
            let wanted = r
                .expectations
                .iter()
                .any(|e| e.name == c.name && e.verdict == "pass");
            if c.verdict == "fail" && !wanted {
                out.insert(format!("check:{}", c.name));
            }
        }
        if out.is_empty() {
            for e in &r.expectations {
                if e.verdict == "unknown" {
                    out.insert(format!("expect:{}", e.name));
                }
            }
        }
        Failure(out)
    }

    /// Whether `other` shares at least one failure with this one.
    pub fn shared_by(&self, other: &Failure) -> bool {
        self.0.intersection(&other.0).next().is_some()
    }

    /// `expect:linearizable, check:linearizable` as one line.
    pub fn text(&self) -> String {
        self.0.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

impl RunReport {
    pub fn read(run_dir: &Path) -> Result<RunReport, ShrinkError> {
        let path = run_dir.join("report.json");
        let text = std::fs::read_to_string(&path).map_err(|e| ShrinkError::Input {
            message: format!(
                "cannot read {}: {e} (is {} a run directory?)",
                path.display(),
                run_dir.display()
            ),
        })?;
        serde_json::from_str(&text).map_err(|e| ShrinkError::Input {
            message: format!("{} is not a rift report: {e}", path.display()),
        })
    }

    /// Refuses a run that shrink cannot start from: one that passed or was
    /// aborted.
    pub fn must_have_failed(&self) -> Result<Failure, ShrinkError> {
        if self.status != "completed" || self.abort_reason.is_some() {
            return Err(ShrinkError::Input {
                message: format!(
                    "run {} was aborted ({}): shrink needs a completed run that failed",
                    self.run_id,
                    self.abort_reason
                        .as_deref()
                        .unwrap_or("status not completed")
                ),
            });
        }
        if self.verdict == "pass" {
            return Err(ShrinkError::Input {
                message: format!("run {} passed: there is no failure to shrink", self.run_id),
            });
        }
        let f = Failure::of(self);
        if f.0.is_empty() {
            return Err(ShrinkError::Input {
                message: format!(
                    "run {} did not pass, but its report names no failed checker or expectation",
                    self.run_id
                ),
            });
        }
        Ok(f)
    }
}

/// The plan a run ran: its text and where it was read from.
#[derive(Debug)]
pub struct PlanSource {
    pub text: String,
    pub path: PathBuf,
    /// Set when the file read is not the one the run hashed.
    pub warning: Option<String>,
}

/// `RUN_DIR/plan.toml` (the runner's copy), else the path the report
/// names; warns when its hash differs from the report's.
pub fn plan_source(run_dir: &Path, r: &RunReport) -> Result<PlanSource, ShrinkError> {
    let copy = run_dir.join("plan.toml");
    let path = if copy.is_file() {
        copy
    } else {
        PathBuf::from(&r.plan.path)
    };
    let bytes = std::fs::read(&path).map_err(|e| ShrinkError::Input {
        message: format!(
            "no plan.toml in {} and cannot read the plan the report names ({}): {e}",
            run_dir.display(),
            path.display()
        ),
    })?;
    let hash = hex_sha256(&bytes);
    let warning = (hash != r.plan.hash).then(|| {
        format!(
            "{} is not the plan the run ran (its SHA-256 differs from report.plan.hash); \
shrinking it as it is now",
            path.display()
        )
    });
    let text = String::from_utf8(bytes).map_err(|_| ShrinkError::Input {
        message: format!("{} is not valid UTF-8", path.display()),
    })?;
    Ok(PlanSource {
        text,
        path,
        warning,
    })
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One fault of the schedule: the `[[step]]` table that makes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// Where it came from: `step 2` (the plan's own, 1-based) or
    /// `nemesis 5` (a decision's index).
    pub origin: String,
    pub table: toml::Table,
}

impl Fault {
    fn duration(&self, key: &str) -> Option<Duration> {
        self.table
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(|s| parse_duration(s).ok())
    }

    /// `at`, when it reads as a duration.
    pub fn at(&self) -> Option<Duration> {
        self.duration("at")
    }

    /// When the fault's effect ends: `at` plus its longest own duration.
    pub fn end(&self) -> Option<Duration> {
        let at = self.at()?;
        let len = DURATION_KEYS
            .iter()
            .filter_map(|k| self.duration(k))
            .max()
            .unwrap_or_default();
        Some(at + len)
    }

    /// `partition isolate(leader) at 3s for 5s (step 1)`, for progress lines.
    pub fn describe(&self) -> String {
        let s = |k: &str| self.table.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let mut out = s("fault").to_string();
        for k in ["target", "topology", "links"] {
            if !s(k).is_empty() {
                out.push(' ');
                out.push_str(s(k));
            }
        }
        out.push_str(&format!(" at {}", s("at")));
        for k in DURATION_KEYS {
            if !s(k).is_empty() {
                out.push_str(&format!(" {k} {}", s(k)));
            }
        }
        format!("{out} ({})", self.origin)
    }

    /// The sum of its own durations, to compare schedules by.
    pub fn total(&self) -> Duration {
        DURATION_KEYS.iter().filter_map(|k| self.duration(k)).sum()
    }
}

impl Shorten for Fault {
    fn shorter(&self) -> Option<Fault> {
        let mut out = self.clone();
        let mut changed = false;
        for k in DURATION_KEYS {
            let Some(d) = self.duration(k) else { continue };
            if d <= FLOOR {
                continue;
            }
            // Whole milliseconds, never below the floor.
            let half = Duration::from_millis((d / 2).as_millis() as u64).max(FLOOR);
            out.table
                .insert(k.to_string(), toml::Value::String(format_duration(half)));
            changed = true;
        }
        changed.then_some(out)
    }
}

/// The original plan as a TOML table, and the run's concrete schedule.
#[derive(Debug)]
pub struct Schedule {
    pub doc: toml::Table,
    pub faults: Vec<Fault>,
    /// The nemesis decisions included (0 without a nemesis).
    pub from_nemesis: usize,
}

/// The plan's own `[[step]]`s plus every nemesis decision's `step`, sorted
/// by `at` (file order, then decision order, for equal times).
pub fn schedule(src: &PlanSource, r: &RunReport) -> Result<Schedule, ShrinkError> {
    let doc: toml::Table = src.text.parse().map_err(|e| ShrinkError::Input {
        message: format!("{} is not valid TOML: {e}", src.path.display()),
    })?;
    let mut faults = Vec::new();
    if let Some(steps) = doc.get("step") {
        let Some(steps) = steps.as_array() else {
            return Err(ShrinkError::Input {
                message: format!("{}: `step` is not an array of tables", src.path.display()),
            });
        };
        for (i, s) in steps.iter().enumerate() {
            let Some(t) = s.as_table() else {
                return Err(ShrinkError::Input {
                    message: format!("{}: step {} is not a table", src.path.display(), i + 1),
                });
            };
            faults.push(Fault {
                origin: format!("step {}", i + 1),
                table: t.clone(),
            });
        }
    }
    let mut from_nemesis = 0;
    if let Some(n) = &r.nemesis {
        for (k, d) in n.decisions.iter().enumerate() {
            let index = d.index.unwrap_or(k as u64);
            let table = json_table(&d.step).map_err(|message| ShrinkError::Input {
                message: format!("report.json: nemesis decision {index}: {message}"),
            })?;
            faults.push(Fault {
                origin: format!("nemesis {index}"),
                table,
            });
            from_nemesis += 1;
        }
    }
    // Stable: equal times keep file order, then decision order.
    faults.sort_by_key(|f| f.at().unwrap_or_default());
    Ok(Schedule {
        doc,
        faults,
        from_nemesis,
    })
}

fn json_table(m: &serde_json::Map<String, serde_json::Value>) -> Result<toml::Table, String> {
    let mut t = toml::Table::new();
    for (k, v) in m {
        if let Some(v) = json_to_toml(v).map_err(|e| format!("`{k}`: {e}"))? {
            t.insert(k.clone(), v);
        }
    }
    Ok(t)
}

/// A JSON value as TOML; `null` has no TOML form and is left out.
fn json_to_toml(v: &serde_json::Value) -> Result<Option<toml::Value>, String> {
    use serde_json::Value as J;
    Ok(Some(match v {
        J::Null => return Ok(None),
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(f)) => toml::Value::Float(f),
            (None, None) => return Err(format!("{n} does not fit TOML")),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for x in a {
                if let Some(x) = json_to_toml(x)? {
                    out.push(x);
                }
            }
            toml::Value::Array(out)
        }
        J::Object(o) => toml::Value::Table(json_table(o)?),
    }))
}

/// A candidate plan: the original document with `[nemesis]` removed,
/// `[[step]]` replaced by `faults`, `seed` set, and `duration` replaced when
/// given; `header` goes first, as comment lines.
pub fn candidate_text(
    doc: &toml::Table,
    faults: &[Fault],
    seed: u64,
    duration: Option<Duration>,
    header: &[String],
) -> String {
    let mut doc = doc.clone();
    doc.remove("nemesis");
    doc.remove("step");
    // `seed` as a plain key must come before any table: an insert appends,
    // so rebuild with it in its place (after name/description).
    let mut out = toml::Table::new();
    // A seed TOML cannot hold (above i64::MAX, only from `--seed`) is left
    // out: the caller says to pass it with `--seed`.
    let seed = i64::try_from(seed).ok();
    let mut placed = seed.is_none();
    for (k, v) in doc {
        if k == "seed" {
            continue;
        }
        if let (false, Some(seed)) = (placed, seed) {
            if v.is_table() || k == "duration" || is_table_array(&v) {
                out.insert("seed".into(), toml::Value::Integer(seed));
                placed = true;
            }
        }
        if k == "duration" {
            if let Some(d) = duration {
                out.insert(k, toml::Value::String(format_duration(d)));
                continue;
            }
        }
        out.insert(k, v);
    }
    if let (false, Some(seed)) = (placed, seed) {
        out.insert("seed".into(), toml::Value::Integer(seed));
    }
    if !faults.is_empty() {
        let steps = faults
            .iter()
            .map(|f| toml::Value::Table(f.table.clone()))
            .collect();
        // Before `[expect]` when there is one, as plans usually read.
        let mut with_steps = toml::Table::new();
        let mut steps = Some(toml::Value::Array(steps));
        for (k, v) in out {
            if k == "expect" {
                if let Some(s) = steps.take() {
                    with_steps.insert("step".into(), s);
                }
            }
            with_steps.insert(k, v);
        }
        if let Some(s) = steps.take() {
            with_steps.insert("step".into(), s);
        }
        out = with_steps;
    }
    let mut text = String::new();
    for line in header {
        text.push_str("# ");
        text.push_str(line);
        text.push('\n');
    }
    text.push('\n');
    // Serialising a table of strings, numbers, booleans, arrays and tables
    // cannot fail; should it, the plan parser refuses the empty result.
    text.push_str(&toml::to_string(&out).unwrap_or_default());
    text
}

fn is_table_array(v: &toml::Value) -> bool {
    v.as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(toml::Value::is_table))
}

/// The plan's duration cut to the end of the last fault plus [`TAIL`], when
/// that is shorter than `current` (`None` otherwise, or when a fault's
/// times cannot be read).
pub fn cut_duration(faults: &[Fault], current: Duration) -> Option<Duration> {
    let mut last = Duration::ZERO;
    for f in faults {
        last = last.max(f.end()?);
    }
    let cut = last + TAIL;
    // Whole hundreds of milliseconds, as a person would write it.
    let cut = Duration::from_millis(cut.as_millis().div_ceil(100) as u64 * 100);
    (cut < current).then_some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;

    const PLAN: &str = r#"name = "x"
description = "a plan"
duration = "20s"

[cluster]
size = 3
bug = "stale-reads"

[workload]
kind = "kv"
mix = { read = 0.7, write = 0.3 }

[nemesis]
seed = 42

[[step]]
at = "8s"
fault = "partition"
topology = "isolate(leader)"
for = "4s"

[[step]]
at = "1s"
fault = "pause"
target = "n1"
for = "1s"

[expect]
linearizable = true
"#;

    fn report(extra: &str) -> RunReport {
        let json = format!(
            r#"{{"run_id": "r1", "plan": {{"name": "x", "path": "p.toml", "hash": "00"}},
            "seed": 7, "status": "completed", "verdict": "fail", "duration_s": 20.0,
            "cluster": {{"network": "proxy"}},
            "checks": [{{"checker": "linearizable", "verdict": "fail"}}],
            "expectations": [{{"name": "linearizable", "verdict": "fail"}},
                             {{"name": "no_unexpected_exits", "verdict": "pass"}}]
            {extra}}}"#
        );
        serde_json::from_str(&json).expect("hand-made report")
    }

    const NEMESIS: &str = r#", "nemesis": { "seed": 42, "decisions": [
        { "index": 0, "at_s": 12.5, "fault": "kill", "target": "leader",
          "step": { "at": "12.5s", "fault": "kill", "target": "leader", "restart_after": "3s" },
          "nodes": ["n2"] },
        { "index": 1, "at_s": 4.0, "fault": "pause", "target": "random",
          "step": { "at": "4s", "fault": "pause", "target": "random", "for": "2s" },
          "nodes": ["n0"] } ] }"#;

    fn src() -> PlanSource {
        PlanSource {
            text: PLAN.into(),
            path: "p.toml".into(),
            warning: None,
        }
    }

    #[test]
    fn the_schedule_is_the_plans_steps_and_the_nemesis_decisions_by_time() {
        let r = report(NEMESIS);
        let s = schedule(&src(), &r).expect("schedule");
        let origins: Vec<&str> = s.faults.iter().map(|f| f.origin.as_str()).collect();
        assert_eq!(origins, ["step 2", "nemesis 1", "step 1", "nemesis 0"]);
        assert_eq!(s.from_nemesis, 2);
        assert_eq!(
            s.faults[3].describe(),
            "kill leader at 12.5s restart_after 3s (nemesis 0)"
        );
        assert_eq!(s.faults[3].end(), Some(Duration::from_millis(15_500)));
    }

    #[test]
    fn a_report_without_nemesis_gives_the_plans_steps() {
        let s = schedule(&src(), &report("")).expect("schedule");
        assert_eq!(s.faults.len(), 2);
        assert_eq!(s.from_nemesis, 0);
    }

    #[test]
    fn a_candidate_drops_the_nemesis_sets_the_seed_and_validates() {
        let r = report(NEMESIS);
        let s = schedule(&src(), &r).expect("schedule");
        let text = candidate_text(
            &s.doc,
            &s.faults[1..3],
            r.seed,
            Some(Duration::from_secs(14)),
            &["shrunk from somewhere".into()],
        );
        assert!(text.starts_with("# shrunk from somewhere\n"), "{text}");
        assert!(!text.contains("nemesis"), "{text}");
        let p = plan::parse(&text, Path::new("c.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(p.seed, Some(7));
        assert_eq!(p.duration, Duration::from_secs(14));
        assert_eq!(p.steps.len(), 2);
        assert_eq!(p.steps[0].at, Duration::from_secs(4));
        assert_eq!(p.name, "x");
        // The other tables are as they were.
        let doc: toml::Table = text.parse().expect("toml");
        assert_eq!(doc.get("cluster"), s.doc.get("cluster"));
        assert_eq!(doc.get("workload"), s.doc.get("workload"));
        assert_eq!(doc.get("expect"), s.doc.get("expect"));
        // No faults: no `step` at all, and still a valid plan.
        let none = candidate_text(&s.doc, &[], 7, None, &[]);
        assert!(!none.contains("[[step]]"));
        let p = plan::parse(&none, Path::new("c.toml")).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.steps.is_empty());
        assert_eq!(p.duration, Duration::from_secs(20));
    }

    #[test]
    fn a_seed_toml_cannot_hold_is_left_out() {
        let s = schedule(&src(), &report("")).expect("schedule");
        let text = candidate_text(&s.doc, &s.faults, u64::MAX, None, &[]);
        let p = plan::parse(&text, Path::new("c.toml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.seed, None);
    }

    #[test]
    fn the_plan_comes_from_the_copy_else_the_reports_path_with_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = dir.path().join("elsewhere.toml");
        std::fs::write(&elsewhere, PLAN).expect("write");
        let mut r = report("");
        r.plan.path = elsewhere.display().to_string();
        r.plan.hash = hex_sha256(PLAN.as_bytes());
        // No copy: the report's path, same hash, no warning.
        let s = plan_source(dir.path(), &r).expect("plan");
        assert_eq!(s.path, elsewhere);
        assert!(s.warning.is_none());
        // Changed since: a warning.
        std::fs::write(&elsewhere, format!("{PLAN}\n# edited\n")).expect("write");
        let s = plan_source(dir.path(), &r).expect("plan");
        assert!(
            s.warning
                .as_deref()
                .is_some_and(|w| w.contains("not the plan the run ran")),
            "{s:?}"
        );
        // The copy wins.
        std::fs::write(dir.path().join("plan.toml"), PLAN).expect("write");
        let s = plan_source(dir.path(), &r).expect("plan");
        assert_eq!(s.path, dir.path().join("plan.toml"));
        assert!(s.warning.is_none());
        // Neither: bad input.
        let empty = tempfile::tempdir().expect("tempdir");
        r.plan.path = empty.path().join("gone.toml").display().to_string();
        let Err(e) = plan_source(empty.path(), &r) else {
            panic!("a missing plan was accepted");
        };
        assert!(e.to_string().contains("no plan.toml in"), "{e}");
    }

    #[test]
    fn shortening_halves_for_and_restart_after_down_to_the_floor() {
        let r = report(NEMESIS);
        let s = schedule(&src(), &r).expect("schedule");
        let kill = &s.faults[3];
        let k1 = kill.shorter().expect("3s halves");
        assert_eq!(k1.table["restart_after"].as_str(), Some("1500ms"));
        let k2 = k1.shorter().expect("1.5s halves");
        assert_eq!(k2.table["restart_after"].as_str(), Some("750ms"));
        let k3 = k2.shorter().expect("750ms goes to the floor");
        assert_eq!(k3.table["restart_after"].as_str(), Some("500ms"));
        assert!(k3.shorter().is_none());
        assert_eq!(k3.table["at"].as_str(), Some("12.5s"));
    }

    #[test]
    fn the_duration_is_cut_after_the_last_fault() {
        let s = schedule(&src(), &report(NEMESIS)).expect("schedule");
        // Last end: the kill at 12.5s + 3s.
        assert_eq!(
            cut_duration(&s.faults, Duration::from_secs(30)),
            Some(Duration::from_millis(17_500))
        );
        assert_eq!(cut_duration(&s.faults, Duration::from_secs(17)), None);
        assert_eq!(
            cut_duration(&[], Duration::from_secs(20)),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn the_failure_is_what_failed_and_a_finds_checker_is_not_part_of_it() {
        let f = Failure::of(&report(""));
        assert_eq!(f.text(), "check:linearizable, expect:linearizable");
        let mut r = report("");
        r.checks[0].name = "lost_writes".into();
        r.expectations[0] = Named {
            name: "availability".into(),
            verdict: "fail".into(),
        };
        r.expectations.push(Named {
            name: "lost_writes".into(),
            verdict: "pass".into(),
        });
        let g = Failure::of(&r);
        assert_eq!(g.text(), "expect:availability");
        assert!(!f.shared_by(&g));
        assert!(f.shared_by(&f));
    }

    #[test]
    fn passed_and_aborted_runs_are_refused() {
        let mut r = report("");
        r.verdict = "pass".into();
        let Err(e) = r.must_have_failed() else {
            panic!("a passed run was accepted");
        };
        assert!(e.to_string().contains("passed"), "{e}");
        let mut r = report("");
        r.status = "aborted".into();
        r.abort_reason = Some("interrupted".into());
        let Err(e) = r.must_have_failed() else {
            panic!("an aborted run was accepted");
        };
        assert!(e.to_string().contains("aborted (interrupted)"), "{e}");
    }
}
