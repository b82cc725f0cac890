//! What a run leaves behind: report.json (versioned), summary.md, junit.xml,
//! report.html, the terminal verdict table, the aggregate of many plans, and
//! `rift compare`. Reads the runner's results; never runs anything.

mod aggregate;
pub mod compare;
pub mod compare_html;
mod diagram;
mod disk;
mod html;
mod junit;
pub mod stats;
mod summary;
mod text;
mod timeline;

pub use aggregate::{aggregate_markdown, aggregate_table, PlanRun};
pub use html::render_html;
pub use junit::{junit_xml, junit_xml_runs};
pub use summary::{summary_markdown, terminal_table};
pub use text::{failed_text, verdict_word};

use crate::check::availability::{Availability, Latency, Recovery};
use crate::check::verdict::{CheckResult, Verdict};
use crate::fault::{NodeClass, Snapshot};
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Bumped on any incompatible change of report.json.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_SCHEMA_VERSION`] of the rift that wrote it. Fields added
    /// without a bump carry `#[serde(default)]`.
    pub schema_version: u32,
    pub rift_version: String,
    pub run_id: String,
    pub plan: PlanInfo,
    pub label: Option<String>,
    pub seed: u64,
    /// Wall-clock start, RFC 3339 UTC.
    pub started_at: String,
    /// Seconds the run actually lasted, setup and teardown included.
    pub wall_seconds: f64,
    /// Seconds of workload and faults (the plan's duration unless aborted).
    pub duration_s: f64,
    pub status: RunStatus,
    /// Why the run was aborted or could not finish, if it was.
    pub abort_reason: Option<String>,
    pub verdict: Verdict,
    pub cluster: ClusterInfo,
    /// Faults as injected, with scheduled and effective times.
    pub timeline: Vec<FaultEvent>,
    /// Node starts and exits as observed.
    pub node_events: Vec<NodeEventRecord>,
    pub periods: Vec<Snapshot>,
    pub ops: OpCounts,
    pub availability: Availability,
    pub latency: Latency,
    pub recovery: Vec<Recovery>,
    /// After the final heal: seconds until every node served again.
    pub final_recovery_s: Option<f64>,
    /// Sample node only: whether every node reached the same chain head
    /// after the final heal.
    #[serde(default)]
    pub convergence: Option<Convergence>,
    /// `[nemesis]` plans only: the seed and every fault it drew, as
    /// decided and as resolved (docs/nemesis.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nemesis: Option<NemesisRecord>,
    pub checks: Vec<CheckResult>,
    pub expectations: Vec<ExpectationResult>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    /// Seconds after the final heal until all heads agreed; `None` if they never did.
    pub seconds: Option<f64>,
    /// What each node reported last.
    pub heads: std::collections::BTreeMap<NodeId, String>,
}

/// The random nemesis' concrete schedule: what `rift shrink` and a replay read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NemesisRecord {
    pub seed: u64,
    pub decisions: Vec<NemesisDecision>,
}

/// One fault the nemesis drew.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NemesisDecision {
    /// Position in the drawn sequence, from 0.
    pub index: usize,
    /// When it was scheduled, in seconds from the start of the workload.
    pub at_s: f64,
    /// The fault kind, as plans name it.
    pub fault: String,
    /// The target as decided (`leader`, `random`, `n2`; a partition's
    /// topology, a degrade's links), before run-time resolution.
    pub target: String,
    /// The `[[step]]` table a plan would contain for it (`plan::step_table`).
    pub step: serde_json::Map<String, serde_json::Value>,
    /// The nodes it was resolved to when applied (empty: none, or not applied).
    pub nodes: Vec<String>,
}

