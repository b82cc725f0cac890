//! rift's own cost while it drives a cluster: CPU used by the rift process
//! (not its nodes) at about 1,000 ops/s, and how late kills and pauses land
//! against their schedule. Runs the release `rift` binary on a 3-node sample
//! cluster for ~25 s and prints JSON.
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

fn main() {
    let rate: u32 = std::env::var("RIFT_BENCH_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
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
            "name = \"overhead\"\nseed = 1\nduration = \"24s\"\n[cluster]\nsize = 3\n[workload]\nkind = \"kv\"\nclients = 100\nrate = {rate}\nkeys = 50\n{steps}"
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
    let history = out.join("overhead").join("latest").join("history.jsonl");
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

    let report: Value =
        std::fs::read_to_string(out.join("overhead").join("latest").join("report.json"))
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
    let summary = json!({
        "bench": "rift-overhead",
        "target_rate_ops_s": rate,
        "achieved_ops_s": report["ops"]["per_second"],
        "rift_cpu_cores": (cpu * 1000.0).round() / 1000.0,
        "rift_cpu_percent_of_one_core": (cpu * 1000.0).round() / 10.0,
        "kill_lag_ms": { "n": kill.len(), "median": percentile(&mut kill, 0.5), "max": percentile(&mut kill, 1.0) },
        "pause_lag_ms": { "n": pause.len(), "median": percentile(&mut pause, 0.5), "max": percentile(&mut pause, 1.0) },
        "verdict": report["verdict"],
        "rift_exit": status.code(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
}
