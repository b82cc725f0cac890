//! report.html: one self-contained page (inline CSS and SVG, no script, no
//! external URL) that shows the verdict, each expectation, and a timeline of
//! throughput, errors and latency per node with fault windows shaded.

use super::Report;
use crate::check::verdict::Verdict;
use crate::history::Op;
use crate::workload::served;
use std::fmt::Write;

/// Escapes text for HTML bodies and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

fn verdict_class(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Pass => ("pass", "PASS"),
        Verdict::Fail => ("fail", "FAIL"),
        Verdict::Unknown => ("unknown", "UNKNOWN"),
    }
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}\
.badge{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}\
.pass{background:#2e7d32}.fail{background:#c62828}.unknown{background:#ef6c00}\
table{border-collapse:collapse;margin:4px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}\
th{background:#f5f5f5}.meta{color:#555}svg{display:block;margin:6px 0}\
.lbl{font-size:11px;fill:#333}.ax{font-size:10px;fill:#666}code{background:#f3f3f3;padding:0 3px}";

/// Time buckets: about 300 across the run, never under 100 ms, so a
/// ten-minute run stays readable; fault windows are drawn from their own
/// times, never from buckets, so none is dropped.
fn bucket_ns(duration_s: f64) -> u64 {
    let per = (duration_s / 300.0).max(0.1);
    (per * 1e9) as u64
}

struct Series {
    ok: Vec<u32>,
    err: Vec<u32>,
}

pub fn render_html(r: &Report, ops: &[Op]) -> String {
    let mut h = String::new();
    let (cls, word) = verdict_class(r.verdict);
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

    h.push_str("<h2>Expectations</h2><table><tr><th>expectation</th><th>bound</th><th>measured</th><th>verdict</th><th>detail</th></tr>");
    for e in &r.expectations {
        let (c, w) = verdict_class(e.verdict);
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><span class=\"badge {c}\">{w}</span></td><td>{}</td></tr>",
            esc(&e.name),
            esc(&e.bound),
            esc(&e.measured),
            esc(&e.message)
        );
    }
    h.push_str("</table>");

    h.push_str("<h2>Timeline</h2><p class=\"meta\">Per node: successful requests per second (green, up) and failed or unanswered ones (red, down); shaded bands are faults in force, dashed lines are injected faults, triangles node exits.</p>");
    h.push_str(&timeline_svg(r, ops));
    h.push_str(&latency_svg(r, ops));

    h.push_str("<h2>Faults</h2><table><tr><th>scheduled</th><th>effective</th><th>fault</th><th>nodes</th><th>detail</th></tr>");
    for f in &r.timeline {
        let nodes: Vec<String> = f.nodes.iter().map(|n| n.to_string()).collect();
        let detail = match &f.error {
            Some(e) => format!("{} — error: {e}", f.detail),
            None => f.detail.clone(),
        };
        let _ = write!(
            h,
            "<tr><td>{:.2}s</td><td>{:.3}s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            f.scheduled_s,
            f.effective_s,
            esc(&f.action),
            esc(&nodes.join(" ")),
            esc(&detail)
        );
    }
    h.push_str("</table>");

    h.push_str("<h2>Availability by phase</h2><table><tr><th>from</th><th>to</th><th>faults in force</th><th>expected to serve</th><th>served (expected)</th><th>served (others)</th></tr>");
    for p in &r.availability.phases {
        let nodes: Vec<String> = p.serving_nodes.iter().map(|n| n.to_string()).collect();
        let _ = write!(
            h,
            "<tr><td>{:.2}s</td><td>{:.2}s</td><td>{}</td><td>{}</td><td>{}/{} ({:.2}%)</td><td>{}/{}</td></tr>",
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
    h.push_str("</table>");

    h.push_str("<h2>Availability by node</h2><table><tr><th>node</th><th>while expected to serve</th><th>otherwise</th></tr>");
    for n in &r.availability.per_node {
        let other: Vec<String> = n
            .other
            .iter()
            .map(|(c, x)| format!("{c:?}: {}/{}", x.served, x.total).to_lowercase())
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}/{} ({:.2}%)</td><td>{}</td></tr>",
            n.node,
            n.serving.served,
            n.serving.total,
            n.serving.ratio() * 100.0,
            esc(&other.join(", "))
        );
    }
    h.push_str("</table>");

    if !r.recovery.is_empty() {
        h.push_str("<h2>Recovery</h2><table><tr><th>change at</th><th>after</th><th>node</th><th>served again in</th></tr>");
        for x in &r.recovery {
            let took = x
                .seconds
                .map_or("never".to_string(), |s| format!("{s:.3}s"));
            let _ = write!(
                h,
                "<tr><td>{:.2}s</td><td>{}</td><td>{}</td><td>{took}</td></tr>",
                x.at_s,
                esc(&x.label),
                x.node
            );
        }
        h.push_str("</table>");
    }

    for c in &r.checks {
        let (cl, w) = verdict_class(c.verdict);
        let _ = write!(
            h,
            "<h2>Checker {} <span class=\"badge {cl}\">{w}</span></h2><p>{}</p>",
            esc(&c.checker),
            esc(&c.summary)
        );
        if !c.counterexample.is_empty() {
            h.push_str("<table><tr><th>op</th><th>client</th><th>node</th><th>kind</th><th>key</th><th>value</th><th>result</th><th>invoked</th><th>completed</th><th>outcome</th></tr>");
            for op in &c.counterexample {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}s</td><td>{:.4}s</td><td>{:?}</td></tr>",
                    op.id,
                    op.client,
                    op.node,
                    op.kind,
                    esc(op.key.as_deref().unwrap_or("")),
                    esc(op.value.as_deref().unwrap_or("")),
                    esc(op.result.as_deref().unwrap_or("")),
                    op.invoke_ns as f64 / 1e9,
                    op.complete_ns as f64 / 1e9,
                    op.outcome
                );
            }
            h.push_str("</table>");
        }
    }

    if !r.node_events.is_empty() {
        h.push_str("<h2>Node events</h2><table><tr><th>at</th><th>node</th><th>event</th><th>detail</th></tr>");
        for e in &r.node_events {
            let detail = match e.expected {
                Some(false) => format!("{} (on its own)", e.detail),
                _ => e.detail.clone(),
            };
            let _ = write!(
                h,
                "<tr><td>{:.3}s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.at_s,
                e.node,
                esc(&e.event),
                esc(&detail)
            );
        }
        h.push_str("</table>");
    }
    let _ = writeln!(
        h,
        "<p class=\"meta\">plan {} (sha256 {}) · rift {}</p></body></html>",
        esc(&r.plan.path),
        esc(&r.plan.hash),
        esc(&r.rift_version)
    );
    h
}

