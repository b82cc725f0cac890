//! The proxy mesh against real loopback sockets: an echo server per node,
//! clients dialing through the mesh, faults observed from the client side.

use rift::cluster::Ports;
use rift::net::{LinkState, NetError, ProxyMesh};
use rift::plan::Degradation;
use rift::NodeId;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
/// How long a client listens before calling a connection silent.
const SILENCE: Duration = Duration::from_millis(300);
/// Upper bound on anything that should happen promptly.
const DEADLINE: Duration = Duration::from_secs(5);

/// An echo server standing in for a node's peer port; counts the
/// connections it accepted.
struct Echo {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo() -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            conns.spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Echo {
        addr,
        accepted,
        task,
    }
}

/// `n` proxy listeners on 127.0.0.1 from rift's port allocator.
fn listeners(n: usize) -> Vec<std::net::TcpListener> {
    Ports::for_mesh([127, 0, 0, 1].into(), n)
        .expect("ports")
        .take_proxies(n)
}

/// Two nodes, each an echo server, behind a mesh.
async fn two_nodes(seed: u64) -> (ProxyMesh, Echo, Echo) {
    let (e0, e1) = (echo().await, echo().await);
    let (a0, a1) = (e0.addr, e1.addr);
    let target = move |j| if j == N0 { a0 } else { a1 };
    let mesh = ProxyMesh::start(2, "127.0.0.1", listeners(2), target, seed)
        .await
        .unwrap();
    (mesh, e0, e1)
}

async fn dial(mesh: &ProxyMesh, from: NodeId, to: NodeId) -> TcpStream {
    let s = tokio::time::timeout(DEADLINE, TcpStream::connect(mesh.addr(from, to)))
        .await
        .expect("connect timed out")
        .expect("connect failed");
    s.set_nodelay(true).unwrap();
    s
}

/// Writes `msg` and reads exactly its echo.
async fn round_trip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut got))
        .await
        .expect("echo timed out")
        .expect("echo failed");
    assert_eq!(got, msg);
}

/// Reads exactly `want` bytes, waiting up to `DEADLINE`.
async fn read_echo(s: &mut TcpStream, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut got))
        .await
        .expect("read timed out")
        .expect("read failed");
    assert_eq!(got, want);
}

/// True when nothing arrives for `SILENCE`.
async fn is_silent(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    tokio::time::timeout(SILENCE, s.read(&mut b)).await.is_err()
}

fn is_reset(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// Asserts the connection is (or soon becomes) reset, not cleanly closed
/// and not silent.
async fn assert_reset(s: &mut TcpStream) {
    // The kernel reports a reset once: to the write if it came first.
    if let Err(e) = s.write_all(b"x").await {
        assert!(is_reset(e.kind()), "expected a reset, got {e}");
        return;
    }
    let mut b = [0u8; 64];
    match tokio::time::timeout(DEADLINE, s.read(&mut b)).await {
        Ok(Err(e)) => assert!(is_reset(e.kind()), "expected a reset, got {e}"),
        Ok(Ok(n)) => panic!("expected a reset, read {n} bytes"),
        Err(_) => panic!("expected a reset, the connection stayed silent"),
    }
}

/// Polls `cond` until it holds or `DEADLINE` passes.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn pass_forwards_bytes_both_ways() {
    let (mesh, _e0, e1) = two_nodes(1).await;
    let mut s = dial(&mesh, N0, N1).await;
    round_trip(&mut s, b"hello through the proxy").await;
    round_trip(&mut s, &vec![7u8; 200_000]).await;
    let stats = mesh.stats(N0, N1);
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.bytes_forward, 23 + 200_000);
    assert_eq!(stats.bytes_back, 23 + 200_000);
    assert_eq!(stats.resets, 0);
    assert_eq!(e1.accepted.load(Ordering::SeqCst), 1);
    // Half-close passes through: the server sees EOF and closes in turn.
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(DEADLINE, s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
}

