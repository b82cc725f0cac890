//! The SVG timeline of report.html: per node, served and failed requests per
//! time bucket and p50/p99 latency of served ones; fault periods as shaded
//! bands with labels, each node's own state (cut off, paused, down) shaded
//! in its row; node exits and restarts marked; checker counterexamples
//! highlighted where they happened.
//!
//! Requests are downsampled into at most about 200 buckets so a 25-node,
//! 10-minute run stays small; faults, node events and counterexample
//! operations are drawn from their own times and never dropped. Whether a
//! request was served is the recorded operation's own answer
//! (`Op::served`); the picture never re-classifies a request.

use super::text::esc;
use super::Report;
use crate::check::availability::Judge;
use crate::check::verdict::{CheckResult, Verdict};
use crate::fault::{NodeClass, NodeState};
use crate::history::Op;
use crate::NodeId;
use std::fmt::Write;

const W: f64 = 1160.0;
const LEFT: f64 = 92.0;
const RIGHT: f64 = 14.0;
const LANE_H: f64 = 15.0;
const MAX_LANES: usize = 4;
/// Latency axis: log scale from 1 ms up.
const LAT_LO_MS: f64 = 1.0;
/// At most this many counterexample operations are drawn per checker (the
/// table under the timeline lists them all).
const MAX_CE_OPS: usize = 200;

const OK: &str = "#43a047";
const ERR: &str = "#e53935";
/// Fault band: a pale yellow no node state uses.
const BAND: &str = "#fff3b0";
/// Node states in their rows: cut off hatched orange (the `cutoff`
/// pattern), paused solid blue, down solid grey, exited dark grey.
const PAUSED: &str = "#42a5f5";
const DOWN: &str = "#9e9e9e";
const EXITED: &str = "#424242";

/// Which requests count against availability: `judged[i]` for `ops[i]`, as
/// the availability judge classifies them (`NodeClass::Serving`). The
/// recovery window the run used is not in report.json: the first candidate
/// window whose judged totals equal the report's own overall figure is used
/// (so the picture agrees with the numbers), else 5 s.
pub(super) fn judged_ops(r: &Report, ops: &[Op]) -> Vec<bool> {
    let end_ns = (r.duration_s.max(0.0) * 1e9) as u64;
    let want = (r.availability.overall.served, r.availability.overall.total);
    let classify = |window_ms: u64| -> Vec<bool> {
        let j = Judge::new(ops, &r.periods, window_ms * 1_000_000, end_ns);
        ops.iter()
            .map(|o| j.class(o.node, o.invoke_ns) == NodeClass::Serving)
            .collect()
    };
    for w in [
        5_000, 10_000, 2_000, 1_000, 3_000, 15_000, 30_000, 60_000, 20_000, 500, 0,
    ] {
        let judged = classify(w);
        let (mut served, mut total) = (0u64, 0u64);
        for (o, j) in ops.iter().zip(&judged) {
            if *j {
                total += 1;
                served += u64::from(o.served());
            }
        }
        if (served, total) == want {
            return judged;
        }
    }
    classify(5_000)
}
const P50: &str = "#1565c0";
const P99: &str = "#8e24aa";
const CE: &str = "#6a1b9a";

fn plot_w() -> f64 {
    W - LEFT - RIGHT
}

/// Bucket width in seconds: the smallest "nice" width giving at most ~200
/// buckets, never under 250 ms.
pub(super) fn rate_bucket_s(dur: f64) -> f64 {
    let raw = dur / 200.0;
    for b in [
        0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    ] {
        if b >= raw {
            return b;
        }
    }
    1800.0
}

/// Latency is summarised per second, or per rate bucket when that is wider.
pub(super) fn latency_bucket_s(dur: f64) -> f64 {
    rate_bucket_s(dur).max(1.0)
}

struct Geometry {
    dur: f64,
}

impl Geometry {
    fn x(&self, t_s: f64) -> f64 {
        LEFT + (t_s / self.dur.max(1e-9)).clamp(0.0, 1.0) * plot_w()
    }
}

