//! Carries out scheduled faults on the live cluster and network, keeping the
//! world model and the fault timeline in step with what was really done.

use crate::cluster::Cluster;
use crate::disk::DiskFaults;
use crate::fault::{self, Scheduled, Timed, World};
use crate::net::{LinkId, LinkState, Network};
use crate::plan::{
    Action, ClockChange, Degradation, LinkSelector, PauseHow, Plan, Target, Topology,
};
use crate::report::{FaultEvent, PowerLossRecord};
use crate::{NodeId, NodeState};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub(super) struct Nemesis<'a> {
    size: usize,
    cluster: &'a Cluster,
    net: &'a dyn Network,
    origin: Instant,
    rng: ChaCha8Rng,
    pub world: World,
    pub timeline: Vec<FaultEvent>,
    /// Nodes each step acted on, by schedule index, so its undo knows them.
    touched: BTreeMap<usize, Vec<NodeId>>,
    /// Degradations in force, by schedule index: later ones win per link.
    degraded: BTreeMap<usize, Degraded>,
    /// What the network was last told, per link, so that a step touches
    /// only what it changes.
    applied: BTreeMap<LinkId, Degradation>,
    /// Slow steps in force, by schedule index: their nodes and CPU share
    /// (a later one wins on a node both name).
    slowed: BTreeMap<usize, (Vec<NodeId>, f64)>,
    /// Asked who leads when the cluster has no leader query of its own:
    /// the client of the client protocol (`f = "leader"`).
    leader_client: Option<std::sync::Arc<crate::adapter::client::ClientPool>>,
    /// Clock faults in force, by schedule index: the nodes whose clock the
    /// step still sets (a later clock step on a node takes it over).
    clocks: BTreeMap<usize, (Vec<NodeId>, ClockChange)>,
    /// The nodes' faulty disks (`[cluster] disk = "faulty"`).
    pub disks: Option<&'a super::start::Disks>,
    /// Disk faults in force, by schedule index: the nodes whose disk the
    /// step still sets (a later disk step on a node takes it over).
    disk_faults: BTreeMap<usize, (Vec<NodeId>, DiskFaults)>,
    /// Every power loss carried out, for the report.
    pub power_losses: Vec<PowerLossRecord>,
}

impl<'a> Nemesis<'a> {
    pub fn new(
        plan: &Plan,
        seed: u64,
        cluster: &'a Cluster,
        net: &'a dyn Network,
        origin: Instant,
    ) -> Self {
        Nemesis {
            size: plan.cluster.size,
            cluster,
            net,
            origin,
            // A stream of its own, so workload randomness never shifts fault choices.
            rng: ChaCha8Rng::seed_from_u64(seed.wrapping_add(0x6e656d65)),
            world: World::new(plan.cluster.size),
            timeline: Vec::new(),
            touched: BTreeMap::new(),
            degraded: BTreeMap::new(),
            applied: BTreeMap::new(),
            slowed: BTreeMap::new(),
            leader_client: None,
            clocks: BTreeMap::new(),
            disks: None,
            disk_faults: BTreeMap::new(),
            power_losses: Vec::new(),
        }
    }

    /// Leader targets are resolved by asking `pool`'s client when the
    /// cluster has no `leader` query.
    pub fn leader_via(&mut self, pool: std::sync::Arc<crate::adapter::client::ClientPool>) {
        self.leader_client = Some(pool);
    }

    /// Who leads: the cluster's leader query, else the client's answer
    /// (asked through every node that is up).
    async fn leader(&self) -> Option<NodeId> {
        match (&self.leader_client, self.cluster.has_leader_query()) {
            (Some(pool), false) => {
                let up: Vec<NodeId> = (0..self.size)
                    .map(NodeId)
                    .filter(|&n| self.cluster.state(n) == crate::NodeState::Up)
                    .collect();
                pool.leader(&up).await
            }
            (Some(_), true) | (None, _) => self.cluster.leader().await,
        }
    }

    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn all(&self) -> Vec<NodeId> {
        (0..self.size).map(NodeId).collect()
    }

