//! Clients that drive load against the nodes and record every operation.
//!
//! Owns request pacing and the workload models (which operation comes
//! next). How an operation is sent and what its answer means belongs to the
//! [`crate::adapter`]; whether a node *should* have served is the
//! checkers' job.

mod pace;
mod recorder;

pub use recorder::{LiveCounters, Recorder};

use crate::adapter::{Adapter, Request, Response};
use crate::history::{Op, OpKind, Outcome};
use crate::plan::{KvMix, WorkloadKind, WorkloadSpec};
use crate::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Where clients send requests, indexed by node.
pub type Targets = Arc<Vec<SocketAddr>>;

/// Resolves once the flag turns true (or its sender is gone). Holds no
/// borrow of the channel across awaits, so futures using it stay `Send`.
pub async fn until_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// The span of time a workload runs in: operation times are measured from
/// `origin`, and no operation starts at or after `deadline`.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub origin: Instant,
    pub deadline: Instant,
}

/// Runs the workload until the window's deadline or until `stop` turns true.
pub async fn run(
    spec: WorkloadSpec,
    adapter: Arc<dyn Adapter>,
    targets: Targets,
    seed: u64,
    window: Window,
    recorder: Recorder,
    mut stop: watch::Receiver<bool>,
) {
    let Window { origin, deadline } = window;
    let clients = spec.clients.max(1);
    let nodes = targets.len().max(1);
    let pacer = pace::Pacer::start(spec.rate, clients);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let client = Client {
            id: c as u32,
            // With a client per node or more, each client sticks to one node
            // (as Jepsen's processes do), so requests hung on a paused node
            // never slow the load on the others.
            home: home_node(c, clients, nodes),
            adapter: adapter.clone(),
            targets: targets.clone(),
            kind: spec.kind.clone(),
            rng: ChaCha8Rng::seed_from_u64(
                seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(c as u64 + 1)),
            ),
            recorder: recorder.clone(),
            origin,
            seq: 0,
            last_seen: Default::default(),
        };
        tasks.spawn(client.drive(pacer.permits(), deadline, stop.clone()));
    }
    let until_deadline = tokio::time::sleep_until(deadline.into());
    tokio::select! {
        _ = async { while tasks.join_next().await.is_some() {} } => {}
        _ = until_deadline => {
            // No operation starts after the deadline; those in flight end.
            drop(pacer);
            while tasks.join_next().await.is_some() {}
        }
        _ = crate::workload::until_true(&mut stop) => {
            // Clients see the same signal; give in-flight requests their timeout.
            let grace = tokio::time::sleep(spec.timeout + Duration::from_millis(100));
            tokio::pin!(grace);
            loop {
                tokio::select! {
                    next = tasks.join_next() => if next.is_none() { break },
                    _ = &mut grace => { tasks.abort_all(); break }
                }
            }
        }
    }
}

/// The node a client sticks to: with at least one client per node, client
/// `c` always talks to node `c mod n`; with fewer clients, none (each request
/// picks a node at random, so every node still gets traffic).
fn home_node(client: usize, clients: usize, nodes: usize) -> Option<NodeId> {
    (nodes > 0 && clients >= nodes).then_some(NodeId(client % nodes.max(1)))
}

struct Client {
    id: u32,
    home: Option<NodeId>,
    adapter: Arc<dyn Adapter>,
    targets: Targets,
    kind: WorkloadKind,
    rng: ChaCha8Rng,
    recorder: Recorder,
    origin: Instant,
    seq: u64,
    /// Per key, the last value this client saw: the `expect` of its next cas.
    last_seen: std::collections::HashMap<String, Option<String>>,
}

/// The request a client is about to make, and the node it goes to.
struct Planned {
    node: NodeId,
    req: Request,
}

