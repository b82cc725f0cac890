//! Human-facing renderings of one report: Markdown for CI job summaries,
//! and the short table printed at the end of a run. Pure rendering: it never
//! decides a verdict.

use super::text::{md_cell, verdict_word};
use super::{Report, RunStatus};
use crate::check::verdict::Verdict;
use std::fmt::Write;

pub fn summary_markdown(r: &Report) -> String {
    let mut s = String::new();
    let status = match r.status {
        RunStatus::Completed => "",
        RunStatus::Aborted => " (aborted)",
    };
    let _ = writeln!(
        s,
        "## rift: {} — {}{}\n",
        r.plan.name,
        verdict_word(r.verdict),
        status
    );
    if !r.plan.description.is_empty() {
        let _ = writeln!(s, "{}\n", r.plan.description);
    }
    let _ = writeln!(
        s,
        "seed `{}` · {} nodes · {:.1} s · {} ops ({:.0}/s) · build `{}`\n",
        r.seed,
        r.cluster.size,
        r.duration_s,
        r.ops.total,
        r.ops.per_second,
        r.label.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        s,
        "availability **{:.2}%** · p50 {:.1}ms · p99 {:.1}ms · slowest recovery {} · unexpected exits {}\n",
        r.availability.overall.ratio() * 100.0,
        r.latency.p50_ms,
        r.latency.p99_ms,
        match r.worst_recovery_s() {
            None => "-".to_string(),
            Some(x) if x.is_finite() => format!("{x:.2}s"),
            Some(_) => "never".to_string(),
        },
        r.unexpected_exits()
    );
    if !r.cluster.links.is_empty() {
        let links = &r.cluster.links;
        let clients = links.iter().filter(|l| l.is_client_link()).count();
        let bytes: u64 = links.iter().map(|l| l.bytes_forward + l.bytes_back).sum();
        let _ = writeln!(
            s,
            "network: {} proxied links{} · {} connections · {:.1} MB through · {} resets\n",
            links.len() - clients,
            if clients > 0 {
                format!(" + {clients} client links")
            } else {
                String::new()
            },
            links.iter().map(|l| l.connections).sum::<u64>(),
            bytes as f64 / 1e6,
            links.iter().map(|l| l.resets).sum::<u64>(),
        );
    }
    if let Some(reason) = &r.abort_reason {
        let _ = writeln!(s, "**Aborted:** {}\n", md_cell(reason));
    }
    let _ = writeln!(s, "| expectation | bound | measured | verdict |");
    let _ = writeln!(s, "|---|---|---|---|");
    for e in &r.expectations {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            md_cell(&e.name),
            md_cell(&e.bound),
            md_cell(&e.measured),
            if e.verdict == Verdict::Pass {
                "PASS".to_string()
            } else {
                format!("**{}**", verdict_word(e.verdict))
            }
        );
    }
    if !r.timeline.is_empty() {
        let _ = writeln!(s, "\n| at | fault | nodes | detail |");
        let _ = writeln!(s, "|---|---|---|---|");
        for f in &r.timeline {
            let nodes: Vec<String> = f.nodes.iter().map(|n| n.to_string()).collect();
            let detail = match &f.error {
                Some(e) => format!("{} (error: {e})", f.detail),
                None => f.detail.clone(),
            };
            let _ = writeln!(
                s,
                "| {:.2}s | {} | {} | {} |",
                f.effective_s,
                md_cell(&f.action),
                nodes.join(" "),
                md_cell(&detail)
            );
        }
    }
    s
}

/// The verdict table printed when a run ends.
pub fn terminal_table(r: &Report) -> String {
    let mut s = String::new();
    let width = r
        .expectations
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(10)
        .max(11);
    let _ = writeln!(
        s,
        "  {:<width$}  {:>12}  {:>14}  verdict",
        "expectation", "bound", "measured"
    );
    for e in &r.expectations {
        let _ = writeln!(
            s,
            "  {:<width$}  {:>12}  {:>14}  {}",
            e.name,
            e.bound,
            e.measured,
            verdict_word(e.verdict)
        );
    }
    s
}
