//! What the netns wire costs, against the direct path in the same run:
//!
//! 1. a 3-node sample cluster's committed writes per second and their
//!    latency p50/p99, with the release `rift` binary driving a writes-only
//!    workload faster than the cluster can go, once with peers and clients
//!    on loopback directly (`network = "none"`) and once through the wire;
//! 2. the wire's own added round trip: TCP echo p50/p99 between two
//!    namespaces through the wire against the same echo over loopback;
//! 3. how long a partition and a heal take to take effect: a stream of UDP
//!    datagrams every 100 µs, and the time from `set_link` returning to the
//!    first datagram sent after it that was (partition) or was no longer
//!    (heal) dropped.
//!
//! Needs root; prints `{"skipped": ...}` without it.
//! `cargo bench -p rift --bench wire` (RIFT_BENCH_RATE changes the rate asked).

use rift::net::wire::Wire;
use rift::net::{LinkState, Network, NodeEndpoints};
use rift::NodeId;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn round(x: f64, places: i32) -> f64 {
    (x * 10f64.powi(places)).round() / 10f64.powi(places)
}

/// One `rift run` of a writes-only plan on `network`: committed writes per
/// second over the run and their latency.
fn cluster(rate: u32, network: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("wire-bench.toml");
    std::fs::write(
        &plan,
        format!(
            "name = \"wire-bench\"\nseed = 1\nduration = \"12s\"\n[cluster]\nsize = 3\nnetwork = \"{network}\"\n[workload]\nkind = \"kv\"\nclients = 32\nrate = {rate}\nkeys = 100\nmix = {{ read = 0.0, write = 1.0, cas = 0.0 }}\ntimeout = \"2s\"\n"
        ),
    )
    .expect("write plan");
    let out = dir.path().join("results");
    let status = Command::new(env!("CARGO_BIN_EXE_rift"))
        .args(["run", "--progress", "quiet", "--out"])
        .arg(&out)
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run rift");
    let run = out.join("wire-bench").join("latest");
    let text = std::fs::read_to_string(run.join("history.jsonl")).unwrap_or_default();
    let (mut lat, mut first, mut last) = (Vec::new(), u64::MAX, 0u64);
    for line in text.lines() {
        let Ok(op) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if op["kind"] != "write" || op["outcome"] != "ok" {
            continue;
        }
        let (i, c) = (
            op["invoke_ns"].as_u64().unwrap_or(0),
            op["complete_ns"].as_u64().unwrap_or(0),
        );
        first = first.min(i);
        last = last.max(c);
        lat.push((c.saturating_sub(i)) as f64 / 1e6);
    }
    let span = (last.saturating_sub(first)) as f64 / 1e9;
    let per_s = if span > 0.0 {
        lat.len() as f64 / span
    } else {
        f64::NAN
    };
    json!({
        "network": network,
        "committed_writes": lat.len(),
        "committed_writes_per_s": round(per_s, 1),
        "write_p50_ms": round(percentile(&mut lat, 0.5), 2),
        "write_p99_ms": round(percentile(&mut lat, 0.99), 2),
        "rift_exit": status.code(),
    })
}

fn start_wire(n: usize) -> Wire {
    let nodes: Vec<NodeEndpoints> = (0..n)
        .map(|i| {
            let a = SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16));
            NodeEndpoints { client: a, peer: a }
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(Wire::start(&nodes, 1, None)).expect("wire")
}