    async fn resolve(&mut self, target: &Target, candidates: &[NodeId]) -> Vec<NodeId> {
        let leader = match target {
            Target::Leader | Target::Followers => self.leader().await,
            Target::Nodes(_)
            | Target::Random(_)
            | Target::Minority
            | Target::Majority
            | Target::All => None,
        };
        fault::resolve(target, self.size, candidates, leader, &mut self.rng)
    }

    fn record(
        &mut self,
        s: &Scheduled,
        action: &str,
        nodes: Vec<NodeId>,
        detail: String,
        error: Option<String>,
    ) {
        let effective = self.origin.elapsed();
        if let Some(e) = &error {
            tracing::warn!("{action} at {:?} (plan line {}): {e}", s.at, s.line);
        } else {
            tracing::info!("{action} {detail}");
        }
        self.timeline.push(FaultEvent {
            scheduled_s: s.at.as_secs_f64(),
            effective_s: effective.as_secs_f64(),
            lag_ms: (effective.as_secs_f64() - s.at.as_secs_f64()) * 1000.0,
            action: action.into(),
            nodes,
            detail,
            line: s.line,
            error,
        });
    }

    /// Carries out schedule entry `idx`.
    pub async fn apply(&mut self, idx: usize, s: &Scheduled, schedule: &[Scheduled]) {
        match &s.what {
            Timed::Step(action) => self.step(idx, s, action).await,
            Timed::Undo { of } => {
                let Some(orig) = schedule.get(*of) else {
                    return;
                };
                let Timed::Step(action) = &orig.what else {
                    return;
                };
                self.undo(*of, s, action).await;
            }
        }
        self.snapshot();
    }

