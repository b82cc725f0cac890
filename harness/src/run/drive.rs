//! The middle phase of a run: carries out the schedule on time while the
//! workload runs, and turns every node event into a record (and, for a
//! node that exited on its own, a new period of the world).
//!
//! Never waits on the workload: the caller stops it when this returns.

use super::apply::Nemesis;
use super::progress;
use crate::cluster::{NodeEvent, NodeEventKind};
use crate::fault::Scheduled;
use crate::report::NodeEventRecord;
use crate::workload::Window;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// What the drive phase saw of the nodes.
#[derive(Default)]
pub(super) struct NodeLog {
    pub records: Vec<NodeEventRecord>,
    /// One line per node that exited without rift asking it to.
    pub unexpected_exits: Vec<String>,
}

/// Applies `schedule` over `window` (step times count from its origin)
/// until its deadline or until `abort` turns true; returns why it stopped
/// early, if it did.
pub(super) async fn drive(
    nemesis: &mut Nemesis<'_>,
    schedule: &[Scheduled],
    window: Window,
    events: &mut mpsc::UnboundedReceiver<NodeEvent>,
    log: &mut NodeLog,
    phase: &progress::Phase,
    abort: &mut watch::Receiver<bool>,
) -> Option<String> {
    let Window { origin, deadline } = window;
    let duration = deadline.saturating_duration_since(origin);
    let mut next = 0usize;
    phase.set("steady");
    loop {
        let due = schedule
            .get(next)
            .filter(|s| s.at < duration)
            .map(|s| origin + s.at);
        let wake = due.unwrap_or(deadline).min(deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {
                if Instant::now() >= deadline && due.is_none_or(|d| d >= deadline) {
                    return None;
                }
                if let Some(s) = schedule.get(next) {
                    nemesis.apply(next, s, schedule).await;
                    phase.set_world(nemesis.world.snapshots().last());
                    next += 1;
                }
            }
            Some(ev) = events.recv() => {
                note_node_event(&ev, origin, nemesis, log);
                phase.set_world(nemesis.world.snapshots().last());
            }
            _ = crate::workload::until_true(abort) => return Some("interrupted (SIGINT/SIGTERM)".into()),
        }
    }
}

/// Records every node event still queued (after the drive phase).
pub(super) fn drain(
    events: &mut mpsc::UnboundedReceiver<NodeEvent>,
    origin: Instant,
    nemesis: &mut Nemesis<'_>,
    log: &mut NodeLog,
) {
    while let Ok(ev) = events.try_recv() {
        note_node_event(&ev, origin, nemesis, log);
    }
}

fn note_node_event(ev: &NodeEvent, origin: Instant, nemesis: &mut Nemesis<'_>, log: &mut NodeLog) {
    let at = ev.at.saturating_duration_since(origin);
    let (event, detail, expected) = match &ev.kind {
        NodeEventKind::Started { pid } => ("started", format!("pid {pid}"), None),
        NodeEventKind::Paused => ("paused", String::new(), None),
        NodeEventKind::Resumed => ("resumed", String::new(), None),
        NodeEventKind::Escalated { after } => {
            ("escalated", super::record::escalation_detail(*after), None)
        }
        NodeEventKind::Exited {
            code,
            signal,
            expected,
        } => {
            let how = match (code, signal) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(s)) => format!("signal {s}"),
                (None, None) => "unknown status".into(),
            };
            if !expected {
                log.unexpected_exits.push(format!(
                    "{} exited on its own at {:.2}s ({how})",
                    ev.node,
                    at.as_secs_f64()
                ));
                // The cluster already says `Exited`; a new period records it.
                nemesis.snapshot_at(at.as_nanos() as u64);
            }
            ("exited", how, Some(*expected))
        }
    };
    log.records.push(NodeEventRecord {
        at_s: at.as_secs_f64(),
        node: ev.node,
        event: event.into(),
        detail,
        expected,
    });
}