/// Many small writes racing with the proxy's reads: a read that comes up
/// short clears the socket's readiness, and bytes landing right then must
/// still be forwarded, not left waiting for more data that never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_small_writes_arrives_whole_and_in_order() {
    let (mesh, _e0, _e1) = two_nodes(1).await;
    let s = dial(&mesh, N0, N1).await;
    let (mut r, mut w) = s.into_split();
    // Sizes 1..=97 cycling, so reads come up short at every offset.
    let expected: Vec<u8> = (0..20_000u32)
        .flat_map(|i| {
            let len = 1 + (i % 97) as usize;
            (0..len).map(move |k| (i as usize * 31 + k) as u8)
        })
        .collect();
    let sent = expected.clone();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        let mut i = 0u32;
        while at < sent.len() {
            let len = (1 + (i % 97) as usize).min(sent.len() - at);
            w.write_all(&sent[at..at + len]).await.unwrap();
            at += len;
            i += 1;
            if i.is_multiple_of(64) {
                tokio::task::yield_now().await;
            }
        }
        w
    });
    let mut got = vec![0u8; expected.len()];
    tokio::time::timeout(DEADLINE, r.read_exact(&mut got))
        .await
        .expect("echo of the small writes timed out")
        .expect("echo failed");
    assert!(
        got == expected,
        "the echoed stream differs from what was sent"
    );
    drop(writer.await.unwrap());
    // The proxy counts a chunk after writing it, so the reader can see the
    // last bytes a moment before the counter does.
    let want = expected.len() as u64;
    eventually("the back counter to catch up", || {
        mesh.stats(N0, N1).bytes_back >= want
    })
    .await;
    assert_eq!(mesh.stats(N0, N1).bytes_back, want);
}