    async fn step(&mut self, idx: usize, s: &Scheduled, action: &Action) {
        match action {
            Action::Kill {
                target,
                signal,
                power_loss,
                ..
            } => {
                let up: Vec<NodeId> = self
                    .all()
                    .into_iter()
                    .filter(|n| self.cluster.state(*n) != NodeState::Down)
                    .collect();
                let nodes = self.resolve(target, &up).await;
                let mut errors = Vec::new();
                for &n in &nodes {
                    if let Err(e) = self.cluster.kill(n, *signal) {
                        errors.push(format!("{n}: {e}"));
                    }
                }
                let label = match power_loss {
                    Some(_) => format!("kill {} (power loss)", names(&nodes)),
                    None => format!("kill {}", names(&nodes)),
                };
                self.world.add_fault(idx, label, None);
                self.touched.insert(idx, nodes.clone());
                let mut detail = format!("signal {signal}{}", role(target));
                if let Some(p) = power_loss {
                    let (lost, mut errs) = self.power_loss(&nodes, p.torn).await;
                    detail.push_str(&format!(
                        ", lose_unsynced{}: {lost}",
                        if p.torn { " torn" } else { "" }
                    ));
                    errors.append(&mut errs);
                }
                let err = empty_target(&nodes, target).or_else(|| join(errors));
                self.record(s, "kill", nodes, detail, err);
            }
            Action::Disk { target, faults, .. } => {
                // A disk keeps its faults while its node is down: a
                // restart meets them.
                let nodes = self.resolve(target, &self.all()).await;
                let errors = match self.disks {
                    Some(_) => Vec::new(),
                    None => vec!["the nodes run on plain disks".to_string()],
                };
                self.claim_disks(idx, &nodes, faults);
                self.apply_disk_faults(&nodes);
                let err = empty_target(&nodes, target).or_else(|| join(errors));
                let detail = format!("{}{}", describe_disk_faults(faults), role(target));
                self.record(s, "disk", nodes, detail, err);
            }
            Action::Restart { target } => {
                let nodes = self.resolve(target, &self.all()).await;
                let mut errors = Vec::new();
                // Named while it lasts, so the stop window is not "steady".
                self.world
                    .add_fault(idx, format!("restart {}", names(&nodes)), None);
                for &n in &nodes {
                    if let Err(e) = self.restart(n).await {
                        errors.push(format!("{n}: {e}"));
                    }
                }
                self.world.remove_fault(idx);
                self.clear_faults_of(&nodes);
                let err = empty_target(&nodes, target).or_else(|| join(errors));
                self.record(s, "restart", nodes, String::new(), err);
            }
            Action::Pause { target, how, .. } => {
                let up = self.up();
                let nodes = self.resolve(target, &up).await;
                let mut errors = Vec::new();
                for &n in &nodes {
                    if let Err(e) = self.cluster.pause_with(n, *how) {
                        errors.push(format!("{n}: {e}"));
                    }
                }
                let err = empty_target(&nodes, target).or_else(|| join(errors));
                let (label, detail) = match how {
                    PauseHow::Sigstop => (
                        format!("pause {}", names(&nodes)),
                        role(target).trim().to_string(),
                    ),
                    PauseHow::Freeze => (
                        format!("freeze {}", names(&nodes)),
                        format!("cgroup freezer{}", role(target)),
                    ),
                };
                self.world.add_fault(idx, label, None);
                self.touched.insert(idx, nodes.clone());
                self.record(s, "pause", nodes, detail, err);
            }
            Action::Slow { target, cpu, .. } => {
                let nodes = self.resolve(target, &self.all()).await;
                self.slowed.insert(idx, (nodes.clone(), *cpu));
                let errors = self.apply_cpu(&nodes);
                let err = empty_target(&nodes, target).or_else(|| join(errors));
                // A grey failure: named while it lasts, but the nodes stay
                // up and should serve.
                self.world
                    .add_fault(idx, format!("slow {} cpu {cpu}", names(&nodes)), None);
                let detail = format!("cpu {cpu}{}", role(target));
                self.record(s, "slow", nodes, detail, err);
            }
            Action::Resume { target } => {
                let nodes = self.resolve(target, &self.all()).await;
                let errors = self.resume(&nodes);
                self.record(s, "resume", nodes, String::new(), join(errors));
            }
            Action::Partition {
                topology, oneway, ..
            } => {
                if !self.net.can_fault() {
                    self.record(
                        s,
                        "partition",
                        vec![],
                        String::new(),
                        Some("the plan's network has no proxy mesh".into()),
                    );
                    return;
                }
                let isolated = match topology {
                    Topology::Isolate(t) => self.resolve(t, &self.all()).await,
                    Topology::MajorityMinority
                    | Topology::Halves
                    | Topology::Bridge
                    | Topology::Ring
                    | Topology::Groups(_) => Vec::new(),
                };
                let cut = fault::cut_links(topology, self.size, &isolated, *oneway, &mut self.rng);
                let groups: Vec<String> = cut
                    .groups
                    .iter()
                    .map(|g| format!("[{}]", names(g)))
                    .collect();
                let arrow = if *oneway { " -/-> " } else { " | " };
                let label = format!("partition {}", groups.join(arrow));
                self.world.add_fault(idx, label.clone(), Some(cut.links));
                self.apply_links();
                let role = match topology {
                    Topology::Isolate(t) => role(t),
                    Topology::MajorityMinority
                    | Topology::Halves
                    | Topology::Bridge
                    | Topology::Ring
                    | Topology::Groups(_) => "",
                };
                // The side cut off (the first group: the isolated nodes, the
                // minority, ...), so every partition names nodes.
                let nodes = if isolated.is_empty() {
                    cut.groups.first().cloned().unwrap_or_default()
                } else {
                    isolated
                };
                self.record(s, "partition", nodes, format!("{label}{role}"), None);
            }
            Action::Heal => {
                self.world.heal_all();
                self.apply_links();
                self.record(s, "heal", vec![], "all links pass".into(), None);
            }
            Action::Degrade {
                links, degradation, ..
            } => {
                let (pairs, clients) = self.links(links).await;
                let label = format!("degrade {}", describe_degradation(degradation));
                let clients_note = if clients.is_empty() {
                    String::new()
                } else {
                    format!(" and the clients of {}", names(&clients))
                };
                let scope = match (pairs.len(), clients.is_empty()) {
                    (0, false) => format!("the clients of {}", names(&clients)),
                    (n, _) => format!("{n} links{clients_note}"),
                };
                self.world
                    .add_fault(idx, format!("{label} on {scope}"), None);
                let nodes = touched_nodes(&pairs, &clients);
                self.degraded.insert(
                    idx,
                    Degraded {
                        pairs: pairs.clone(),
                        clients,
                        degradation: degradation.clone(),
                    },
                );
                self.apply_degradations(Some(idx));
                let err = (!self.net.can_fault())
                    .then(|| "the plan's network has no proxy mesh".to_string());
                self.record(s, "degrade", nodes, label + &clients_note, err);
            }
            Action::Restore { links } => {
                let (pairs, clients) = self.links(links).await;
                let ids: Vec<usize> = self.degraded.keys().copied().collect();
                for id in ids {
                    if let Some(d) = self.degraded.get_mut(&id) {
                        d.pairs.retain(|p| !pairs.contains(p));
                        d.clients.retain(|n| !clients.contains(n));
                        if d.pairs.is_empty() && d.clients.is_empty() {
                            self.degraded.remove(&id);
                            self.world.remove_fault(id);
                        }
                    }
                }
                self.apply_degradations(None);
                let nodes = touched_nodes(&pairs, &clients);
                self.record(s, "restore", nodes, String::new(), None);
            }
            Action::Clock { target, change, .. } => {
                // A clock can be set while its node is down: the spec
                // outlives the process and a restart reads it.
                let nodes = self.resolve(target, &self.all()).await;
                let mut errors = Vec::new();
                match self.cluster.faketime() {
                    Some(ft) => {
                        for &n in &nodes {
                            if let Err(e) = ft.set(n, *change) {
                                errors.push(format!("{n}: {e}"));
                            }
                        }
                    }
                    None => errors.push("the nodes run without libfaketime".into()),
                }
                self.claim_clocks(idx, &nodes, *change);
                let err = empty_target(&nodes, target).or_else(|| join(errors));
                self.record(s, "clock", nodes, format!("{change}{}", role(target)), err);
            }
        }
    }

