//! What a run records about its cluster for the report: the command, the
//! network, each node's address and log, and what each link carried.
//!
//! Reads the cluster and the network; changes neither.

use crate::cluster::Cluster;
use crate::net::{LinkId, Network};
use crate::plan::{NodeCommand, Plan, WorkloadKind};
use crate::report::{ClusterInfo, LinkRecord, NodeInfo};
use std::path::Path;

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
                format!("sample-node (bundled) --bug {}", bugs.join(" --bug "))
            }
            NodeCommand::External { program, .. } => program.clone(),
        },
        network: format!("{:?}", spec.network).to_lowercase(),
        workload: workload_name(&plan.workload.kind).into(),
        nodes: cluster
            .layout()
            .iter()
            .map(|l| NodeInfo {
                node: l.id,
                addr: super::start::socket(&l.host, l.port).to_string(),
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
    }
}
