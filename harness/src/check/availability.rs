//! Availability, latency and recovery, judged against the expected-to-serve
//! model: requests to nodes that should serve count; the rest are shown
//! apart. Pure computation over the history and the world's snapshots; a
//! request counts as served by its recorded outcome (`Op::served`), never by
//! a status this module would interpret.

use crate::fault::{classify, NodeClass, Snapshot};
use crate::history::Op;
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Served requests out of all requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub served: u64,
    pub total: u64,
}

impl Ratio {
    fn add(&mut self, ok: bool) {
        self.total += 1;
        self.served += u64::from(ok);
    }
    /// 1.0 when there was nothing to judge.
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.served as f64 / self.total as f64
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeAvailability {
    pub node: NodeId,
    /// Requests while the node was expected to serve.
    pub serving: Ratio,
    /// All other requests to it, by why they were not expected to succeed.
    pub other: BTreeMap<NodeClass, Ratio>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub label: String,
    pub start_s: f64,
    pub end_s: f64,
    pub serving_nodes: Vec<NodeId>,
    pub serving: Ratio,
    pub other: Ratio,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    /// Over requests to nodes expected to serve: the figure expectations judge.
    pub overall: Ratio,
    pub by_class: BTreeMap<NodeClass, Ratio>,
    pub per_node: Vec<NodeAvailability>,
    pub phases: Vec<Phase>,
}

/// How long nodes took to serve again after a change of the world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// When the change happened, seconds from the start.
    pub at_s: f64,
    pub label: String,
    pub node: NodeId,
    /// Seconds until the node served and kept serving; `None` if it never did
    /// before the next change or the end.
    pub seconds: Option<f64>,
    /// `seconds` is `None` because the next change of the world (or the end
    /// of the run) came before the recovery window was over: the node had no full window to recover
    /// in, so its recovery was not observed (neither in time nor too slow).
    /// Left out of report.json when false, so older reports round-trip.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut_short: bool,
}

/// Decides how each request is judged. A change of the world (a kill, a
/// heal, a restart) gives every node expected to serve a recovery window:
/// requests to it are "recovering" until its first served request after its
/// last failure inside the window, and judged from then on. A node that does
/// not settle within the window is judged from the window's end.
pub struct Judge<'a> {
    snapshots: &'a [Snapshot],
    /// Per (snapshot index, node): when judging starts, the measured
    /// recovery in seconds if the node settled inside the window, and
    /// whether the next change cut the window short.
    settled: HashMap<(usize, NodeId), (u64, Option<f64>, bool)>,
}

