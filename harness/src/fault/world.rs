//! The model of what should be true of each node at each instant: which
//! faults are in force, which links are cut, and therefore which nodes
//! should serve. Every change is kept as a snapshot, so checkers can
//! classify each operation by the state at its invocation.
//!
//! Node states are not kept here: the cluster owns them (the one
//! [`NodeState`] model) and each snapshot records what it reported.
//!
//! A fault that leaves its nodes up (a `slow` node on a fraction of a CPU, a
//! degraded link) is named in the label of every period it lasts but takes
//! no node out of `serving`: a grey failure, where the plan's expectations
//! say what must hold.

use super::topology::components;
use crate::NodeId;
pub use crate::NodeState;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How a request to a node at some instant is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeClass {
    /// Expected to serve: counts towards availability.
    Serving,
    /// Expected to serve again soon: inside the recovery window of a change.
    Recovering,
    /// Running, but on the wrong side of a partition.
    CutOff,
    Paused,
    Down,
}

/// The world from one change to the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub at_ns: u64,
    /// Faults in force, for people: `kill n2`, `partition [n0 n1] | [n2 n3 n4]`.
    pub label: String,
    pub states: Vec<NodeState>,
    /// Nodes expected to serve (before recovery windows are applied).
    pub serving: Vec<NodeId>,
}

#[derive(Clone, Debug)]
pub struct World {
    size: usize,
    cuts: BTreeMap<usize, BTreeSet<(NodeId, NodeId)>>,
    active: BTreeMap<usize, String>,
    snapshots: Vec<Snapshot>,
}

