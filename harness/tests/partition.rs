//! Network faults through the proxy mesh against real sample nodes: each link
//! state and a one-way cut, shown by what the Raft cluster does about them
//! (an isolated leader steps down, the others elect a new one, all converge
//! after the heal).

use rift::cluster::{self, Cluster, NodeEvent, SampleNodeProgram};
use rift::net::{LinkState, ProxyMesh};
use rift::plan::Degradation;
use rift::NodeId;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

struct Fixture {
    cluster: Cluster,
    mesh: ProxyMesh,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(size: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = rift::plan::parse(
        &format!("name = \"p\"\nduration = \"10s\"\n[cluster]\nsize = {size}\n"),
        Path::new("inline.toml"),
    )
    .expect("plan");
    let spec = plan.cluster;
    let layout = cluster::layout(&spec, dir.path()).expect("layout");
    let targets: Vec<SocketAddr> = layout
        .iter()
        .map(|l| SocketAddr::new([127, 0, 0, 1].into(), l.port))
        .collect();
    let mesh = ProxyMesh::start(size, "127.0.0.1", move |j: NodeId| targets[j.index()], 1)
        .await
        .expect("mesh");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel::<NodeEvent>();
    let program = SampleNodeProgram {
        program: env!("CARGO_BIN_EXE_rift").into(),
        leading_args: vec!["sample-node".into()],
    };
    let cluster = Cluster::start_with(&spec, layout, |a, b| mesh.addr(a, b), tx, program)
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