/// Per-node (and cluster-wide, at index `n`) counts and latencies.
struct Series {
    ok: Vec<u32>,
    /// Failed requests that count against availability.
    err: Vec<u32>,
    /// Failed requests to nodes not expected to serve (not judged).
    unjudged: Vec<u32>,
    /// Served latencies in microseconds per latency bucket.
    lat: Vec<Vec<u64>>,
}

impl Series {
    fn new(nb: usize, nl: usize) -> Series {
        Series {
            ok: vec![0; nb],
            err: vec![0; nb],
            unjudged: vec![0; nb],
            lat: vec![Vec::new(); nl],
        }
    }
}

fn quantile(v: &[u64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i.min(v.len() - 1)).map(|us| *us as f64 / 1000.0)
}

/// Where a text of `chars` characters at 11 px ends, roughly.
fn text_w(chars: usize) -> f64 {
    chars as f64 * 6.1
}

#[derive(Clone, Copy)]
struct Rows {
    rate_h: f64,
    lat_h: f64,
    gap: f64,
}

fn rows_for(n: usize) -> Rows {
    let f = (8.0 / n.max(1) as f64).clamp(0.5, 1.0);
    Rows {
        rate_h: (34.0 * f).round(),
        lat_h: (26.0 * f).round(),
        gap: if n > 12 { 3.0 } else { 6.0 },
    }
}

/// Log-scale y of a latency inside a lane from `top` of height `h`.
fn lat_y(ms: f64, hi_ms: f64, top: f64, h: f64) -> f64 {
    let span = (hi_ms / LAT_LO_MS).log10().max(1e-9);
    let f = ((ms.max(LAT_LO_MS) / LAT_LO_MS).log10() / span).clamp(0.0, 1.0);
    top + h - 1.0 - f * (h - 3.0)
}

pub(super) fn timeline_svg(r: &Report, ops: &[Op], judged: &[bool]) -> String {
    let c = Chart::new(r, ops, judged);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"timeline\" width=\"{W}\" height=\"{:.0}\" viewBox=\"0 0 {W} {:.0}\" role=\"img\" aria-label=\"timeline of the run\">{PATTERNS}",
        c.layout.height, c.layout.height
    );
    c.grid(&mut s);
    c.fault_bands(&mut s);
    c.node_states(&mut s);
    c.fault_lines(&mut s);
    c.cluster_row(&mut s);
    c.node_rows(&mut s);
    c.node_events(&mut s);
    c.counterexamples(&mut s);
    s.push_str("</svg>");
    s.push_str(&c.legend());
    s
}

/// A fault period drawn as a band: period index, start and end in seconds,
/// label.
type Band<'a> = (usize, f64, f64, &'a str);

/// A fault label placed in a lane: lane, x, text.
type Label = (usize, f64, String);

/// Vertical positions of the picture's parts.
struct Layout {
    rows: Rows,
    row_h: f64,
    /// Top of the plot, under the label lanes.
    top: f64,
    all_rate_h: f64,
    all_lat_h: f64,
    nodes_top: f64,
    plot_bottom: f64,
    height: f64,
}

impl Layout {
    fn new(n: usize, lanes: usize, failed_checks: usize) -> Layout {
        let rows = rows_for(n);
        let row_h = rows.rate_h + rows.lat_h + rows.gap;
        let top = 6.0 + lanes as f64 * LANE_H + failed_checks as f64 * LANE_H;
        // Cluster-wide row, taller, with latency tick labels.
        let all_rate_h = 44.0;
        let all_lat_h = 56.0;
        let nodes_top = top + all_rate_h + all_lat_h + 14.0;
        let plot_bottom = nodes_top + n as f64 * row_h;
        Layout {
            rows,
            row_h,
            top,
            all_rate_h,
            all_lat_h,
            nodes_top,
            plot_bottom,
            height: plot_bottom + 22.0,
        }
    }
}

