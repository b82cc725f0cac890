//! What a run records for its report: the cluster (command, network, each
//! node's address and log, what each link carried) and, once everything is
//! measured, the report itself with its judged expectations.
//!
//! Reads the cluster and the network; changes neither.

use super::drive::NodeLog;
use super::finish::Finish;
use super::judge;
use crate::check::availability::{availability, latency, Judge};
use crate::check::verdict::Verdict;
use crate::cluster::{Cluster, NodeEvent, NodeEventKind};
use crate::fault::Snapshot;
use crate::history::Op;
use crate::net::{LinkId, Network};
use crate::plan::{Action, NodeCommand, Plan, Step, WorkloadKind};
use crate::report::{
    ClusterInfo, FaultEvent, LinkRecord, NemesisDecision, NemesisRecord, NodeEventRecord, NodeInfo,
    PlanInfo, Report, RunStatus, REPORT_SCHEMA_VERSION,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// Facts about the run itself.
pub(super) struct Header {
    pub run_id: String,
    pub seed: u64,
    pub started_at: String,
    pub label: Option<String>,
    /// When the run began (for its wall time).
    pub wall: Instant,
    /// How long the plan was to run.
    pub duration: Duration,
    /// The recovery window availability is judged with.
    pub recovery_bound: Duration,
}

/// Everything the run recorded, besides the history.
pub(super) struct Evidence {
    /// How long the run drove the cluster.
    pub end: Duration,
    pub aborted_by: Option<String>,
    pub cluster: ClusterInfo,
    pub timeline: Vec<FaultEvent>,
    pub node_log: NodeLog,
    pub snapshots: Vec<Snapshot>,
    pub finish: Finish,
    /// `[nemesis]`: the seed and the steps it drew.
    pub nemesis: Option<(u64, Vec<crate::plan::Step>)>,
}

/// Judges what was recorded and assembles the report.
pub(super) fn report(plan: &Plan, h: Header, ev: Evidence, ops: &[Op]) -> Report {
    let end_ns = ev.end.as_nanos() as u64;
    let judged = Judge::new(
        ops,
        &ev.snapshots,
        h.recovery_bound.as_nanos() as u64,
        end_ns,
    );
    let avail = availability(ops, &judged, plan.cluster.size, end_ns);
    let lat = latency(ops, &judged);
    let recovery = judged.recoveries();
    let checks = judge::run_checkers(plan, ops, &ev.finish.final_state);
    let mut expectations = judge::judge(
        plan,
        &avail,
        &lat,
        &recovery,
        ev.finish.recovery_s,
        &ev.node_log.unexpected_exits,
        &checks,
    );
    expectations.extend(ev.finish.convergence.as_ref().map(judge::convergence));
    let status = match &ev.aborted_by {
        Some(why) => {
            judge::unobserved_after_abort(plan, &recovery, &checks, &mut expectations, why);
            expectations.push(judge::completed(ev.end, h.duration, why));
            RunStatus::Aborted
        }
        None => RunStatus::Completed,
    };
    let nemesis = ev
        .nemesis
        .as_ref()
        .map(|(seed, steps)| nemesis_record(*seed, steps, &ev.timeline));
    let verdict = expectations
        .iter()
        .fold(Verdict::Pass, |v, e| v.and(e.verdict));
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        rift_version: env!("CARGO_PKG_VERSION").into(),
        run_id: h.run_id,
        plan: PlanInfo {
            name: plan.name.clone(),
            description: plan.description.clone(),
            path: plan.path.display().to_string(),
            hash: plan.hash.clone(),
        },
        label: h.label,
        seed: h.seed,
        started_at: h.started_at,
        wall_seconds: h.wall.elapsed().as_secs_f64(),
        duration_s: ev.end.as_secs_f64(),
        status,
        abort_reason: ev.aborted_by,
        verdict,
        cluster: ev.cluster,
        timeline: ev.timeline,
        node_events: ev.node_log.records,
        periods: ev.snapshots,
        ops: judge::op_counts(ops, ev.end),
        availability: avail,
        latency: lat,
        recovery,
        final_recovery_s: ev.finish.recovery_s,
        convergence: ev.finish.convergence,
        nemesis,
        checks,
        expectations,
    }
}

