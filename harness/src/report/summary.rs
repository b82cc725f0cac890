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
        RunStatus::Completed => String::new(),
        RunStatus::Aborted => format!(
            " ({}; what it could not observe is unknown)",
            r.abort_reason.as_deref().unwrap_or("interrupted")
        ),
    };
    let _ = writeln!(
        s,
        "## rift: {} — {}{}\n",
        r.plan.name,
        r.outcome_word(),
        md_cell(&status)
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
        "availability **{:.2}%** · {} · p50 {} · p99 {} · slowest recovery {} · unexpected exits {}\n",
        r.availability.overall.ratio() * 100.0,
        r.failed_line(),
        crate::check::availability::Latency::text(r.latency.p50(), ""),
        crate::check::availability::Latency::text(r.latency.p99(), ""),
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
        if let Some(note) = r.resets_explained() {
            let _ = writeln!(s, "{}\n", md_cell(&note));
        }
    }
    if let Some(w) = &r.cluster.wire {
        wire(&mut s, w);
    }
    super::disk::markdown(&mut s, r);
    if let Some(c) = &r.cluster.clients {
        let _ = writeln!(
            s,
            "clients: {} client processes started · {} client problem(s){}\n",
            c.started,
            c.count,
            c.first
                .first()
                .map(|m| format!(" · first: {}", md_cell(m)))
                .unwrap_or_default()
        );
    }
    for e in r.node_events.iter().filter(|e| e.event == "escalated") {
        let _ = writeln!(
            s,
            "**SIGKILL:** {} at {:.2}s: {}\n",
            e.node,
            e.at_s,
            md_cell(&e.detail)
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
            } else if e.not_observed.is_some() {
                format!("**{}** (not observed)", verdict_word(e.verdict))
            } else {
                format!("**{}**", verdict_word(e.verdict))
            }
        );
    }
    collection_findings(&mut s, r);
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
    nemesis(&mut s, r);
    s
}

/// `[nemesis]`: its seed and every decision, as decided and as resolved.
fn nemesis(s: &mut String, r: &Report) {
    let Some(n) = &r.nemesis else {
        return;
    };
    let _ = writeln!(
        s,
        "\nnemesis (seed `{}`): {} fault(s) drawn; replay with `rift run {} --seed {}`",
        n.seed,
        n.decisions.len(),
        md_cell(&r.plan.path),
        n.seed
    );
    if n.decisions.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n| # | at | fault | target | nodes | duration |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for d in &n.decisions {
        let _ = writeln!(
            s,
            "| {} | {:.2}s | {} | {} | {} | {} |",
            d.index,
            d.at_s,
            md_cell(&d.fault),
            md_cell(&d.target),
            if d.nodes.is_empty() {
                "-".to_string()
            } else {
                d.nodes.join(" ")
            },
            md_cell(d.duration_text())
        );
    }
}

/// Most findings listed per checker in the Markdown summary.
const FINDINGS_CAP: usize = 10;