impl World {
    pub fn new(size: usize) -> World {
        let mut w = World {
            size,
            cuts: BTreeMap::new(),
            active: BTreeMap::new(),
            snapshots: Vec::new(),
        };
        w.snapshot(0, &vec![NodeState::Up; size]);
        w
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Records a fault in force under key `id` (its schedule index).
    pub fn add_fault(&mut self, id: usize, label: String, cut: Option<BTreeSet<(NodeId, NodeId)>>) {
        self.active.insert(id, label);
        if let Some(c) = cut {
            self.cuts.insert(id, c);
        }
    }

    pub fn remove_fault(&mut self, id: usize) {
        self.active.remove(&id);
        self.cuts.remove(&id);
    }

    /// Removes every partition (a `heal` step).
    pub fn heal_all(&mut self) -> Vec<usize> {
        let ids: Vec<usize> = self.cuts.keys().copied().collect();
        for id in &ids {
            self.remove_fault(*id);
        }
        ids
    }

    pub fn is_active(&self, id: usize) -> bool {
        self.active.contains_key(&id)
    }

    /// Every directed link cut by some partition in force; partitions
    /// compose, so healing one leaves the others.
    pub fn cut(&self) -> BTreeSet<(NodeId, NodeId)> {
        self.cuts.values().flatten().copied().collect()
    }

    /// Closes the current period and starts a new one at `at_ns`, with the
    /// node states the cluster reports now (missing nodes count as down).
    pub fn snapshot(&mut self, at_ns: u64, states: &[NodeState]) {
        // Events can be reported a little after a later change was recorded
        // (a node's exit reaches the runner through a channel): periods must
        // stay in time order, so such a change counts from the last one.
        let at_ns = self.snapshots.last().map_or(at_ns, |l| at_ns.max(l.at_ns));
        let states: Vec<NodeState> = (0..self.size)
            .map(|i| states.get(i).copied().unwrap_or(NodeState::Down))
            .collect();
        let up: Vec<NodeId> = (0..self.size)
            .map(NodeId)
            .filter(|n| states[n.index()] == NodeState::Up)
            .collect();
        let serving = components(self.size, &up, &self.cut());
        let mut label: Vec<String> = self.active.values().cloned().collect();
        for (i, s) in states.iter().enumerate() {
            if *s == NodeState::Exited {
                label.push(format!("n{i} exited"));
            }
        }
        let label = if label.is_empty() {
            "steady".to_string()
        } else {
            label.join("; ")
        };
        let snap = Snapshot {
            at_ns,
            label,
            states,
            serving,
        };
        // Several changes at one instant make one snapshot.
        if let Some(last) = self.snapshots.last_mut() {
            if last.at_ns == at_ns {
                *last = snap;
                return;
            }
            if last.label == snap.label
                && last.states == snap.states
                && last.serving == snap.serving
            {
                return;
            }
        }
        self.snapshots.push(snap);
    }

    pub fn snapshots(&self) -> &[Snapshot] {
        &self.snapshots
    }
}

/// Classifies a request to `node` invoked at `t_ns`, given the world's
/// snapshots and the recovery window.
pub fn classify(snapshots: &[Snapshot], node: NodeId, t_ns: u64, window_ns: u64) -> NodeClass {
    let idx = snapshots.partition_point(|s| s.at_ns <= t_ns);
    let Some(snap) = idx.checked_sub(1).and_then(|i| snapshots.get(i)) else {
        return NodeClass::Serving;
    };
    let class = match snap.states.get(node.index()) {
        Some(NodeState::Paused) => NodeClass::Paused,
        Some(NodeState::Down | NodeState::Exited) | None => NodeClass::Down,
        Some(NodeState::Up) if !snap.serving.contains(&node) => NodeClass::CutOff,
        Some(NodeState::Up) => NodeClass::Serving,
    };
    // Any change (a kill elsewhere, a heal) can cost every node an election.
    if class == NodeClass::Serving && idx > 1 && t_ns < snap.at_ns.saturating_add(window_ns) {
        return NodeClass::Recovering;
    }
    class
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_and_restart_change_classes_with_a_recovery_window() {
        let mut w = World::new(3);
        let mut states = vec![NodeState::Up; 3];
        states[1] = NodeState::Down;
        w.add_fault(0, "kill n1".into(), None);
        w.snapshot(1_000, &states);
        states[1] = NodeState::Up;
        w.remove_fault(0);
        w.snapshot(5_000, &states);
        let s = w.snapshots();
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].label, "kill n1");
        assert_eq!(classify(s, NodeId(1), 500, 100), NodeClass::Serving);
        assert_eq!(classify(s, NodeId(1), 2_000, 100), NodeClass::Down);
        assert_eq!(classify(s, NodeId(0), 1_050, 100), NodeClass::Recovering);
        assert_eq!(classify(s, NodeId(0), 2_000, 100), NodeClass::Serving);
        assert_eq!(classify(s, NodeId(1), 5_050, 100), NodeClass::Recovering);
        assert_eq!(classify(s, NodeId(1), 5_100, 100), NodeClass::Serving);
    }

    #[test]
    fn partitions_compose_and_heal_independently() {
        let mut w = World::new(5);
        let cut_a: BTreeSet<_> = [(NodeId(0), NodeId(1))].into_iter().collect();
        let cut_b: BTreeSet<_> = [(NodeId(2), NodeId(3))].into_iter().collect();
        w.add_fault(0, "a".into(), Some(cut_a));
        w.add_fault(1, "b".into(), Some(cut_b.clone()));
        assert_eq!(w.cut().len(), 2);
        w.remove_fault(0);
        assert_eq!(w.cut(), cut_b);
        assert_eq!(w.heal_all(), vec![1]);
        assert!(w.cut().is_empty());
    }

    #[test]
    fn late_changes_keep_periods_in_time_order() {
        let mut w = World::new(3);
        let mut states = vec![NodeState::Up; 3];
        states[0] = NodeState::Down;
        w.snapshot(5_000, &states);
        states[1] = NodeState::Exited;
        w.snapshot(4_000, &states);
        let at: Vec<u64> = w.snapshots().iter().map(|s| s.at_ns).collect();
        assert!(at.windows(2).all(|p| p[0] <= p[1]), "{at:?}");
        assert_eq!(
            w.snapshots().last().map(|s| s.states[1]),
            Some(NodeState::Exited)
        );
    }

    #[test]
    fn a_clock_fault_is_in_force_but_its_node_still_serves() {
        let mut w = World::new(3);
        w.add_fault(0, "clock n1 -10s".into(), None);
        w.snapshot(10, &[NodeState::Up; 3]);
        let s = w.snapshots();
        assert_eq!(s[1].label, "clock n1 -10s");
        assert_eq!(s[1].serving, vec![NodeId(0), NodeId(1), NodeId(2)]);
        assert_eq!(classify(s, NodeId(1), 20, 0), NodeClass::Serving);
        w.remove_fault(0);
        w.snapshot(30, &[NodeState::Up; 3]);
        assert_eq!(w.snapshots()[2].label, "steady");
    }

    #[test]
    fn a_slow_node_is_a_fault_in_force_that_should_still_serve() {
        let mut w = World::new(3);
        w.add_fault(4, "slow n2 cpu 0.1".into(), None);
        w.snapshot(10, &[NodeState::Up; 3]);
        let s = w.snapshots();
        assert_eq!(s[1].label, "slow n2 cpu 0.1");
        assert_eq!(s[1].serving, vec![NodeId(0), NodeId(1), NodeId(2)]);
        assert_eq!(classify(s, NodeId(2), 20, 0), NodeClass::Serving);
        w.remove_fault(4);
        w.snapshot(30, &[NodeState::Up; 3]);
        assert_eq!(
            w.snapshots().last().map(|s| s.label.as_str()),
            Some("steady")
        );
    }

    #[test]
    fn paused_node_is_not_expected_to_serve() {
        let mut w = World::new(3);
        let states = [NodeState::Up, NodeState::Up, NodeState::Paused];
        w.snapshot(10, &states);
        let s = w.snapshots();
        assert_eq!(classify(s, NodeId(2), 20, 0), NodeClass::Paused);
        assert_eq!(s[1].serving, vec![NodeId(0), NodeId(1)]);
    }
}
