//! rift's own cost while it drives a cluster: CPU used by the rift process
//! (not its nodes) per operation at about 1,000 ops/s, the rate achieved
//! against the rate asked (overall, and while no fault was in force), and
//! how late kills and pauses land against their schedule. Runs the release
//! `rift` binary on a 3-node sample cluster for ~25 s twice: with peers
//! talking directly (`network = "none"`) and through the proxy mesh, and
//! prints JSON with both and their ratio.
//!
//! `cargo bench -p rift --bench overhead` (RIFT_BENCH_RATE changes the rate).

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// utime + stime of one process, in clock ticks (children excluded).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Operations per second invoked while the world was steady (no fault in
/// force), skipping the first second of each steady period: the rate the
/// workload achieved whenever the cluster could keep up.
fn steady_rate(report: &Value, history: &std::path::Path) -> Option<f64> {
    let periods = report["periods"].as_array()?;
    let end_ns = (report["duration_s"].as_f64()? * 1e9) as u64;
    let mut windows = Vec::new();
    for (i, p) in periods.iter().enumerate() {
        if p["label"] != "steady" {
            continue;
        }
        let from = p["at_ns"].as_u64()? + 1_000_000_000;
        let to = periods
            .get(i + 1)
            .and_then(|n| n["at_ns"].as_u64())
            .unwrap_or(end_ns);
        if to > from {
            windows.push((from, to));
        }
    }
    let text = std::fs::read_to_string(history).ok()?;
    let mut count = 0u64;
    for line in text.lines() {
        let Ok(op) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(t) = op["invoke_ns"].as_u64() {
            count += u64::from(windows.iter().any(|&(a, b)| t >= a && t < b));
        }
    }
    let span: u64 = windows.iter().map(|(a, b)| b - a).sum();
    (span > 0).then(|| count as f64 / (span as f64 / 1e9))
}

/// One run of the plan on `network`: rift's CPU over a window inside the
/// workload, and the run's report.
fn measure(rate: u32, network: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut steps = String::new();
    for i in 0..10u32 {
        let at = 2.0 + 2.0 * f64::from(i);
        if i % 2 == 0 {
            steps += &format!("[[step]]\nat = \"{at}s\"\nfault = \"kill\"\ntarget = \"random\"\nrestart_after = \"1s\"\n");
        } else {
            steps += &format!(
                "[[step]]\nat = \"{at}s\"\nfault = \"pause\"\ntarget = \"random\"\nfor = \"1s\"\n"
            );
        }
    }
    let plan = dir.path().join("overhead.toml");
    std::fs::write(
        &plan,
        format!(
            "name = \"overhead\"\nseed = 1\nduration = \"24s\"\n[cluster]\nsize = 3\nnetwork = \"{network}\"\n[workload]\nkind = \"kv\"\nclients = 100\nrate = {rate}\nkeys = 50\n{steps}"
        ),
    )
    .expect("write plan");
    let out = dir.path().join("results");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rift"))
        .args(["run", "--progress", "quiet", "--out"])
        .arg(&out)
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rift");
    let pid = child.id();
    let run = out.join("overhead").join("latest");
    let history = run.join("history.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::metadata(&history).is_ok_and(|m| m.len() > 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Measure a window inside the workload, away from setup and teardown.
    std::thread::sleep(Duration::from_secs(2));
    let (t0, c0) = (Instant::now(), cpu_ticks(pid).unwrap_or(0));
    std::thread::sleep(Duration::from_secs(18));
    let (t1, c1) = (Instant::now(), cpu_ticks(pid).unwrap_or(0));
    let status = child.wait().expect("wait");
    let cpu =
        (c1.saturating_sub(c0)) as f64 / ticks_per_second() / t1.duration_since(t0).as_secs_f64();

    let report: Value = std::fs::read_to_string(run.join("report.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let lags = |action: &str| -> Vec<f64> {
        report["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["action"] == action)
            .filter_map(|e| e["lag_ms"].as_f64())
            .collect()
    };
    let (mut kill, mut pause) = (lags("kill"), lags("pause"));
    let achieved = report["ops"]["per_second"].as_f64().unwrap_or(f64::NAN);
    let steady = steady_rate(&report, &history).unwrap_or(f64::NAN);
    let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
    json!({
        "network": network,
        "achieved_ops_s": round(achieved, 1),
        "achieved_over_asked": round(achieved / f64::from(rate), 3),
        "steady_ops_s": round(steady, 1),
        "steady_over_asked": round(steady / f64::from(rate), 3),
        "rift_cpu_percent_of_one_core": round(cpu * 100.0, 1),
        "rift_cpu_us_per_op": round(cpu / achieved * 1e6, 1),
        "kill_lag_ms": { "n": kill.len(), "median": percentile(&mut kill, 0.5), "max": percentile(&mut kill, 1.0) },
        "pause_lag_ms": { "n": pause.len(), "median": percentile(&mut pause, 0.5), "max": percentile(&mut pause, 1.0) },
        "verdict": report["verdict"],
        "rift_exit": status.code(),
    })
}

fn main() {
    let rate: u32 = std::env::var("RIFT_BENCH_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    // The direct path first: the workload and harness alone; then the same
    // plan with every peer message through rift's proxy mesh.
    let direct = measure(rate, "none");
    let mesh = measure(rate, "proxy");
    let per_op = |v: &Value| v["rift_cpu_us_per_op"].as_f64().unwrap_or(f64::NAN);
    let summary = json!({
        "bench": "rift-overhead",
        "target_rate_ops_s": rate,
        "direct": direct,
        "proxy_mesh": mesh,
        "mesh_over_direct_cpu_per_op": (per_op(&mesh) / per_op(&direct) * 100.0).round() / 100.0,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
}