/// An echo server on `addr`, run by `enter` (a namespace or none).
fn echo_server(listener: TcpListener) {
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let _ = s.set_nodelay(true);
            thread::spawn(move || {
                let mut buf = [0u8; 256];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// Round trips of 64 bytes over one connection, in milliseconds.
fn round_trips(to: SocketAddr, count: usize) -> Vec<f64> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let msg = [1u8; 64];
    let mut back = [0u8; 64];
    // Warm up: the first exchanges pay for slow start and cold caches.
    for _ in 0..50 {
        s.write_all(&msg).expect("write");
        s.read_exact(&mut back).expect("read");
    }
    (0..count)
        .map(|_| {
            let t = Instant::now();
            s.write_all(&msg).expect("write");
            s.read_exact(&mut back).expect("read");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

fn rtt(wire: &Wire) -> Value {
    let count = 2000;
    // Direct: loopback in rift's own namespace.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let direct_to = l.local_addr().expect("addr");
    echo_server(l);
    let mut direct = round_trips(direct_to, count);
    // Through the wire: n0's namespace to n1's.
    let to = SocketAddr::new(wire.client_addr(NodeId(1)).ip(), 9100);
    let (tx, rx) = mpsc::channel();
    let ns1 = wire.netns(NodeId(1)).expect("ns").clone();
    thread::spawn(move || {
        let _ = ns1.run(move || {
            let l = TcpListener::bind(to).expect("bind in n1");
            let _ = tx.send(());
            echo_server(l);
            // Serve until the process ends.
            loop {
                thread::park();
            }
        });
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("echo ready");
    let ns0 = wire.netns(NodeId(0)).expect("ns").clone();
    let carried = |w: &Wire| {
        w.snapshot()
            .pairs
            .iter()
            .filter(|p| (p.from == "n0" && p.to == "n1") || (p.from == "n1" && p.to == "n0"))
            .map(|p| p.counters.packets)
            .sum::<u64>()
    };
    let before = carried(wire);
    let mut wired = ns0.run(move || round_trips(to, count)).expect("in n0");
    // Proof the round trips crossed the wire: packets rift carried for them.
    let packets = carried(wire) - before;
    let (d50, d99) = (percentile(&mut direct, 0.5), percentile(&mut direct, 0.99));
    let (w50, w99) = (percentile(&mut wired, 0.5), percentile(&mut wired, 0.99));
    json!({
        "round_trips": count,
        "wire_packets_carried": packets,
        "direct_p50_ms": round(d50, 3),
        "direct_p99_ms": round(d99, 3),
        "wire_p50_ms": round(w50, 3),
        "wire_p99_ms": round(w99, 3),
        "added_p50_ms": round(w50 - d50, 3),
        "added_p99_ms": round(w99 - d99, 3),
    })
}

/// A datagram every 100 µs from n0 to n1; for each cut and heal, the time
/// from `set_link` returning to the first datagram sent after it whose fate
/// changed.
fn switch_times(wire: &Wire) -> Value {
    let to = SocketAddr::new(wire.client_addr(NodeId(1)).ip(), 9200);
    let from = SocketAddr::new(wire.client_addr(NodeId(0)).ip(), 0);
    let origin = Instant::now();
    let (ready_tx, ready_rx) = mpsc::channel();
    let ns1 = wire.netns(NodeId(1)).expect("ns").clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_rx = stop.clone();
    let receiver = thread::spawn(move || {
        ns1.run(move || {
            let s = UdpSocket::bind(to).expect("bind");
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            let _ = ready_tx.send(());
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            while !stop_rx.load(Ordering::Relaxed) {
                if let Ok(8) = s.recv(&mut buf) {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&buf[..8]);
                    got.push(u64::from_be_bytes(b));
                }
            }
            got
        })
        .expect("in n1")
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("ready");
    let ns0 = wire.netns(NodeId(0)).expect("ns").clone();
    let stop_tx = stop.clone();
    let sender = thread::spawn(move || {
        ns0.run(move || {
            let s = UdpSocket::bind(from).expect("bind");
            let mut sent = Vec::new();
            while !stop_tx.load(Ordering::Relaxed) {
                let t = origin.elapsed().as_nanos() as u64;
                if s.send_to(&t.to_be_bytes(), to).is_ok() {
                    sent.push(t);
                }
                let until = Instant::now() + Duration::from_micros(100);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            sent
        })
        .expect("in n0")
    });
    let mut switches = Vec::new();
    let pause = |ms| thread::sleep(Duration::from_millis(ms));
    pause(200);
    for _ in 0..20 {
        wire.set_link(NodeId(0), NodeId(1), LinkState::Drop);
        let cut = origin.elapsed().as_nanos() as u64;
        pause(60);
        wire.set_link(NodeId(0), NodeId(1), LinkState::Pass);
        let healed = origin.elapsed().as_nanos() as u64;
        pause(60);
        switches.push((cut, healed));
    }
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().expect("sender");
    let got: std::collections::HashSet<u64> =
        receiver.join().expect("receiver").into_iter().collect();
    let (mut cut_ms, mut heal_ms) = (Vec::new(), Vec::new());
    for &(cut, healed) in &switches {
        // First datagram sent at or after the cut that never arrived.
        if let Some(t) = sent.iter().find(|&&t| t >= cut && !got.contains(&t)) {
            cut_ms.push((t - cut) as f64 / 1e6);
        }
        if let Some(t) = sent.iter().find(|&&t| t >= healed && got.contains(&t)) {
            heal_ms.push((t - healed) as f64 / 1e6);
        }
    }
    json!({
        "switches": switches.len(),
        "datagram_interval_us": 100,
        "partition_effective_ms": { "median": round(percentile(&mut cut_ms, 0.5), 3), "max": round(percentile(&mut cut_ms, 1.0), 3) },
        "heal_effective_ms": { "median": round(percentile(&mut heal_ms, 0.5), 3), "max": round(percentile(&mut heal_ms, 1.0), 3) },
    })
}

fn main() {
    if let Err(missing) = rift::netns::check_privileges() {
        println!(
            "{}",
            json!({ "bench": "rift-wire", "skipped": format!("the netns wire {missing}") })
        );
        return;
    }
    let rate: u32 = std::env::var("RIFT_BENCH_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20000);
    let direct = cluster(rate, "none");
    let wired = cluster(rate, "netns");
    let per_s = |v: &Value| v["committed_writes_per_s"].as_f64().unwrap_or(f64::NAN);
    let wire = start_wire(2);
    let rtt = rtt(&wire);
    let switch = switch_times(&wire);
    let summary = json!({
        "bench": "rift-wire",
        "asked_ops_s": rate,
        "cluster_direct": direct,
        "cluster_wire": wired,
        "wire_over_direct_writes_per_s": round(per_s(&wired) / per_s(&direct), 3),
        "round_trip": rtt,
        "partition_and_heal": switch,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
}
