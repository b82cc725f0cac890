//! Network faults through the proxy mesh against real sample nodes: each link
//! state and a one-way cut, shown by what the Raft cluster does about them
//! (an isolated leader steps down, the others elect a new one, all converge
//! after the heal).

use rift::cluster::{Cluster, ClusterError, NodeEvent, Ports, SampleNodeProgram};
use rift::net::{LinkState, ProxyMesh};
use rift::plan::Degradation;
use rift::NodeId;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

fn sample_node() -> SampleNodeProgram {
    SampleNodeProgram {
        program: env!("CARGO_BIN_EXE_rift").into(),
        leading_args: vec!["sample-node".into()],
    }
}

fn plan_cluster(size: usize) -> rift::plan::ClusterSpec {
    rift::plan::parse(
        &format!("name = \"p\"\nduration = \"10s\"\n[cluster]\nsize = {size}\n"),
        Path::new("inline.toml"),
    )
    .expect("plan")
    .cluster
}

struct Fixture {
    cluster: Cluster,
    mesh: ProxyMesh,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(size: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = plan_cluster(size);
    let links = ProxyMesh::peer_listeners(size);
    let mut ports = Ports::reserve(&spec, dir.path(), links).expect("ports");
    let targets: Vec<SocketAddr> = ports
        .layout()
        .iter()
        .map(|l| SocketAddr::new([127, 0, 0, 1].into(), l.port))
        .collect();
    let listeners = ports.take_proxies(links);
    let mesh = ProxyMesh::start(
        size,
        "127.0.0.1",
        listeners,
        move |j: NodeId| targets[j.index()],
        1,
    )
    .await
    .expect("mesh");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel::<NodeEvent>();
    let cluster = Cluster::start_with(&spec, ports, |a, b| mesh.addr(a, b), tx, sample_node())
        .await
        .expect("start");
    let all: Vec<NodeId> = (0..size).map(NodeId).collect();
    cluster
        .wait_ready(&all, Duration::from_secs(10))
        .await
        .expect("ready");
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(700))
        .build()
        .expect("client");
    Fixture {
        cluster,
        mesh,
        http,
        _dir: dir,
    }
}

impl Fixture {
    async fn health(&self, n: NodeId) -> Option<Value> {
        let url = format!("http://{}/health", self.cluster.client_addr(n));
        self.http.get(url).send().await.ok()?.json().await.ok()
    }