/// Everything the timeline draws, computed once from the report and the
/// history; each drawing step below appends its part of the SVG.
struct Chart<'a> {
    r: &'a Report,
    g: Geometry,
    dur: f64,
    /// Nodes; `series[n]` is the whole cluster.
    n: usize,
    /// Rate and latency bucket widths in seconds, and their counts.
    rb: f64,
    lb: f64,
    nb: usize,
    nl: usize,
    series: Vec<Series>,
    /// Per series, p50 and p99 per latency bucket.
    pct: Vec<[Vec<Option<f64>>; 2]>,
    /// Top of the latency axis in ms.
    lat_hi: f64,
    node_peak: f64,
    all_peak: f64,
    bands: Vec<Band<'a>>,
    labels: Vec<Label>,
    hidden_labels: usize,
    lanes: usize,
    failed_checks: Vec<&'a CheckResult>,
    layout: Layout,
}

impl<'a> Chart<'a> {
    fn new(r: &'a Report, ops: &[Op], judged: &[bool]) -> Chart<'a> {
        let dur = r.duration_s.max(0.001);
        let g = Geometry { dur };
        let n = r.cluster.size.max(1);
        let rb = rate_bucket_s(dur);
        let lb = latency_bucket_s(dur);
        let nb = (dur / rb).ceil().max(1.0) as usize;
        let nl = (dur / lb).ceil().max(1.0) as usize;
        let mut series = bucket_ops(ops, judged, n, (rb, nb), (lb, nl));
        let pct = percentiles(&mut series, nl);
        let lat_hi = latency_axis_top(&pct);
        let node_peak = series[..n]
            .iter()
            .flat_map(|s| {
                s.ok.iter()
                    .copied()
                    .chain(s.err.iter().zip(&s.unjudged).map(|(a, b)| a + b))
            })
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let all_peak = series
            .get(n)
            .map(|s| {
                s.ok.iter()
                    .copied()
                    .chain(s.err.iter().zip(&s.unjudged).map(|(a, b)| a + b))
                    .max()
                    .unwrap_or(1)
            })
            .unwrap_or(1)
            .max(1) as f64;
        let bands = fault_bands(r, dur);
        let (labels, hidden_labels) = place_labels(&bands, &g);
        let lanes = labels.iter().map(|(l, ..)| l + 1).max().unwrap_or(0);
        let failed_checks: Vec<&CheckResult> = r
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail && !c.counterexample.is_empty())
            .collect();
        let layout = Layout::new(n, lanes, failed_checks.len());
        Chart {
            r,
            g,
            dur,
            n,
            rb,
            lb,
            nb,
            nl,
            series,
            pct,
            lat_hi,
            node_peak,
            all_peak,
            bands,
            labels,
            hidden_labels,
            lanes,
            failed_checks,
            layout,
        }
    }

    /// Grid and time axis.
    fn grid(&self, s: &mut String) {
        let (top, plot_bottom) = (self.layout.top, self.layout.plot_bottom);
        let step = nice_step(self.dur);
        let mut t = 0.0;
        while t <= self.dur + 1e-9 {
            let x = self.g.x(t);
            let _ = write!(
                s,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{plot_bottom:.1}\" stroke=\"#eee\"/><text class=\"ax\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                plot_bottom + 14.0,
                fmt_t(t)
            );
            t += step;
        }
    }

    /// Fault periods: a band over everything, label in a lane above.
    fn fault_bands(&self, s: &mut String) {
        let (top, plot_bottom) = (self.layout.top, self.layout.plot_bottom);
        for &(i, start, end, label) in &self.bands {
            let (x0, x1) = (self.g.x(start), self.g.x(end));
            let _ = write!(
                s,
                "<rect class=\"fault\" data-period=\"{i}\" x=\"{x0:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{BAND}\" fill-opacity=\"0.7\"><title>#{i} {}: {start:.2}s to {end:.2}s</title></rect>",
                (x1 - x0).max(1.5),
                plot_bottom - top,
                esc(label),
            );
        }
        for (l, x, text) in &self.labels {
            let y = 4.0 + (*l as f64 + 1.0) * LANE_H - 4.0;
            let _ = write!(
                s,
                "<text class=\"lbl flbl\" x=\"{x:.1}\" y=\"{y:.1}\">{}</text>",
                esc(text)
            );
        }
    }

