//! `rift shrink` end to end, through the `rift` binary: a failed run of a
//! bug plan of the sample node (`ack-before-commit`) under a random
//! nemesis shrinks to a plan with fewer, explicit steps, which
//! fails the same checker when run again; and the refusals (a passed run,
//! an aborted run, no report) without a cluster.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn rift() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rift"))
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn report(run_dir: &Path) -> Value {
    let t = std::fs::read_to_string(run_dir.join("report.json")).expect("report.json");
    serde_json::from_str(&t).expect("report is JSON")
}

fn check_verdict(r: &Value, checker: &str) -> String {
    r["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["checker"] == checker))
        .and_then(|c| c["verdict"].as_str())
        .unwrap_or("absent")
        .to_string()
}

/// Under a random nemesis (seed 2 draws a pause of the leader and a
/// partition that isolates it), the `ack-before-commit` node acknowledges
/// appends it later loses. Shrinking turns the drawn schedule into explicit
/// steps and keeps only what still fails.
const PLAN: &str = r#"name = "shrink-ack"
description = "ack-before-commit under a random nemesis"
seed = 2
duration = "3s"

[cluster]
size = 3
bug = "ack-before-commit"

[workload]
kind = "ledger"
clients = 6
rate = 200
timeout = "500ms"

[nemesis]
mix = { partition = 2, degrade = 1, pause = 1 }
topologies = { isolate = 1 }
targets = { leader = 1 }
quiet = "200ms"
interval = ["300ms", "500ms"]
durations = ["500ms", "1500ms"]
final = "500ms"

[expect]
ledger_agreement = true
"#;

fn run(plan: &Path, out: &Path) -> Output {
    rift()
        .args(["run", "--network", "proxy", "--progress", "quiet", "--out"])
        .arg(out)
        .arg(plan)
        .output()
        .expect("run rift")
}

#[test]
fn a_failed_bug_run_shrinks_to_fewer_steps_that_still_fail_the_same_checker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("shrink-ack.toml");
    std::fs::write(&plan, PLAN).expect("write plan");
    let results = dir.path().join("results");
    let o = run(&plan, &results);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the bug run should fail\n{}",
        text(&o)
    );
    let run_dir = results.join("shrink-ack").join("latest");
    assert_eq!(check_verdict(&report(&run_dir), "ledger_agreement"), "fail");
    // The runner keeps the plan it ran.
    assert_eq!(
        std::fs::read_to_string(run_dir.join("plan.toml")).expect("plan.toml"),
        PLAN
    );

    let o = rift()
        .arg("shrink")
        .arg(&run_dir)
        .args(["--attempts", "1", "--need", "1", "--max-runs", "5"])
        .output()
        .expect("run rift shrink");
    let said = text(&o);
    assert_eq!(o.status.code(), Some(0), "{said}");
    // One progress line per candidate, the original first.
    assert!(
        said.contains("[1] the original schedule: 2 fault(s), 3s: 1/1 failed -> kept"),
        "{said}"
    );
    assert!(said.contains("faults: 2 -> "), "{said}");
    let shrunk = run_dir.join("shrunk.toml");
    let written = std::fs::read_to_string(&shrunk).expect("shrunk.toml");
    assert!(
        written.starts_with("# Shrunk by `rift shrink`"),
        "{written}"
    );
    let p = rift::plan::load(&shrunk).unwrap_or_else(|e| panic!("{e}\n{written}"));
    // The drawn schedule became explicit steps, fewer of them, and the
    // nemesis is gone (it would draw the same faults again).
    assert!(p.nemesis.is_none(), "{written}");
    assert_eq!(p.steps.len(), 1, "{written}");
    assert_eq!(p.seed, Some(2));
    // The shrink's runs went under the run's own shrink/ root.
    assert!(run_dir
        .join("shrink/shrink-ack/latest/report.json")
        .is_file());

    let again = dir.path().join("again");
    let o = run(&shrunk, &again);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the shrunk plan should fail\n{}",
        text(&o)
    );
    let r = report(&again.join("shrink-ack").join("latest"));
    assert_eq!(check_verdict(&r, "ledger_agreement"), "fail");
}

/// A report.json with just what shrink reads.
fn hand_made_report(dir: &Path, status: &str, verdict: &str) {
    let r = serde_json::json!({
        "schema_version": 1,
        "run_id": "r1",
        "plan": { "name": "p", "description": "", "path": "nowhere.toml", "hash": "00" },
        "seed": 3,
        "status": status,
        "abort_reason": if status == "aborted" { Value::from("interrupted") } else { Value::Null },
        "verdict": verdict,
        "duration_s": 3.0,
        "cluster": { "network": "proxy" },
        "checks": [],
        "expectations": [{ "name": "linearizable", "verdict": verdict }],
    });
    std::fs::write(dir.join("report.json"), r.to_string()).expect("write report");
}

fn shrink(run_dir: &Path) -> Output {
    rift()
        .arg("shrink")
        .arg(run_dir)
        .output()
        .expect("run rift shrink")
}

#[test]
fn passed_aborted_and_missing_runs_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");

    let passed = dir.path().join("passed");
    std::fs::create_dir(&passed).expect("mkdir");
    hand_made_report(&passed, "completed", "pass");
    let o = shrink(&passed);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("error: run r1 passed: there is no failure to shrink"),
        "{}",
        text(&o)
    );

    let aborted = dir.path().join("aborted");
    std::fs::create_dir(&aborted).expect("mkdir");
    hand_made_report(&aborted, "aborted", "fail");
    let o = shrink(&aborted);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("was aborted (interrupted)"),
        "{}",
        text(&o)
    );

    let missing = dir.path().join("missing");
    std::fs::create_dir(&missing).expect("mkdir");
    let o = shrink(&missing);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("report.json"), "{}", text(&o));

    // A failed run whose plan is gone: nothing to shrink from.
    let no_plan = dir.path().join("no-plan");
    std::fs::create_dir(&no_plan).expect("mkdir");
    hand_made_report(&no_plan, "completed", "fail");
    let o = shrink(&no_plan);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no plan.toml in"), "{}", text(&o));
    // None of them wrote anything.
    for d in [&passed, &aborted, &missing, &no_plan] {
        assert!(!d.join("shrunk.toml").exists());
        assert!(!d.join("shrink").exists());
    }
}
