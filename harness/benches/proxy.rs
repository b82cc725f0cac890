//! What one `Pass` proxy link costs: request/response latency and bulk
//! throughput against an echo server on loopback, direct and through the
//! mesh, measured in the same run in alternating rounds. Prints JSON.
//!
//! Run: `cargo bench -p rift --bench proxy`. Bounded: a fixed number of
//! round trips and bytes, a few seconds in all.

use hdrhistogram::Histogram;
use rift::net::ProxyMesh;
use rift::NodeId;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MESSAGE: usize = 64;
const WARMUP: usize = 2_000;
const ROUNDS: usize = 10;
const TRIPS_PER_ROUND: usize = 2_000;
const BULK_BYTES: usize = 128 << 20;
const BULK_TRIALS: usize = 5;
const CHUNK: usize = 64 * 1024;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> BenchResult<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> BenchResult<()> {
    let server = echo_server().await?;
    let mesh = ProxyMesh::start(2, "127.0.0.1", |_| server, 1).await?;
    let proxied = mesh.addr(NodeId(0), NodeId(1));

    let mut direct_h = Histogram::<u64>::new(3)?;
    let mut proxy_h = Histogram::<u64>::new(3)?;
    {
        let mut direct = connect(server).await?;
        let mut through = connect(proxied).await?;
        ping_pong(&mut direct, WARMUP, None).await?;
        ping_pong(&mut through, WARMUP, None).await?;
        // Alternate so that load from other processes hits both alike.
        for _ in 0..ROUNDS {
            ping_pong(&mut direct, TRIPS_PER_ROUND, Some(&mut direct_h)).await?;
            ping_pong(&mut through, TRIPS_PER_ROUND, Some(&mut proxy_h)).await?;
        }
    }

    let mut direct_mbs = Vec::new();
    let mut proxy_mbs = Vec::new();
    for _ in 0..BULK_TRIALS {
        direct_mbs.push(bulk(server).await?);
        proxy_mbs.push(bulk(proxied).await?);
    }
    let direct_tp = median(&mut direct_mbs);
    let proxy_tp = median(&mut proxy_mbs);
    mesh.shutdown().await;

    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let report = serde_json::json!({
        "message_bytes": MESSAGE,
        "round_trips": ROUNDS * TRIPS_PER_ROUND,
        "latency_us": {
            "direct": { "p50": us(&direct_h, 0.5), "p99": us(&direct_h, 0.99) },
            "proxy": { "p50": us(&proxy_h, 0.5), "p99": us(&proxy_h, 0.99) },
            "added_p50": us(&proxy_h, 0.5) - us(&direct_h, 0.5),
            "added_p99": us(&proxy_h, 0.99) - us(&direct_h, 0.99),
        },
        "bulk_bytes": BULK_BYTES,
        "throughput_mb_s": {
            "direct": direct_tp,
            "proxy": proxy_tp,
            "ratio": proxy_tp / direct_tp,
            "direct_trials": direct_mbs,
            "proxy_trials": proxy_mbs,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn echo_server() -> BenchResult<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
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
    trips: usize,
    mut hist: Option<&mut Histogram<u64>>,
) -> BenchResult<()> {
    let msg = [0x5au8; MESSAGE];
    let mut back = [0u8; MESSAGE];
    for _ in 0..trips {
        let start = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await?;
        if let Some(h) = hist.as_deref_mut() {
            h.record(start.elapsed().as_nanos() as u64)?;
        }
    }
    Ok(())
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
    let limit = Duration::from_secs(30);
    while got < BULK_BYTES {
        let n = tokio::time::timeout(limit, r.read(&mut buf)).await??;
        if n == 0 {
            return Err("echo closed early".into());
        }
        got += n;
    }
    let elapsed = start.elapsed().as_secs_f64();
    writer.await??;
    Ok(BULK_BYTES as f64 / elapsed / 1e6)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