    /// Each node's own state in its row.
    fn node_states(&self, s: &mut String) {
        let r = self.r;
        let l = &self.layout;
        for (i, p) in r.periods.iter().enumerate() {
            let start = p.at_ns as f64 / 1e9;
            let end = r
                .periods
                .get(i + 1)
                .map_or(self.dur, |q| q.at_ns as f64 / 1e9);
            let (x0, x1) = (self.g.x(start), self.g.x(end.max(start)));
            for node in 0..self.n {
                let state = p.states.get(node).copied().unwrap_or(NodeState::Up);
                let (fill, opacity, what) = match state {
                    NodeState::Paused => (PAUSED.to_string(), 0.3, "paused"),
                    NodeState::Down => (DOWN.to_string(), 0.35, "down"),
                    NodeState::Exited => (EXITED.to_string(), 0.35, "exited"),
                    NodeState::Up if !p.serving.contains(&NodeId(node)) => {
                        ("url(#cutoff)".to_string(), 1.0, "cut off")
                    }
                    NodeState::Up => continue,
                };
                let y = l.nodes_top + node as f64 * l.row_h;
                let _ = write!(
                    s,
                    "<rect class=\"state\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\" fill-opacity=\"{opacity}\"><title>n{node} {what}, {start:.2}s to {end:.2}s</title></rect>",
                    (x1 - x0).max(1.5),
                    l.rows.rate_h + l.rows.lat_h
                );
            }
        }
    }

    /// Injected faults and heals as dashed lines.
    fn fault_lines(&self, s: &mut String) {
        let (top, plot_bottom) = (self.layout.top, self.layout.plot_bottom);
        for f in &self.r.timeline {
            let x = self.g.x(f.effective_s);
            let color = if f.error.is_some() {
                "#b71c1c"
            } else {
                "#e65100"
            };
            let _ = write!(
                s,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{plot_bottom:.1}\" stroke=\"{color}\" stroke-width=\"1\" stroke-dasharray=\"3,3\"><title>{} at {:.3}s (scheduled {:.2}s): {}{}</title></line>",
                esc(&f.action),
                f.effective_s,
                f.scheduled_s,
                esc(&f.detail),
                f.error.as_deref().map(|e| format!(" (error: {})", esc(e))).unwrap_or_default()
            );
        }
    }

    /// Width of a rate bucket and of a latency bucket in pixels.
    fn bucket_widths(&self) -> (f64, f64) {
        (plot_w() / self.nb as f64, plot_w() / self.nl as f64)
    }

