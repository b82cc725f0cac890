//! The netns wire, measured from inside its namespaces: real sockets in
//! real namespaces, real packets through rift's TUN devices. Every test
//! needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and /dev/net/tun and skips
//! with one line without them.

use rift::net::wire::{CaptureTo, Wire};
use rift::net::{LinkId, LinkState, Network, NodeEndpoints};
use rift::plan::{Degradation, Distribution};
use rift::NodeId;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn wire(n: usize, capture: Option<CaptureTo>) -> Option<Wire> {
    if let Err(missing) = rift::netns::check_privileges() {
        eprintln!("skipped: the netns wire {missing}");
        return None;
    }
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
    Some(
        rt.block_on(Wire::start(&nodes, 42, capture))
            .expect("wire starts"),
    )
}

fn ip(w: &Wire, node: usize) -> IpAddr {
    w.client_addr(NodeId(node)).ip()
}

/// Runs `f` on a thread inside `node`'s namespace.
fn inside<T: Send + 'static>(
    w: &Wire,
    node: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let ns = w.netns(NodeId(node)).expect("node namespace").clone();
    thread::spawn(move || ns.run(f).expect("enter namespace"))
}

/// A UDP receiver in `node` on port 9000: every datagram's first 4 bytes
/// as a sequence number, until `quiet` passes with nothing new.
fn receive(w: &Wire, node: usize, quiet: Duration) -> (thread::JoinHandle<Vec<u32>>, SocketAddr) {
    let addr = SocketAddr::new(ip(w, node), 9000);
    let (ready_tx, ready_rx) = mpsc::channel();
    let h = inside(w, node, move || {
        let s = UdpSocket::bind(addr).expect("bind receiver");
        s.set_read_timeout(Some(quiet)).expect("timeout");
        ready_tx.send(()).expect("ready");
        let mut seen = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = s.recv(&mut buf) {
            if n >= 4 {
                seen.push(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
            }
        }
        seen
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("receiver ready");
    (h, addr)
}

/// Sends `count` numbered datagrams from `node` to `to`, in bursts small
/// enough that no socket buffer overflows on the way.
fn send(w: &Wire, node: usize, to: SocketAddr, count: u32) {
    let from = SocketAddr::new(ip(w, node), 0);
    inside(w, node, move || {
        let s = UdpSocket::bind(from).expect("bind sender");
        for i in 0..count {
            let mut msg = [0u8; 64];
            msg[..4].copy_from_slice(&i.to_be_bytes());
            s.send_to(&msg, to).expect("send");
            if i % 50 == 49 {
                thread::sleep(Duration::from_millis(2));
            }
        }
    })
    .join()
    .expect("sender");
}

fn tcp_echo_server(w: &Wire, node: usize, port: u16) {
    let addr = SocketAddr::new(ip(w, node), port);
    let (tx, rx) = mpsc::channel();
    inside(w, node, move || {
        let l = TcpListener::bind(addr).expect("bind echo");
        tx.send(()).expect("ready");
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("echo ready");
}

/// Connects to `to` and echoes `data`; `Err` when it cannot within `limit`.
fn echo(to: SocketAddr, data: &[u8], limit: Duration) -> std::io::Result<Duration> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&to, limit)?;
    s.set_read_timeout(Some(limit))?;
    s.write_all(data)?;
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back)?;
    assert_eq!(back, data);
    Ok(start.elapsed())
}

#[test]
fn rift_reaches_every_node_and_nodes_reach_each_other() {
    let Some(w) = wire(3, None) else { return };
    for i in 0..3 {
        tcp_echo_server(&w, i, 5000);
        echo(
            SocketAddr::new(ip(&w, i), 5000),
            b"hello",
            Duration::from_secs(5),
        )
        .expect("rift reaches the node");
    }
    let to = SocketAddr::new(ip(&w, 2), 5000);
    inside(&w, 0, move || echo(to, b"peer", Duration::from_secs(5)))
        .join()
        .expect("thread")
        .expect("n0 reaches n2");
    // Loopback is up inside a node's namespace.
    inside(&w, 1, || {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        TcpStream::connect(l.local_addr().expect("addr")).map(|_| ())
    })
    .join()
    .expect("thread")
    .expect("loopback works");
    let stats = w.snapshot();
    assert!(stats.subnet.starts_with("198.1"), "{}", stats.subnet);
    assert!(
        stats
            .pairs
            .iter()
            .any(|p| p.from == "n0" && p.to == "n2" && p.counters.packets > 0),
        "{:?}",
        stats.pairs
    );
}

#[test]
fn a_partition_stops_tcp_both_ways_and_heal_restores_it() {
    let Some(w) = wire(2, None) else { return };
    tcp_echo_server(&w, 0, 5000);
    tcp_echo_server(&w, 1, 5000);
    let (a, b) = (
        SocketAddr::new(ip(&w, 0), 5000),
        SocketAddr::new(ip(&w, 1), 5000),
    );
    let short = Duration::from_millis(300);
    w.set_link(NodeId(0), NodeId(1), LinkState::Drop);
    w.set_link(NodeId(1), NodeId(0), LinkState::Drop);
    assert!(inside(&w, 0, move || echo(b, b"x", short))
        .join()
        .expect("t")
        .is_err());
    assert!(inside(&w, 1, move || echo(a, b"x", short))
        .join()
        .expect("t")
        .is_err());
    // Clients still reach both sides: partitions cut only node pairs.
    echo(a, b"client", Duration::from_secs(5)).expect("client link passes");
    w.heal_all();
    inside(&w, 0, move || echo(b, b"x", Duration::from_secs(5)))
        .join()
        .expect("t")
        .expect("healed");
    let cut = w.snapshot();
    assert!(cut.pairs.iter().any(|p| p.counters.partitioned > 0));
}

#[test]
fn a_one_way_cut_drops_one_direction_only() {
    let Some(w) = wire(2, None) else { return };
    w.set_link(NodeId(0), NodeId(1), LinkState::Drop);
    let (h, to1) = receive(&w, 1, Duration::from_millis(300));
    send(&w, 0, to1, 50);
    assert!(h.join().expect("rx").is_empty(), "n0 -> n1 is cut");
    let (h, to0) = receive(&w, 0, Duration::from_millis(300));
    send(&w, 1, to0, 50);
    assert_eq!(h.join().expect("rx").len(), 50, "n1 -> n0 still passes");
}

#[test]
fn loss_and_corruption_are_near_their_configured_ratio() {
    let Some(w) = wire(2, None) else { return };
    w.set_degradation(
        LinkId::Peer {
            from: NodeId(0),
            to: NodeId(1),
        },
        Some(Degradation {
            loss: Some(0.3),
            corrupt: Some(0.1),
            ..Degradation::default()
        }),
    );
    let n = 3000;
    let (h, to) = receive(&w, 1, Duration::from_millis(500));
    send(&w, 0, to, n);
    let got = h.join().expect("rx").len() as f64;
    // Lost packets never arrive; corrupted ones fail the UDP checksum.
    let expected = f64::from(n) * 0.7 * 0.9;
    assert!(
        (got - expected).abs() < f64::from(n) * 0.05,
        "received {got} of {n}, expected about {expected}"
    );
    let s = w.snapshot();
    let f = &s.fidelity[0];
    let observed = f.observed_loss.expect("packets met the fault");
    assert!((observed - 0.3).abs() < 0.04, "{f:?}");
}

#[test]
fn latency_is_added_within_tolerance_and_jitter_spreads_it() {
    let Some(w) = wire(2, None) else { return };
    tcp_echo_server(&w, 1, 5000);
    let b = SocketAddr::new(ip(&w, 1), 5000);
    let rtt = |w: &Wire| {
        let mut v: Vec<Duration> = (0..15)
            .map(|_| {
                inside(w, 0, move || echo(b, b"ping", Duration::from_secs(5)))
                    .join()
                    .expect("t")
                    .expect("echo")
            })
            .collect();
        v.sort();
        v[v.len() / 2]
    };
    let base = rtt(&w);
    let d = Degradation {
        latency: Some(Duration::from_millis(20)),
        jitter: Some(Duration::from_millis(2)),
        distribution: Distribution::Normal,
        ..Degradation::default()
    };
    for (from, to) in [(0, 1), (1, 0)] {
        w.set_degradation(
            LinkId::Peer {
                from: NodeId(from),
                to: NodeId(to),
            },
            Some(d.clone()),
        );
    }
    // A connect and one exchange cross each direction at least twice.
    let slow = rtt(&w);
    assert!(
        slow >= base + Duration::from_millis(70),
        "median {slow:?} vs {base:?} undegraded"
    );
    assert!(slow < base + Duration::from_millis(400), "median {slow:?}");
    let s = w.snapshot();
    let f = s
        .fidelity
        .iter()
        .find(|f| f.from == "n0" && f.to == "n1")
        .expect("window");
    let p50 = f.delay_p50_ms.expect("delivered");
    assert!((19.0..30.0).contains(&p50), "{f:?}");
}

#[test]
fn duplicates_and_reordering_show_at_the_receiver_and_in_the_capture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(w) = wire(
        2,
        Some(CaptureTo {
            dir: dir.path().to_path_buf(),
            limit: 10_000_000,
        }),
    ) else {
        return;
    };
    w.set_degradation(
        LinkId::Peer {
            from: NodeId(0),
            to: NodeId(1),
        },
        Some(Degradation {
            duplicate: Some(0.2),
            reorder: Some(0.2),
            gap: Some(Duration::from_millis(5)),
            loss: Some(0.05),
            ..Degradation::default()
        }),
    );
    let (h, to) = receive(&w, 1, Duration::from_millis(500));
    send(&w, 0, to, 500);
    let seen = h.join().expect("rx");
    let dups = seen.len() - {
        let mut u = seen.clone();
        u.sort();
        u.dedup();
        u.len()
    };
    // Packets that arrive after a later-numbered one overtook them.
    let mut highest = 0;
    let late = seen
        .iter()
        .filter(|&&s| {
            let late = s < highest;
            highest = highest.max(s);
            late
        })
        .count();
    assert!(dups > 50, "{dups} duplicates in {}", seen.len());
    assert!(late > 50, "{late} packets overtaken");
    let stats = w.snapshot();
    let cap = stats.capture.expect("capture record");
    assert!(cap.packets > 500, "{cap:?}");
    // The capture shows the same: read back UDP payload sequence numbers.
    let read = |name: &str| -> Vec<u32> {
        let f = std::fs::File::open(dir.path().join(name)).expect("pcap");
        let mut r = pcap_file::pcap::PcapReader::new(f).expect("pcap header");
        assert_eq!(r.header().datalink, pcap_file::DataLink::RAW);
        let mut seqs = Vec::new();
        while let Some(p) = r.next_packet() {
            let p = p.expect("packet");
            let d = &p.data;
            // IPv4, UDP (17), to port 9000.
            let ihl = usize::from(d[0] & 0x0f) * 4;
            if d[9] == 17 && u16::from_be_bytes([d[ihl + 2], d[ihl + 3]]) == 9000 {
                let o = ihl + 8;
                seqs.push(u32::from_be_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]));
            }
        }
        seqs
    };
    let wire_seqs = read("wire.pcap");
    let dropped = read("dropped.pcap");
    assert!(wire_seqs.windows(2).any(|p| p[1] < p[0]), "reordered");
    assert!(wire_seqs.windows(2).any(|p| p[1] == p[0]) || wire_seqs.len() > 500);
    assert!(!dropped.is_empty(), "lost packets are in dropped.pcap");
}

#[test]
fn bandwidth_caps_throughput() {
    let Some(w) = wire(2, None) else { return };
    tcp_echo_server(&w, 1, 5000);
    let b = SocketAddr::new(ip(&w, 1), 5000);
    // 100 KB/s both ways; 40 KB out and 40 KB back takes about 0.4 s each way.
    for (from, to) in [(0, 1), (1, 0)] {
        w.set_degradation(
            LinkId::Peer {
                from: NodeId(from),
                to: NodeId(to),
            },
            Some(Degradation {
                bandwidth: Some(100_000),
                ..Degradation::default()
            }),
        );
    }
    let data = vec![7u8; 40_000];
    let took = inside(&w, 0, move || echo(b, &data, Duration::from_secs(10)))
        .join()
        .expect("t")
        .expect("echo");
    assert!(took >= Duration::from_millis(350), "took {took:?}");
}
