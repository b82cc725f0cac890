//! The cluster subsystem against real processes on loopback: starting,
//! readiness, kill, pause, restart, nodes dying on their own, and the promise
//! that no node outlives rift.
//!
//! Nodes are `python3 -m http.server` (tests needing it skip, saying so, when
//! python3 is missing) and small `sh` scripts.

use rift::cluster::{Cluster, ClusterError, NodeEvent, NodeEventKind, NodeLayout, Ports};
use rift::plan::{
    ArgTemplate, ClusterSpec, NetworkMode, NodeCommand, PeersFormat, Placeholder, Readiness,
    ReadyProbe, Template, TemplatePart,
};
use rift::{NodeId, NodeState};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const READY: Duration = Duration::from_secs(10);

fn lit(s: &str) -> TemplatePart {
    TemplatePart::Lit(s.to_string())
}

fn var(p: Placeholder) -> TemplatePart {
    TemplatePart::Var(p)
}

fn arg(parts: Vec<TemplatePart>) -> ArgTemplate {
    ArgTemplate::One(Template { parts })
}

fn spec(size: usize, program: &str, args: Vec<ArgTemplate>, probe: ReadyProbe) -> ClusterSpec {
    ClusterSpec {
        size,
        host: std::net::Ipv4Addr::LOCALHOST.into(),
        command: NodeCommand::External {
            program: program.into(),
            args,
        },
        env: BTreeMap::new(),
        ready: Readiness {
            probe,
            timeout: READY,
        },
        leader: None,
        network: NetworkMode::None,
        peers: PeersFormat {
            format: Template {
                parts: vec![var(Placeholder::Name)],
            },
            separator: ",".into(),
            include_self: false,
        },
        separate_peer_port: false,
        stop_timeout: Duration::from_secs(2),
        capture: None,
        clock: Default::default(),
    }
}

fn python() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::iter::once(PathBuf::from("/usr/bin/python3"))
        .chain(std::env::split_paths(&path).map(|d| d.join("python3")))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "SKIPPED: python3 is not installed; these tests use `python3 -m http.server` as a node"
        );
    }
    found
}

/// `sh -c SCRIPT` where the script gets the node's port as `$1`, its data
/// dir as `$2` and the python interpreter as `$3`.
fn sh_spec(size: usize, script: &str, py: &Path, probe: ReadyProbe) -> ClusterSpec {
    spec(
        size,
        "/bin/sh",
        vec![
            arg(vec![lit("-c")]),
            arg(vec![lit(script)]),
            arg(vec![lit("node")]),
            arg(vec![var(Placeholder::Port)]),
            arg(vec![var(Placeholder::DataDir)]),
            arg(vec![lit(&py.display().to_string())]),
        ],
        probe,
    )
}

/// An HTTP node on `{host}:{port}` serving its data dir; ready when `/` is 2xx.
fn http_spec(size: usize, py: &Path) -> ClusterSpec {
    spec(
        size,
        &py.display().to_string(),
        vec![
            arg(vec![lit("-m")]),
            arg(vec![lit("http.server")]),
            arg(vec![lit("--bind")]),
            arg(vec![var(Placeholder::Host)]),
            arg(vec![lit("--directory")]),
            arg(vec![var(Placeholder::DataDir)]),
            arg(vec![var(Placeholder::Port)]),
        ],
        ReadyProbe::Http { path: "/".into() },
    )
}

fn direct(layout: &[NodeLayout]) -> impl Fn(NodeId, NodeId) -> SocketAddr {
    let addrs: Vec<SocketAddr> = layout
        .iter()
        .map(|n| SocketAddr::from(([127, 0, 0, 1], n.peer_port)))
        .collect();
    move |_, to| addrs[to.index()]
}

async fn start(spec: &ClusterSpec, dir: &Path) -> (Cluster, UnboundedReceiver<NodeEvent>) {
    let ports = Ports::reserve(spec, dir, 0).expect("ports");
    let (tx, rx) = unbounded_channel();
    let peers = direct(ports.layout());
    let c = Cluster::start(spec, ports, peers, tx).await.expect("start");
    (c, rx)
}

