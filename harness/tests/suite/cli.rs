//! rift end to end through its command line: real clusters of the bundled
//! sample node (rift re-executing itself), real signals, real reports; and
//! the cleanup promises when rift is interrupted or killed.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn rift() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rift"));
    c.env_remove("RUST_LOG");
    c
}

fn write_plan(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, body).expect("write plan");
    p
}

fn run_to_end(plan: &Path, out: &Path, extra: &[&str]) -> Output {
    rift()
        .args(["run", "--progress", "lines", "--out"])
        .arg(out)
        .arg(plan)
        .args(extra)
        .output()
        .expect("run rift")
}

fn latest_report(out: &Path, plan: &str) -> Value {
    let path = out.join(plan).join("latest").join("report.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("report.json is JSON")
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Children of `pid`, from /proc.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(child) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // The command name may hold spaces; fields resume after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            out.push(child);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has exited; only its parent's wait is missing.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_until(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Starts a long run and waits until its workload is underway.
fn start_long_run(dir: &Path, name: &str, steps: &str) -> (Child, PathBuf, Vec<u32>) {
    let plan = write_plan(
        dir,
        name,
        &format!(
            r#"name = "{name}"
duration = "60s"
[cluster]
size = 3
[workload]
kind = "kv"
clients = 4
rate = 100
{steps}
"#
        ),
    );
    let out = dir.join("results");
    let child = rift()
        .args(["run", "--progress", "quiet", "--out"])
        .arg(&out)
        .arg(&plan)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rift");
    let history = out.join(name).join("latest").join("history.jsonl");
    let started = wait_until(Duration::from_secs(20), || {
        std::fs::metadata(&history).is_ok_and(|m| m.len() > 0)
    });
    assert!(started, "the run never recorded an operation");
    // rift's children are the nodes (rift re-executed) and a `sh` guard.
    let nodes: Vec<u32> = children(child.id())
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "rift")
        })
        .collect();
    assert_eq!(
        nodes.len(),
        3,
        "expected three node processes under rift, found {nodes:?}"
    );
    (child, out, nodes)
}

#[test]
fn short_plan_runs_green_end_to_end_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(
        dir.path(),
        "short",
        r#"
name = "short"
description = "kill and restart, then pause"
seed = 5
duration = "9s"
[cluster]
size = 3
[workload]
kind = "kv"
clients = 4
rate = 100
keys = 5
[[step]]
at = "2s"
fault = "kill"
target = "random"
restart_after = "2s"
[[step]]
at = "6s"
fault = "pause"
target = "random"
for = "1500ms"
[expect]
availability = 0.95
recovery = "5s"
linearizable = true
lost_writes = 0
"#,
    );
    let out = dir.path().join("results");
    let o = run_to_end(&plan, &out, &["--label", "test-build"]);
    assert!(o.status.success(), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("short: PASS"), "{stdout}");
    let r = latest_report(&out, "short");
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["seed"], 5);
    assert_eq!(r["label"], "test-build");
    assert_eq!(r["status"], "completed");
    let actions: Vec<&str> = r["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["kill", "restart", "pause", "resume"]);
    for e in r["timeline"].as_array().into_iter().flatten() {
        assert!(e["error"].is_null(), "fault failed: {e}");
        assert!(e["lag_ms"].as_f64().is_some_and(|l| l >= 0.0), "{e}");
    }
    assert!(
        r["ops"]["ok"].as_u64().is_some_and(|n| n > 200),
        "{}",
        r["ops"]
    );
    let latest = out.join("short").join("latest");
    let history = std::fs::read_to_string(latest.join("history.jsonl")).expect("history");
    assert_eq!(
        history.lines().count() as u64,
        r["ops"]["total"].as_u64().unwrap_or(0)
    );
    for n in ["n0", "n1", "n2"] {
        assert!(
            latest.join("nodes").join(format!("{n}.log")).is_file(),
            "{n}.log"
        );
    }
    assert!(latest.join("summary.md").is_file());
}