impl NemesisDecision {
    /// How long the fault lasted as decided (`for` or `restart_after`).
    pub fn duration_text(&self) -> &str {
        ["for", "restart_after"]
            .iter()
            .find_map(|k| self.step.get(*k).and_then(|v| v.as_str()))
            .unwrap_or("-")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Completed,
    /// Stopped early by Ctrl-C or a signal: a partial report.
    Aborted,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanInfo {
    pub name: String,
    pub description: String,
    pub path: String,
    pub hash: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub size: usize,
    pub command: String,
    pub network: String,
    pub workload: String,
    pub nodes: Vec<NodeInfo>,
    /// Traffic of every proxy link, peer links first, then client links
    /// (`from = "clients"`); empty without a proxy mesh.
    #[serde(default)]
    pub links: Vec<LinkRecord>,
    /// Seconds from the first node spawn until every node was ready (port
    /// clash retries included); absent in reports of older rifts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_s: Option<f64>,
    /// What the netns wire carried, per directed pair of endpoints, and how
    /// faithfully each degradation was carried out; absent on other
    /// networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<crate::net::WireStats>,
    /// Client processes of the client protocol: how many ran and what went
    /// wrong with them; absent with built-in adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<crate::adapter::client::ClientProblems>,
    /// The nodes' faulty disks (`[cluster] disk = "faulty"`): what each
    /// node did on its disk, what the faults touched, and every power
    /// loss; absent with plain disks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disks: Option<Vec<DiskRecord>>,
}

/// One node's faulty disk over the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskRecord {
    pub node: NodeId,
    /// Operations per kind, and how many a fault failed, delayed or
    /// corrupted (counted since the mount).
    pub stats: crate::disk::DiskStats,
    /// Every power loss (`kill` with `lose_unsynced = true`), in order.
    #[serde(default)]
    pub power_losses: Vec<PowerLossRecord>,
}

/// One power loss of a node's faulty disk: when, and what it rolled back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerLossRecord {
    /// Seconds from the start of the workload.
    pub at_s: f64,
    pub node: NodeId,
    /// `torn = true` was asked.
    pub torn: bool,
    /// What was rolled back; absent when the rollback failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<crate::disk::Rollback>,
    /// Why the power loss failed, or the node's processes were not seen
    /// dead in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What one directed proxy link carried during the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkRecord {
    /// The dialing node, or `clients` for the workload's client link.
    pub from: String,
    pub to: NodeId,
    pub connections: u64,
    pub bytes_forward: u64,
    pub bytes_back: u64,
    /// Connections the proxy reset (reject, a reset degradation, or the
    /// target refusing).
    pub resets: u64,
}

impl LinkRecord {
    /// `from` of a client link.
    pub const CLIENTS: &'static str = "clients";

    pub fn is_client_link(&self) -> bool {
        self.from == Self::CLIENTS
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node: NodeId,
    pub addr: String,
    pub log: String,
    /// The program and its arguments, as rift started the node (empty in
    /// reports of older rifts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// The environment the plan added to the node's (rendered).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    /// `env`, program and arguments as one line a POSIX shell can run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub shell: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    pub scheduled_s: f64,
    pub effective_s: f64,
    /// effective - scheduled, in milliseconds.
    pub lag_ms: f64,
    /// `kill`, `pause`, `resume`, `restart`, `partition`, `heal`, ...
    pub action: String,
    pub nodes: Vec<NodeId>,
    pub detail: String,
    /// Plan line of the step.
    pub line: usize,
    /// Set when the action could not be carried out.
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeEventRecord {
    pub at_s: f64,
    pub node: NodeId,
    /// `started`, `exited`, `paused`, `resumed`.
    pub event: String,
    pub detail: String,
    /// For exits: whether rift caused it.
    pub expected: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpCounts {
    pub total: u64,
    pub ok: u64,
    pub fail: u64,
    pub unknown: u64,
    pub per_second: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// `availability`, `p99_latency`, `recovery`, `no_unexpected_exits`, ...
    pub name: String,
    pub bound: String,
    pub measured: String,
    pub verdict: Verdict,
    pub message: String,
    /// Why the run could not observe what this expectation needs (an
    /// interrupted run never reached its final phase); its verdict is then
    /// `unknown`. Absent in reports of older rifts and when observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_observed: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a rift report: {message}")]
    Parse { path: String, message: String },
    #[error(
        "{path} has report schema version {found}; this rift reads version {REPORT_SCHEMA_VERSION} \
(incompatible: use the rift that wrote it, or rerun the plan)"
    )]
    Version { path: String, found: u64 },
    #[error("no report.json under {path}")]
    NoReports { path: String },
    #[error("cannot read the history {path}: {message}")]
    History { path: String, message: String },
}

impl Report {
    /// Writes report.json, summary.md, junit.xml and report.html into `dir`.
    pub fn write(&self, dir: &Path, ops: &[crate::history::Op]) -> Result<(), ReportError> {
        let json = serde_json::to_string_pretty(self).map_err(|e| ReportError::Write {
            path: dir.join("report.json").display().to_string(),
            source: std::io::Error::other(e),
        })?;
        write_file(&dir.join("report.json"), json.as_bytes())?;
        self.write_views(dir, ops)
    }