    /// Polls until `f` holds, or panics with `what` after `secs`.
    async fn eventually<F, Fut>(&self, secs: u64, what: &str, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if f().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    async fn leader_of(&self, n: NodeId) -> Option<String> {
        let h = self.health(n).await?;
        h["leader"].as_str().map(str::to_string)
    }

    async fn role(&self, n: NodeId) -> Option<String> {
        Some(self.health(n).await?["role"].as_str()?.to_string())
    }

    async fn stable_leader(&self) -> NodeId {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(l) = self.cluster.leader().await {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no leader within 10 s")
    }

    fn isolate(&self, n: NodeId, state: LinkState, oneway: bool) {
        for other in (0..self.mesh.size()).map(NodeId).filter(|o| *o != n) {
            self.mesh.set_state(n, other, state);
            if !oneway {
                self.mesh.set_state(other, n, state);
            }
        }
    }

    async fn put(&self, via: NodeId, key: &str, value: &str) -> Option<u16> {
        let url = format!("http://{}/kv/{key}", self.cluster.client_addr(via));
        Some(
            self.http
                .put(url)
                .body(value.to_string())
                .send()
                .await
                .ok()?
                .status()
                .as_u16(),
        )
    }

    /// After a heal: every node reports the same commit index and head.
    async fn converged(&self) -> bool {
        let mut heads = Vec::new();
        for n in (0..self.mesh.size()).map(NodeId) {
            match self.health(n).await {
                Some(h) => heads.push((h["commit"].clone(), h["head"].clone())),
                None => return false,
            }
        }
        heads.windows(2).all(|w| w[0] == w[1])
    }

    async fn stop(self) {
        let _ = self.cluster.shutdown().await;
        self.mesh.shutdown().await;
    }
}

/// Cut the leader off with `state`; it must step down, the rest elect a new
/// leader and accept writes; after the heal everyone converges.
async fn isolating_the_leader(state: LinkState) {
    let f = start(3).await;
    let old = f.stable_leader().await;
    f.isolate(old, state, false);
    let others: Vec<NodeId> = (0..3).map(NodeId).filter(|n| *n != old).collect();
    f.eventually(10, "the majority elects a new leader", || async {
        let l = f.leader_of(others[0]).await;
        l.is_some() && l != Some(old.to_string()) && l == f.leader_of(others[1]).await
    })
    .await;
    f.eventually(10, "the isolated leader steps down", || async {
        f.role(old).await.is_some_and(|r| r != "leader")
    })
    .await;
    f.eventually(10, "writes through the majority succeed", || async {
        f.put(others[0], "k", "after-cut").await == Some(200)
    })
    .await;
    // The isolated node cannot commit anything.
    assert_ne!(f.put(old, "k", "isolated").await, Some(200));
    f.mesh.heal_all();
    f.eventually(15, "all nodes converge after the heal", || f.converged())
        .await;
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_links_make_an_isolated_leader_step_down_and_the_majority_elect_another() {
    isolating_the_leader(LinkState::Drop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_links_make_an_isolated_leader_step_down_and_the_majority_elect_another() {
    isolating_the_leader(LinkState::Reject).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_cut_from_the_leader_makes_the_others_elect_a_new_leader() {
    let f = start(3).await;
    let old = f.stable_leader().await;
    // The leader's messages reach nobody; the others still reach it.
    f.isolate(old, LinkState::Drop, true);
    let others: Vec<NodeId> = (0..3).map(NodeId).filter(|n| *n != old).collect();
    f.eventually(10, "a new leader among the others", || async {
        let l = f.leader_of(others[0]).await;
        l.is_some() && l != Some(old.to_string())
    })
    .await;
    // It hears the higher term over the links that still pass.
    f.eventually(
        10,
        "the old leader learns it is no longer leader",
        || async { f.role(old).await.is_some_and(|r| r != "leader") },
    )
    .await;
    f.mesh.heal_all();
    f.eventually(15, "all nodes converge after the heal", || f.converged())
        .await;
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_on_every_link_slows_committed_writes() {
    let f = start(3).await;
    let leader = f.stable_leader().await;
    f.eventually(10, "a first write", || async {
        f.put(leader, "warm", "1").await == Some(200)
    })
    .await;
    let delay = Duration::from_millis(80);
    for a in (0..3).map(NodeId) {
        for b in (0..3).map(NodeId).filter(|b| *b != a) {
            f.mesh.set_degradation(
                a,
                b,
                Some(Degradation {
                    latency: Some(delay),
                    ..Default::default()
                }),
            );
        }
    }
    // A commit needs a round trip to a follower: at least twice the delay.
    let mut slowest_fast = Duration::MAX;
    for i in 0..5 {
        let t = Instant::now();
        let status = f.put(leader, "slow", &i.to_string()).await;
        if status == Some(200) {
            slowest_fast = slowest_fast.min(t.elapsed());
        }
    }
    assert!(
        slowest_fast >= delay * 2 && slowest_fast != Duration::MAX,
        "fastest write took {slowest_fast:?}"
    );
    f.stop().await;
}

/// The incident: n1 could not listen because one of rift's own proxies sat
/// on its port, forwarding to n0; the probe reached n0 through it and n1
/// looked alive. Here the mesh is handed n1's port for a client link that
/// leads to n0: n1 must never be reported ready, and ends as a port clash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesh_proxy_on_a_nodes_port_never_passes_for_that_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = plan_cluster(2);
    let mut ports = Ports::reserve(&spec, dir.path(), 3).expect("ports");
    let layout = ports.layout().to_vec();
    let direct: Vec<SocketAddr> = layout
        .iter()
        .map(|l| SocketAddr::new([127, 0, 0, 1].into(), l.port))
        .collect();
    let peers = direct.clone();
    let mut mesh = ProxyMesh::start(
        2,
        "127.0.0.1",
        ports.take_proxies(2),
        move |j: NodeId| peers[j.index()],
        1,
    )
    .await
    .expect("mesh");
    // n1 waits before it starts (and binds), so the proxy is on its port
    // first; `$3` is the node's name (after `sample-node --id`).
    let late = SampleNodeProgram {
        program: "/bin/sh".into(),
        leading_args: vec![
            "-c".into(),
            "case \"$3\" in n1) sleep 2;; esac; exec \"$0\" \"$@\"".into(),
            env!("CARGO_BIN_EXE_rift").into(),
            "sample-node".into(),
        ],
    };
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel::<NodeEvent>();
    let cluster = Cluster::start_with(&spec, ports, |a, b| mesh.addr(a, b), tx, late)
        .await
        .expect("start");
    // The mesh gets n1's port for a proxy that leads to n0.
    let on_n1 = std::net::TcpListener::bind(direct[1]).expect("n1's port is free until n1 binds");
    let spare = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let to_n0 = direct[0];
    mesh.add_client_links(vec![spare, on_n1], move |_| to_n0)
        .await
        .expect("client links");
    cluster
        .wait_ready(&[NodeId(0)], Duration::from_secs(10))
        .await
        .expect("n0 ready");
    // n1 runs but does not listen yet; n0 answers on its port.
    assert!(cluster.pid(NodeId(1)).is_some());
    assert!(
        !cluster.is_ready(NodeId(1)).await,
        "n0 answering through a proxy passed for n1"
    );
    let err = cluster
        .wait_ready(&[NodeId(1)], Duration::from_secs(10))
        .await
        .expect_err("n1 never listened: it must not look ready");
    match &err {
        ClusterError::Exited {
            node,
            last_log_lines,
            ..
        } => {
            assert_eq!(*node, NodeId(1));
            assert!(
                last_log_lines.contains("Address already in use"),
                "{last_log_lines}"
            );
        }
        other => panic!("expected n1 to exit on its taken port, got {other:?}"),
    }
    // n0 is up and answers through the squatting proxy, as itself.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let via_proxy: Value = http
        .get(format!("http://{}/health", direct[1]))
        .send()
        .await
        .expect("the proxy forwards to n0")
        .json()
        .await
        .expect("json");
    assert_eq!(via_proxy["id"], "n0");
    assert!(!cluster.is_ready(NodeId(1)).await);
    let _ = cluster.shutdown().await;
    mesh.shutdown().await;
}