    /// A power loss of each of `nodes`' disks, once its processes are
    /// dead (waited for, bounded): what was rolled back, said for the
    /// timeline, and the errors, one per node.
    async fn power_loss(&mut self, nodes: &[NodeId], torn: bool) -> (String, Vec<String>) {
        /// How long a killed node's processes may take to be reaped.
        const DEATH: Duration = Duration::from_secs(5);
        let mut said = Vec::new();
        let mut errors = Vec::new();
        for &n in nodes {
            let at_s = self.origin.elapsed().as_secs_f64();
            let outcome = match self.disks.and_then(|d| d.get(n)) {
                None => Err("the node has no faulty disk".to_string()),
                Some(disk) => {
                    if self.cluster.wait_exited(n, DEATH).await {
                        disk.power_loss(torn).map_err(|e| e.to_string())
                    } else {
                        Err(format!(
                            "its processes were not seen dead within {}s; its disk kept everything",
                            DEATH.as_secs()
                        ))
                    }
                }
            };
            let (rollback, error) = match outcome {
                Ok(r) => {
                    said.push(format!(
                        "{n} rolled back {} bytes, {} entries{}",
                        r.bytes,
                        r.entries,
                        if torn {
                            format!(", {} torn", r.torn)
                        } else {
                            String::new()
                        }
                    ));
                    (Some(r), None)
                }
                Err(e) => {
                    errors.push(format!("{n}: power loss: {e}"));
                    (None, Some(e))
                }
            };
            self.power_losses.push(PowerLossRecord {
                at_s,
                node: n,
                torn,
                rollback,
                error,
            });
        }
        (said.join("; "), errors)
    }

    /// Step `idx` now sets the disk faults of `nodes`: earlier disk steps
    /// give them up (and end when they hold no node any more).
    fn claim_disks(&mut self, idx: usize, nodes: &[NodeId], faults: &DiskFaults) {
        let ids: Vec<usize> = self.disk_faults.keys().copied().collect();
        for id in ids {
            let Some((held, f)) = self.disk_faults.get_mut(&id) else {
                continue;
            };
            held.retain(|n| !nodes.contains(n));
            if held.is_empty() {
                self.disk_faults.remove(&id);
                self.world.remove_fault(id);
            } else {
                let label = disk_label(held, f);
                self.world.add_fault(id, label, None);
            }
        }
        if !nodes.is_empty() {
            self.disk_faults
                .insert(idx, (nodes.to_vec(), faults.clone()));
            // A grey failure: named while it lasts, but the nodes stay up
            // and should serve.
            self.world.add_fault(idx, disk_label(nodes, faults), None);
        }
    }

