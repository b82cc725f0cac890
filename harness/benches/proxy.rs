//! What one `Pass` proxy link costs, against an echo server on loopback,
//! three ways in the same run and in alternating rounds:
//!
//! - `direct`: no proxy;
//! - `mesh`: through a link of rift's proxy mesh;
//! - `floor`: through the least a user-space TCP proxy can do, two OS
//!   threads per connection doing blocking read/write. It has no link
//!   state to check and no runtime; whatever it loses against `direct` is
//!   the price of an extra TCP hop on this machine, which no user-space
//!   proxy can avoid. `mesh` should sit close to it.
//!
//! The echo server runs in a child process (this bench re-executed), as a
//! node would: every hop then crosses processes, as it does in a cluster,
//! instead of two tasks of one runtime handing a message to each other.
//!
//! Measured: request latency (one connection, 64 B ping-pong), request
//! throughput (many connections at once, 1 KiB ping-pong) and bulk
//! throughput (128 MiB echoed). Prints JSON.
//!
//! Run: `cargo bench -p rift --bench proxy`. Bounded: a fixed number of
//! round trips and bytes, a few seconds in all.

use hdrhistogram::Histogram;
use rift::cluster::Ports;
use rift::net::ProxyMesh;
use rift::NodeId;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MESSAGE: usize = 64;
const WARMUP: usize = 2_000;
const ROUNDS: usize = 10;
const TRIPS_PER_ROUND: usize = 2_000;
const REQUEST: usize = 1024;
const CONNECTIONS: usize = 16;
const TRIPS_PER_CONNECTION: usize = 2_000;
const BULK_BYTES: usize = 128 << 20;
const TRIALS: usize = 5;
const CHUNK: usize = 64 * 1024;
/// Nothing here should take long on loopback; a stuck path fails the bench
/// instead of hanging it.
const LIMIT: Duration = Duration::from_secs(30);

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Set in the child that serves echo.
const ECHO_ROLE: &str = "RIFT_BENCH_ECHO_SERVER";

fn main() -> BenchResult<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if std::env::var_os(ECHO_ROLE).is_some() {
        // The parent holds our stdin: when it is gone, however it went,
        // so are we.
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(0);
        });
        return rt.block_on(echo_server());
    }
    let mut child = EchoChild::spawn()?;
    let result = rt.block_on(run(child.addr));
    child.stop();
    result
}

/// The echo server process; killed when dropped, so that an error return
/// does not leave it behind.
struct EchoChild {
    process: std::process::Child,
    addr: SocketAddr,
}

