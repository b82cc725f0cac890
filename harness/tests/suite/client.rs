//! The client protocol end to end: real sample-node clusters driven through
//! client processes. A good client's run passes; clients that answer
//! garbage, hang or exit are recorded as client problems, their operations
//! unknown, and rift ends normally. `rift client-test` tells a good client
//! from a bad one. Skipped (one line) without python3.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rift() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rift"));
    c.env_remove("RUST_LOG");
    c
}

fn have_python() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: python3 is missing");
    }
    ok
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/clients")
        .join(name)
        .display()
        .to_string()
}

/// A short kv plan whose client is `python3 script`.
fn plan(dir: &Path, name: &str, script: &str, expect: &str) -> PathBuf {
    let body = format!(
        r#"name = "{name}"
seed = 7
duration = "3s"

[cluster]
size = 3

[workload]
kind = "kv"
clients = 2
rate = 40
keys = 3
timeout = "300ms"
client = {{ command = "python3", args = ["{script}"] }}

[expect]
{expect}
"#
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, body).expect("write plan");
    p
}

fn run(plan: &Path, out: &Path) -> Output {
    rift()
        .args(["run", "--progress", "quiet", "--out"])
        .arg(out)
        .arg(plan)
        .output()
        .expect("run rift")
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn latest(out: &Path, plan: &str) -> PathBuf {
    out.join(plan).join("latest")
}

fn history(run_dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(run_dir.join("history.jsonl")).expect("history");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("history line"))
        .collect()
}

fn problems(run_dir: &Path) -> Value {
    let path = run_dir.join("clients/problems.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("problems.json")
}

/// A misbehaving client: rift ends normally (0 or 1), records problems,
/// marks the operations in flight unknown and replaces the client (new ids).
fn misbehaving(name: &str, script: &str, says: &str) {
    if !have_python() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = plan(dir.path(), name, &fixture(script), "availability = 0.0");
    let o = run(&p, dir.path());
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("client problem"), "{}", show(&o));
    let run_dir = latest(dir.path(), name);
    let pr = problems(&run_dir);
    assert!(pr["count"].as_u64().unwrap_or(0) > 0, "{pr}");
    let first = pr["first"].to_string();
    assert!(first.contains(says), "{first}");
    let ops = history(&run_dir);
    let unknown = ops.iter().filter(|o| o["outcome"] == "unknown").count();
    assert!(unknown > 0, "no unknown op in {ops:?}");
    let ids: std::collections::BTreeSet<u64> =
        ops.iter().filter_map(|o| o["client"].as_u64()).collect();
    assert!(
        ids.iter().any(|i| *i >= 2),
        "replacements get new ids: {ids:?}"
    );
    assert!(run_dir.join("report.json").exists());
}

#[test]
fn a_client_answering_garbage_is_reported_and_replaced() {
    misbehaving("garbage", "garbage.py", "not a JSON object");
}

#[test]
fn a_client_that_hangs_is_killed_and_replaced() {
    misbehaving("hang", "hang.py", "no answer to op");
}

#[test]
fn a_client_that_exits_is_reported_and_replaced() {
    misbehaving("exits", "exits.py", "closed its stdout");
}

#[test]
fn the_example_client_passes_a_run_and_client_test() {
    if !have_python() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = repo().join("experiments/real/clients/sample_node_client.py");
    let p = plan(
        dir.path(),
        "good",
        &script.display().to_string(),
        "linearizable = true\nlost_writes = 0",
    );
    let o = run(&p, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let run_dir = latest(dir.path(), "good");
    assert!(!run_dir.join("clients/problems.json").exists());
    let ops = history(&run_dir);
    assert!(ops.iter().any(|o| o["outcome"] == "ok"), "{ops:?}");
    let t = rift()
        .args(["client-test", "--out"])
        .arg(dir.path())
        .arg(&p)
        .output()
        .expect("client-test");
    assert_eq!(t.status.code(), Some(0), "{}", show(&t));
    assert!(String::from_utf8_lossy(&t.stdout).contains("client OK"));
}

#[test]
fn client_test_says_what_is_wrong_with_a_bad_client() {
    if !have_python() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = plan(dir.path(), "bad", &fixture("garbage.py"), "");
    let t = rift()
        .args(["client-test", "--out"])
        .arg(dir.path())
        .arg(&p)
        .output()
        .expect("client-test");
    assert_eq!(t.status.code(), Some(1), "{}", show(&t));
    let stdout = String::from_utf8_lossy(&t.stdout);
    assert!(
        stdout.contains("wrong: ") && stdout.contains("not a JSON object"),
        "{stdout}"
    );
}

/// A cluster with no leader query of its own (an external command) whose
/// client answers `leader`: `isolate(leader)` asks the client, and cuts the
/// node the client named.
#[test]
fn leader_targets_are_resolved_by_asking_the_client() {
    if !have_python() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = repo().join("experiments/real/clients/sample_node_client.py");
    let body = format!(
        r#"name = "client-leader"
seed = 3
duration = "5s"

[cluster]
size = 3
command = "{rift}"
args = ["sample-node", "--id", "{{name}}", "--listen", "{{host}}:{{port}}", "--data-dir", "{{data_dir}}", {{ each_peer = ["--peer", "{{peer}}"] }}]
ready = {{ tcp = true }}

[workload]
kind = "kv"
clients = 3
rate = 60
client = {{ command = "python3", args = ["{script}"] }}

[[step]]
at = "2s"
fault = "partition"
topology = "isolate(leader)"
for = "1s"
"#,
        rift = env!("CARGO_BIN_EXE_rift"),
        script = script.display()
    );
    let p = dir.path().join("client-leader.toml");
    std::fs::write(&p, body).expect("write plan");
    let o = run(&p, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(latest(dir.path(), "client-leader").join("report.json"))
            .expect("report.json"),
    )
    .expect("report is JSON");
    let cut = report["timeline"]
        .as_array()
        .and_then(|t| t.iter().find(|e| e["action"] == "partition"))
        .expect("the partition ran");
    assert_eq!(cut["error"], Value::Null, "{cut}");
    let nodes = cut["nodes"].as_array().map(Vec::len);
    assert_eq!(nodes, Some(1), "the client named one leader: {cut}");
    // The timeline says the node was cut as the leader.
    assert!(
        cut["detail"]
            .as_str()
            .is_some_and(|d| d.ends_with("(the leader)")),
        "{cut}"
    );
}