    /// Sets each of `nodes`' disks to the faults of the disk step that
    /// holds it, or none.
    fn apply_disk_faults(&self, nodes: &[NodeId]) {
        let Some(disks) = self.disks else {
            return;
        };
        for &n in nodes {
            let faults = self
                .disk_faults
                .values()
                .find(|(ns, _)| ns.contains(&n))
                .map(|(_, f)| f.clone())
                .unwrap_or_default();
            if let Some(d) = disks.get(n) {
                d.set_faults(faults);
            }
        }
    }

    /// Step `idx` now sets the clocks of `nodes`: earlier clock faults
    /// give them up (and end when they hold no node any more).
    fn claim_clocks(&mut self, idx: usize, nodes: &[NodeId], change: ClockChange) {
        let ids: Vec<usize> = self.clocks.keys().copied().collect();
        for id in ids {
            let Some((held, ch)) = self.clocks.get_mut(&id) else {
                continue;
            };
            held.retain(|n| !nodes.contains(n));
            if held.is_empty() {
                self.clocks.remove(&id);
                self.world.remove_fault(id);
            } else {
                let label = clock_label(held, ch);
                self.world.add_fault(id, label, None);
            }
        }
        if !nodes.is_empty() {
            self.clocks.insert(idx, (nodes.to_vec(), change));
            self.world.add_fault(idx, clock_label(nodes, &change), None);
        }
    }

    /// Puts `nodes`' clocks back on true time; the errors, one per node.
    fn reset_clocks(&self, nodes: &[NodeId]) -> Vec<String> {
        let Some(ft) = self.cluster.faketime() else {
            return Vec::new();
        };
        nodes
            .iter()
            .filter_map(|&n| ft.reset(n).err().map(|e| format!("{n}: {e}")))
            .collect()
    }

    async fn undo(&mut self, of: usize, s: &Scheduled, action: &Action) {
        let nodes = self.touched.get(&of).cloned().unwrap_or_default();
        match action {
            Action::Kill { .. } => {
                let mut errors = Vec::new();
                for &n in &nodes {
                    if self.cluster.state(n) == NodeState::Down {
                        if let Err(e) = self.start_again(n).await {
                            errors.push(format!("{n}: {e}"));
                        }
                    }
                }
                self.world.remove_fault(of);
                self.record(s, "restart", nodes, "restart_after".into(), join(errors));
            }
            Action::Pause { .. } => {
                let errors = self.resume(&nodes);
                self.record(s, "resume", nodes, "end of pause".into(), join(errors));
            }
            Action::Partition { .. } => {
                let was_active = self.world.is_active(of);
                self.world.remove_fault(of);
                self.apply_links();
                let detail = if was_active {
                    "end of partition"
                } else {
                    "already healed"
                };
                self.record(s, "heal", vec![], detail.into(), None);
            }
            Action::Degrade { .. } => {
                self.degraded.remove(&of);
                self.world.remove_fault(of);
                self.apply_degradations(None);
                self.record(s, "restore", vec![], "end of degradation".into(), None);
            }
            Action::Clock { .. } => {
                let held = self.clocks.remove(&of).map(|(ns, _)| ns);
                self.world.remove_fault(of);
                let (nodes, errors, detail) = match held {
                    Some(ns) => {
                        let errors = self.reset_clocks(&ns);
                        (ns, errors, "back to true time")
                    }
                    None => (
                        Vec::new(),
                        Vec::new(),
                        "already replaced by a later clock step",
                    ),
                };
                self.record(s, "clock", nodes, detail.into(), join(errors));
            }
            Action::Disk { .. } => {
                let held = self.disk_faults.remove(&of).map(|(ns, _)| ns);
                self.world.remove_fault(of);
                let (nodes, detail) = match held {
                    Some(ns) => {
                        self.apply_disk_faults(&ns);
                        (ns, "end of disk faults")
                    }
                    None => (Vec::new(), "already replaced by a later disk step"),
                };
                self.record(s, "disk", nodes, detail.into(), None);
            }
            Action::Slow { .. } => {
                let nodes = self
                    .slowed
                    .remove(&of)
                    .map(|(nodes, _)| nodes)
                    .unwrap_or_default();
                let errors = self.apply_cpu(&nodes);
                self.world.remove_fault(of);
                self.record(
                    s,
                    "unslow",
                    nodes,
                    "end of slow: CPU limit lifted".into(),
                    join(errors),
                );
            }
            // Steps without a duration are never undone.
            Action::Restart { .. }
            | Action::Resume { .. }
            | Action::Heal
            | Action::Restore { .. } => {}
        }
    }

