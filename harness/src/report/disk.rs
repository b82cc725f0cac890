//! The nodes' faulty disks in summary.md and report.html: one compact row
//! per node (operations, faults injected by kind, power losses and what
//! they rolled back), from `cluster.disks` of report.json.

use super::text::esc;
use super::{DiskRecord, Report};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One node's row, as text cells: node, ops, failed, delayed, corrupted,
/// power losses.
fn row(d: &DiskRecord) -> [String; 6] {
    let by_kind = |m: &BTreeMap<String, u64>| {
        let parts: Vec<String> = m
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if parts.is_empty() {
            "0".to_string()
        } else {
            parts.join(", ")
        }
    };
    let ops: u64 = d.stats.ops.values().sum();
    let losses = if d.power_losses.is_empty() {
        "0".to_string()
    } else {
        let (mut bytes, mut entries, mut torn, mut failed) = (0u64, 0u64, 0u64, 0usize);
        for l in &d.power_losses {
            match &l.rollback {
                Some(r) => {
                    bytes += r.bytes;
                    entries += r.entries;
                    torn += r.torn;
                }
                None => failed += 1,
            }
        }
        let mut s = format!(
            "{}: {bytes} bytes, {entries} entries rolled back",
            d.power_losses.len()
        );
        if torn > 0 {
            let _ = write!(s, ", {torn} torn");
        }
        if failed > 0 {
            let _ = write!(s, " ({failed} failed)");
        }
        s
    };
    [
        d.node.to_string(),
        ops.to_string(),
        by_kind(&d.stats.failed),
        by_kind(&d.stats.delayed),
        d.stats.corrupted.to_string(),
        losses,
    ]
}

const HEADS: [&str; 6] = [
    "node",
    "operations",
    "failed (injected)",
    "delayed",
    "corrupted reads",
    "power losses",
];

/// The markdown table; nothing with plain disks.
pub(super) fn markdown(s: &mut String, r: &Report) {
    let Some(disks) = &r.cluster.disks else {
        return;
    };
    s.push_str("faulty disks:\n\n");
    let _ = writeln!(s, "| {} |", HEADS.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(HEADS.len()));
    for d in disks {
        let _ = writeln!(s, "| {} |", row(d).join(" | "));
    }
    s.push('\n');
}

/// The HTML table; nothing with plain disks.
pub(super) fn html(h: &mut String, r: &Report) {
    let Some(disks) = &r.cluster.disks else {
        return;
    };
    h.push_str("<h2>Faulty disks</h2><table><tr>");
    for head in HEADS {
        let _ = write!(h, "<th>{}</th>", esc(head));
    }
    h.push_str("</tr>");
    for d in disks {
        h.push_str("<tr>");
        for (i, cell) in row(d).iter().enumerate() {
            let class = if i == 1 || i == 4 {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(h, "<td{class}>{}</td>", esc(cell));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{DiskStats, Rollback};
    use crate::report::PowerLossRecord;
    use crate::NodeId;

    #[test]
    fn a_row_sums_ops_and_power_losses() {
        let mut stats = DiskStats::default();
        stats.ops.insert("write".into(), 10);
        stats.ops.insert("fsync".into(), 5);
        stats.failed.insert("fsync".into(), 2);
        stats.failed.insert("read".into(), 0);
        let d = DiskRecord {
            node: NodeId(1),
            stats,
            power_losses: vec![
                PowerLossRecord {
                    at_s: 1.0,
                    node: NodeId(1),
                    torn: true,
                    rollback: Some(Rollback {
                        bytes: 100,
                        entries: 2,
                        torn: 1,
                    }),
                    error: None,
                },
                PowerLossRecord {
                    at_s: 2.0,
                    node: NodeId(1),
                    torn: false,
                    rollback: None,
                    error: Some("x".into()),
                },
            ],
        };
        assert_eq!(
            row(&d),
            [
                "n1".to_string(),
                "15".into(),
                "fsync 2".into(),
                "0".into(),
                "0".into(),
                "2: 100 bytes, 2 entries rolled back, 1 torn (1 failed)".into(),
            ]
        );
    }
}