#[test]
fn sigint_mid_run_resumes_stops_every_node_and_writes_an_aborted_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, out, nodes) = start_long_run(
        dir.path(),
        "interrupted",
        "[[step]]\nat = \"0s\"\nfault = \"pause\"\ntarget = \"n1\"\nfor = \"50s\"\n[expect]\nrecovery = \"5s\"\n",
    );
    // The pause is in force before the interrupt.
    let report_dir = out.join("interrupted").join("latest");
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let sent = Instant::now();
    let exited = wait_until(Duration::from_secs(5), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    let took = sent.elapsed();
    assert!(exited, "rift did not exit after SIGINT");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    eprintln!("rift exited {took:?} after SIGINT");
    for pid in &nodes {
        assert!(
            wait_until(Duration::from_secs(2), || !alive(*pid)),
            "node pid {pid} outlived rift"
        );
    }
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(report_dir.join("report.json")).expect("report"),
    )
    .expect("json");
    assert_eq!(r["status"], "aborted");
    assert!(r["abort_reason"]
        .as_str()
        .is_some_and(|s| s.contains("interrupted")));
    assert_eq!(r["timeline"][0]["action"], "pause");
    // The final heal never came: the recovery is unknown, not a failure,
    // and JUnit carries no failure for it.
    let recovery = r["expectations"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["name"] == "recovery"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(recovery["verdict"], "unknown", "{recovery}");
    assert!(recovery["not_observed"].is_string(), "{recovery}");
    let junit = std::fs::read_to_string(report_dir.join("junit.xml")).expect("junit.xml");
    assert!(!junit.contains("<failure"), "{junit}");
    // The paused node was resumed and stopped gracefully, not left stopped
    // for SIGKILL: it logged its own orderly shutdown.
    let log = std::fs::read_to_string(report_dir.join("nodes").join("n1.log")).expect("n1.log");
    assert!(
        log.contains("signal received; stopping"),
        "n1 did not stop gracefully:\n{log}"
    );
}

#[test]
fn sigkill_of_rift_leaves_no_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, _out, nodes) = start_long_run(dir.path(), "killed", "");
    child.kill().expect("SIGKILL rift");
    let _ = child.wait();
    for pid in &nodes {
        assert!(
            wait_until(Duration::from_secs(5), || !alive(*pid)),
            "node pid {pid} outlived a SIGKILLed rift"
        );
    }
}

#[test]
fn malformed_plan_exits_2_naming_file_line_column_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(
        dir.path(),
        "bad",
        "name = \"bad\"\nduration = \"10s\"\n[cluster]\nsize = \"five\"\n",
    );
    let o = rift().args(["run"]).arg(&plan).output().expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{}:4:8: cluster.size", plan.display())),
        "{err}"
    );
    let o = rift()
        .args(["validate"])
        .arg(&plan)
        .output()
        .expect("validate");
    assert_eq!(o.status.code(), Some(2));
}

/// Every plan that ships is valid, and `validate` takes directories as
/// `run` does.
#[test]
fn shipped_plans_validate() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let o = rift()
        .arg("validate")
        .arg(repo.join("experiments"))
        .arg(repo.join("experiments/bugs"))
        .output()
        .expect("validate");
    assert!(o.status.success(), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let shipped = ["experiments", "experiments/bugs"]
        .iter()
        .flat_map(|d| std::fs::read_dir(repo.join(d)).expect("read experiments"))
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .count();
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok: ")).count(),
        shipped,
        "{stdout}"
    );
}