impl Client {
    async fn drive(
        mut self,
        permits: Arc<tokio::sync::Semaphore>,
        deadline: Instant,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                permit = permits.acquire() => match permit {
                    Ok(p) => p.forget(),
                    // The pacer is gone: the workload is over.
                    Err(_) => return,
                },
                _ = crate::workload::until_true(&mut stop) => return,
            }
            if Instant::now() >= deadline || *stop.borrow() {
                return;
            }
            let planned = self.next_request();
            let id = self.recorder.next_id();
            let invoke = self.origin.elapsed();
            let resp = self.execute(&planned).await;
            let complete = self.origin.elapsed();
            self.observe(&planned.req, &resp);
            let Planned { node, req } = planned;
            self.recorder.record(Op {
                id,
                client: self.id,
                node,
                kind: req.kind,
                key: req.key,
                value: req.value,
                expect: req.expect,
                invoke_ns: invoke.as_nanos() as u64,
                complete_ns: complete.as_nanos() as u64,
                outcome: resp.outcome,
                result: resp.result,
                values: resp.values,
                status: resp.status,
                error: resp.error,
            });
        }
    }

    fn pick_node(&mut self, n: usize) -> NodeId {
        match self.home {
            Some(home) => home,
            None => NodeId(self.rng.random_range(0..n)),
        }
    }

    fn next_request(&mut self) -> Planned {
        let n = self.targets.len().max(1);
        self.seq += 1;
        let picked = self.pick_node(n);
        let req = |kind, key, value, expect| Request {
            kind,
            key,
            value,
            expect,
        };
        match &self.kind {
            WorkloadKind::Probe { .. } => Planned {
                // Round-robin (when not bound) so every node is probed alike.
                node: self
                    .home
                    .unwrap_or(NodeId((self.id as usize + self.seq as usize) % n)),
                req: req(OpKind::Probe, None, None, None),
            },
            WorkloadKind::Ledger => Planned {
                node: picked,
                req: req(
                    OpKind::Append,
                    None,
                    Some(format!("tx-{}-{}", self.id, self.seq)),
                    None,
                ),
            },
            WorkloadKind::Kv { keys, mix, .. } => {
                let key = format!("k{}", self.rng.random_range(0..(*keys).max(1)));
                let value = format!("{}.{}", self.id, self.seq);
                let req = match pick(&mut self.rng, mix) {
                    KvOp::Read => req(OpKind::Read, Some(key), None, None),
                    KvOp::Cas => {
                        let expect = self.last_seen.get(&key).cloned().flatten();
                        req(OpKind::Cas, Some(key), Some(value), expect)
                    }
                    KvOp::Write => req(OpKind::Write, Some(key), Some(value), None),
                };
                Planned { node: picked, req }
            }
            WorkloadKind::Set { keys, reads } | WorkloadKind::ListAppend { keys, reads } => {
                let set = matches!(self.kind, WorkloadKind::Set { .. });
                let key = format!("k{}", self.rng.random_range(0..(*keys).max(1)));
                let read = self.rng.random_bool(reads.clamp(0.0, 1.0));
                let req = match (set, read) {
                    (true, true) => req(OpKind::ReadSet, Some(key), None, None),
                    (false, true) => req(OpKind::ReadList, Some(key), None, None),
                    // Every added or appended value is unique in the run.
                    (true, false) => req(
                        OpKind::Add,
                        Some(key),
                        Some(format!("{}.{}", self.id, self.seq)),
                        None,
                    ),
                    (false, false) => req(
                        OpKind::Append,
                        Some(key),
                        Some(format!("{}.{}", self.id, self.seq)),
                        None,
                    ),
                };
                Planned { node: picked, req }
            }
        }
    }

    fn observe(&mut self, req: &Request, resp: &Response) {
        let Some(key) = &req.key else { return };
        match (req.kind, resp.outcome) {
            (OpKind::Read, Outcome::Ok) => {
                self.last_seen.insert(key.clone(), resp.result.clone());
            }
            (OpKind::Write | OpKind::Cas, Outcome::Ok) => {
                self.last_seen.insert(key.clone(), req.value.clone());
            }
            // A cas refused as a correct answer tells the current value.
            (OpKind::Cas, Outcome::Fail) if resp.error.is_none() && resp.status.is_some() => {
                self.last_seen.insert(key.clone(), resp.result.clone());
            }
            // Nothing learnt: a failed read or write, anything unknown,
            // and operations without keys.
            (OpKind::Read | OpKind::Write | OpKind::Cas, Outcome::Fail)
            | (OpKind::Read | OpKind::Write | OpKind::Cas, Outcome::Unknown)
            | (
                OpKind::Append | OpKind::Add | OpKind::ReadSet | OpKind::ReadList | OpKind::Probe,
                _,
            ) => {}
        }
    }

    async fn execute(&self, planned: &Planned) -> Response {
        match self.targets.get(planned.node.index()).copied() {
            Some(addr) => self.adapter.call(addr, &planned.req).await,
            None => Response {
                outcome: Outcome::Fail,
                result: None,
                values: None,
                status: None,
                error: Some("no such node".into()),
            },
        }
    }
}

/// The register operations of the kv model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum KvOp {
    Read,
    Write,
    Cas,
}

fn pick(rng: &mut ChaCha8Rng, mix: &KvMix) -> KvOp {
    let x: f64 = rng.random();
    if x < mix.read {
        KvOp::Read
    } else if x < mix.read + mix.write {
        KvOp::Write
    } else {
        KvOp::Cas
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_stick_to_a_node_only_when_every_node_gets_one() {
        let homes: Vec<Option<NodeId>> = (0..6).map(|c| home_node(c, 6, 3)).collect();
        assert_eq!(homes, [0, 1, 2, 0, 1, 2].map(|i| Some(NodeId(i))));
        assert_eq!(home_node(1, 2, 3), None);
        assert_eq!(home_node(0, 1, 0), None);
    }

    #[test]
    fn mix_weights_select_every_kind() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mix = KvMix {
            read: 0.5,
            write: 0.3,
            cas: 0.2,
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(pick(&mut rng, &mix));
        }
        assert_eq!(seen.len(), 3);
    }
}