    /// The cluster-wide row: rates, then latency with its tick labels.
    fn cluster_row(&self, s: &mut String) {
        let (bw, lw) = self.bucket_widths();
        let Some(all) = self.series.get(self.n) else {
            return;
        };
        let (top, all_rate_h, all_lat_h) = (
            self.layout.top,
            self.layout.all_rate_h,
            self.layout.all_lat_h,
        );
        let mid = top + all_rate_h / 2.0 + 2.0;
        row_label(s, "all", top + 14.0, None);
        let _ = write!(
            s,
            "<text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.0}/s</text>",
            LEFT - 4.0,
            top + 8.0,
            self.all_peak / self.rb
        );
        rate_bars(s, all, mid, all_rate_h / 2.0 - 2.0, self.all_peak, bw);
        let lt = top + all_rate_h + 4.0;
        let _ = write!(
            s,
            "<rect x=\"{LEFT}\" y=\"{lt:.1}\" width=\"{:.1}\" height=\"{all_lat_h}\" fill=\"none\" stroke=\"#ddd\"/>",
            plot_w()
        );
        let mut tick = LAT_LO_MS;
        while tick <= self.lat_hi * 1.0001 {
            let y = lat_y(tick, self.lat_hi, lt, all_lat_h);
            let _ = write!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                W - RIGHT,
                LEFT - 4.0,
                y + 3.0,
                fmt_ms(tick)
            );
            tick *= 10.0;
        }
        if let Some([p50, p99]) = self.pct.get(self.n) {
            lat_lines(s, p50, p99, self.lat_hi, lt, all_lat_h, lw);
        }
    }

    /// One row per node: its availability, rates and latency.
    fn node_rows(&self, s: &mut String) {
        let (bw, lw) = self.bucket_widths();
        let (rows, lat_hi) = (self.layout.rows, self.lat_hi);
        for node in 0..self.n {
            let y = self.layout.nodes_top + node as f64 * self.layout.row_h;
            let avail = self
                .r
                .availability
                .per_node
                .iter()
                .find(|a| a.node == NodeId(node))
                .map(|a| a.serving.ratio() * 100.0);
            row_label(s, &format!("n{node}"), y + rows.rate_h / 2.0 + 4.0, avail);
            let _ = write!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
                W - RIGHT,
                y + rows.rate_h + rows.lat_h,
                y + rows.rate_h + rows.lat_h
            );
            if let Some(ser) = self.series.get(node) {
                rate_bars(
                    s,
                    ser,
                    y + rows.rate_h / 2.0,
                    rows.rate_h / 2.0 - 1.0,
                    self.node_peak,
                    bw,
                );
            }
            // The row's axes: the rate a full bar stands for, at its top
            // edge, and the latency of the faint reference lines.
            let _ = write!(
                s,
                "<text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.0}/s</text>",
                LEFT - 4.0,
                y + 7.0,
                self.node_peak / self.rb
            );
            // Faint 10 ms and 100 ms lines: a reference for the eye.
            for ms in [10.0, 100.0] {
                if ms < lat_hi {
                    let gy = lat_y(ms, lat_hi, y + rows.rate_h, rows.lat_h);
                    let _ = write!(
                        s,
                        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{gy:.1}\" y2=\"{gy:.1}\" stroke=\"#eee\" stroke-dasharray=\"2,3\"/><text class=\"ax\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                        W - RIGHT,
                        LEFT - 4.0,
                        gy + 3.0,
                        fmt_ms(ms)
                    );
                }
            }
            if let Some([p50, p99]) = self.pct.get(node) {
                lat_lines(s, p50, p99, lat_hi, y + rows.rate_h, rows.lat_h, lw);
            }
        }
    }

    /// Node exits and restarts, on top of the bars.
    fn node_events(&self, s: &mut String) {
        for e in &self.r.node_events {
            let x = self.g.x(e.at_s);
            let y = self.layout.nodes_top + e.node.index() as f64 * self.layout.row_h;
            match e.event.as_str() {
                "exited" => {
                    let (color, how) = if e.expected == Some(false) {
                        ("#b71c1c", "exited on its own")
                    } else {
                        ("#424242", "stopped by rift")
                    };
                    let _ = write!(
                        s,
                        "<path class=\"exit\" d=\"M{:.1},{y:.1}h10l-5,9z\" fill=\"{color}\" stroke=\"#fff\" stroke-width=\"0.8\"><title>{} {how} at {:.3}s: {}</title></path>",
                        x - 5.0,
                        e.node,
                        e.at_s,
                        esc(&e.detail)
                    );
                }
                // The first start of every node is the beginning of the run.
                "started" if e.at_s > 0.05 => {
                    let _ = write!(
                        s,
                        "<path class=\"start\" d=\"M{:.1},{:.1}h10l-5,-9z\" fill=\"#1b5e20\" stroke=\"#fff\" stroke-width=\"0.8\"><title>{} started again at {:.3}s ({})</title></path>",
                        x - 5.0,
                        y + 9.0,
                        e.node,
                        e.at_s,
                        esc(&e.detail)
                    );
                }
                _ => {}
            }
        }
    }

    /// Counterexamples: the operations, in their node's row, and a lane on top.
    fn counterexamples(&self, s: &mut String) {
        let l = &self.layout;
        for (ci, c) in self.failed_checks.iter().enumerate() {
            let ly = 4.0 + (self.lanes + ci) as f64 * LANE_H;
            let first = c
                .counterexample
                .iter()
                .map(|o| o.invoke_ns)
                .min()
                .unwrap_or(0) as f64
                / 1e9;
            let _ = write!(
                s,
                "<text class=\"lbl\" x=\"{:.1}\" y=\"{:.1}\" fill=\"{CE}\" font-weight=\"600\">✗ {} counterexample ({} ops)</text>",
                self.g.x(first).clamp(LEFT, W - RIGHT - 260.0),
                ly + 10.0,
                esc(c.checker.name()),
                c.counterexample.len()
            );
            for op in c.counterexample.iter().take(MAX_CE_OPS) {
                let (t0, t1) = (op.invoke_ns as f64 / 1e9, op.complete_ns as f64 / 1e9);
                let (x0, x1) = (self.g.x(t0), self.g.x(t1));
                let y = l.nodes_top + op.node.index() as f64 * l.row_h;
                let _ = write!(
                    s,
                    "<rect class=\"ce\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{CE}\" fill-opacity=\"0.3\" stroke=\"{CE}\" stroke-width=\"1.5\"><title>{}: op {} {:?} {} {} on {} ({:?}), {t0:.3}s to {t1:.3}s</title></rect><line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{CE}\" stroke-opacity=\"0.5\" stroke-dasharray=\"1,2\"/>",
                    x0 - 1.0,
                    y,
                    (x1 - x0).max(3.0),
                    l.rows.rate_h + l.rows.lat_h,
                    esc(c.checker.name()),
                    op.id,
                    op.kind,
                    esc(op.key.as_deref().unwrap_or("")),
                    esc(op.value.as_deref().or(op.result.as_deref()).unwrap_or("")),
                    op.node,
                    op.outcome,
                    ly + 12.0,
                );
            }
        }
    }

    /// Legend and scales, as text under the picture.
    fn legend(&self) -> String {
        let (rb, lb) = (self.rb, self.lb);
        let mut legend = String::new();
        let _ = write!(
            legend,
            "<p class=\"legend\"><span class=\"sw\" style=\"background:{OK}\"></span>served and <span class=\"sw\" style=\"background:{ERR}\"></span>failed requests that count against availability (node expected to serve) and <span class=\"sw\" style=\"background:repeating-linear-gradient(45deg,#9e9e9e 0 2px,#e0e0e0 2px 4px)\"></span>failed requests to nodes not expected to serve (down, paused, cut off or recovering: not judged) per {} (up and down from the midline; full height = {:.0}/s per node, {:.0}/s for all) · latency of served requests per {} (dotted: 10 ms, 100 ms): <span class=\"sw\" style=\"background:{P50}\"></span>p50 and <span class=\"sw\" style=\"background:{P99}\"></span>p99 (log scale, 1 ms to {}) · <span class=\"sw\" style=\"background:{BAND}\"></span>fault in force (#n as in the phase table) · node <span class=\"sw\" style=\"background:repeating-linear-gradient(-45deg,#f5b895 0 2px,#fff 2px 6px)\"></span>cut off <span class=\"sw\" style=\"background:{PAUSED};opacity:.5\"></span>paused <span class=\"sw\" style=\"background:{DOWN};opacity:.6\"></span>down <span class=\"sw\" style=\"background:{EXITED};opacity:.6\"></span>exited · ▼ exit (red: on its own) · <span style=\"color:#1b5e20\">▲</span> restart · dashed: fault injected or healed",
            fmt_t(rb),
            self.node_peak / rb,
            self.all_peak / rb,
            fmt_t(lb),
            fmt_ms(self.lat_hi)
        );
        if !self.failed_checks.is_empty() {
            let _ = write!(
                legend,
                " · <span class=\"sw\" style=\"background:{CE}\"></span>operations of a counterexample"
            );
        }
        legend.push_str(". Hover for details.");
        if self.hidden_labels > 0 {
            let _ = write!(
                legend,
                " {} fault labels left out for room: their bands are drawn; the phase table lists them all.",
                self.hidden_labels
            );
        }
        legend.push_str("</p>");
        legend
    }
}