async fn next_event(
    rx: &mut UnboundedReceiver<NodeEvent>,
    what: &str,
    pred: impl Fn(&NodeEvent) -> bool,
) -> NodeEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(_)) => continue,
            _ => panic!("no event: {what}"),
        }
    }
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Live processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let (_, rest) = s.rsplit_once(')')?;
                    // Fields after the name: state, ppid, pgrp.
                    rest.split_whitespace().nth(2)?.parse::<u32>().ok()
                })
                == Some(pgid)
        })
        .filter(|&pid| alive(pid))
        .collect()
}

/// Polls until none of `pgids` has a live member, or panics at the deadline.
fn assert_groups_vanish(pgids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<u32> = pgids.iter().flat_map(|&g| group_members(g)).collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            // Do not leave them behind for the next test run.
            for &pid in &left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!("processes still alive: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn killed_node_reports_expected_exit_and_restarts_on_same_port() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = http_spec(3, &py);
    let (c, mut rx) = start(&spec, dir.path()).await;
    let all: Vec<NodeId> = (0..3).map(NodeId).collect();
    c.wait_ready(&all, READY).await.expect("ready");
    let n1 = NodeId(1);
    let addr = c.client_addr(n1);
    let old_pid = c.pid(n1).expect("pid");

    c.kill(n1, libc::SIGKILL).expect("kill");
    let exit = next_event(&mut rx, "n1 exits", |e| {
        e.node == n1 && matches!(e.kind, NodeEventKind::Exited { .. })
    })
    .await;
    assert_eq!(
        exit.kind,
        NodeEventKind::Exited {
            code: None,
            signal: Some(libc::SIGKILL),
            expected: true
        }
    );
    assert_eq!(c.state(n1), NodeState::Down);
    assert_eq!(c.pid(n1), None);
    assert!(!c.is_ready(n1).await, "a killed node must not look ready");
    assert!(c.is_ready(NodeId(0)).await && c.is_ready(NodeId(2)).await);

    c.start_node(n1).await.expect("restart");
    c.wait_ready(&[n1], READY).await.expect("ready again");
    assert_eq!(c.client_addr(n1), addr);
    let new_pid = c.pid(n1).expect("pid");
    assert_ne!(new_pid, old_pid);
    let started = next_event(&mut rx, "n1 starts again", |e| {
        e.node == n1 && matches!(e.kind, NodeEventKind::Started { .. })
    })
    .await;
    assert_eq!(started.kind, NodeEventKind::Started { pid: new_pid });

    let log = std::fs::read_to_string(&c.layout()[1].log_path).expect("log");
    assert!(log.contains("starting n1 (start #1)") && log.contains("starting n1 (start #2)"));
    assert!(dir.path().join("data/n1").is_dir());

    let pids: Vec<u32> = all.iter().filter_map(|&n| c.pid(n)).collect();
    assert_eq!(pids.len(), 3);
    c.shutdown().await.expect("shutdown");
    assert_groups_vanish(&pids);
}

#[tokio::test]
async fn paused_node_stops_answering_until_resumed() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = http_spec(2, &py);
    let (c, mut rx) = start(&spec, dir.path()).await;
    let n0 = NodeId(0);
    c.wait_ready(&[n0, NodeId(1)], READY).await.expect("ready");

    c.pause(n0).expect("pause");
    assert_eq!(c.state(n0), NodeState::Paused);
    next_event(&mut rx, "n0 paused", |e| {
        e.node == n0 && e.kind == NodeEventKind::Paused
    })
    .await;
    // The probe really goes out and times out: the process is frozen.
    assert!(!c.is_ready(n0).await, "a paused node answered");
    assert!(c.is_ready(NodeId(1)).await);

    c.resume(n0).expect("resume");
    assert_eq!(c.state(n0), NodeState::Up);
    next_event(&mut rx, "n0 resumed", |e| {
        e.node == n0 && e.kind == NodeEventKind::Resumed
    })
    .await;
    c.wait_ready(&[n0], READY)
        .await
        .expect("ready after resume");
    c.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn stop_ends_a_paused_node_gracefully_and_it_can_start_again() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = http_spec(1, &py);
    let (c, mut rx) = start(&spec, dir.path()).await;
    let n0 = NodeId(0);
    c.wait_ready(&[n0], READY).await.expect("ready");
    c.pause(n0).expect("pause");
    c.stop(n0).await.expect("stop");
    assert_eq!(c.state(n0), NodeState::Down);
    let exit = next_event(&mut rx, "n0 exits", |e| {
        matches!(e.kind, NodeEventKind::Exited { .. })
    })
    .await;
    // SIGTERM, not SIGKILL: the node got continued and ended within stop_timeout.
    assert_eq!(
        exit.kind,
        NodeEventKind::Exited {
            code: None,
            signal: Some(libc::SIGTERM),
            expected: true
        }
    );
    assert!(matches!(c.pause(n0), Err(ClusterError::NotRunning { .. })));
    c.start_node(n0).await.expect("start again");
    assert!(matches!(
        c.start_node(n0).await,
        Err(ClusterError::AlreadyRunning { .. })
    ));
    c.wait_ready(&[n0], READY).await.expect("ready again");
    c.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn node_that_exits_on_its_own_is_an_event_and_an_error_with_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = sh_spec(
        1,
        "echo 'boom: cannot bind port' \"$1\" >&2; exit 3",
        Path::new("/bin/false"),
        ReadyProbe::Tcp,
    );
    let (c, mut rx) = start(&spec, dir.path()).await;
    let err = c
        .wait_ready(&[NodeId(0)], READY)
        .await
        .expect_err("a node that exits is never ready");
    match &err {
        ClusterError::Exited {
            node,
            code,
            last_log_lines,
            ..
        } => {
            assert_eq!((*node, *code), (NodeId(0), Some(3)));
            assert!(
                last_log_lines.contains("boom: cannot bind port"),
                "{last_log_lines}"
            );
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("n0 exited with code 3 before it was ready"),
        "{err}"
    );
    let exit = next_event(&mut rx, "n0 exits", |e| {
        matches!(e.kind, NodeEventKind::Exited { .. })
    })
    .await;
    assert_eq!(
        exit.kind,
        NodeEventKind::Exited {
            code: Some(3),
            signal: None,
            expected: false
        }
    );
    assert_eq!(c.state(NodeId(0)), NodeState::Exited);
    assert!(matches!(
        c.kill(NodeId(0), libc::SIGKILL),
        Err(ClusterError::NotRunning { .. })
    ));
    c.shutdown()
        .await
        .expect("shutting down a dead cluster is fine");
}

#[tokio::test]
async fn node_that_never_listens_fails_readiness_with_never_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Not `exec`: the sleep is a second process in the node's group.
    let spec = sh_spec(
        1,
        "echo 'waiting for nothing'; sleep 30; echo done",
        Path::new("/bin/false"),
        ReadyProbe::Tcp,
    );
    let (c, _rx) = start(&spec, dir.path()).await;
    let pgid = c.pid(NodeId(0)).expect("pid");
    let err = c
        .wait_ready(&[NodeId(0)], Duration::from_millis(300))
        .await
        .expect_err("nothing listens");
    match &err {
        ClusterError::NeverReady { last_log_lines, .. } => {
            assert!(
                last_log_lines.contains("waiting for nothing"),
                "{last_log_lines}"
            )
        }
        other => panic!("expected NeverReady, got {other:?}"),
    }
    assert!(err.to_string().contains("not ready within 300ms"), "{err}");
    c.shutdown().await.expect("shutdown");
    assert_groups_vanish(&[pgid]);
}