/// Lost elements and appends (and the other violations) of the set and
/// list-append checkers, the first few of each.
fn collection_findings(s: &mut String, r: &Report) {
    for c in &r.checks {
        let mut rows: Vec<String> = Vec::new();
        if let Some(d) = c.details.set() {
            rows.extend(d.lost.iter().map(|l| {
                format!(
                    "| lost | `{}` of `{}` | last seen by {}, missed by {} |",
                    md_cell(&l.element),
                    md_cell(&l.key),
                    l.last_seen
                        .as_ref()
                        .map_or("none".to_string(), |x| x.to_string()),
                    l.missed_by
                        .first()
                        .map(|x| x.to_string())
                        .unwrap_or_default()
                )
            }));
            rows.extend(d.phantoms.iter().map(|p| {
                format!(
                    "| phantom | `{}` of `{}` | in {} |",
                    md_cell(&p.element),
                    md_cell(&p.key),
                    p.read
                )
            }));
            rows.extend(d.seen_before_added.iter().map(|e| {
                format!(
                    "| seen before added | `{}` of `{}` | in {}, add op {} |",
                    md_cell(&e.element),
                    md_cell(&e.key),
                    e.read,
                    e.add_op_id
                )
            }));
        }
        if let Some(d) = c.details.list_append() {
            rows.extend(d.lost.iter().map(|l| {
                format!(
                    "| lost | `{}` of `{}` | op {}, missed by {} |",
                    md_cell(&l.value),
                    md_cell(&l.key),
                    l.op_id,
                    l.missed_by
                )
            }));
            rows.extend(d.problems.iter().map(|p| {
                format!(
                    "| {} | | {} |",
                    p.kind(),
                    md_cell(&serde_json::to_string(p).unwrap_or_default())
                )
            }));
        }
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n**{}** findings:\n", c.checker);
        let _ = writeln!(s, "| finding | element | evidence |");
        let _ = writeln!(s, "|---|---|---|");
        for row in rows.iter().take(FINDINGS_CAP) {
            let _ = writeln!(s, "{row}");
        }
        if rows.len() > FINDINGS_CAP {
            let _ = writeln!(
                s,
                "\n… and {} more in report.json",
                rows.len() - FINDINGS_CAP
            );
        }
    }
}

/// The verdict table printed when a run ends.
pub fn terminal_table(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  {} ops · availability {:.2}% · {}",
        r.ops.total,
        r.availability.overall.ratio() * 100.0,
        r.failed_line()
    );
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
            match e.not_observed {
                Some(_) => format!("{} (not observed)", verdict_word(e.verdict)),
                None => verdict_word(e.verdict).to_string(),
            }
        );
    }
    s
}

/// The netns wire: totals, then each degradation's configured against
/// observed figures (fault fidelity), then the capture.
fn wire(s: &mut String, w: &crate::net::WireStats) {
    let sum = |f: fn(&crate::net::wire::PairRecord) -> u64| w.pairs.iter().map(f).sum::<u64>();
    let _ = writeln!(
        s,
        "network: netns wire on {} · {} packets ({:.1} MB) · partitioned {} · lost {} · overflowed {} · delayed {} · duplicated {} · reordered {} · corrupted {}\n",
        w.subnet,
        sum(|p| p.counters.packets),
        sum(|p| p.counters.bytes) as f64 / 1e6,
        sum(|p| p.counters.partitioned),
        sum(|p| p.counters.lost),
        sum(|p| p.counters.overflowed),
        sum(|p| p.counters.delayed),
        sum(|p| p.counters.duplicated),
        sum(|p| p.counters.reordered),
        sum(|p| p.counters.corrupted),
    );
    if !w.fidelity.is_empty() {
        let _ = writeln!(
            s,
            "| link | from | asked loss | observed loss | asked latency (bandwidth) | observed delay p50 / p99 | packets |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for f in &w.fidelity {
            let pct = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{:.2}%", x * 100.0));
            let ms = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}ms"));
            let mut asked_latency = match (f.latency_ms, f.jitter_ms) {
                (Some(l), Some(j)) => format!("{l:.1}ms ± {j:.1}ms"),
                (l, _) => ms(l),
            };
            if let Some(b) = f.bandwidth {
                asked_latency += &format!(" (cap {:.0} KB/s)", b as f64 / 1000.0);
            }
            let _ = writeln!(
                s,
                "| {} → {} | {:.1}s | {} | {} | {} | {} / {} | {} |",
                f.from,
                f.to,
                f.from_s,
                pct(f.loss),
                pct(f.observed_loss),
                asked_latency,
                ms(f.delay_p50_ms),
                ms(f.delay_p99_ms),
                f.packets
            );
        }
        let _ = writeln!(s);
    }
    if let Some(c) = &w.capture {
        let _ = writeln!(
            s,
            "capture: [{}]({}) and [{}]({}) · {} packets · {:.1} MB{}\n",
            c.wire,
            c.wire,
            c.dropped,
            c.dropped,
            c.packets,
            c.bytes as f64 / 1e6,
            c.note
                .as_deref()
                .map(|n| format!(" · **{}**", md_cell(n)))
                .unwrap_or_default()
        );
    }
}