/// Served and failed counts per rate bucket and served latencies per latency
/// bucket, per node and (at index `n`) for the whole cluster.
fn bucket_ops(
    ops: &[Op],
    judged: &[bool],
    n: usize,
    (rb, nb): (f64, usize),
    (lb, nl): (f64, usize),
) -> Vec<Series> {
    let mut series: Vec<Series> = (0..=n).map(|_| Series::new(nb, nl)).collect();
    for (i, op) in ops.iter().enumerate() {
        let t = op.invoke_ns as f64 / 1e9;
        let (bi, li) = ((t / rb) as usize, (t / lb) as usize);
        let ok = op.served();
        let counts = judged.get(i).copied().unwrap_or(true);
        for idx in [op.node.index(), n] {
            let Some(s) = series.get_mut(idx) else {
                continue;
            };
            if let Some(c) = if ok {
                s.ok.get_mut(bi)
            } else if counts {
                s.err.get_mut(bi)
            } else {
                s.unjudged.get_mut(bi)
            } {
                *c += 1;
            }
            if ok {
                if let Some(v) = s.lat.get_mut(li) {
                    v.push(op.latency_ns() / 1000);
                }
            }
        }
    }
    series
}

/// p50 and p99 per latency bucket of each series (sorting its latencies).
fn percentiles(series: &mut [Series], nl: usize) -> Vec<[Vec<Option<f64>>; 2]> {
    let mut pct: Vec<[Vec<Option<f64>>; 2]> = Vec::with_capacity(series.len());
    for s in series {
        let mut p50 = Vec::with_capacity(nl);
        let mut p99 = Vec::with_capacity(nl);
        for v in &mut s.lat {
            v.sort_unstable();
            p50.push(quantile(v, 0.5));
            p99.push(quantile(v, 0.99));
        }
        pct.push([p50, p99]);
    }
    pct
}

