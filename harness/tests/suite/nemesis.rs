//! `[nemesis]` end to end: real clusters of the sample node under the proxy
//! mesh (no root needed). The same plan and seed give the same concrete
//! schedule in report.json; another seed gives another; `--repeat 2` ends
//! with a table naming both seeds.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const PLAN: &str = r#"name = "nemesis-test"
duration = "30s"

[cluster]
size = 3

[workload]
kind = "kv"
clients = 3
rate = 60
keys = 5
timeout = "500ms"

[nemesis]
mix = { kill = 1, pause = 1, partition = 1, degrade = 1 }
targets = { leader = 1, random = 1, n1 = 2 }
interval = ["200ms", "700ms"]
durations = ["300ms", "900ms"]
quiet = "1s"
final = "2s"

[expect]
linearizable = true
lost_writes = 0
"#;

fn rift(plan: &Path, out: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rift"))
        .env_remove("RUST_LOG")
        .args(["run", "--progress", "quiet", "--network", "proxy"])
        .args(["--duration", "6s", "--out"])
        .arg(out)
        .arg(plan)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rift")
}

fn finished(child: Child) -> Output {
    let o = child.wait_with_output().expect("wait for rift");
    assert!(
        o.status.code().is_some_and(|c| c == 0 || c == 1),
        "rift could not run: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Every report.json under `out`, by seed.
fn reports(out: &Path) -> Vec<(u64, Value)> {
    let dir = out.join("nemesis-test");
    let mut found: Vec<(u64, Value)> = std::fs::read_dir(&dir)
        .expect("plan results")
        .filter_map(|e| e.ok().map(|e| e.path()))
        // Run directories only: not `latest`, nor the runs.json index.
        .filter(|p| p.is_dir() && !p.ends_with("latest"))
        .map(|p: PathBuf| {
            let text = std::fs::read_to_string(p.join("report.json")).expect("report.json");
            let r: Value = serde_json::from_str(&text).expect("report.json parses");
            (r["seed"].as_u64().expect("seed"), r)
        })
        .collect();
    found.sort_by_key(|(s, _)| *s);
    found
}

/// The decisions as decided: without `nodes`, except where the target was
/// a node by name (then its nodes cannot vary).
fn schedule(report: &Value) -> Vec<Value> {
    assert_eq!(report["nemesis"]["seed"], report["seed"]);
    let decisions = report["nemesis"]["decisions"]
        .as_array()
        .expect("nemesis.decisions");
    decisions
        .iter()
        .map(|d| {
            let mut d = d.clone();
            let by_name = d["target"].as_str().is_some_and(|t| {
                t.len() > 1 && t.starts_with('n') && t[1..].bytes().all(|b| b.is_ascii_digit())
            });
            if let Some(m) = d.as_object_mut() {
                if by_name {
                    // A degrade names every node at either end of its links.
                    let nodes = m["nodes"].as_array().cloned().unwrap_or_default();
                    assert!(nodes.contains(&m["target"]), "{m:?}");
                } else {
                    m.remove("nodes");
                }
            }
            d
        })
        .collect()
}

#[test]
fn a_seed_replays_its_schedule_and_repeat_tabulates_every_seed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = tmp.path().join("nemesis-test.toml");
    std::fs::write(&plan, PLAN).expect("write plan");
    let (once, twice) = (tmp.path().join("once"), tmp.path().join("twice"));
    // Both at once: seed 5 alone, and seeds 5 and 6 by --repeat 2.
    let single = rift(&plan, &once, &["--seed", "5"]);
    let repeated = rift(&plan, &twice, &["--seed", "5", "--repeat", "2"]);
    finished(single);
    let o = finished(repeated);

    let stdout = String::from_utf8_lossy(&o.stdout);
    let table = stdout
        .split("repeated:")
        .nth(1)
        .unwrap_or_else(|| panic!("no repeat table in:\n{stdout}"));
    for seed in ["5", "6"] {
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().next() == Some(seed)),
            "seed {seed} missing from the table:\n{table}"
        );
    }
    assert!(table.contains("nemesis-test: "), "{table}");

    let first = reports(&once);
    let both = reports(&twice);
    assert_eq!(first.len(), 1);
    assert_eq!(both.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![5, 6]);
    let a = schedule(&first[0].1);
    assert!(a.len() >= 2, "too few decisions to compare: {a:?}");
    assert_eq!(a, schedule(&both[0].1), "seed 5 twice");
    assert_ne!(a, schedule(&both[1].1), "seeds 5 and 6");
    // Each decision's step is a [[step]] a plan can hold: at and fault first.
    for d in &a {
        assert_eq!(d["step"]["fault"], d["fault"]);
        assert!(d["step"]["at"].as_str().is_some_and(|s| s.ends_with('s')));
    }
    // The schedule is listed in summary.md.
    let run_dir = std::fs::read_dir(once.join("nemesis-test"))
        .expect("run dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_dir() && !p.ends_with("latest"))
        .expect("a run directory");
    let summary = std::fs::read_to_string(run_dir.join("summary.md")).expect("summary.md");
    assert!(summary.contains("nemesis (seed `5`)"), "{summary}");
}
