//! report.html: one self-contained page (inline CSS and SVG, no script, no
//! font or image from any URL; opens from file:// offline) that shows the
//! verdict and each expectation with its figure, then the timeline (see
//! `timeline.rs`), then the tables behind it. It must never reference
//! anything outside the file.

use super::text::esc;
use super::timeline::{judged_ops, timeline_svg};
use super::Report;
use crate::check::verdict::Verdict;
use crate::history::Op;
use std::fmt::Write;

fn verdict_class(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Pass => ("pass", "PASS"),
        Verdict::Fail => ("fail", "FAIL"),
        Verdict::Unknown => ("unknown", "UNKNOWN"),
    }
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1180px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}\
.badge{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}\
.pass{background:#2e7d32}.fail{background:#c62828}.unknown{background:#ef6c00}\
table{border-collapse:collapse;margin:4px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}\
th{background:#f5f5f5}td.num{text-align:right}.meta{color:#555}svg{display:block;margin:6px 0}\
tr.bad td{background:#ffebee}\
.figs{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}.fig{border:1px solid #ddd;border-radius:6px;padding:4px 12px}\
.fig b{display:block;font-size:18px}.fig span{color:#666;font-size:12px}\
.lbl{font-size:11px;fill:#333}.ax{font-size:10px;fill:#666}.node{font-size:12px;font-weight:600;fill:#222}\
.legend{color:#555;font-size:12px}.sw{display:inline-block;width:10px;height:10px;margin:0 3px 0 2px;vertical-align:baseline}\
details summary{cursor:pointer;color:#1565c0;margin:4px 0}code{background:#f3f3f3;padding:0 3px}";

/// Tables longer than this fold into a `<details>` (still no script).
const FOLD_ROWS: usize = 15;

fn fold(h: &mut String, rows: usize, what: &str, table: &str) {
    if rows > FOLD_ROWS {
        let _ = write!(
            h,
            "<details><summary>{rows} {what}</summary>{table}</details>"
        );
    } else {
        h.push_str(table);
    }
}

pub fn render_html(r: &Report, ops: &[Op]) -> String {
    let mut h = String::new();
    page_head(&mut h, r);
    h.push_str(&headline(r));
    files(&mut h, r);
    expectations(&mut h, r);
    h.push_str("<h2>Timeline</h2>");
    if ops.is_empty() {
        h.push_str("<p class=\"meta\">No request history (history.jsonl missing or empty): faults and node events only.</p>");
    }
    let judged = judged_ops(r, ops);
    h.push_str(&timeline_svg(r, ops, &judged));
    judged_failures(&mut h, ops, &judged);
    latency_and_throughput(&mut h, r, ops);
    checkers(&mut h, r);
    faults(&mut h, r);
    nemesis(&mut h, r);
    phases(&mut h, r);
    nodes(&mut h, r);
    node_commands(&mut h, r);
    recovery(&mut h, r);
    convergence(&mut h, r);
    links(&mut h, r);
    wire(&mut h, r);
    super::disk::html(&mut h, r);
    clients(&mut h, r);
    node_events(&mut h, r);
    let _ = writeln!(
        h,
        "<p class=\"meta\">plan {} (sha256 {}) · rift {}</p></body></html>",
        esc(&r.plan.path),
        esc(&r.plan.hash),
        esc(&r.rift_version)
    );
    h
}

/// The title, the run's identity and an abort, if any.
fn page_head(h: &mut String, r: &Report) {
    let (cls, word) = match r.status {
        // An interrupted run has no verdict: what it could not observe is
        // unknown (see the expectations), so it is shown as aborted.
        crate::report::RunStatus::Aborted => ("unknown", r.outcome_word()),
        crate::report::RunStatus::Completed => verdict_class(r.verdict),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>rift: {}</title><style>{CSS}</style></head><body>",
        esc(&r.plan.name)
    );
    let _ = write!(
        h,
        "<h1>{} <span class=\"badge {cls}\">{word}</span></h1>",
        esc(&r.plan.name)
    );
    if !r.plan.description.is_empty() {
        let _ = write!(h, "<p>{}</p>", esc(&r.plan.description));
    }
    let _ = write!(
        h,
        "<p class=\"meta\">run <code>{}</code> · seed <code>{}</code> · build <code>{}</code> · {} nodes ({}) · {:.1} s · {} ops ({:.0}/s) · started {}</p>",
        esc(&r.run_id),
        r.seed,
        esc(r.label.as_deref().unwrap_or("-")),
        r.cluster.size,
        esc(&r.cluster.command),
        r.duration_s,
        r.ops.total,
        r.ops.per_second,
        esc(&r.started_at)
    );
    if let Some(reason) = &r.abort_reason {
        let _ = write!(
            h,
            "<p><span class=\"badge unknown\">ABORTED</span> {}</p>",
            esc(reason)
        );
    }
}

/// At most this many judged failures are listed.
const MAX_FAILURE_ROWS: usize = 200;

/// Requests to nodes expected to serve that were not served: the failures
/// availability counts, one row each (the first `MAX_FAILURE_ROWS`).
fn judged_failures(h: &mut String, ops: &[Op], judged: &[bool]) {
    let failed: Vec<&Op> = ops
        .iter()
        .zip(judged)
        .filter(|(o, j)| **j && !o.served())
        .map(|(o, _)| o)
        .collect();
    let _ = write!(h, "<h2 id=\"judged-failures\">Judged failures</h2>");
    if ops.is_empty() {
        return;
    }
    if failed.is_empty() {
        h.push_str(
            "<p class=\"meta\">None: every request to a node expected to serve was served.</p>",
        );
        return;
    }
    let _ = write!(
        h,
        "<p class=\"meta\">{} request(s) to nodes expected to serve were not served{}. Op ids are the <code>id</code> field of <a href=\"history.jsonl\">history.jsonl</a> (one operation per line).</p>",
        failed.len(),
        if failed.len() > MAX_FAILURE_ROWS {
            format!(", the first {MAX_FAILURE_ROWS} listed")
        } else {
            String::new()
        }
    );
    let mut t = String::from("<table><tr><th>invoked</th><th>client</th><th>node</th><th>op</th><th>kind</th><th>key</th><th>outcome</th><th>error</th></tr>");
    for o in failed.iter().take(MAX_FAILURE_ROWS) {
        let _ = write!(
            t,
            "<tr><td class=\"num\">{:.3}s</td><td>{}</td><td>{}</td><td><a href=\"history.jsonl\" title=\"line with &quot;id&quot;:{}\">op {}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            o.invoke_ns as f64 / 1e9,
            o.client,
            o.node,
            o.id,
            o.id,
            format!("{:?}", o.kind).to_lowercase(),
            esc(o.key.as_deref().unwrap_or("")),
            format!("{:?}", o.outcome).to_lowercase(),
            esc(&o
                .error
                .clone()
                .or_else(|| o.status.map(|s| format!("HTTP {s}")))
                .unwrap_or_default()),
        );
    }
    t.push_str("</table>");
    fold(h, failed.len().min(MAX_FAILURE_ROWS), "judged failures", &t);
}

/// Relative links to the run directory's files, so the directory works
/// offline: the page sits next to them.
fn files(h: &mut String, r: &Report) {
    let mut links: Vec<(String, String)> = vec![
        ("report.json".into(), "report.json".into()),
        ("history.jsonl".into(), "history.jsonl".into()),
        ("final.json".into(), "final.json (final reads)".into()),
        ("summary.md".into(), "summary.md".into()),
        ("junit.xml".into(), "junit.xml".into()),
    ];
    for n in &r.cluster.nodes {
        if !n.log.is_empty() {
            links.push((n.log.clone(), format!("{} log", n.node)));
        }
    }
    if r.cluster.clients.is_some() {
        links.push(("clients/".into(), "client logs".into()));
    }
    if let Some(c) = r.cluster.wire.as_ref().and_then(|w| w.capture.as_ref()) {
        links.push((c.wire.clone(), c.wire.clone()));
        links.push((c.dropped.clone(), c.dropped.clone()));
    }
    h.push_str("<p class=\"meta files\">Files: ");
    let items: Vec<String> = links
        .iter()
        .map(|(href, text)| format!("<a href=\"{}\">{}</a>", esc(href), esc(text)))
        .collect();
    h.push_str(&items.join(" · "));
    if !r.plan.path.is_empty() {
        let _ = write!(
            h,
            " · plan <code>{}</code> (as recorded: relative to where rift ran, not to this directory, so not linked)",
            esc(&r.plan.path)
        );
    }
    h.push_str("</p>");
}

/// Each expectation with its bound, figure and verdict.
fn expectations(h: &mut String, r: &Report) {
    h.push_str("<h2>Expectations</h2><table><tr><th>expectation</th><th>bound</th><th>measured</th><th>verdict</th><th>detail</th></tr>");
    for e in &r.expectations {
        let (c, w) = verdict_class(e.verdict);
        let _ = write!(
            h,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td><span class=\"badge {c}\">{w}</span></td><td>{}</td></tr>",
            if e.verdict == Verdict::Pass { "" } else { " class=\"bad\"" },
            esc(&e.name),
            esc(&e.bound),
            esc(&e.measured),
            match &e.not_observed {
                Some(why) if !e.message.contains(why.as_str()) => {
                    format!("{} ({})", esc(&e.message), esc(why))
                }
                Some(_) | None => esc(&e.message),
            }
        );
    }
    h.push_str("</table>");
}

/// Each checker's verdict and counterexample.
fn checkers(h: &mut String, r: &Report) {
    for c in &r.checks {
        let (cl, w) = verdict_class(c.verdict);
        let _ = write!(
            h,
            "<h2>Checker {} <span class=\"badge {cl}\">{w}</span></h2><p>{}</p>",
            esc(c.checker.name()),
            esc(&c.summary)
        );
        if !c.counterexample.is_empty() {
            let _ = write!(
                h,
                "<p class=\"impossible\"><b>Why it fails:</b> {}</p>{}",
                esc(&super::diagram::impossible(c.checker, &c.counterexample)),
                super::diagram::history_svg(&c.counterexample)
            );
            let mut t = String::from("<table><tr><th>op</th><th>client</th><th>node</th><th>kind</th><th>key</th><th>value</th><th>expect</th><th>result</th><th>invoked</th><th>completed</th><th>outcome</th></tr>");
            for op in &c.counterexample {
                let _ = write!(
                    t,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.4}s</td><td class=\"num\">{:.4}s</td><td>{:?}</td></tr>",
                    op.id,
                    op.client,
                    op.node,
                    op.kind,
                    esc(op.key.as_deref().unwrap_or("")),
                    esc(op.value.as_deref().unwrap_or("")),
                    esc(op.expect.as_deref().unwrap_or("")),
                    esc(&op
                        .result
                        .clone()
                        .or_else(|| op.values.as_ref().map(|v| format!("[{}]", v.join(", "))))
                        .unwrap_or_default()),
                    op.invoke_ns as f64 / 1e9,
                    op.complete_ns as f64 / 1e9,
                    op.outcome
                );
            }
            t.push_str("</table>");
            fold(
                h,
                c.counterexample.len(),
                "operations of the counterexample",
                &t,
            );
        }
        collection_findings(h, c);
    }
}

/// Every operation's latency by outcome over the fault bands, and
/// operations per kind and outcome.
fn latency_and_throughput(h: &mut String, r: &Report, ops: &[Op]) {
    if ops.is_empty() {
        return;
    }
    let periods: Vec<(f64, f64, bool)> = r
        .availability
        .phases
        .iter()
        .map(|p| (p.start_s, p.end_s, p.label != "steady"))
        .collect();
    let _ = write!(
        h,
        "<h2>Latency and throughput</h2><p class=\"meta\">Every operation, served or not: its latency at the time it was invoked, coloured by outcome; timeouts show as unknown at the workload's timeout. Runs with more than {} operations of one outcome show every k-th of them.</p>",
        super::diagram::MAX_POINTS
    );
    h.push_str(&super::diagram::latency_svg(ops, r.duration_s, &periods));
    h.push_str(&super::diagram::throughput_table(ops, r.duration_s));
}

/// The set and list-append checkers' findings: lost, stale, other
/// violations, one row each.
fn collection_findings(h: &mut String, c: &crate::check::CheckResult) {
    let mut rows: Vec<[String; 4]> = Vec::new();
    if let Some(d) = c.details.set() {
        for l in &d.lost {
            let missed: Vec<String> = l.missed_by.iter().map(|r| r.to_string()).collect();
            rows.push([
                "lost".into(),
                format!("`{}` of `{}`", l.element, l.key),
                format!(
                    "known {:.4}s, stable {}, lost {:.4}s",
                    l.known_ns as f64 / 1e9,
                    l.stable_ns
                        .map_or("-".to_string(), |t| format!("{:.4}s", t as f64 / 1e9)),
                    l.lost_ns as f64 / 1e9
                ),
                format!(
                    "add {}; last seen by {}; missed by {} ({} reads)",
                    l.add_op_id
                        .map_or("unknown".to_string(), |i| format!("op {i}")),
                    l.last_seen
                        .as_ref()
                        .map_or("none".to_string(), |r| r.to_string()),
                    missed.join(", "),
                    l.missed_by_count
                ),
            ]);
        }
        for p in &d.phantoms {
            rows.push([
                "phantom".into(),
                format!("`{}` of `{}`", p.element, p.key),
                p.read.to_string(),
                if p.refused_add_ids.is_empty() {
                    "never added".into()
                } else {
                    format!("every add refused: {:?}", p.refused_add_ids)
                },
            ]);
        }
        for e in &d.seen_before_added {
            rows.push([
                "seen before added".into(),
                format!("`{}` of `{}`", e.element, e.key),
                e.read.to_string(),
                format!("add op {}", e.add_op_id),
            ]);
        }
        for s in &d.stale {
            rows.push([
                "stale (not a failure)".into(),
                format!("`{}` of `{}`", s.element, s.key),
                format!("{} reads missed it", s.stale_reads),
                format!(
                    "missed by {}, seen again by {}",
                    s.missed_by, s.seen_again_by
                ),
            ]);
        }
    }
    if let Some(d) = c.details.list_append() {
        for l in &d.lost {
            rows.push([
                "lost".into(),
                format!("`{}` of `{}`", l.value, l.key),
                format!(
                    "op {} completed {:.4}s",
                    l.op_id,
                    l.completed_ns as f64 / 1e9
                ),
                format!(
                    "missed by {}; last seen by {}",
                    l.missed_by,
                    l.last_seen
                        .as_ref()
                        .map_or("none".to_string(), |r| r.to_string())
                ),
            ]);
        }
        for p in &d.problems {
            let detail = serde_json::to_string(p).unwrap_or_default();
            rows.push([p.kind().into(), String::new(), String::new(), detail]);
        }
        for s in &d.stale {
            rows.push([
                "stale (not a failure)".into(),
                format!("`{}` of `{}`", s.value, s.key),
                format!("op {}", s.op_id),
                format!(
                    "missed by {}, seen again by {}",
                    s.missed_by, s.seen_again_by
                ),
            ]);
        }
    }
    if rows.is_empty() {
        return;
    }
    let mut t = String::from(
        "<table><tr><th>finding</th><th>element</th><th>when</th><th>evidence</th></tr>",
    );
    for r in &rows {
        let _ = write!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r[0]),
            esc(&r[1]),
            esc(&r[2]),
            esc(&r[3])
        );
    }
    t.push_str("</table>");
    fold(h, rows.len(), "findings", &t);
}

/// The fault actions as injected.
fn faults(h: &mut String, r: &Report) {
    h.push_str("<h2>Faults</h2>");
    let mut t = String::from("<table><tr><th>scheduled</th><th>effective</th><th>fault</th><th>nodes</th><th>detail</th><th>plan line</th><th>period</th></tr>");
    for f in &r.timeline {
        let period = period_of(r, f.effective_s)
            .map(|(i, p)| format!("#{i} {}", p.label))
            .unwrap_or_default();
        let nodes: Vec<String> = f.nodes.iter().map(|n| n.to_string()).collect();
        let detail = match &f.error {
            Some(e) => format!("{} — error: {e}", f.detail),
            None => f.detail.clone(),
        };
        let _ = write!(
            t,
            "<tr{}><td class=\"num\">{:.2}s</td><td class=\"num\">{:.3}s</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            if f.error.is_some() { " class=\"bad\"" } else { "" },
            f.scheduled_s,
            f.effective_s,
            esc(&f.action),
            esc(&nodes.join(" ")),
            esc(&detail),
            f.line,
            esc(&period)
        );
    }
    t.push_str("</table>");
    if r.timeline.is_empty() {
        h.push_str("<p class=\"meta\">No fault was injected.</p>");
    } else {
        fold(h, r.timeline.len(), "fault actions", &t);
    }
}

/// `[nemesis]`: the faults it drew, as decided and as resolved.
fn nemesis(h: &mut String, r: &Report) {
    let Some(n) = &r.nemesis else {
        return;
    };
    let _ = write!(
        h,
        "<h2 id=\"nemesis\">Nemesis</h2><p class=\"meta\">seed {} · {} fault(s) drawn · replay: <code>rift run {} --seed {}</code></p>",
        n.seed,
        n.decisions.len(),
        esc(&r.plan.path),
        n.seed
    );
    if n.decisions.is_empty() {
        return;
    }
    let mut t = String::from("<table><tr><th>#</th><th>at</th><th>fault</th><th>target</th><th>nodes</th><th>duration</th></tr>");
    for d in &n.decisions {
        let _ = write!(
            t,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{:.2}s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.index,
            d.at_s,
            esc(&d.fault),
            esc(&d.target),
            esc(&d.nodes.join(" ")),
            esc(d.duration_text())
        );
    }
    t.push_str("</table>");
    fold(h, n.decisions.len(), "nemesis decisions", &t);
}

/// The period (index as in the timeline's bands and the phase table) a
/// change at `at_s` opened: the last one starting by then, allowing for the
/// few microseconds between carrying a fault out and recording the world.
fn period_of(r: &Report, at_s: f64) -> Option<(usize, &crate::fault::Snapshot)> {
    let at_ns = ((at_s + 0.05).max(0.0) * 1e9) as u64;
    let i = r
        .periods
        .partition_point(|p| p.at_ns <= at_ns)
        .checked_sub(1)?;
    r.periods.get(i).map(|p| (i, p))
}

/// The fault actions carried out at a change of the world at `at_s` (the
/// change a recovery is measured from), e.g. `heal: end of partition`.
fn changes_at(r: &Report, at_s: f64) -> String {
    let found: Vec<String> = r
        .timeline
        .iter()
        .filter(|f| (f.effective_s - at_s).abs() < 0.05)
        .map(|f| {
            let nodes: Vec<String> = f.nodes.iter().map(|n| n.to_string()).collect();
            let mut s = f.action.clone();
            if !nodes.is_empty() {
                s += &format!(" {}", nodes.join(" "));
            }
            if !f.detail.is_empty() && f.detail != f.action {
                s += &format!(" ({})", f.detail);
            }
            s
        })
        .collect();
    found.join("; ")
}

/// The cluster's chain heads after the run: each distinct head once, with
/// the nodes that have it.
fn convergence(h: &mut String, r: &Report) {
    let Some(c) = &r.convergence else { return };
    h.push_str("<h2 id=\"convergence\">Convergence</h2>");
    let _ = write!(
        h,
        "<p>{}</p>",
        match c.seconds {
            Some(s) => format!("All nodes agreed {} after the final heal.", secs(s)),
            None => "The nodes never agreed.".into(),
        }
    );
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for (node, head) in &c.heads {
        match groups.iter_mut().find(|(h, _)| *h == head.as_str()) {
            Some((_, nodes)) => nodes.push(node.to_string()),
            None => groups.push((head.as_str(), vec![node.to_string()])),
        }
    }
    let mut t = String::from("<table><tr><th>head</th><th>nodes</th></tr>");
    for (head, nodes) in &groups {
        let _ = write!(
            t,
            "<tr{}><td><code title=\"{}\">{}</code></td><td>{}</td></tr>",
            if groups.len() > 1 {
                " class=\"bad\""
            } else {
                ""
            },
            esc(head),
            esc(&short_head(head)),
            esc(&nodes.join(" "))
        );
    }
    t.push_str("</table>");
    fold(h, groups.len(), "distinct heads", &t);
}

/// A head with every long hex word cut to 12 digits (the full text is the
/// tooltip).
fn short_head(head: &str) -> String {
    head.split(' ')
        .map(|w| {
            if w.len() > 16 && w.chars().all(|c| c.is_ascii_hexdigit()) {
                format!("{}…", &w[..12])
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Availability per phase of the world.
fn phases(h: &mut String, r: &Report) {
    h.push_str("<h2>Availability by phase</h2>");
    let mut t = String::from("<table><tr><th>#</th><th>from</th><th>to</th><th>faults in force</th><th>expected to serve</th><th>served (expected)</th><th>served (others)</th></tr>");
    for (i, p) in r.availability.phases.iter().enumerate() {
        let nodes: Vec<String> = p.serving_nodes.iter().map(|n| n.to_string()).collect();
        let _ = write!(
            t,
            "<tr><td class=\"num\">{i}</td><td class=\"num\">{:.2}s</td><td class=\"num\">{:.2}s</td><td>{}</td><td>{}</td><td class=\"num\">{}/{} ({:.2}%)</td><td class=\"num\">{}/{}</td></tr>",
            p.start_s,
            p.end_s,
            esc(&p.label),
            esc(&nodes.join(" ")),
            p.serving.served,
            p.serving.total,
            p.serving.ratio() * 100.0,
            p.other.served,
            p.other.total
        );
    }
    t.push_str("</table>");
    fold(h, r.availability.phases.len(), "phases", &t);
}

/// Availability per node.
fn nodes(h: &mut String, r: &Report) {
    h.push_str("<h2>Availability by node</h2>");
    let mut t = String::from("<table><tr><th>node</th><th>while expected to serve</th><th>otherwise (served/sent)</th><th>log</th></tr>");
    for n in &r.availability.per_node {
        let other: Vec<String> = n
            .other
            .iter()
            .map(|(c, x)| format!("{c:?}: {}/{}", x.served, x.total).to_lowercase())
            .collect();
        let log = r
            .cluster
            .nodes
            .iter()
            .find(|x| x.node == n.node)
            .map(|x| x.log.as_str())
            .unwrap_or("");
        let _ = write!(
            t,
            "<tr><td>{}</td><td class=\"num\">{}/{} ({:.2}%)</td><td>{}</td><td><a href=\"{}\">{}</a></td></tr>",
            n.node,
            n.serving.served,
            n.serving.total,
            n.serving.ratio() * 100.0,
            esc(&other.join(", ")),
            esc(log),
            esc(log)
        );
    }
    t.push_str("</table>");
    fold(h, r.availability.per_node.len(), "nodes", &t);
}

/// The command line each node ran (environment, program, arguments), quoted
/// so it can be pasted into a shell.
fn node_commands(h: &mut String, r: &Report) {
    let lines: Vec<_> = r
        .cluster
        .nodes
        .iter()
        .filter(|n| !n.shell.is_empty())
        .collect();
    if lines.is_empty() {
        return;
    }
    h.push_str("<h2>Node commands</h2>");
    let mut t = String::from("<table><tr><th>node</th><th>command line</th></tr>");
    for n in &lines {
        let _ = write!(
            t,
            "<tr><td>{}</td><td><code>{}</code></td></tr>",
            n.node,
            esc(&n.shell)
        );
    }
    t.push_str("</table>");
    fold(h, lines.len(), "node commands", &t);
}

/// Recovery after each change of the world, when something recovered.
fn recovery(h: &mut String, r: &Report) {
    if !r.recovery.is_empty() {
        h.push_str("<h2 id=\"recovery\">Recovery</h2>");
        let _ = write!(
            h,
            "<p class=\"meta\">From each change of the world to the first success after a node's last failure. Slowest: {}; after the final heal every node served again in {}.</p>",
            r.worst_recovery_s().map_or("-".into(), secs),
            r.final_recovery_s.map_or("never".into(), secs),
        );
        let mut t = String::from(
            "<table><tr><th>change at</th><th>change</th><th>faults in force after it</th><th>node</th><th>served again in</th></tr>",
        );
        for x in &r.recovery {
            let took = match (x.seconds, x.cut_short) {
                (Some(s), _) => secs(s),
                (None, true) => "not observed: the next change came first".to_string(),
                (None, false) => "never".to_string(),
            };
            let change = changes_at(r, x.at_s);
            let label = match period_of(r, x.at_s) {
                Some((i, _)) => format!("#{i} {}", x.label),
                None => x.label.clone(),
            };
            let _ = write!(
                t,
                "<tr{}><td class=\"num\">{:.2}s</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{took}</td></tr>",
                if x.seconds.is_none() { " class=\"bad\"" } else { "" },
                x.at_s,
                esc(if change.is_empty() { "-" } else { &change }),
                esc(&label),
                x.node
            );
        }
        t.push_str("</table>");
        fold(h, r.recovery.len(), "recoveries (node after change)", &t);
    }
}

/// Traffic per proxy link, with a proxy mesh.
fn links(h: &mut String, r: &Report) {
    if !r.cluster.links.is_empty() {
        h.push_str("<h2>Network links</h2>");
        let mut t = String::from(
            "<table><tr><th>link</th><th>connections</th><th>bytes forward</th><th>bytes back</th><th>resets</th></tr>",
        );
        for l in &r.cluster.links {
            let _ = write!(
                t,
                "<tr><td>{} → {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&l.from),
                l.to,
                l.connections,
                l.bytes_forward,
                l.bytes_back,
                l.resets
            );
        }
        t.push_str("</table>");
        if let Some(note) = r.resets_explained() {
            let _ = write!(h, "<p class=\"meta\">{}</p>", esc(&note));
        }
        fold(h, r.cluster.links.len(), "links", &t);
    }
}

/// The netns wire: what each directed pair carried and did, and how
/// faithfully each degradation was carried out.
fn wire(h: &mut String, r: &Report) {
    let Some(w) = &r.cluster.wire else { return };
    let _ = write!(h, "<h2>Network wire ({})</h2>", esc(&w.subnet));
    if !w.fidelity.is_empty() {
        h.push_str(
            "<p>Fault fidelity: what each degradation asked for against what the wire did.</p>",
        );
        let mut t = String::from(
            "<table><tr><th>link</th><th>from</th><th>until</th><th>asked loss</th><th>observed loss</th><th>asked latency (bandwidth)</th><th>observed delay p50</th><th>p99</th><th>packets</th></tr>",
        );
        let pct = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{:.2}%", x * 100.0));
        let ms = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1} ms"));
        for f in &w.fidelity {
            let mut asked = match (f.latency_ms, f.jitter_ms) {
                (Some(l), Some(j)) => format!("{l:.1} ± {j:.1} ms"),
                (l, _) => ms(l),
            };
            if let Some(b) = f.bandwidth {
                asked += &format!(" (cap {:.0} KB/s)", b as f64 / 1000.0);
            }
            let _ = write!(
                t,
                "<tr><td>{} → {}</td><td class=\"num\">{:.1}s</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&f.from),
                esc(&f.to),
                f.from_s,
                f.until_s.map_or("end".to_string(), |u| format!("{u:.1}s")),
                pct(f.loss),
                pct(f.observed_loss),
                asked,
                ms(f.delay_p50_ms),
                ms(f.delay_p99_ms),
                f.packets
            );
        }
        t.push_str("</table>");
        h.push_str(&t);
    }
    let mut t = String::from(
        "<table><tr><th>pair</th><th>packets</th><th>bytes</th><th>partitioned</th><th>lost</th><th>overflowed</th><th>delayed</th><th>duplicated</th><th>reordered</th><th>corrupted</th></tr>",
    );
    for p in &w.pairs {
        let _ = write!(
            t,
            "<tr><td>{} → {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&p.from),
            esc(&p.to),
            p.counters.packets,
            p.counters.bytes,
            p.counters.partitioned,
            p.counters.lost,
            p.counters.overflowed,
            p.counters.delayed,
            p.counters.duplicated,
            p.counters.reordered,
            p.counters.corrupted
        );
    }
    t.push_str("</table>");
    fold(h, w.pairs.len(), "directed pairs", &t);
    if let Some(c) = &w.capture {
        let _ = write!(
            h,
            "<p>Capture: <a href=\"{}\">{}</a> and <a href=\"{}\">{}</a>, {} packets, {:.1} MB{}</p>",
            esc(&c.wire),
            esc(&c.wire),
            esc(&c.dropped),
            esc(&c.dropped),
            c.packets,
            c.bytes as f64 / 1e6,
            c.note.as_deref().map(|n| format!(" — {}", esc(n))).unwrap_or_default()
        );
    }
}

/// Client processes of the client protocol and what went wrong with them.
fn clients(h: &mut String, r: &Report) {
    let Some(c) = &r.cluster.clients else { return };
    let _ = write!(
        h,
        "<h2>Client processes</h2><p>{} started, {} problem(s) (<a href=\"clients/\">client logs</a>).</p>",
        c.started, c.count
    );
    if !c.first.is_empty() {
        h.push_str("<ul>");
        for m in &c.first {
            let _ = write!(h, "<li>{}</li>", esc(m));
        }
        h.push_str("</ul>");
    }
}

/// Node starts and exits as observed.
fn node_events(h: &mut String, r: &Report) {
    if !r.node_events.is_empty() {
        h.push_str("<h2>Node events</h2>");
        let mut t =
            String::from("<table><tr><th>at</th><th>node</th><th>event</th><th>detail</th></tr>");
        for e in &r.node_events {
            let detail = match e.expected {
                Some(false) => format!("{} (on its own)", e.detail),
                _ => e.detail.clone(),
            };
            let _ = write!(
                t,
                "<tr{}><td class=\"num\">{:.3}s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if e.expected == Some(false) {
                    " class=\"bad\""
                } else {
                    ""
                },
                e.at_s,
                e.node,
                esc(&e.event),
                esc(&detail)
            );
        }
        t.push_str("</table>");
        fold(h, r.node_events.len(), "node events", &t);
    }
}

fn secs(s: f64) -> String {
    if s.is_finite() {
        format!("{s:.2}s")
    } else {
        "never".into()
    }
}

/// The figures a person looks for first, as tiles under the title.
fn headline(r: &Report) -> String {
    let mut tiles: Vec<(String, &str)> = vec![
        (
            format!("{:.2}%", r.availability.overall.ratio() * 100.0),
            "availability (nodes expected to serve)",
        ),
        (
            crate::check::availability::Latency::text(r.latency.p50(), " "),
            "p50 latency",
        ),
        (
            crate::check::availability::Latency::text(r.latency.p99(), " "),
            "p99 latency",
        ),
    ];
    if let Some(w) = r.worst_recovery_s() {
        tiles.push((secs(w), "slowest recovery"));
    }
    tiles.push((format!("{:.0}", r.ops.per_second), "ops/s"));
    tiles.push((
        format!("{} / {} / {}", r.ops.ok, r.ops.fail, r.ops.unknown),
        "ok / fail / unknown ops",
    ));
    let exits = r.unexpected_exits();
    tiles.push((exits.to_string(), "unexpected node exits"));
    let mut h = String::from("<div class=\"figs\">");
    for (v, what) in tiles {
        let _ = write!(
            h,
            "<div class=\"fig\"><b>{}</b><span>{}</span></div>",
            esc(&v),
            esc(what)
        );
    }
    h.push_str("</div>");
    h
}