/// A directory with good and bad plans: every good one is `ok`, every
/// error of every bad one is shown, and a node program that is nowhere is a
/// warning, not an error.
#[test]
fn validate_a_directory_reports_every_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_plan(
        dir.path(),
        "a-good",
        "name = \"good\"\nduration = \"10s\"\n",
    );
    write_plan(
        dir.path(),
        "b-bad",
        "name = \"bad\"\nduration = \"10s\"\n[cluster]\nsize = \"five\"\n",
    );
    write_plan(
        dir.path(),
        "c-late",
        "name = \"late\"\nduration = \"10s\"\n[[step]]\nat = \"20s\"\nfault = \"kill\"\ntarget = \"n9\"\n",
    );
    write_plan(
        dir.path(),
        "d-nowhere",
        "name = \"nowhere\"\nduration = \"10s\"\n[cluster]\ncommand = \"rift-no-such-program-xyz\"\nargs = [\"--port\", \"{port}\"]\nready = { tcp = true }\n",
    );
    let o = rift()
        .arg("validate")
        .arg(dir.path())
        .output()
        .expect("validate");
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(out.contains("a-good.toml (good)"), "{}", show(&o));
    assert!(out.contains("d-nowhere.toml (nowhere)"), "{}", show(&o));
    assert!(err.contains("b-bad.toml:4:8: cluster.size"), "{}", show(&o));
    assert!(err.contains("c-late.toml:4:6: step[0].at"), "{}", show(&o));
    assert!(err.contains("step[0].target"), "{}", show(&o));
    assert!(
        err.contains("warning: ")
            && err.contains("`rift-no-such-program-xyz` names no executable file on PATH"),
        "{}",
        show(&o)
    );
}

/// `rift list` finds the plans under experiments/ at any depth and marks
/// bug plans and plans of real systems.
#[test]
fn list_shows_every_shipped_plan_marked() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let o = rift()
        .arg("list")
        .arg(repo.join("experiments"))
        .output()
        .expect("list");
    assert!(o.status.success(), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .to_string()
    };
    assert!(!line("quickstart").contains('['), "{out}");
    assert!(line("bug-stale-reads").contains("[bug]"), "{out}");
    assert!(line("etcd-register").contains("[real]"), "{out}");
    assert!(line("redis-sentinel-set").contains("[bug,real]"), "{out}");
    assert!(!out.contains("[invalid]"), "{out}");
}

#[test]
fn node_that_never_gets_ready_exits_3_with_its_last_log_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(
        dir.path(),
        "broken",
        r#"
name = "broken"
duration = "5s"
[cluster]
size = 2
command = "/bin/sh"
args = ["-c", "echo cannot bind port {port} >&2; exit 7"]
network = "none"
ready = { tcp = true, timeout = "3s" }
[workload]
kind = "probe"
"#,
    );
    let o = rift()
        .args(["run", "--progress", "quiet", "--out"])
        .arg(dir.path().join("r"))
        .arg(&plan)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot bind port"), "{err}");
}

fn python3() -> Option<&'static str> {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: python3 is not installed; this test drives `python3 -m http.server` as the node");
    }
    ok.then_some("python3")
}

#[test]
fn probe_workload_drives_a_binary_other_than_the_sample_node() {
    let Some(py) = python3() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(
        dir.path(),
        "external",
        &format!(
            r#"
name = "external"
duration = "6s"
[cluster]
size = 3
command = "{py}"
args = ["-m", "http.server", "--bind", "{{host}}", "--directory", "{{data_dir}}", "{{port}}"]
network = "none"
ready = {{ path = "/", timeout = "10s" }}
[workload]
kind = "probe"
path = "/"
clients = 3
rate = 60
[[step]]
at = "2s"
fault = "kill"
target = "n1"
restart_after = "2s"
[expect]
availability = 0.95
"#
        ),
    );
    let out = dir.path().join("r");
    let o = run_to_end(&plan, &out, &[]);
    assert!(o.status.success(), "{}", show(&o));
    let r = latest_report(&out, "external");
    let down = &r["availability"]["by_class"]["down"];
    assert!(
        down["total"].as_u64().is_some_and(|t| t > 0),
        "requests to the killed node are recorded: {}",
        r["availability"]
    );
    assert!(r["availability"]["overall"]["total"]
        .as_u64()
        .is_some_and(|t| t > 100));
}