/// The top of the latency axis: the highest p99 (at least 10 ms), rounded up
/// to 1, 2 or 5 times a power of ten.
fn latency_axis_top(pct: &[[Vec<Option<f64>>; 2]]) -> f64 {
    let lat_max = pct
        .iter()
        .flat_map(|[_, p99]| p99.iter().flatten())
        .copied()
        .fold(10.0f64, f64::max);
    let mut hi = 10.0;
    'outer: for e in 1..8 {
        for m in [1.0, 2.0, 5.0] {
            hi = m * 10f64.powi(e);
            if hi >= lat_max {
                break 'outer;
            }
        }
    }
    hi
}

/// Every period with a fault in force, with its start and end.
fn fault_bands(r: &Report, dur: f64) -> Vec<Band<'_>> {
    r.periods
        .iter()
        .enumerate()
        .filter(|(_, p)| p.label != "steady")
        .map(|(i, p)| {
            let start = p.at_ns as f64 / 1e9;
            let end = r.periods.get(i + 1).map_or(dur, |q| q.at_ns as f64 / 1e9);
            (i, start, end.max(start), p.label.as_str())
        })
        .collect()
}

/// Label lanes for fault periods: greedy, first lane with room. Returns the
/// placed labels and how many found no room.
fn place_labels(bands: &[Band<'_>], g: &Geometry) -> (Vec<Label>, usize) {
    let mut lane_end = [f64::NEG_INFINITY; MAX_LANES];
    let mut labels: Vec<Label> = Vec::new();
    let mut hidden_labels = 0usize;
    for &(i, start, _, label) in bands {
        let x0 = g.x(start);
        let full = format!("#{i} {label}");
        let short = format!("#{i}");
        // The full label where a lane has room, else the number alone, else
        // nothing visible: the band is still drawn, with its tooltip.
        let fits = |text: &str, lane_end: &[f64; MAX_LANES]| {
            let w = text_w(text.chars().count());
            let x = x0.min(W - RIGHT - w).max(LEFT);
            lane_end.iter().position(|&e| e <= x).map(|l| (l, x, w))
        };
        let placed = fits(&full, &lane_end)
            .map(|p| (p, full.clone()))
            .or_else(|| fits(&short, &lane_end).map(|p| (p, short.clone())));
        match placed {
            Some(((l, x, w), text)) => {
                lane_end[l] = x + w + 8.0;
                labels.push((l, x, text));
            }
            None => hidden_labels += 1,
        }
    }
    (labels, hidden_labels)
}

fn row_label(s: &mut String, name: &str, y: f64, avail: Option<f64>) {
    let _ = write!(s, "<text class=\"node\" x=\"6\" y=\"{y:.1}\">{name}</text>");
    if let Some(a) = avail {
        let _ = write!(
            s,
            "<text class=\"ax\" x=\"32\" y=\"{y:.1}\"><title>availability while expected to serve</title>{a:.2}%</text>"
        );
    }
}

/// The SVG patterns the timeline fills with: failures not judged (grey
/// hatch) and a node cut off by a partition (orange hatch).
const PATTERNS: &str = "<defs><pattern id=\"unjudged\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"4\" height=\"4\" fill=\"#e0e0e0\"/><rect width=\"2\" height=\"4\" fill=\"#9e9e9e\"/></pattern><pattern id=\"cutoff\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(-45)\"><rect width=\"2\" height=\"6\" fill=\"#e65100\" fill-opacity=\"0.35\"/></pattern></defs>";

/// Served counts up from `mid`; failed ones down: first those judged (solid
/// red), under them those to nodes not expected to serve (grey hatch).
fn rate_bars(s: &mut String, ser: &Series, mid: f64, half: f64, peak: f64, bw: f64) {
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{mid:.1}\" y2=\"{mid:.1}\" stroke=\"#ccc\" stroke-width=\"0.6\"/>",
        W - RIGHT
    );
    let w = (bw - if bw > 3.0 { 0.6 } else { 0.0 }).max(0.3);
    let height = |c: u32| (c as f64 / peak * half).max(0.8);
    let zero = vec![0u32; ser.ok.len()];
    for (counts, below, sign, fill, class) in [
        (&ser.ok, &zero, -1.0, OK, "ok"),
        (&ser.err, &zero, 1.0, ERR, "judged"),
        (&ser.unjudged, &ser.err, 1.0, "url(#unjudged)", "unjudged"),
    ] {
        let mut d = String::new();
        for (i, &c) in counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let h = height(c);
            let base = match below.get(i) {
                Some(&b) if b > 0 => mid + sign * height(b),
                _ => mid,
            };
            let x = LEFT + i as f64 * bw;
            let _ = write!(
                d,
                "M{x:.1},{base:.1}v{:.1}h{w:.1}v{:.1}z",
                sign * h,
                -sign * h
            );
        }
        if !d.is_empty() {
            let _ = write!(s, "<path class=\"{class}\" d=\"{d}\" fill=\"{fill}\"/>");
        }
    }
}