#[tokio::test]
async fn drop_silences_existing_and_new_connections_and_heal_resumes_them() {
    let (mesh, _e0, e1) = two_nodes(2).await;
    let mut old = dial(&mesh, N0, N1).await;
    round_trip(&mut old, b"before").await;

    mesh.set_state(N0, N1, LinkState::Drop);
    assert_eq!(mesh.state(N0, N1), LinkState::Drop);
    old.write_all(b"during").await.unwrap();
    assert!(is_silent(&mut old).await, "existing connection not silent");
    let mut new = dial(&mesh, N0, N1).await;
    new.write_all(b"fresh").await.unwrap();
    assert!(is_silent(&mut new).await, "new connection not silent");
    // Nothing reached the target while the link was down.
    assert_eq!(e1.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(mesh.stats(N0, N1).bytes_forward, 6);

    mesh.set_state(N0, N1, LinkState::Pass);
    // Both streams continue intact: withheld bytes are delivered, in order.
    read_echo(&mut old, b"during").await;
    read_echo(&mut new, b"fresh").await;
    round_trip(&mut old, b"after").await;
    round_trip(&mut new, b"after").await;
    assert_eq!(mesh.stats(N0, N1).resets, 0);
}

#[tokio::test]
async fn reject_resets_existing_and_new_connections() {
    let (mesh, _e0, _e1) = two_nodes(3).await;
    let mut old = dial(&mesh, N0, N1).await;
    round_trip(&mut old, b"before").await;

    mesh.set_state(N0, N1, LinkState::Reject);
    assert_reset(&mut old).await;
    // A new connection may complete its handshake in the kernel; it is
    // reset as soon as the proxy accepts it.
    match TcpStream::connect(mesh.addr(N0, N1)).await {
        Ok(mut new) => assert_reset(&mut new).await,
        Err(e) => assert!(is_reset(e.kind()), "{e}"),
    }
    eventually("two resets counted", || mesh.stats(N0, N1).resets >= 2).await;

    // Back to Pass: new connections work again.
    mesh.set_state(N0, N1, LinkState::Pass);
    let mut again = dial(&mesh, N0, N1).await;
    round_trip(&mut again, b"healed").await;
}

#[tokio::test]
async fn reject_of_a_dropped_link_resets_the_held_connections() {
    let (mesh, _e0, _e1) = two_nodes(4).await;
    let mut old = dial(&mesh, N0, N1).await;
    round_trip(&mut old, b"before").await;
    mesh.set_state(N0, N1, LinkState::Drop);
    let mut new = dial(&mesh, N0, N1).await;
    assert!(is_silent(&mut new).await);
    mesh.set_state(N0, N1, LinkState::Reject);
    assert_reset(&mut old).await;
    assert_reset(&mut new).await;
}

#[tokio::test]
async fn one_way_drop_cuts_only_the_connections_its_dialer_opens() {
    let (mesh, _e0, _e1) = two_nodes(5).await;
    mesh.set_state(N0, N1, LinkState::Drop);
    assert_eq!(mesh.state(N1, N0), LinkState::Pass);

    let mut cut = dial(&mesh, N0, N1).await;
    cut.write_all(b"n0 asks n1").await.unwrap();
    assert!(is_silent(&mut cut).await, "n0->n1 should be silent");

    // n1's own connections to n0 carry both directions fine.
    let mut fine = dial(&mesh, N1, N0).await;
    round_trip(&mut fine, b"n1 asks n0").await;
    assert_eq!(mesh.stats(N1, N0).bytes_back, 10);
    assert_eq!(mesh.stats(N0, N1).bytes_forward, 0);
}

/// Client links: one more proxy per node, in front of its client port.
/// Peer link states leave them alone; degradations and states of their own
/// apply; `heal_all` restores them with the rest.
#[tokio::test]
async fn client_links_forward_and_take_their_own_faults() {
    let (mut mesh, e0, e1) = two_nodes(11).await;
    assert!(!mesh.has_client_links());
    assert_eq!(mesh.client_addr(N1), None);
    let (a0, a1) = (e0.addr, e1.addr);
    mesh.add_client_links(listeners(2), move |j| if j == N0 { a0 } else { a1 })
        .await
        .unwrap();
    assert!(mesh.has_client_links());
    let client_dial = |to: NodeId| TcpStream::connect(mesh.client_addr(to).unwrap());

    // A full partition between the nodes does not cut their clients.
    mesh.set_state(N0, N1, LinkState::Drop);
    mesh.set_state(N1, N0, LinkState::Drop);
    let mut c = client_dial(N1).await.unwrap();
    c.set_nodelay(true).unwrap();
    round_trip(&mut c, b"client to n1").await;
    assert_eq!(e1.accepted.load(Ordering::SeqCst), 1);
    let stats = mesh.client_stats(N1).unwrap();
    assert_eq!((stats.bytes_forward, stats.bytes_back), (12, 12));
    assert_eq!(mesh.stats(N0, N1).bytes_forward, 0);

    // A degradation of the client link delays both directions.
    // Long enough that the healed round trip below is far under it even on
    // a loaded machine.
    let delay = Duration::from_millis(200);
    mesh.set_client_degradation(
        N1,
        Some(Degradation {
            latency: Some(delay),
            ..Degradation::default()
        }),
    );
    let start = Instant::now();
    round_trip(&mut c, b"slow").await;
    assert!(start.elapsed() >= 2 * delay, "took {:?}", start.elapsed());

    // Its own state: a dropped client link is silent.
    mesh.set_client_state(N0, LinkState::Drop);
    let mut quiet = client_dial(N0).await.unwrap();
    quiet.write_all(b"anyone?").await.unwrap();
    assert!(is_silent(&mut quiet).await);

    // heal_all restores every link, client links included.
    mesh.heal_all();
    read_echo(&mut quiet, b"anyone?").await;
    let start = Instant::now();
    round_trip(&mut c, b"fast again").await;
    assert!(
        start.elapsed() < delay,
        "still delayed: {:?}",
        start.elapsed()
    );
    round_trip(&mut dial(&mesh, N0, N1).await, b"peers again").await;
}

#[tokio::test]
async fn latency_delays_each_direction_at_least_the_configured_time() {
    let (mesh, _e0, _e1) = two_nodes(6).await;
    let mut s = dial(&mesh, N0, N1).await;
    round_trip(&mut s, b"warm").await;
    let latency = Duration::from_millis(100);
    mesh.set_degradation(
        N0,
        N1,
        Some(Degradation {
            latency: Some(latency),
            jitter: Some(Duration::from_millis(20)),
            ..Degradation::default()
        }),
    );
    // Several chunks with jitter must still arrive intact and in order.
    let start = Instant::now();
    let mut sent = Vec::new();
    for i in 0..5u8 {
        let chunk = vec![i; 1000];
        s.write_all(&chunk).await.unwrap();
        sent.extend_from_slice(&chunk);
    }
    read_echo(&mut s, &sent).await;
    // Forward and back are both delayed; jitter may shave up to 20 ms each.
    assert!(
        start.elapsed() >= 2 * (latency - Duration::from_millis(20)),
        "round trip took only {:?}",
        start.elapsed()
    );

    // Restored: the connection goes on through the fast path.
    mesh.set_degradation(N0, N1, None);
    round_trip(&mut s, b"fast again").await;
}

#[tokio::test]
async fn bandwidth_limit_paces_bytes() {
    let (mesh, _e0, _e1) = two_nodes(7).await;
    let mut s = dial(&mesh, N0, N1).await;
    mesh.set_degradation(
        N0,
        N1,
        Some(Degradation {
            bandwidth: Some(40_000),
            ..Degradation::default()
        }),
    );
    let data = vec![3u8; 20_000];
    let start = Instant::now();
    s.write_all(&data).await.unwrap();
    read_echo(&mut s, &data).await;
    // 20 kB at 40 kB/s is 0.5 s in each direction (pipelined).
    assert!(
        start.elapsed() >= Duration::from_millis(450),
        "20 kB took only {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn reset_probability_one_resets_every_connection() {
    let (mesh, _e0, _e1) = two_nodes(8).await;
    let mut old = dial(&mesh, N0, N1).await;
    round_trip(&mut old, b"before").await;
    mesh.set_degradation(
        N0,
        N1,
        Some(Degradation {
            reset: Some(1.0),
            ..Degradation::default()
        }),
    );
    assert_reset(&mut old).await;
    let mut new = dial(&mesh, N0, N1).await;
    assert_reset(&mut new).await;
    assert_eq!(mesh.stats(N0, N1).resets, 2);
}

#[tokio::test]
async fn stall_probability_one_silences_every_connection() {
    let (mesh, _e0, e1) = two_nodes(9).await;
    mesh.set_degradation(
        N0,
        N1,
        Some(Degradation {
            stall: Some(1.0),
            ..Degradation::default()
        }),
    );
    let mut s = dial(&mesh, N0, N1).await;
    s.write_all(b"anyone?").await.unwrap();
    assert!(is_silent(&mut s).await, "stalled connection answered");
    // The request itself went through: the dialer cannot know.
    assert_eq!(mesh.stats(N0, N1).bytes_forward, 7);
    assert_eq!(mesh.stats(N0, N1).bytes_back, 0);
    assert_eq!(e1.accepted.load(Ordering::SeqCst), 1);
    // Healing the link does not revive a stalled connection.
    mesh.set_degradation(N0, N1, None);
    assert!(is_silent(&mut s).await);
}

#[tokio::test]
async fn same_seed_resets_the_same_connections() {
    async fn pattern(seed: u64) -> Vec<bool> {
        let (mesh, _e0, _e1) = two_nodes(seed).await;
        mesh.set_degradation(
            N0,
            N1,
            Some(Degradation {
                reset: Some(0.5),
                ..Degradation::default()
            }),
        );
        let mut out = Vec::new();
        for _ in 0..16 {
            let mut s = dial(&mesh, N0, N1).await;
            s.write_all(b"?").await.unwrap();
            let mut b = [0u8; 1];
            let r = tokio::time::timeout(DEADLINE, s.read(&mut b))
                .await
                .unwrap();
            out.push(r.is_err());
        }
        out
    }
    let a = pattern(42).await;
    assert_eq!(a, pattern(42).await);
    assert!(a.contains(&true) && a.contains(&false), "{a:?}");
}

#[tokio::test]
async fn shutdown_closes_every_connection_and_listener() {
    let (mesh, _e0, _e1) = two_nodes(10).await;
    let addr = mesh.addr(N0, N1);
    let mut live = dial(&mesh, N0, N1).await;
    round_trip(&mut live, b"alive").await;
    mesh.set_state(N1, N0, LinkState::Drop);
    let mut held = dial(&mesh, N1, N0).await;

    tokio::time::timeout(DEADLINE, mesh.shutdown())
        .await
        .expect("shutdown hung");
    for s in [&mut live, &mut held] {
        let mut b = [0u8; 8];
        match tokio::time::timeout(DEADLINE, s.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            other => panic!("connection still open after shutdown: {other:?}"),
        }
    }
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener still open"
    );
}

#[tokio::test]
async fn dropping_the_mesh_closes_its_connections() {
    let (mesh, _e0, _e1) = two_nodes(11).await;
    let mut live = dial(&mesh, N0, N1).await;
    round_trip(&mut live, b"alive").await;
    drop(mesh);
    let mut b = [0u8; 8];
    match tokio::time::timeout(DEADLINE, live.read(&mut b)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        other => panic!("connection still open after drop: {other:?}"),
    }
}

#[tokio::test]
async fn a_dead_target_looks_like_a_refused_connection() {
    // Bind and close to get a port nobody listens on.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let mesh = ProxyMesh::start(2, "127.0.0.1", listeners(2), move |_| dead, 0)
        .await
        .unwrap();
    let mut s = dial(&mesh, N0, N1).await;
    assert_reset(&mut s).await;
}

#[tokio::test]
async fn refuses_anything_but_loopback() {
    let local = |_| SocketAddr::from(([127, 0, 0, 1], 9));
    for host in ["0.0.0.0", "10.1.2.3", "example.com", ""] {
        match ProxyMesh::start(3, host, Vec::new(), local, 0).await {
            Err(NetError::HostNotLoopback { .. }) => {}
            Err(e) => panic!("{host}: wrong error {e}"),
            Ok(_) => panic!("{host}: accepted"),
        }
    }
    let remote = |j: NodeId| SocketAddr::from(([192, 0, 2, j.0 as u8], 9));
    match ProxyMesh::start(3, "127.0.0.1", listeners(6), remote, 0).await {
        Err(NetError::TargetNotLoopback { node, .. }) => assert_eq!(node, N0),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("non-loopback target accepted"),
    }
    // IPv6 loopback may be absent in a container; when it binds, it is used.
    if let Ok(mut v6) = Ports::for_mesh(std::net::Ipv6Addr::LOCALHOST.into(), 6) {
        let mesh = ProxyMesh::start(3, "::1", v6.take_proxies(6), local, 0).await;
        let mesh = mesh.expect("a mesh on ::1");
        assert!(mesh.addr(N0, NodeId(2)).ip().is_loopback());
        assert_eq!(mesh.links().count(), 6);
    }
}

/// The mesh binds nothing itself: it serves exactly the listeners it is
/// given, on its host, and refuses to start short of one per link.
#[tokio::test]
async fn serves_the_listeners_it_is_given_and_binds_none_itself() {
    let local = |_| SocketAddr::from(([127, 0, 0, 1], 9));
    let given = listeners(6);
    let mut ports: Vec<u16> = given
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let mesh = ProxyMesh::start(3, "127.0.0.1", given, local, 0)
        .await
        .unwrap();
    let mut used: Vec<u16> = mesh.links().map(|(a, b)| mesh.addr(a, b).port()).collect();
    ports.sort_unstable();
    used.sort_unstable();
    assert_eq!(used, ports);
    drop(mesh);

    match ProxyMesh::start(3, "127.0.0.1", listeners(5), local, 0).await {
        Err(NetError::Bind { from, to, .. }) => assert_eq!((from.as_str(), to), ("n2", N1)),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("started with a link short"),
    }
    // A listener off the mesh's host (127.0.0.2 is loopback, but not it).
    if let Ok(mut other) = Ports::for_mesh([127, 0, 0, 2].into(), 2) {
        match ProxyMesh::start(2, "127.0.0.1", other.take_proxies(2), local, 0).await {
            Err(NetError::Bind { addr, .. }) => assert_eq!(addr.ip(), other.ip()),
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("served a listener off its host"),
        }
    }
}