impl<'a> Judge<'a> {
    pub fn new(ops: &[Op], snapshots: &'a [Snapshot], window_ns: u64, end_ns: u64) -> Judge<'a> {
        let mut per_node: HashMap<NodeId, Vec<&Op>> = HashMap::new();
        for op in ops {
            per_node.entry(op.node).or_default().push(op);
        }
        for v in per_node.values_mut() {
            v.sort_by_key(|o| o.invoke_ns);
        }
        let mut settled = HashMap::new();
        for (i, snap) in snapshots.iter().enumerate().skip(1) {
            let next = snapshots.get(i + 1).map_or(end_ns, |s| s.at_ns);
            let full_end = snap.at_ns.saturating_add(window_ns);
            let window_end = full_end.min(next);
            let cut = next < full_end;
            for &node in &snap.serving {
                let ops = per_node.get(&node).map(Vec::as_slice).unwrap_or(&[]);
                let from = ops.partition_point(|o| o.invoke_ns < snap.at_ns);
                let to = ops.partition_point(|o| o.invoke_ns < window_end).max(from);
                // A failure that completed after the next change may be that
                // change's doing (a request hung by a pause): no evidence here.
                let window: Vec<&Op> = ops[from..to]
                    .iter()
                    .copied()
                    .filter(|o| o.served() || o.complete_ns <= next)
                    .collect();
                let first_after_failure = match window.iter().rposition(|o| !o.served()) {
                    Some(p) => window.get(p + 1),
                    None => window.first(),
                };
                let entry = match first_after_failure {
                    Some(op) => (
                        op.invoke_ns,
                        Some(op.complete_ns.saturating_sub(snap.at_ns) as f64 / 1e9),
                        false,
                    ),
                    // Never asked: nothing to judge, nothing to report.
                    // (Requests hung until the next change are judged there.)
                    None if window.is_empty() => continue,
                    None => (window_end, None, cut),
                };
                settled.insert((i, node), entry);
            }
        }
        Judge { snapshots, settled }
    }

    /// How a request to `node` invoked at `t_ns` is judged.
    pub fn class(&self, node: NodeId, t_ns: u64) -> NodeClass {
        let idx = self.snapshots.partition_point(|s| s.at_ns <= t_ns);
        let class = classify(self.snapshots, node, t_ns, 0);
        if class != NodeClass::Serving || idx < 2 {
            return class;
        }
        match self.settled.get(&(idx - 1, node)) {
            Some((from, _, _)) if t_ns < *from => NodeClass::Recovering,
            _ => NodeClass::Serving,
        }
    }

    /// For every change after the start and every node expected to serve
    /// after it: seconds until it served and kept serving, `None` if it did
    /// not settle within the recovery window (or was never asked).
    pub fn recoveries(&self) -> Vec<Recovery> {
        let mut out = Vec::new();
        for (i, snap) in self.snapshots.iter().enumerate().skip(1) {
            for &node in &snap.serving {
                if let Some((_, seconds, cut_short)) = self.settled.get(&(i, node)) {
                    out.push(Recovery {
                        at_s: ns_to_s(snap.at_ns),
                        label: snap.label.clone(),
                        node,
                        seconds: *seconds,
                        cut_short: *cut_short,
                    });
                }
            }
        }
        out
    }
}

pub fn availability(ops: &[Op], judge: &Judge, size: usize, end_ns: u64) -> Availability {
    let snapshots = judge.snapshots;
    let mut overall = Ratio::default();
    let mut by_class: BTreeMap<NodeClass, Ratio> = BTreeMap::new();
    let mut per_node: Vec<NodeAvailability> = (0..size)
        .map(|i| NodeAvailability {
            node: NodeId(i),
            serving: Ratio::default(),
            other: BTreeMap::new(),
        })
        .collect();
    let mut phases: Vec<Phase> = snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| Phase {
            label: s.label.clone(),
            start_s: ns_to_s(s.at_ns),
            end_s: ns_to_s(snapshots.get(i + 1).map_or(end_ns, |n| n.at_ns)),
            serving_nodes: s.serving.clone(),
            serving: Ratio::default(),
            other: Ratio::default(),
        })
        .collect();
    for op in ops {
        let ok = op.served();
        let class = judge.class(op.node, op.invoke_ns);
        by_class.entry(class).or_default().add(ok);
        let phase = snapshots
            .partition_point(|s| s.at_ns <= op.invoke_ns)
            .saturating_sub(1);
        let node = per_node.get_mut(op.node.index());
        if class == NodeClass::Serving {
            overall.add(ok);
            if let Some(n) = node {
                n.serving.add(ok);
            }
            if let Some(p) = phases.get_mut(phase) {
                p.serving.add(ok);
            }
        } else {
            if let Some(n) = node {
                n.other.entry(class).or_default().add(ok);
            }
            if let Some(p) = phases.get_mut(phase) {
                p.other.add(ok);
            }
        }
    }
    Availability {
        overall,
        by_class,
        per_node,
        phases,
    }
}

/// Latency percentiles of served requests to nodes expected to serve.
///
/// `count` is the number of served requests measured. With `count == 0`
/// nothing was served and the figures mean nothing (they are stored as 0 for
/// the format's sake): read them through [`Latency::p50`], [`Latency::p99`]
/// and [`Latency::text`], which say `None` / `n/a` then, never zero.
///
/// The figures are rounded views; `histogram_us` keeps every recorded value
/// (to three significant digits) so a later reader, `rift compare` among
/// them, can recompute any percentile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// `[microseconds, count]` pairs, ascending: the non-empty buckets of an
    /// HDR histogram with three significant digits. Empty in reports written
    /// before it existed.
    #[serde(default)]
    pub histogram_us: Vec<[u64; 2]>,
}

/// Microsecond histogram bounds: 1 us to one hour, three significant digits.
fn new_histogram() -> Option<hdrhistogram::Histogram<u64>> {
    hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).ok()
}

impl Latency {
    /// Whether any served request was measured.
    pub fn served(&self) -> bool {
        self.count > 0
    }

    /// The median in milliseconds; `None` when nothing was served.
    pub fn p50(&self) -> Option<f64> {
        self.served().then_some(self.p50_ms)
    }

    /// The 99th percentile in milliseconds; `None` when nothing was served.
    pub fn p99(&self) -> Option<f64> {
        self.served().then_some(self.p99_ms)
    }

    /// A figure as text: `4.5ms` (with `sep` between number and unit), or
    /// `n/a` when there is none.
    pub fn text(ms: Option<f64>, sep: &str) -> String {
        match ms {
            Some(v) => format!("{v:.1}{sep}ms"),
            None => "n/a".to_string(),
        }
    }