const W: f64 = 1000.0;
const LEFT: f64 = 60.0;
const ROW: f64 = 56.0;

fn x_of(t_s: f64, dur: f64) -> f64 {
    LEFT + (t_s / dur.max(1e-9)).clamp(0.0, 1.0) * (W - LEFT - 10.0)
}

fn timeline_svg(r: &Report, ops: &[Op]) -> String {
    let dur = r.duration_s.max(0.001);
    let b = bucket_ns(dur);
    let nb = ((dur * 1e9) as u64 / b + 1) as usize;
    let n = r.cluster.size.max(1);
    let mut series: Vec<Series> = (0..n)
        .map(|_| Series {
            ok: vec![0; nb],
            err: vec![0; nb],
        })
        .collect();
    for op in ops {
        let i = (op.invoke_ns / b) as usize;
        if let Some(s) = series.get_mut(op.node.index()) {
            if i < nb {
                if served(op) {
                    s.ok[i] += 1;
                } else {
                    s.err[i] += 1;
                }
            }
        }
    }
    let peak = series
        .iter()
        .flat_map(|s| s.ok.iter().chain(s.err.iter()))
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    // Faults get a label lane above the node rows.
    let lanes = r
        .periods
        .iter()
        .filter(|p| p.label != "steady")
        .count()
        .min(6);
    let top = 20.0 + lanes as f64 * 14.0;
    let height = top + n as f64 * ROW + 24.0;
    let mut s = String::new();
    let _ = write!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\">");
    // Fault windows from the world's periods.
    let mut lane = 0usize;
    for (i, p) in r.periods.iter().enumerate() {
        if p.label == "steady" {
            continue;
        }
        let start = p.at_ns as f64 / 1e9;
        let end = r.periods.get(i + 1).map_or(dur, |q| q.at_ns as f64 / 1e9);
        let (x0, x1) = (x_of(start, dur), x_of(end, dur));
        let _ = write!(
            s,
            "<rect x=\"{x0:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#ffcc80\" fill-opacity=\"0.35\"><title>{}: {:.2}s–{:.2}s</title></rect>",
            (x1 - x0).max(1.0),
            n as f64 * ROW,
            esc(&p.label),
            start,
            end
        );
        if lanes > 0 {
            let y = 14.0 + (lane % lanes) as f64 * 14.0;
            let _ = write!(
                s,
                "<text class=\"lbl\" x=\"{x0:.1}\" y=\"{y}\">{}</text>",
                esc(&p.label)
            );
            lane += 1;
        }
    }
    for f in &r.timeline {
        let x = x_of(f.effective_s, dur);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{:.1}\" stroke=\"#e65100\" stroke-dasharray=\"3,3\"><title>{} {} at {:.3}s</title></line>",
            top + n as f64 * ROW,
            esc(&f.action),
            esc(&f.detail),
            f.effective_s
        );
    }
    let bw = ((W - LEFT - 10.0) / nb as f64).max(0.5);
    for (ni, ser) in series.iter().enumerate() {
        let mid = top + ni as f64 * ROW + ROW / 2.0;
        let _ = write!(
            s,
            "<text class=\"lbl\" x=\"4\" y=\"{:.1}\">n{ni}</text>",
            mid + 4.0
        );
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{mid:.1}\" y2=\"{mid:.1}\" stroke=\"#bbb\"/>",
            W - 10.0
        );
        for i in 0..nb {
            let x = LEFT + i as f64 * bw;
            if ser.ok[i] > 0 {
                let hgt = ser.ok[i] as f64 / peak * (ROW / 2.0 - 4.0);
                let _ = write!(s, "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bw:.2}\" height=\"{hgt:.1}\" fill=\"#43a047\"/>", mid - hgt);
            }
            if ser.err[i] > 0 {
                let hgt = ser.err[i] as f64 / peak * (ROW / 2.0 - 4.0);
                let _ = write!(s, "<rect x=\"{x:.1}\" y=\"{mid:.1}\" width=\"{bw:.2}\" height=\"{hgt:.1}\" fill=\"#e53935\"/>");
            }
        }
    }
    for e in r.node_events.iter().filter(|e| e.event == "exited") {
        let x = x_of(e.at_s, dur);
        let y = top + e.node.index() as f64 * ROW + 6.0;
        let color = if e.expected == Some(false) {
            "#b71c1c"
        } else {
            "#555"
        };
        let _ = write!(
            s,
            "<path d=\"M{:.1},{y:.1} l5,8 l-10,0 z\" fill=\"{color}\"><title>{} exited at {:.3}s: {}</title></path>",
            x,
            e.node,
            e.at_s,
            esc(&e.detail)
        );
    }
    // Counterexample operations, highlighted where they happened.
    for c in r.checks.iter().filter(|c| c.verdict == Verdict::Fail) {
        for op in &c.counterexample {
            let (x0, x1) = (
                x_of(op.invoke_ns as f64 / 1e9, dur),
                x_of(op.complete_ns as f64 / 1e9, dur),
            );
            let y = top + op.node.index() as f64 * ROW + ROW - 8.0;
            let _ = write!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"5\" fill=\"#6a1b9a\"><title>{}: op {} {:?} {}</title></rect>",
                (x1 - x0).max(2.0),
                esc(&c.checker),
                op.id,
                op.kind,
                esc(op.key.as_deref().unwrap_or(""))
            );
        }
    }
    let axis_y = top + n as f64 * ROW + 14.0;
    let step = nice_step(dur);
    let mut t = 0.0;
    while t <= dur + 1e-9 {
        let _ = write!(
            s,
            "<text class=\"ax\" x=\"{:.1}\" y=\"{axis_y:.1}\">{t:.0}s</text>",
            x_of(t, dur) - 6.0
        );
        t += step;
    }
    s.push_str("</svg>");
    s
}

