//! Throughput benchmark (not a test): a 3-node cluster of the release binary in temp dirs,
//! 16 concurrent clients doing PUTs against the leader for a bounded time; prints JSON.
//! Run with `cargo bench -p sample-node --bench throughput` (RIFT_BENCH_SECS overrides 10 s).
//!
//! The cluster runs twice in the same invocation: on the plain disk, then with every
//! node's data dir on rift's faulty disk (the FUSE layer of `rift::disk`, no fault
//! active), and the JSON gives both and their ratio. The faulty-disk run needs root and
//! /dev/fuse; without them it is skipped with the reason in the JSON.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

const CLIENTS: usize = 16;

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Where the nodes keep their data.
#[derive(Clone, Copy, PartialEq)]
enum Disk {
    Plain,
    /// rift's faulty disk, no fault active.
    Faulty,
}

fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("RIFT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .clamp(1, 120);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let duration = Duration::from_secs(secs);
    let plain = rt.block_on(run(duration, Disk::Plain))?;
    let faulty = match rift::disk::FaultyDisk::check_available() {
        Ok(()) => rt.block_on(run(duration, Disk::Faulty))?,
        Err(why) => serde_json::json!({ "skipped": why.to_string() }),
    };
    let ratio = |key: &str| match (plain[key].as_f64(), faulty[key].as_f64()) {
        (Some(p), Some(f)) if p > 0.0 => serde_json::json!((f / p * 1000.0).round() / 1000.0),
        _ => serde_json::Value::Null,
    };
    let out = serde_json::json!({
        "bench": "throughput",
        "nodes": 3,
        "clients": CLIENTS,
        "plain_disk": plain,
        "faulty_disk": faulty,
        "faulty_over_plain": {
            "writes_per_sec": ratio("writes_per_sec"),
            "p50_ms": ratio("p50_ms"),
            "p99_ms": ratio("p99_ms"),
        },
    });
    println!("{out}");
    Ok(())
}

async fn run(duration: Duration, disk: Disk) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    // Dropped after the nodes (declared first): each unmounts its FUSE layer.
    let mut mounts = Vec::new();
    if disk == Disk::Faulty {
        for i in 0..3 {
            mounts.push(rift::disk::FaultyDisk::mount(
                &dir.path().join("backing").join(format!("n{i}")),
                &dir.path().join(format!("n{i}")),
                &rift::disk::FaultyDisk::label_for("bench", &format!("n{i}")),
                i as u64,
            )?);
        }
    }
    let mut ports = Vec::new();
    for _ in 0..3 {
        ports.push(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
    }
    let mut children = Children(Vec::new());
    for i in 0..3 {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sample-node"));
        cmd.arg("--id")
            .arg(format!("n{i}"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", ports[i]));
        cmd.arg("--data-dir").arg(dir.path().join(format!("n{i}")));
        for (j, p) in ports.iter().enumerate().filter(|(j, _)| *j != i) {
            cmd.arg("--peer").arg(format!("n{j}=127.0.0.1:{p}"));
        }
        let log = std::fs::File::create(dir.path().join(format!("n{i}.log")))?;
        cmd.stdout(Stdio::null()).stderr(log);
        children.0.push(cmd.spawn()?);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .build()?;

    // Find the leader (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(15);
    let leader_port = loop {
        let mut found = None;
        for p in &ports {
            if let Ok(r) = http
                .get(format!("http://127.0.0.1:{p}/health"))
                .send()
                .await
            {
                if let Ok(h) = r.json::<serde_json::Value>().await {
                    if h["role"] == "leader" {
                        found = Some(*p);
                    }
                }
            }
        }
        if let Some(p) = found {
            break p;
        }
        anyhow::ensure!(Instant::now() < deadline, "no leader within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (http, hist, ok, failed) = (http.clone(), hist.clone(), ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).ok();
            let mut n = 0u64;
            while Instant::now() < end {
                n += 1;
                let url = format!("http://127.0.0.1:{leader_port}/kv/c{c}-{}", n % 100);
                let t = Instant::now();
                let r = http.put(url).body(format!("value-{c}-{n}")).send().await;
                let us = t.elapsed().as_micros() as u64;
                match r {
                    Ok(r) if r.status().is_success() => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if let Some(h) = local.as_mut() {
                            let _ = h.record(us.max(1));
                        }
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if let (Some(h), Ok(mut all)) = (local, hist.lock()) {
                let _ = all.add(&h);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let h = hist
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock poisoned"))?;
    let writes = ok.load(Ordering::Relaxed);
    drop(children);
    drop(mounts);
    Ok(serde_json::json!({
        "seconds": (elapsed * 100.0).round() / 100.0,
        "committed_writes": writes,
        "failed_writes": failed.load(Ordering::Relaxed),
        "writes_per_sec": (writes as f64 / elapsed).round(),
        "p50_ms": h.value_at_quantile(0.50) as f64 / 1000.0,
        "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
        "max_ms": h.max() as f64 / 1000.0,
    }))
}