    /// Figures and buckets from a microsecond histogram.
    pub fn from_histogram(h: &hdrhistogram::Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1_000.0;
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1_000.0,
            histogram_us: h
                .iter_recorded()
                .map(|v| {
                    [
                        h.highest_equivalent(v.value_iterated_to()),
                        v.count_at_value(),
                    ]
                })
                .collect(),
        }
    }

    /// Rebuilds the histogram from the stored buckets; `None` when there are
    /// none (an older report, or no served request at all).
    pub fn histogram(&self) -> Option<hdrhistogram::Histogram<u64>> {
        if self.histogram_us.is_empty() {
            return None;
        }
        let mut h = new_histogram()?;
        for [us, n] in &self.histogram_us {
            // Values outside the bounds are clamped, not rejected: a doctored
            // or foreign report must not make the reader fail.
            h.saturating_record_n((*us).max(1), *n);
        }
        Some(h)
    }

    /// The latency at quantile `q` (0..=1) in milliseconds, recomputed from
    /// the buckets when present, else the nearest stored figure.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if let Some(h) = self.histogram() {
            return h.value_at_quantile(q.clamp(0.0, 1.0)) as f64 / 1_000.0;
        }
        match q {
            q if q <= 0.5 => self.p50_ms,
            q if q <= 0.9 => self.p90_ms,
            q if q <= 0.99 => self.p99_ms,
            q if q <= 0.999 => self.p999_ms,
            _ => self.max_ms,
        }
    }
}

pub fn latency(ops: &[Op], judge: &Judge) -> Latency {
    let Some(mut h) = new_histogram() else {
        return Latency::default();
    };
    for op in ops {
        if op.served() && judge.class(op.node, op.invoke_ns) == NodeClass::Serving {
            h.saturating_record((op.latency_ns() / 1_000).max(1));
        }
    }
    Latency::from_histogram(&h)
}