    /// Undoes everything still in force before the final recovery check.
    pub async fn heal_everything(&mut self) {
        self.world.heal_all();
        for id in std::mem::take(&mut self.clocks).into_keys() {
            self.world.remove_fault(id);
        }
        for e in self.reset_clocks(&self.all()) {
            tracing::warn!("cannot put a clock back on true time: {e}");
        }
        // Every disk without faults.
        for id in std::mem::take(&mut self.disk_faults).into_keys() {
            self.world.remove_fault(id);
        }
        self.apply_disk_faults(&self.all());
        self.degraded.clear();
        self.net.heal_all();
        self.apply_degradations(None);
        // Every node's CPU back: each slow in force ends here.
        let mut slowed: Vec<NodeId> = Vec::new();
        for (id, (nodes, _)) in std::mem::take(&mut self.slowed) {
            self.world.remove_fault(id);
            slowed.extend(nodes);
        }
        slowed.sort();
        slowed.dedup();
        for n in slowed {
            if let Err(e) = self.cluster.set_cpu(n, None) {
                tracing::warn!("cannot give {n} its CPU back for the final recovery check: {e}");
            }
        }
        let paused: Vec<NodeId> = self
            .all()
            .into_iter()
            .filter(|n| self.cluster.state(*n) == NodeState::Paused)
            .collect();
        self.resume(&paused);
        for n in self.all() {
            if matches!(self.cluster.state(n), NodeState::Down | NodeState::Exited) {
                if let Err(e) = self.start_again(n).await {
                    tracing::warn!("cannot restart {n} for the final recovery check: {e}");
                }
            }
        }
        self.snapshot();
    }

    fn resume(&mut self, nodes: &[NodeId]) -> Vec<String> {
        let mut errors = Vec::new();
        for &n in nodes {
            if self.cluster.state(n) != NodeState::Paused {
                continue;
            }
            if let Err(e) = self.cluster.resume(n) {
                errors.push(format!("{n}: {e}"));
            }
        }
        self.clear_faults_of(nodes);
        errors
    }

    /// Sets each of `nodes` to the CPU share of the latest slow in force
    /// that names it, or lifts its limit when none does.
    fn apply_cpu(&self, nodes: &[NodeId]) -> Vec<String> {
        let mut errors = Vec::new();
        for &n in nodes {
            let cpu = self
                .slowed
                .values()
                .rev()
                .find(|(ns, _)| ns.contains(&n))
                .map(|(_, cpu)| *cpu);
            if let Err(e) = self.cluster.set_cpu(n, cpu) {
                errors.push(format!("{n}: {e}"));
            }
        }
        errors
    }

    /// Drops process faults (kill, pause) whose nodes are all up again.
    fn clear_faults_of(&mut self, nodes: &[NodeId]) {
        let ids: Vec<usize> = self.touched.keys().copied().collect();
        for id in ids {
            let all_up = self.touched.get(&id).is_some_and(|ns| {
                ns.iter().all(|n| self.cluster.state(*n) == NodeState::Up)
                    && ns.iter().any(|n| nodes.contains(n))
            });
            if all_up {
                self.world.remove_fault(id);
                self.touched.remove(&id);
            }
        }
    }

    /// Stop (if running) and start again.
    async fn restart(&mut self, n: NodeId) -> Result<(), String> {
        if matches!(self.cluster.state(n), NodeState::Up | NodeState::Paused) {
            self.cluster.stop(n).await.map_err(|e| e.to_string())?;
        }
        self.snapshot();
        self.start_again(n).await
    }