    /// Writes summary.md, junit.xml and report.html (not report.json).
    pub fn write_views(&self, dir: &Path, ops: &[crate::history::Op]) -> Result<(), ReportError> {
        write_file(&dir.join("summary.md"), summary_markdown(self).as_bytes())?;
        write_file(&dir.join("junit.xml"), junit_xml(&[self]).as_bytes())?;
        write_file(&dir.join("report.html"), render_html(self, ops).as_bytes())?;
        Ok(())
    }

    /// `rift report RUN_DIR`: rereads report.json and history.jsonl and
    /// writes summary.md, junit.xml and report.html again. A missing history
    /// is not an error (the page then has no per-request charts); a broken
    /// one is.
    pub fn regenerate(run_dir: &Path) -> Result<Report, ReportError> {
        let report = Report::read(&run_dir.join("report.json"))?;
        let hist = run_dir.join("history.jsonl");
        let ops = if hist.exists() {
            crate::history::read_history(&hist).map_err(|message| ReportError::History {
                path: hist.display().to_string(),
                message,
            })?
        } else {
            Vec::new()
        };
        report.write_views(run_dir, &ops)?;
        Ok(report)
    }

    /// How many times a node exited without rift causing it.
    pub fn unexpected_exits(&self) -> usize {
        self.node_events
            .iter()
            .filter(|e| e.event == "exited" && e.expected == Some(false))
            .count()
    }

    /// Requests not served: to nodes expected to serve (judged by
    /// availability), and to nodes that were not (down, paused, cut off,
    /// recovering), in that order.
    pub fn failed_requests(&self) -> (u64, u64) {
        let mut judged = 0;
        let mut other = 0;
        for (class, r) in &self.availability.by_class {
            let failed = r.total.saturating_sub(r.served);
            match class {
                NodeClass::Serving => judged += failed,
                NodeClass::Recovering | NodeClass::CutOff | NodeClass::Paused | NodeClass::Down => {
                    other += failed
                }
            }
        }
        (judged, other)
    }

    /// The line that says how many requests failed, judged apart.
    pub fn failed_line(&self) -> String {
        let (judged, other) = self.failed_requests();
        failed_text(judged, other, "to nodes not expected to serve")
    }

    /// The word the run is shown with: `ABORTED` for an interrupted run
    /// (whatever its expectations say), else the verdict's word.
    /// Where the proxy links' resets come from, in one sentence, when there
    /// were any: the plan's own `reset` degradations, or (the usual case)
    /// kills and restarts, whose target was down when a connection came.
    pub fn resets_explained(&self) -> Option<String> {
        let resets: u64 = self.cluster.links.iter().map(|l| l.resets).sum();
        if resets == 0 {
            return None;
        }
        let by_plan = self
            .timeline
            .iter()
            .any(|e| e.action == "degrade" && e.detail.contains("reset"));
        let kills = self
            .timeline
            .iter()
            .filter(|e| e.action == "kill" || e.action == "restart")
            .count();
        Some(match (by_plan, kills) {
            (true, 0) => format!("{resets} resets, from the plan's `reset` degradation."),
            (true, k) => format!(
                "{resets} resets: from the plan's `reset` degradation, and from {k} kill(s) and restart(s) (a proxy resets a connection whose node is down)."
            ),
            (false, 0) => format!(
                "{resets} resets, none from a network fault: the target refused or reset the connection itself."
            ),
            (false, k) => format!(
                "{resets} resets, none from a network fault: they come from {k} kill(s) and restart(s) (a proxy resets a connection whose node is down, as the node's own refusal would)."
            ),
        })
    }

    pub fn outcome_word(&self) -> &'static str {
        match self.status {
            RunStatus::Aborted => "ABORTED",
            RunStatus::Completed => verdict_word(self.verdict),
        }
    }

    /// The slowest measured recovery in seconds; infinite if some node never
    /// served again within a full recovery window, `None` when nothing
    /// needed recovering (windows the next change cut short do not count).
    pub fn worst_recovery_s(&self) -> Option<f64> {
        self.recovery
            .iter()
            .filter(|r| !r.cut_short)
            .map(|r| r.seconds.unwrap_or(f64::INFINITY))
            .reduce(f64::max)
    }

    pub fn read(path: &Path) -> Result<Report, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ReportError::Parse {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        let found = value
            .get("schema_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if found != u64::from(REPORT_SCHEMA_VERSION) {
            return Err(ReportError::Version {
                path: path.display().to_string(),
                found,
            });
        }
        serde_json::from_value(value).map_err(|e| ReportError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

/// Writes then renames, so a reader never sees half a file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| ReportError::Write {
            path: path.display().to_string(),
            source,
        })
}