fn ns_to_s(ns: u64) -> f64 {
    ns as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{NodeState, World};
    use crate::history::{OpKind, Outcome};

    fn op(node: usize, at_ms: u64, ok: bool) -> Op {
        Op {
            id: at_ms,
            client: 0,
            node: NodeId(node),
            kind: OpKind::Read,
            key: Some("k".into()),
            value: None,
            expect: None,
            invoke_ns: at_ms * 1_000_000,
            complete_ns: at_ms * 1_000_000 + 2_000_000,
            outcome: if ok { Outcome::Ok } else { Outcome::Fail },
            result: None,
            values: None,
            status: if ok { Some(200) } else { None },
            // The adapter's contract: a failure that is no correct answer
            // carries error text.
            error: (!ok).then(|| "connect failed".to_string()),
        }
    }

    fn world_with_kill_of_n1_between(from_ms: u64, to_ms: u64) -> World {
        let mut w = World::new(3);
        let mut states = vec![NodeState::Up; 3];
        states[1] = NodeState::Down;
        w.add_fault(0, "kill n1".into(), None);
        w.snapshot(from_ms * 1_000_000, &states);
        states[1] = NodeState::Up;
        w.remove_fault(0);
        w.snapshot(to_ms * 1_000_000, &states);
        w
    }

    #[test]
    fn requests_to_killed_nodes_do_not_count_against_availability() {
        let w = world_with_kill_of_n1_between(100, 200);
        let ops = vec![
            op(0, 10, true),
            op(1, 150, false),
            op(0, 150, true),
            op(1, 250, true),
        ];
        let j = Judge::new(&ops, w.snapshots(), 10_000_000, 300_000_000);
        let a = availability(&ops, &j, 3, 300_000_000);
        assert_eq!(
            a.overall,
            Ratio {
                served: 3,
                total: 3
            }
        );
        assert_eq!(
            a.by_class[&NodeClass::Down],
            Ratio {
                served: 0,
                total: 1
            }
        );
        assert_eq!(a.phases.len(), 3);
        assert_eq!(a.phases[1].label, "kill n1");
        assert_eq!(
            a.phases[1].other,
            Ratio {
                served: 0,
                total: 1
            }
        );
    }

    #[test]
    fn failures_of_serving_nodes_count() {
        let w = World::new(3);
        let ops = vec![op(0, 10, true), op(2, 20, false)];
        let j = Judge::new(&ops, w.snapshots(), 0, 100_000_000);
        let a = availability(&ops, &j, 3, 100_000_000);
        assert_eq!(
            a.overall,
            Ratio {
                served: 1,
                total: 2
            }
        );
        assert!((a.overall.ratio() - 0.5).abs() < 1e-9);
        assert_eq!(
            a.per_node[2].serving,
            Ratio {
                served: 0,
                total: 1
            }
        );
    }

    #[test]
    fn recovery_is_measured_from_the_last_failure() {
        let w = world_with_kill_of_n1_between(100, 200);
        // After the restart at 200 ms n1 fails twice, then serves from 260 ms.
        let ops = vec![
            op(1, 210, false),
            op(1, 240, false),
            op(1, 260, true),
            op(1, 280, true),
        ];
        let r = Judge::new(&ops, w.snapshots(), 150_000_000, 400_000_000).recoveries();
        let n1: Vec<&Recovery> = r.iter().filter(|r| r.node == NodeId(1)).collect();
        assert_eq!(n1.len(), 1);
        let secs = n1[0].seconds.unwrap_or(f64::NAN);
        assert!((secs - 0.062).abs() < 1e-6, "{secs}");
    }

    #[test]
    fn requests_after_recovery_are_judged_again() {
        let w = world_with_kill_of_n1_between(100, 200);
        // n0 fails right after the kill (an election), then serves, then
        // fails again well after it settled: that last failure counts.
        let ops = vec![
            op(0, 110, false),
            op(0, 130, true),
            op(0, 150, false),
            op(0, 160, true),
        ];
        let j = Judge::new(&ops, w.snapshots(), 1_000_000_000, 400_000_000);
        assert_eq!(j.class(NodeId(0), 110_000_000), NodeClass::Recovering);
        assert_eq!(j.class(NodeId(0), 150_000_000), NodeClass::Recovering);
        assert_eq!(j.class(NodeId(0), 160_000_000), NodeClass::Serving);
        let ops2 = vec![op(0, 110, false), op(0, 130, true), op(0, 150, true)];
        let j2 = Judge::new(&ops2, w.snapshots(), 1_000_000_000, 400_000_000);
        assert_eq!(j2.class(NodeId(0), 150_000_000), NodeClass::Serving);
    }

    #[test]
    fn never_recovering_is_reported_as_none() {
        let w = world_with_kill_of_n1_between(100, 200);
        let ops = vec![op(1, 210, false), op(1, 300, false)];
        let r = Judge::new(&ops, w.snapshots(), 150_000_000, 400_000_000).recoveries();
        assert!(r
            .iter()
            .any(|r| r.node == NodeId(1) && r.seconds.is_none() && !r.cut_short));
    }

    #[test]
    fn a_window_the_next_change_cuts_short_is_not_a_failure_to_recover() {
        let w = world_with_kill_of_n1_between(100, 200);
        let ops = vec![op(1, 210, false), op(1, 300, false)];
        // A 1 s window from the restart at 200 ms: the run ends at 400 ms,
        // before n1 had its full window.
        let r = Judge::new(&ops, w.snapshots(), 1_000_000_000, 400_000_000).recoveries();
        let n1: Vec<&Recovery> = r.iter().filter(|r| r.node == NodeId(1)).collect();
        assert!(
            n1.iter().all(|r| r.seconds.is_none() && r.cut_short),
            "{n1:?}"
        );
        assert!(!n1.is_empty());
    }

    #[test]
    fn percentiles_are_recomputed_from_the_stored_buckets() {
        let w = World::new(3);
        let mut ops = Vec::new();
        for i in 0..1000u64 {
            let mut o = op(0, i, true);
            // 1..=1000 ms: p50 ~ 500 ms, p99 ~ 990 ms.
            o.complete_ns = o.invoke_ns + (i + 1) * 1_000_000;
            ops.push(o);
        }
        let j = Judge::new(&ops, w.snapshots(), 0, 2_000_000_000);
        let l = latency(&ops, &j);
        assert_eq!(l.count, 1000);
        assert!(!l.histogram_us.is_empty());
        let back: Latency = match serde_json::to_string(&l).map(|t| serde_json::from_str(&t)) {
            Ok(Ok(b)) => b,
            other => panic!("round trip failed: {other:?}"),
        };
        for (q, stored) in [(0.5, l.p50_ms), (0.99, l.p99_ms), (0.999, l.p999_ms)] {
            assert_eq!(back.quantile_ms(q), stored, "q={q}");
        }
        assert!(
            (back.quantile_ms(0.99) - 990.0).abs() < 1.0,
            "{}",
            back.quantile_ms(0.99)
        );
        assert_eq!(l.p99(), Some(l.p99_ms));
        // An older report without buckets falls back to the stored figures.
        let old = Latency {
            histogram_us: Vec::new(),
            ..l.clone()
        };
        assert_eq!(old.quantile_ms(0.99), l.p99_ms);
    }

    #[test]
    fn nothing_served_has_no_latency() {
        let w = World::new(3);
        let ops = vec![op(0, 10, false), op(1, 20, false)];
        let j = Judge::new(&ops, w.snapshots(), 0, 100_000_000);
        let l = latency(&ops, &j);
        assert_eq!(l.count, 0);
        assert!(!l.served());
        assert_eq!(l.p50(), None);
        assert_eq!(l.p99(), None);
        assert_eq!(Latency::text(l.p99(), " "), "n/a");
        assert_eq!(Latency::text(Some(4.5), ""), "4.5ms");
    }
}