#[tokio::test]
async fn missing_binary_is_reported_before_any_node_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    for program in ["/nonexistent/rift-node", "rift-no-such-node-binary"] {
        let spec = spec(2, program, Vec::new(), ReadyProbe::Tcp);
        let ports = Ports::reserve(&spec, dir.path(), 0).expect("ports");
        let (tx, mut rx) = unbounded_channel();
        let peers = direct(ports.layout());
        match Cluster::start(&spec, ports, peers, tx).await {
            Err(ClusterError::BinaryMissing { program: p }) => assert_eq!(p, program),
            Err(other) => panic!("expected BinaryMissing, got {other:?}"),
            Ok(_) => panic!("{program} started"),
        }
        assert!(rx.try_recv().is_err(), "no node may have started");
    }
    // A directory is not a program either.
    let spec = spec(1, "/tmp", Vec::new(), ReadyProbe::Tcp);
    let ports = Ports::reserve(&spec, dir.path(), 0).expect("ports");
    let (tx, _rx) = unbounded_channel();
    let peers = direct(ports.layout());
    let err = Cluster::start(&spec, ports, peers, tx).await.err();
    assert!(
        matches!(&err, Some(ClusterError::BinaryMissing { .. })),
        "{err:?}"
    );
    assert_eq!(
        err.map(|e| e.to_string()).unwrap_or_default(),
        "node program `/tmp` not found: no executable file at that path or on PATH"
    );
}