/// `via = "proxy"`: the workload's requests go through a proxy per node,
/// so degrading a node slows what its clients see, and only its clients.
#[test]
fn clients_through_proxies_feel_a_degraded_node_and_only_that_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(
        dir.path(),
        "via",
        r#"
name = "via"
seed = 3
duration = "3s"
[cluster]
size = 3
[workload]
kind = "probe"
path = "/health"
clients = 3
rate = 60
via = "proxy"
[[step]]
at = "0s"
fault = "degrade"
links = "n1"
latency = "40ms"
"#,
    );
    let out = dir.path().join("r");
    let o = run_to_end(&plan, &out, &[]);
    assert!(o.status.success(), "{}", show(&o));
    let r = latest_report(&out, "via");
    let detail = r["timeline"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("clients of n1"), "{}", r["timeline"]);
    // The report counts what each client link carried.
    let links = r["cluster"]["links"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let client_links: Vec<&Value> = links.iter().filter(|l| l["from"] == "clients").collect();
    assert_eq!(client_links.len(), 3, "{links:?}");
    assert!(
        client_links
            .iter()
            .all(|l| l["connections"].as_u64() >= Some(1) && l["bytes_back"].as_u64() > Some(0)),
        "{client_links:?}"
    );
    let history = std::fs::read_to_string(out.join("via").join("latest").join("history.jsonl"))
        .expect("history");
    // Requests sent before the degrade took effect (a millisecond in) are
    // not slowed.
    let effective_ns = r["timeline"][0]["effective_s"].as_f64().unwrap_or(0.0) * 1e9;
    let mut ms: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for line in history.lines() {
        let op: Value = serde_json::from_str(line).expect("history line");
        if op["outcome"] != "ok" || op["invoke_ns"].as_f64().unwrap_or(0.0) <= effective_ns {
            continue;
        }
        let took =
            op["complete_ns"].as_f64().unwrap_or(0.0) - op["invoke_ns"].as_f64().unwrap_or(0.0);
        ms.entry(op["node"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push(took / 1e6);
    }
    let median = |n: &str| {
        let mut v = ms.get(n).cloned().unwrap_or_default();
        assert!(v.len() > 5, "too few answers from {n}: {ms:?}");
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    // Both directions of each request wait 40 ms on n1's client link.
    let slowest_fast = ms["n1"].iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(
        slowest_fast >= 80.0,
        "a request to n1 took {slowest_fast} ms"
    );
    for n in ["n0", "n2"] {
        assert!(
            median(n) < 40.0,
            "{n}'s clients were slowed: {} ms",
            median(n)
        );
    }
}

/// `rift run … | head -1`: the reader goes away before rift prints its
/// verdict. rift must neither panic nor skip its cleanup and report.
#[test]
fn closed_stdout_and_stderr_do_not_break_a_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(
        dir.path(),
        "closed",
        "name = \"closed\"\nduration = \"2s\"\n[cluster]\nsize = 3\n[workload]\nclients = 2\nrate = 50\n",
    );
    let out = dir.path().join("r");
    // `-v` so that log events are written (and fail) too.
    let mut child = rift()
        .args(["run", "-v", "--progress", "lines", "--out"])
        .arg(&out)
        .arg(&plan)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rift");
    // Both readers gone before rift writes a line.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().expect("wait for rift");
    assert!(status.success(), "rift exited {status}");
    let r = latest_report(&out, "closed");
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["status"], "completed");
}

#[test]
fn node_that_exits_on_its_own_is_reported_and_fails_the_run() {
    let Some(py) = python3() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(
        dir.path(),
        "dies",
        &format!(
            r#"
name = "dies"
duration = "5s"
[cluster]
size = 3
command = "/bin/sh"
args = ["-c", "if [ {{id}} = 2 ]; then timeout 2 {py} -m http.server --bind {{host}} {{port}}; else exec {py} -m http.server --bind {{host}} {{port}}; fi"]
network = "none"
ready = {{ path = "/", timeout = "10s" }}
[workload]
kind = "probe"
path = "/"
"#
        ),
    );
    let out = dir.path().join("r");
    let o = run_to_end(&plan, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let r = latest_report(&out, "dies");
    let exits: Vec<&Value> = r["node_events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event"] == "exited" && e["expected"] == false)
        .collect();
    assert_eq!(exits.len(), 1, "{}", r["node_events"]);
    assert_eq!(exits[0]["node"], "n2");
    let exp = r["expectations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "no_unexpected_exits");
    assert_eq!(exp.map(|e| e["verdict"].clone()), Some(Value::from("fail")));
}