    async fn start_again(&mut self, n: NodeId) -> Result<(), String> {
        // A killed process may still be exiting; wait (bounded) for it.
        self.cluster.wait_exited(n, Duration::from_secs(5)).await;
        self.cluster.start_node(n).await.map_err(|e| e.to_string())
    }

    /// Nodes running and not paused.
    fn up(&self) -> Vec<NodeId> {
        self.all()
            .into_iter()
            .filter(|n| self.cluster.state(*n) == NodeState::Up)
            .collect()
    }

    /// Closes the world's period with the node states the cluster reports.
    pub fn snapshot(&mut self) {
        let at = self.now_ns();
        self.snapshot_at(at);
    }

    /// The same, for a change that happened at `at_ns` (a node event that
    /// reached the runner a little later).
    pub fn snapshot_at(&mut self, at_ns: u64) {
        self.world.snapshot(at_ns, &self.cluster.states());
    }

    /// The peer links a selector names, and the nodes whose client link it
    /// takes in as well (when the workload goes through the mesh): every
    /// node for `all`, the named nodes for `nodes`, none for explicit links.
    async fn links(&mut self, sel: &LinkSelector) -> (Vec<(NodeId, NodeId)>, Vec<NodeId>) {
        let proxied_clients = self.net.has_client_links();
        let clients = |nodes: &[NodeId]| {
            if proxied_clients {
                nodes.to_vec()
            } else {
                Vec::new()
            }
        };
        let all = self.all();
        let pairs = |nodes: &[NodeId]| -> Vec<(NodeId, NodeId)> {
            let mut v = Vec::new();
            for &a in &all {
                for &b in &all {
                    if a != b && (nodes.contains(&a) || nodes.contains(&b)) {
                        v.push((a, b));
                    }
                }
            }
            v
        };
        match sel {
            LinkSelector::All => (pairs(&all), clients(&all)),
            LinkSelector::Nodes(t) => {
                let nodes = self.resolve(t, &all).await;
                (pairs(&nodes), clients(&nodes))
            }
            LinkSelector::Links(l) => (l.clone(), Vec::new()),
            LinkSelector::Clients(t) => {
                let nodes = self.resolve(t, &all).await;
                (Vec::new(), clients(&nodes))
            }
        }
    }

    /// Sets every peer link to what the partitions in force say.
    fn apply_links(&self) {
        if !self.net.can_fault() {
            return;
        }
        let cut = self.world.cut();
        for a in self.all() {
            for b in self.all() {
                if a != b {
                    let st = if cut.contains(&(a, b)) {
                        LinkState::Drop
                    } else {
                        LinkState::Pass
                    };
                    self.net.set_link(a, b, st);
                }
            }
        }
    }

    /// Puts the degradations in force on the network. Setting a link
    /// re-rolls the reset and stall dice of its connections, so only links
    /// whose degradation changes are set, plus every link of the step
    /// `fresh` just applied (a new fault, even if it repeats an old one).
    fn apply_degradations(&mut self, fresh: Option<usize>) {
        if !self.net.can_fault() {
            return;
        }
        let keys = |d: &Degraded| -> Vec<LinkId> {
            d.pairs
                .iter()
                .map(|&(from, to)| LinkId::Peer { from, to })
                .chain(d.clients.iter().map(|&to| LinkId::Clients { to }))
                .collect()
        };
        // Later degradations win on a link both name (BTreeMap order is
        // step order).
        let mut want: BTreeMap<LinkId, Degradation> = BTreeMap::new();
        for d in self.degraded.values() {
            for k in keys(d) {
                want.insert(k, d.degradation.clone());
            }
        }
        let forced: Vec<LinkId> = fresh
            .and_then(|i| self.degraded.get(&i))
            .map(keys)
            .unwrap_or_default();
        let touched: std::collections::BTreeSet<LinkId> =
            want.keys().chain(self.applied.keys()).copied().collect();
        for k in touched {
            let new = want.get(&k);
            if new == self.applied.get(&k) && !forced.contains(&k) {
                continue;
            }
            self.net.set_degradation(k, new.cloned());
        }
        self.applied = want;
    }
}

/// A degradation in force: the peer links and client links it covers.
struct Degraded {
    pairs: Vec<(NodeId, NodeId)>,
    clients: Vec<NodeId>,
    degradation: Degradation,
}