#[tokio::test]
async fn layout_gives_distinct_ports_and_per_node_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = spec(4, "/bin/true", Vec::new(), ReadyProbe::Tcp);
    spec.separate_peer_port = true;
    let reserved = Ports::reserve(&spec, dir.path(), 12).expect("ports");
    let layout = reserved.layout();
    let mut ports: Vec<u16> = layout.iter().flat_map(|n| [n.port, n.peer_port]).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 8, "{layout:?}");
    assert_eq!(layout[2].log_path, dir.path().join("nodes/n2.log"));
    assert_eq!(layout[2].data_dir, dir.path().join("data/n2"));
    // Proxy ports come from the same reservation: never a node's port.
    let mut all = reserved.bound_ports();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 8 + 12);

    spec.host = std::net::Ipv4Addr::new(10, 0, 0, 1).into();
    assert!(matches!(
        Ports::reserve(&spec, dir.path(), 0),
        Err(ClusterError::BadHost { .. })
    ));
}

#[tokio::test]
async fn dropping_a_cluster_kills_every_node_and_its_children() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    // Each node leaves a background child in its group, then serves HTTP.
    let spec = sh_spec(
        2,
        "sleep 60 & exec \"$3\" -m http.server --bind 127.0.0.1 --directory \"$2\" \"$1\"",
        &py,
        ReadyProbe::Http { path: "/".into() },
    );
    let (c, _rx) = start(&spec, dir.path()).await;
    c.wait_ready(&[NodeId(0), NodeId(1)], READY)
        .await
        .expect("ready");
    let pgids: Vec<u32> = (0..2).filter_map(|i| c.pid(NodeId(i))).collect();
    assert_eq!(pgids.len(), 2);
    for &g in &pgids {
        assert_eq!(group_members(g).len(), 2, "node and its sleep child");
    }
    drop(c);
    assert_groups_vanish(&pgids);
}

const CHILD_ENV: &str = "RIFT_CLUSTER_TEST_CHILD_DIR";

/// Not a test on its own: `sigkill_of_parent_leaves_no_node` runs this test
/// binary again with only this test and `CHILD_ENV` set, so that a whole
/// process starts a cluster and can be SIGKILLed.
#[test]
#[ignore = "helper process for sigkill_of_parent_leaves_no_node"]
fn child_process_starting_a_cluster() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let Some(py) = python() else { return };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        // Each node forks a child of its own, which carries no death signal.
        let spec = sh_spec(
            3,
            "sleep 60 & exec \"$3\" -m http.server --bind 127.0.0.1 --directory \"$2\" \"$1\"",
            &py,
            ReadyProbe::Http { path: "/".into() },
        );
        let (c, _rx) = start(&spec, Path::new(&dir)).await;
        let all: Vec<NodeId> = (0..3).map(NodeId).collect();
        c.wait_ready(&all, READY).await.expect("ready");
        let pids: Vec<String> = all
            .iter()
            .filter_map(|&n| c.pid(n))
            .map(|p| p.to_string())
            .collect();
        println!("RIFT_NODE_PIDS {}", pids.join(" "));
        // Bounded: the parent SIGKILLs us long before this ends.
        tokio::time::sleep(Duration::from_secs(30)).await;
        c.shutdown().await.expect("shutdown");
    });
}