fn nice_step(dur: f64) -> f64 {
    for s in [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0] {
        if dur / s <= 12.0 {
            return s;
        }
    }
    1200.0
}

/// p50 and p99 latency of served requests per time bucket, all nodes.
fn latency_svg(r: &Report, ops: &[Op]) -> String {
    let dur = r.duration_s.max(0.001);
    let b = bucket_ns(dur).max(1_000_000_000);
    let nb = ((dur * 1e9) as u64 / b + 1) as usize;
    let mut buckets: Vec<Vec<u64>> = vec![Vec::new(); nb];
    for op in ops.iter().filter(|o| served(o)) {
        if let Some(v) = buckets.get_mut((op.invoke_ns / b) as usize) {
            v.push(op.latency_ns());
        }
    }
    let pct = |v: &mut Vec<u64>, q: f64| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).map(|ns| *ns as f64 / 1e6)
    };
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for (i, v) in buckets.iter_mut().enumerate() {
        let t = (i as u64 * b) as f64 / 1e9 + b as f64 / 2e9;
        if let (Some(a), Some(c)) = (pct(v, 0.5), pct(v, 0.99)) {
            p50.push((t, a));
            p99.push((t, c));
        }
    }
    let peak = p99.iter().map(|p| p.1).fold(1.0f64, f64::max);
    let hgt = 140.0;
    let mut s = String::new();
    let _ = write!(s, "<p class=\"meta\">Latency of served requests per {:.0} s: p50 (blue) and p99 (purple); top of the chart = {peak:.1} ms.</p>", b as f64 / 1e9);
    let _ = write!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{}\" viewBox=\"0 0 {W} {}\">", hgt + 10.0, hgt + 10.0);
    for (i, p) in r.periods.iter().enumerate() {
        if p.label == "steady" {
            continue;
        }
        let x0 = x_of(p.at_ns as f64 / 1e9, dur);
        let x1 = x_of(
            r.periods.get(i + 1).map_or(dur, |q| q.at_ns as f64 / 1e9),
            dur,
        );
        let _ = write!(s, "<rect x=\"{x0:.1}\" y=\"0\" width=\"{:.1}\" height=\"{hgt}\" fill=\"#ffcc80\" fill-opacity=\"0.35\"/>", (x1 - x0).max(1.0));
    }
    for (series, color) in [(&p50, "#1565c0"), (&p99, "#6a1b9a")] {
        let pts: Vec<String> = series
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x_of(*t, dur), hgt - v / peak * (hgt - 6.0)))
            .collect();
        if !pts.is_empty() {
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
                pts.join(" ")
            );
        }
    }
    let _ = write!(s, "<text class=\"ax\" x=\"4\" y=\"12\">{peak:.0}ms</text><text class=\"ax\" x=\"4\" y=\"{hgt}\">0</text></svg>");
    s
}