/// p50 and p99 as lines with gaps where no request was served.
fn lat_lines(
    s: &mut String,
    p50: &[Option<f64>],
    p99: &[Option<f64>],
    hi: f64,
    top: f64,
    h: f64,
    lw: f64,
) {
    for (vals, color, width) in [(p99, P99, 1.3), (p50, P50, 1.3)] {
        let mut d = String::new();
        let mut pen_down = false;
        for (i, v) in vals.iter().enumerate() {
            match v {
                Some(ms) => {
                    let x = LEFT + (i as f64 + 0.5) * lw;
                    let y = lat_y(*ms, hi, top, h);
                    let _ = write!(d, "{}{x:.1},{y:.1}", if pen_down { "L" } else { "M" });
                    // A lone point still shows as a short dash.
                    if !pen_down && vals.get(i + 1).is_none_or(|n| n.is_none()) {
                        let _ = write!(d, "h2");
                    }
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        if !d.is_empty() {
            let _ = write!(
                s,
                "<path d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{width}\" stroke-linejoin=\"round\"/>"
            );
        }
    }
}

fn nice_step(dur: f64) -> f64 {
    for s in [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0] {
        if dur / s <= 15.0 {
            return s;
        }
    }
    1200.0
}

fn fmt_t(t: f64) -> String {
    if t == 0.0 {
        "0s".into()
    } else if t < 1.0 {
        format!("{:.0}ms", t * 1000.0)
    } else if t >= 60.0 && (t % 60.0).abs() < 1e-9 {
        format!("{:.0}m", t / 60.0)
    } else {
        format!("{t:.0}s")
    }
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.0}s", ms / 1000.0)
    } else {
        format!("{ms:.0}ms")
    }
}