#[test]
fn sigkill_of_parent_leaves_no_node() {
    if python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "child_process_starting_a_cluster",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the test binary");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(pids) = line.strip_prefix("RIFT_NODE_PIDS ") {
                let _ = tx.send(pids.to_string());
            }
        }
    });
    let pids = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(line) => line,
        Err(e) => {
            let _ = child.kill();
            panic!("the child never reported its nodes: {e}");
        }
    };
    let pids: Vec<u32> = pids
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(pids.len(), 3);
    assert!(
        pids.iter().all(|&p| alive(p)),
        "nodes should run before the kill"
    );
    for &g in &pids {
        assert_eq!(group_members(g).len(), 2, "node and its sleep child");
    }

    // SIGKILL: no destructor, no signal handler, nothing in rift runs.
    child.kill().expect("SIGKILL the child");
    let _ = child.wait();
    assert_groups_vanish(&pids);
}

#[tokio::test]
async fn leader_is_the_most_common_answer_of_running_unpaused_nodes() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = http_spec(3, &py);
    spec.leader = Some(rift::plan::LeaderQuery::named(
        "/status.json",
        "/raft/leader",
    ));
    let (c, _rx) = start(&spec, dir.path()).await;
    let all: Vec<NodeId> = (0..3).map(NodeId).collect();
    c.wait_ready(&all, READY).await.expect("ready");
    // Each node serves its data dir, so a file there is its answer.
    let answer = |node: usize, leader: &str| {
        let path = c.layout()[node].data_dir.join("status.json");
        std::fs::write(path, format!(r#"{{"raft": {{"leader": {leader}}}}}"#)).expect("write");
    };
    answer(0, r#""n2""#);
    answer(1, "2");
    answer(2, r#""n1""#);
    assert_eq!(c.leader().await, Some(NodeId(2)));

    // A paused node is not asked: n0 and n2 disagree, so nobody knows.
    c.pause(NodeId(1)).expect("pause");
    assert_eq!(c.leader().await, None);
    c.resume(NodeId(1)).expect("resume");

    answer(2, "null");
    answer(1, r#""n0""#);
    assert_eq!(c.leader().await, None, "one vote each for n2 and n0");
    answer(2, r#""n0""#);
    assert_eq!(c.leader().await, Some(NodeId(0)));
    c.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn nodes_outlive_the_thread_that_started_them() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = http_spec(2, &py);
    let run_dir = dir.path().to_path_buf();
    let thread_spec = spec.clone();
    // PR_SET_PDEATHSIG follows the forking *thread*: had this short-lived
    // thread forked the nodes, its exit would SIGKILL them.
    let (c, _rx) = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(start(&thread_spec, &run_dir))
    })
    .join()
    .expect("starter thread");
    let all = [NodeId(0), NodeId(1)];
    c.wait_ready(&all, READY).await.expect("ready");
    // Give a wrongly armed death signal time to land, then check again.
    let pids: Vec<u32> = all.iter().filter_map(|&n| c.pid(n)).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        pids.iter().all(|&p| alive(p)),
        "nodes died with their starter thread"
    );
    assert_eq!(c.state(NodeId(0)), NodeState::Up);
    assert!(c.is_ready(NodeId(0)).await && c.is_ready(NodeId(1)).await);
    c.shutdown().await.expect("shutdown");
    assert_groups_vanish(&pids);
}

/// An HTTP node that waits `delay_s` before it binds, so the test can put
/// something on its port after rift released it and before the node binds.
fn late_http_spec(size: usize, py: &Path, delay_s: &str) -> ClusterSpec {
    sh_spec(
        size,
        &format!(
            "sleep {delay_s}; exec \"$3\" -m http.server --bind 127.0.0.1 --directory \"$2\" \"$1\""
        ),
        py,
        ReadyProbe::Http { path: "/".into() },
    )
}

/// A server that answers every request with 200, as a squatter would.
async fn http_squatter(port: u16) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the node's port is free once rift released it");
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    })
}