impl EchoChild {
    fn spawn() -> BenchResult<EchoChild> {
        use std::io::BufRead;
        let mut process = std::process::Command::new(std::env::current_exe()?)
            .env(ECHO_ROLE, "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        if let Some(out) = process.stdout.take() {
            std::io::BufReader::new(out).read_line(&mut line)?;
        }
        match line.trim().parse() {
            Ok(addr) => Ok(EchoChild { process, addr }),
            Err(_) => {
                let _ = process.kill();
                Err(format!("echo server did not print its address: {line:?}").into())
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for EchoChild {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The three ways to reach the echo server.
struct Paths {
    direct: SocketAddr,
    mesh: SocketAddr,
    floor: SocketAddr,
}

async fn run(server: SocketAddr) -> BenchResult<()> {
    let listeners = Ports::for_mesh([127, 0, 0, 1].into(), 2)?.take_proxies(2);
    let mesh = ProxyMesh::start(2, "127.0.0.1", listeners, |_| server, 1).await?;
    let paths = Paths {
        direct: server,
        mesh: mesh.addr(NodeId(0), NodeId(1)),
        floor: floor_proxy(server)?,
    };

    let latency = latency(&paths).await?;
    let mut requests = [Vec::new(), Vec::new(), Vec::new()];
    let mut bulk_mbs = [Vec::new(), Vec::new(), Vec::new()];
    // Alternate so that load from other processes hits every path alike.
    for _ in 0..TRIALS {
        for (i, addr) in [paths.direct, paths.mesh, paths.floor]
            .into_iter()
            .enumerate()
        {
            requests[i].push(concurrent_requests(addr).await?);
            bulk_mbs[i].push(bulk(addr).await?);
        }
    }
    mesh.shutdown().await;

    let report = json!({
        "latency_us": latency,
        "requests_per_s": compare(&mut requests, json!({
            "connections": CONNECTIONS,
            "request_bytes": REQUEST,
            "round_trips": CONNECTIONS * TRIPS_PER_CONNECTION,
        })),
        "bulk_mb_s": compare(&mut bulk_mbs, json!({ "bytes": BULK_BYTES })),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Medians of each path's trials, and the ratios to direct that matter.
fn compare(trials: &mut [Vec<f64>; 3], setup: serde_json::Value) -> serde_json::Value {
    let [direct, mesh, floor] = trials.each_mut().map(|t| median(t));
    json!({
        "setup": setup,
        "direct": direct,
        "mesh": mesh,
        "floor": floor,
        "mesh_ratio": mesh / direct,
        "floor_ratio": floor / direct,
        "trials": { "direct": trials[0], "mesh": trials[1], "floor": trials[2] },
    })
}

/// One connection per path, 64 B ping-pong, alternating rounds.
async fn latency(paths: &Paths) -> BenchResult<serde_json::Value> {
    let mut hists = [
        Histogram::<u64>::new(3)?,
        Histogram::<u64>::new(3)?,
        Histogram::<u64>::new(3)?,
    ];
    let mut conns = [
        connect(paths.direct).await?,
        connect(paths.mesh).await?,
        connect(paths.floor).await?,
    ];
    for c in &mut conns {
        ping_pong(c, MESSAGE, WARMUP, None).await?;
    }
    for _ in 0..ROUNDS {
        for (c, h) in conns.iter_mut().zip(hists.iter_mut()) {
            ping_pong(c, MESSAGE, TRIPS_PER_ROUND, Some(h)).await?;
        }
    }
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let [direct, mesh, floor] = &hists;
    Ok(json!({
        "message_bytes": MESSAGE,
        "round_trips": ROUNDS * TRIPS_PER_ROUND,
        "direct": { "p50": us(direct, 0.5), "p99": us(direct, 0.99) },
        "mesh": { "p50": us(mesh, 0.5), "p99": us(mesh, 0.99) },
        "floor": { "p50": us(floor, 0.5), "p99": us(floor, 0.99) },
        "mesh_added_p50": us(mesh, 0.5) - us(direct, 0.5),
        "mesh_added_p99": us(mesh, 0.99) - us(direct, 0.99),
    }))
}

/// Serves echo on an OS-chosen loopback port, printed on stdout, until
/// stdin closes or the parent kills it.
async fn echo_server() -> BenchResult<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (mut s, _) = listener.accept().await?;
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let (mut r, mut w) = s.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
    }
}

/// The reference proxy: accept, dial, and one blocking copy loop per
/// direction on its own thread. Threads end when their connection does.
fn floor_proxy(target: SocketAddr) -> BenchResult<SocketAddr> {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    fn pump(mut from: TcpStream, mut to: TcpStream) {
        let mut buf = vec![0u8; CHUNK];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    }
    fn serve(client: TcpStream, target: SocketAddr) -> std::io::Result<()> {
        let upstream = TcpStream::connect(target)?;
        client.set_nodelay(true)?;
        upstream.set_nodelay(true)?;
        let (c2, u2) = (client.try_clone()?, upstream.try_clone()?);
        std::thread::spawn(move || pump(c2, u2));
        std::thread::spawn(move || pump(upstream, client));
        Ok(())
    }
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            if let Err(e) = serve(client, target) {
                eprintln!("floor proxy: {e}");
            }
        }
    });
    Ok(addr)
}

async fn connect(addr: SocketAddr) -> BenchResult<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

async fn ping_pong(
    s: &mut TcpStream,
    size: usize,
    trips: usize,
    mut hist: Option<&mut Histogram<u64>>,
) -> BenchResult<()> {
    let msg = vec![0x5au8; size];
    let mut back = vec![0u8; size];
    for _ in 0..trips {
        let start = Instant::now();
        s.write_all(&msg).await?;
        tokio::time::timeout(LIMIT, s.read_exact(&mut back)).await??;
        if let Some(h) = hist.as_deref_mut() {
            h.record(start.elapsed().as_nanos() as u64)?;
        }
    }
    Ok(())
}

/// `CONNECTIONS` clients each doing `TRIPS_PER_CONNECTION` 1 KiB round
/// trips at once; returns round trips per second.
async fn concurrent_requests(addr: SocketAddr) -> BenchResult<f64> {
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        conns.push(connect(addr).await?);
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut c in conns {
        tasks.spawn(async move { ping_pong(&mut c, REQUEST, TRIPS_PER_CONNECTION, None).await });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok((CONNECTIONS * TRIPS_PER_CONNECTION) as f64 / start.elapsed().as_secs_f64())
}

/// Streams `BULK_BYTES` through the echo server and reads them back;
/// returns MB/s of payload (one direction).
async fn bulk(addr: SocketAddr) -> BenchResult<f64> {
    let s = connect(addr).await?;
    let (mut r, mut w) = s.into_split();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![1u8; CHUNK];
        let mut sent = 0;
        while sent < BULK_BYTES {
            let n = CHUNK.min(BULK_BYTES - sent);
            w.write_all(&chunk[..n]).await?;
            sent += n;
        }
        w.shutdown().await?;
        Ok::<_, std::io::Error>(())
    });
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    while got < BULK_BYTES {
        let n = tokio::time::timeout(LIMIT, r.read(&mut buf)).await??;
        if n == 0 {
            return Err("echo closed early".into());
        }
        got += n;
    }
    let elapsed = start.elapsed().as_secs_f64();
    writer.await??;
    Ok(BULK_BYTES as f64 / elapsed / 1e6)
}

fn median(v: &[f64]) -> f64 {
    let mut sorted = v.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}