/// The nemesis' decisions with the nodes each was resolved to: the nodes
/// of the first timeline entry of the same kind, time and plan line (the
/// `[nemesis]` line, which no `[[step]]` shares).
pub(super) fn nemesis_record(seed: u64, steps: &[Step], timeline: &[FaultEvent]) -> NemesisRecord {
    let mut used = vec![false; timeline.len()];
    let decisions = steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            let kind = step.action.kind().name();
            let at_s = step.at.as_secs_f64();
            let found = timeline.iter().enumerate().position(|(i, e)| {
                !used[i]
                    && e.line == step.line
                    && e.action == kind
                    && (e.scheduled_s - at_s).abs() < 1e-6
            });
            let nodes = match found {
                Some(i) => {
                    used[i] = true;
                    timeline[i].nodes.iter().map(|n| n.to_string()).collect()
                }
                None => Vec::new(),
            };
            NemesisDecision {
                index,
                at_s,
                fault: kind.to_string(),
                target: decided_target(&step.action),
                step: crate::plan::step_table(step),
                nodes,
            }
        })
        .collect();
    NemesisRecord { seed, decisions }
}

/// What a step aims at, as decided: a target, a partition's topology, a
/// degrade's links.
fn decided_target(action: &Action) -> String {
    match action {
        Action::Kill { target, .. }
        | Action::Restart { target }
        | Action::Pause { target, .. }
        | Action::Resume { target }
        | Action::Clock { target, .. }
        | Action::Slow { target, .. }
        | Action::Disk { target, .. } => crate::plan::target_text(target),
        Action::Partition { topology, .. } => match crate::plan::topology_value(topology) {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        },
        Action::Heal => "all".into(),
        Action::Degrade { links, .. } | Action::Restore { links } => {
            match crate::plan::links_value(links) {
                None => "all".into(),
                Some(serde_json::Value::String(s)) => s,
                Some(other) => other.to_string(),
            }
        }
    }
}

/// Each node's disk: its counters now, and its power losses.
pub(super) fn disk_records(
    disks: &super::start::Disks,
    losses: &[crate::report::PowerLossRecord],
) -> Vec<crate::report::DiskRecord> {
    disks
        .disks
        .iter()
        .enumerate()
        .map(|(i, d)| crate::report::DiskRecord {
            node: crate::NodeId(i),
            stats: d.stats(),
            power_losses: losses
                .iter()
                .filter(|l| l.node == crate::NodeId(i))
                .cloned()
                .collect(),
        })
        .collect()
}

pub(super) fn cluster_info(
    plan: &Plan,
    cluster: &Cluster,
    net: &dyn Network,
    run_dir: &Path,
) -> ClusterInfo {
    let spec = &plan.cluster;
    ClusterInfo {
        size: spec.size,
        command: match &spec.command {
            NodeCommand::SampleNode { bugs } if bugs.is_empty() => "sample-node (bundled)".into(),
            NodeCommand::SampleNode { bugs } => {
                let names: Vec<&str> = bugs.iter().map(|b| b.name()).collect();
                format!("sample-node (bundled) --bug {}", names.join(" --bug "))
            }
            NodeCommand::External { program, .. } => program.clone(),
        },
        network: format!("{:?}", spec.network).to_lowercase(),
        workload: workload_name(&plan.workload.kind).into(),
        nodes: cluster
            .layout()
            .iter()
            .map(|l| NodeInfo {
                command: cluster
                    .command_line(l.id)
                    .map(|(program, args)| {
                        std::iter::once(program.display().to_string())
                            .chain(args.iter().cloned())
                            .collect()
                    })
                    .unwrap_or_default(),
                env: cluster.command_env(l.id).iter().cloned().collect(),
                shell: cluster.shell_line(l.id).unwrap_or_default(),
                node: l.id,
                addr: std::net::SocketAddr::new(l.host, l.port).to_string(),
                log: l
                    .log_path
                    .strip_prefix(run_dir)
                    .unwrap_or(&l.log_path)
                    .display()
                    .to_string(),
            })
            .collect(),
        links: link_records(net),
        ready_s: None,
        wire: net.wire_stats(),
        clients: None,
        disks: None,
    }
}

/// The detail of an `escalated` node event.
pub(super) fn escalation_detail(after: Duration) -> String {
    format!(
        "still running {:.2}s after SIGTERM: SIGKILLed",
        after.as_secs_f64()
    )
}