#[tokio::test]
async fn port_taken_before_the_node_binds_it_surfaces_with_the_nodes_log() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = late_http_spec(1, &py, "0.5");
    let ports = Ports::reserve(&spec, dir.path(), 0).expect("ports");
    let port = ports.layout()[0].port;
    let (tx, _rx) = unbounded_channel();
    let peers = direct(ports.layout());
    let c = Cluster::start(&spec, ports, peers, tx)
        .await
        .expect("start");
    // Something else grabs the port between its release and the node's bind.
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let err = c
        .wait_ready(&[NodeId(0)], READY)
        .await
        .expect_err("the node cannot bind");
    match &err {
        ClusterError::Exited { last_log_lines, .. } => {
            assert!(
                last_log_lines.contains("Address already in use"),
                "{last_log_lines}"
            )
        }
        other => panic!("expected Exited, got {other:?}"),
    }
}

/// The defect: a squatter that answers on a node's port (another program,
/// or one of rift's own proxies) made a node that never listened look
/// ready. An answer from a process outside the node's group never counts.
#[tokio::test]
async fn a_server_squatting_a_nodes_port_never_makes_that_node_ready() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = late_http_spec(1, &py, "1");
    let ports = Ports::reserve(&spec, dir.path(), 0).expect("ports");
    let port = ports.layout()[0].port;
    let (tx, _rx) = unbounded_channel();
    let peers = direct(ports.layout());
    let c = Cluster::start(&spec, ports, peers, tx)
        .await
        .expect("start");
    let squatter = http_squatter(port).await;
    // The squatter really answers the node's probe...
    let probe = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let answer = probe
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .expect("the squatter answers");
    assert!(answer.status().is_success());
    // ...yet the node is not ready, and ends as a port clash.
    assert!(!c.is_ready(NodeId(0)).await, "the squatter passed for n0");
    let err = c
        .wait_ready(&[NodeId(0)], READY)
        .await
        .expect_err("a squatter must never make n0 ready");
    match &err {
        ClusterError::Exited { last_log_lines, .. } => assert!(
            last_log_lines.contains("Address already in use"),
            "{last_log_lines}"
        ),
        other => panic!("expected Exited (could not bind), got {other:?}"),
    }
    squatter.abort();
    c.shutdown().await.expect("shutdown");
}

/// A squatter on the port of a node that stays up (without listening) ends
/// as `PortTaken`, naming the process that answered.
#[tokio::test]
async fn a_squatter_on_the_port_of_a_live_node_is_reported_as_port_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = sh_spec(1, "sleep 30", Path::new("/bin/false"), ReadyProbe::Tcp);
    let ports = Ports::reserve(&spec, dir.path(), 0).expect("ports");
    let port = ports.layout()[0].port;
    let (tx, _rx) = unbounded_channel();
    let peers = direct(ports.layout());
    let c = Cluster::start(&spec, ports, peers, tx)
        .await
        .expect("start");
    let pgid = c.pid(NodeId(0)).expect("pid");
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let err = c
        .wait_ready(&[NodeId(0)], Duration::from_millis(400))
        .await
        .expect_err("the squatter is not n0");
    match &err {
        ClusterError::PortTaken { node, holder, .. } => {
            assert_eq!(*node, NodeId(0));
            assert!(
                holder.contains(&format!("process {}", std::process::id())),
                "{holder}"
            );
        }
        other => panic!("expected PortTaken, got {other:?}"),
    }
    c.shutdown().await.expect("shutdown");
    assert_groups_vanish(&[pgid]);
}

/// The identity check follows the node's whole process group: a node that
/// forks the process which listens (no `exec`) is ready.
#[tokio::test]
async fn a_node_whose_child_holds_the_port_is_ready() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = sh_spec(
        1,
        "\"$3\" -m http.server --bind 127.0.0.1 --directory \"$2\" \"$1\" & wait",
        &py,
        ReadyProbe::Http { path: "/".into() },
    );
    let (c, _rx) = start(&spec, dir.path()).await;
    let pgid = c.pid(NodeId(0)).expect("pid");
    c.wait_ready(&[NodeId(0)], READY).await.expect("ready");
    assert!(c.is_ready(NodeId(0)).await);
    assert_eq!(group_members(pgid).len(), 2, "the shell and its server");
    c.shutdown().await.expect("shutdown");
    assert_groups_vanish(&[pgid]);
}

