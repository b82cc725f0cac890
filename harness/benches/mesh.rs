//! What the proxy mesh costs a real cluster: the same closed-loop key-value
//! load (32 clients, as fast as they go) against 3 sample nodes whose peer
//! links go through the mesh (`network = "proxy"`) and directly
//! (`network = "none"`), alternating, in one run. Prints JSON: ops/s and
//! latency of each, and the throughput ratio.
//!
//! `cargo bench -p rift --bench mesh` (RIFT_BENCH_ROUNDS changes the 2 rounds).

use serde_json::{json, Value};
use std::process::{Command, Stdio};

fn run(dir: &std::path::Path, network: &str) -> Option<(f64, f64, f64)> {
    let name = format!("mesh-{network}");
    let plan = dir.join(format!("{name}.toml"));
    let text = format!(
        "name = \"{name}\"\nseed = 1\nduration = \"12s\"\n[cluster]\nsize = 3\nnetwork = \"{network}\"\n\
         [workload]\nkind = \"kv\"\nclients = 32\nrate = 50000\nkeys = 100\nmix = {{ read = 0.5, write = 0.5, cas = 0.0 }}\n"
    );
    std::fs::write(&plan, text).ok()?;
    let out = dir.join("results");
    let status = Command::new(env!("CARGO_BIN_EXE_rift"))
        .args(["run", "--progress", "quiet", "--out"])
        .arg(&out)
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        eprintln!("run with network = {network} exited {status}");
    }
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(&name).join("latest").join("report.json")).ok()?,
    )
    .ok()?;
    Some((
        r["ops"]["per_second"].as_f64()?,
        r["latency"]["p50_ms"].as_f64()?,
        r["latency"]["p99_ms"].as_f64()?,
    ))
}

fn main() {
    let rounds: usize = std::env::var("RIFT_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut proxy = Vec::new();
    let mut direct = Vec::new();
    for _ in 0..rounds {
        proxy.extend(run(dir.path(), "proxy"));
        direct.extend(run(dir.path(), "none"));
    }
    let mean = |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| {
        v.iter().map(f).sum::<f64>() / v.len().max(1) as f64
    };
    let (p_ops, d_ops) = (mean(&proxy, |x| x.0), mean(&direct, |x| x.0));
    let summary = json!({
        "bench": "mesh-cluster",
        "rounds": rounds,
        "proxy": { "ops_s": proxy.iter().map(|x| x.0).collect::<Vec<_>>(), "p50_ms": mean(&proxy, |x| x.1), "p99_ms": mean(&proxy, |x| x.2) },
        "direct": { "ops_s": direct.iter().map(|x| x.0).collect::<Vec<_>>(), "p50_ms": mean(&direct, |x| x.1), "p99_ms": mean(&direct, |x| x.2) },
        "throughput_ratio": if d_ops > 0.0 { p_ops / d_ops } else { f64::NAN },
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
}