/// Records the node events of the teardown (after the run's last drain): its
/// SIGKILL escalations. The exits it caused were asked for and are not
/// recorded, as before.
pub(super) fn teardown_events(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<NodeEvent>,
    origin: Instant,
    log: &mut NodeLog,
) {
    while let Ok(ev) = events.try_recv() {
        match ev.kind {
            NodeEventKind::Escalated { after } => log.records.push(NodeEventRecord {
                at_s: ev.at.saturating_duration_since(origin).as_secs_f64(),
                node: ev.node,
                event: "escalated".into(),
                detail: escalation_detail(after),
                expected: None,
            }),
            NodeEventKind::Started { .. }
            | NodeEventKind::Exited { .. }
            | NodeEventKind::Paused
            | NodeEventKind::Resumed => {}
        }
    }
}

/// The network's counters as the report keeps them.
fn link_records(net: &dyn Network) -> Vec<LinkRecord> {
    net.stats()
        .into_iter()
        .map(|(link, s)| {
            let (from, to) = match link {
                LinkId::Peer { from, to } => (from.to_string(), to),
                LinkId::Clients { to } => (LinkRecord::CLIENTS.to_string(), to),
            };
            LinkRecord {
                from,
                to,
                connections: s.connections,
                bytes_forward: s.bytes_forward,
                bytes_back: s.bytes_back,
                resets: s.resets,
            }
        })
        .collect()
}

fn workload_name(k: &WorkloadKind) -> &'static str {
    match k {
        WorkloadKind::Probe { .. } => "probe",
        WorkloadKind::Kv { .. } => "kv",
        WorkloadKind::Ledger => "ledger",
        WorkloadKind::Set { .. } => "set",
        WorkloadKind::ListAppend { .. } => "list-append",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;

    #[test]
    fn teardown_records_its_escalations_only() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let origin = Instant::now();
        let at = origin + Duration::from_secs(30);
        for (node, kind) in [
            (
                1,
                NodeEventKind::Escalated {
                    after: Duration::from_millis(5_000),
                },
            ),
            (
                1,
                NodeEventKind::Exited {
                    code: None,
                    signal: Some(9),
                    expected: true,
                },
            ),
            (
                0,
                NodeEventKind::Exited {
                    code: Some(0),
                    signal: None,
                    expected: true,
                },
            ),
        ] {
            let sent = tx.send(NodeEvent {
                at,
                node: NodeId(node),
                kind,
            });
            assert!(sent.is_ok());
        }
        let mut log = NodeLog::default();
        teardown_events(&mut rx, origin, &mut log);
        assert_eq!(
            log.records,
            vec![NodeEventRecord {
                at_s: 30.0,
                node: NodeId(1),
                event: "escalated".into(),
                detail: "still running 5.00s after SIGTERM: SIGKILLed".into(),
                expected: None,
            }]
        );
        assert!(log.unexpected_exits.is_empty());
    }
    #[test]
    fn an_interrupted_run_is_aborted_and_fails_nothing_it_could_not_observe() {
        let src = "name = \"t\"\nduration = \"30s\"\n[cluster]\nsize = 3\n[expect]\nrecovery = \"5s\"\nlost_writes = 0\n";
        let plan = match crate::plan::parse(src, Path::new("p.toml")) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        let header = Header {
            run_id: "r".into(),
            seed: 1,
            started_at: "2026-01-01T00:00:00Z".into(),
            label: None,
            wall: Instant::now(),
            duration: Duration::from_secs(30),
            recovery_bound: Duration::from_secs(5),
        };
        let evidence = Evidence {
            end: Duration::from_secs(12),
            aborted_by: Some("interrupted by SIGINT".into()),
            cluster: ClusterInfo {
                size: 3,
                command: "sample-node (bundled)".into(),
                network: "proxy".into(),
                workload: "kv".into(),
                nodes: Vec::new(),
                links: Vec::new(),
                ready_s: None,
                wire: None,
                clients: None,
                disks: None,
            },
            timeline: Vec::new(),
            node_log: NodeLog::default(),
            snapshots: Vec::new(),
            finish: Finish::default(),
            nemesis: None,
        };
        let r = report(&plan, header, evidence, &[]);
        assert_eq!(r.status, RunStatus::Aborted);
        assert_eq!(r.outcome_word(), "ABORTED");
        assert_ne!(r.verdict, Verdict::Fail, "{:#?}", r.expectations);
        for name in ["recovery", "lost_writes"] {
            let e = r.expectations.iter().find(|e| e.name == name);
            assert!(
                e.is_some_and(|e| e.verdict == Verdict::Unknown && e.not_observed.is_some()),
                "{name}: {e:?}"
            );
        }
        let completed = r.expectations.iter().find(|e| e.name == "completed");
        assert_eq!(completed.map(|e| e.verdict), Some(Verdict::Unknown));
    }
}