/// The identity check also follows descendants that left the node's
/// process group (`setsid`, or `timeout`, which gives its command a group of
/// its own): the listener is still the node's. (Such a process also escapes
/// the node's group signals; the test kills it itself.)
#[tokio::test]
async fn a_node_whose_child_left_its_group_is_still_ready() {
    let Some(py) = python() else { return };
    if !Path::new("/usr/bin/setsid").exists() {
        eprintln!("skipped: no /usr/bin/setsid");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = sh_spec(
        1,
        "/usr/bin/setsid \"$3\" -m http.server --bind 127.0.0.1 --directory \"$2\" \"$1\" & echo $! > \"$2/../server.pid\"; wait",
        &py,
        ReadyProbe::Http { path: "/".into() },
    );
    let (c, _rx) = start(&spec, dir.path()).await;
    let pgid = c.pid(NodeId(0)).expect("pid");
    let ready = c.wait_ready(&[NodeId(0)], READY).await;
    let server: Option<i32> = std::fs::read_to_string(dir.path().join("data/server.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    c.shutdown().await.expect("shutdown");
    if let Some(pid) = server {
        // SAFETY: kill(2) on the server this test started; no memory involved.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    ready.expect("a descendant in its own group holds the node's port: ready");
    assert!(
        server.is_some_and(|pid| pid != pgid as i32),
        "the server ran apart from the shell"
    );
}

#[tokio::test]
async fn a_node_that_ignores_sigterm_is_sigkilled_and_that_is_an_event() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let script = "trap '' TERM; exec \"$3\" -m http.server --bind 127.0.0.1 \"$1\"";
    let mut spec = sh_spec(1, script, &py, ReadyProbe::Tcp);
    spec.stop_timeout = Duration::from_millis(300);
    spec.env = BTreeMap::from([(
        "RIFT_TEST_NOTE".to_string(),
        Template {
            parts: vec![lit("two words")],
        },
    )]);
    let (c, mut rx) = start(&spec, dir.path()).await;
    let n0 = NodeId(0);
    c.wait_ready(&[n0], READY).await.expect("ready");
    let layout = c.layout()[0].clone();

    // Every start writes the command it runs, quoted for a shell, right
    // after the start marker.
    let log = std::fs::read_to_string(&layout.log_path).expect("log");
    let lines: Vec<&str> = log.lines().collect();
    let marker = lines
        .iter()
        .position(|l| *l == "--- rift: starting n0 (start #1) ---")
        .expect("start marker");
    assert_eq!(
        lines.get(marker + 1).copied(),
        Some(
            format!(
                "--- rift: command: RIFT_TEST_NOTE='two words' /bin/sh -c '{}' node {} {} {}",
                script.replace('\'', "'\\''"),
                layout.port,
                layout.data_dir.display(),
                py.display()
            )
            .as_str()
        )
    );
    assert_eq!(
        c.command_env(n0),
        &[("RIFT_TEST_NOTE".to_string(), "two words".to_string())]
    );

    c.stop(n0).await.expect("stop");
    let escalated = next_event(&mut rx, "the SIGKILL escalation", |e| {
        matches!(e.kind, NodeEventKind::Escalated { .. })
    })
    .await;
    match escalated.kind {
        NodeEventKind::Escalated { after } => assert!(
            after >= Duration::from_millis(300) && after < Duration::from_secs(5),
            "{after:?}"
        ),
        other => panic!("expected an escalation, got {other:?}"),
    }
    let exit = next_event(&mut rx, "n0 exits", |e| {
        matches!(e.kind, NodeEventKind::Exited { .. })
    })
    .await;
    assert_eq!(
        exit.kind,
        NodeEventKind::Exited {
            code: None,
            signal: Some(libc::SIGKILL),
            expected: true
        }
    );

    // A node that honours SIGTERM is not escalated.
    c.start_node(n0).await.expect("start again");
    c.wait_ready(&[n0], READY).await.expect("ready again");
    let log = std::fs::read_to_string(&layout.log_path).expect("log");
    assert!(
        log.contains("--- rift: starting n0 (start #2) ---\n--- rift: command: RIFT_TEST_NOTE=")
    );
    c.shutdown().await.expect("shutdown");
    while let Ok(e) = rx.try_recv() {
        // The second incarnation also ignores SIGTERM: escalated again.
        if let NodeEventKind::Escalated { .. } = e.kind {
            return;
        }
    }
    panic!("the teardown of a node ignoring SIGTERM was not escalated");
}

#[tokio::test]
async fn a_graceful_stop_is_not_escalated() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = http_spec(1, &py);
    let (c, mut rx) = start(&spec, dir.path()).await;
    c.wait_ready(&[NodeId(0)], READY).await.expect("ready");
    c.shutdown().await.expect("shutdown");
    while let Ok(e) = rx.try_recv() {
        assert!(!matches!(e.kind, NodeEventKind::Escalated { .. }), "{e:?}");
    }
}

/// Leader forms beyond a node name: each node telling whether it leads, and
/// the system's own member ids. Each node serves its data dir, so files
/// there are its answers.
#[tokio::test]
async fn leader_by_equals_and_by_member_id_and_what_each_node_answered() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = http_spec(3, &py);
    spec.leader = Some(rift::plan::LeaderQuery {
        path: "/status.json".into(),
        pointer: "/role".into(),
        by: rift::plan::LeaderBy::Equals(serde_json::json!("leader")),
    });
    let (c, _rx) = start(&spec, dir.path()).await;
    let all: Vec<NodeId> = (0..3).map(NodeId).collect();
    c.wait_ready(&all, READY).await.expect("ready");
    let write = |node: usize, file: &str, body: &str| {
        std::fs::write(c.layout()[node].data_dir.join(file), body).expect("write");
    };
    write(
        0,
        "status.json",
        r#"{"role": "follower", "leader_id": "b2"}"#,
    );
    write(1, "status.json", r#"{"role": "leader", "leader_id": "b2"}"#);
    assert_eq!(c.leader().await, Some(NodeId(1)));
    let poll = c.leader_poll().await.expect("a leader query");
    assert_eq!(poll.leader, Some(NodeId(1)));
    assert_eq!(poll.answers[0].to_string(), r#"n0: "follower""#);
    assert_eq!(poll.answers[2].to_string(), "n2: HTTP 404");
    c.shutdown().await.expect("shutdown");

    let dir = tempfile::tempdir().expect("tempdir");
    spec.leader = Some(rift::plan::LeaderQuery {
        path: "/status.json".into(),
        pointer: "/leader_id".into(),
        by: rift::plan::LeaderBy::Ids {
            path: "/me.json".into(),
            pointer: "/id".into(),
        },
    });
    let (c, _rx) = start(&spec, dir.path()).await;
    c.wait_ready(&all, READY).await.expect("ready");
    let write = |node: usize, file: &str, body: &str| {
        std::fs::write(c.layout()[node].data_dir.join(file), body).expect("write");
    };
    for (node, id) in [(0, "a1"), (1, "b2"), (2, "c3")] {
        write(node, "me.json", &format!(r#"{{"id": "{id}"}}"#));
        write(node, "status.json", r#"{"leader_id": "c3"}"#);
    }
    assert_eq!(c.leader().await, Some(NodeId(2)));
    write(0, "status.json", r#"{"leader_id": "3a1f"}"#);
    write(1, "status.json", "not json");
    std::fs::remove_file(c.layout()[2].data_dir.join("status.json")).expect("rm");
    let poll = c.leader_poll().await.expect("a leader query");
    assert_eq!(poll.leader, None);
    assert_eq!(
        poll.to_string(),
        r#"n0: "3a1f" (no node has that id), n1: an answer that is not JSON, n2: HTTP 404; member ids: n0: "a1", n1: "b2", n2: "c3"; no answer names a leader"#
    );
    c.shutdown().await.expect("shutdown");
}