fn names(nodes: &[NodeId]) -> String {
    nodes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The nodes at either end of `pairs`, and those whose client links count.
fn touched_nodes(pairs: &[(NodeId, NodeId)], clients: &[NodeId]) -> Vec<NodeId> {
    let mut v = nodes_of(pairs);
    v.extend(clients);
    v.sort();
    v.dedup();
    v
}

fn nodes_of(pairs: &[(NodeId, NodeId)]) -> Vec<NodeId> {
    let mut v: Vec<NodeId> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
    v.sort();
    v.dedup();
    v
}

fn join(errors: Vec<String>) -> Option<String> {
    (!errors.is_empty()).then(|| errors.join("; "))
}

fn empty_target(nodes: &[NodeId], target: &Target) -> Option<String> {
    nodes.is_empty().then(|| match target {
        Target::Leader => "no leader was known at that moment".to_string(),
        Target::Nodes(_)
        | Target::Random(_)
        | Target::Followers
        | Target::Minority
        | Target::Majority
        | Target::All => "the target matched no node".to_string(),
    })
}

/// What a role target resolved to, for the timeline: ` (the leader)`.
fn role(target: &Target) -> &'static str {
    match target {
        Target::Leader => " (the leader)",
        Target::Followers => " (the followers)",
        Target::Nodes(_)
        | Target::Random(_)
        | Target::Minority
        | Target::Majority
        | Target::All => "",
    }
}

/// A clock fault in force, for periods: `clock n1 -10s`.
fn clock_label(nodes: &[NodeId], change: &ClockChange) -> String {
    format!("clock {} {change}", names(nodes))
}

/// A disk fault in force, for periods: `disk n1 fsync eio`.
fn disk_label(nodes: &[NodeId], faults: &DiskFaults) -> String {
    format!("disk {} {}", names(nodes), describe_disk_faults(faults))
}

/// `fsync eio, write enospc, latency 20ms ± 5ms, corrupt 0.01`.
fn describe_disk_faults(f: &DiskFaults) -> String {
    // Destructured so that a new field cannot be left out of the label.
    let DiskFaults {
        fsync,
        write,
        read,
        latency,
        jitter,
        corrupt,
    } = f;
    let errno = crate::plan::errno_name;
    let mut parts = Vec::new();
    for (op, e) in [("fsync", fsync), ("write", write), ("read", read)] {
        if let Some(e) = e {
            parts.push(format!("{op} {}", errno(*e)));
        }
    }
    if let Some(l) = latency {
        let j = jitter
            .map(|j| format!(" ± {}ms", j.as_millis()))
            .unwrap_or_default();
        parts.push(format!("latency {}ms{j}", l.as_millis()));
    }
    if let Some(p) = corrupt {
        parts.push(format!("corrupt {p}"));
    }
    parts.join(", ")
}

fn describe_degradation(d: &Degradation) -> String {
    // Destructured so that a new field cannot be left out of the label.
    let Degradation {
        latency,
        jitter,
        distribution,
        bandwidth,
        loss,
        duplicate,
        reorder,
        gap,
        corrupt,
        reset,
        stall,
    } = d;
    let ms = |d: &std::time::Duration| format!("{}ms", d.as_millis());
    let mut parts = Vec::new();
    if let Some(l) = latency {
        parts.push(format!("latency {}", ms(l)));
    }
    if let Some(j) = jitter {
        let how = match distribution {
            crate::plan::Distribution::Uniform => "",
            crate::plan::Distribution::Normal => " (normal)",
        };
        parts.push(format!("jitter {}{how}", ms(j)));
    }
    if let Some(b) = bandwidth {
        parts.push(format!("bandwidth {b} B/s"));
    }
    for (name, p) in [
        ("loss", loss),
        ("duplicate", duplicate),
        ("reorder", reorder),
        ("corrupt", corrupt),
        ("reset", reset),
        ("stall", stall),
    ] {
        if let Some(p) = p {
            parts.push(format!("{name} {p}"));
        }
    }
    if let (Some(_), Some(g)) = (reorder, gap) {
        parts.push(format!("gap {}", ms(g)));
    }
    parts.join(", ")
}
