//! `rift compare --format html`: one self-contained page (inline CSS and
//! SVG, no script, no external URL). Per plan and metric: every run of both
//! sides as a dot, each side's median as a tick, the interval of the
//! difference of medians as a bar against ±threshold, and the verdict.
//!
//! Renders a [`Comparison`]; decides nothing. Every text that comes from a
//! report is escaped.

use super::compare::{
    closing_line, headings, presence_note, runs_text, side_line, verdict_cell, Comparison,
    MetricDelta, MetricVerdict, NotJudged, PlanComparison,
};
use super::text::esc;
use std::fmt::Write;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.6em}\
table{border-collapse:collapse}td,th{padding:4px 8px;border-bottom:1px solid #ddd;\
vertical-align:middle;text-align:left}th{font-weight:600}\
.num{font-variant-numeric:tabular-nums;white-space:nowrap}\
.warn{color:#8a4b00}.v-regression{color:#b00020;font-weight:700}\
.v-worse{color:#8a4b00}.v-better{color:#1b6e20}.v-same{color:#444}\
.v-unsure{color:#5a4fa0}.v-info{color:#777}\
.verdict{min-width:14em;max-width:22em}.legend span{margin-right:1.2em}svg text{font:10px system-ui,sans-serif;fill:#555}";

const BASE_COLOR: &str = "#3b6fb6";
const NEW_COLOR: &str = "#d9822b";

/// The whole page.
pub fn render(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>rift compare: {}</title><style>{STYLE}</style></head><body>\n",
        esc(&closing_line(c))
    );
    let _ = writeln!(s, "<h1>rift compare: {}</h1>", esc(&closing_line(c)));
    let _ = writeln!(
        s,
        "<p><b style=\"color:{BASE_COLOR}\">base</b> {}<br><b style=\"color:{NEW_COLOR}\">new</b> {}</p>",
        esc(&side_line(&c.base)),
        esc(&side_line(&c.new))
    );
    for w in &c.warnings {
        let _ = writeln!(s, "<p class=\"warn\">note: {}</p>", esc(w));
    }
    let _ = writeln!(
        s,
        "<p class=\"legend\"><span><b style=\"color:{BASE_COLOR}\">●</b> a base run</span>\
<span><b style=\"color:{NEW_COLOR}\">●</b> a new run</span><span>| median</span>\
<span>bar: {:.0}% interval of new − base; dashed: ±threshold</span></p>",
        c.options.confidence * 100.0
    );
    for p in &c.plans {
        plan(&mut s, c, p);
    }
    s.push_str("</body></html>\n");
    s
}

fn plan(s: &mut String, c: &Comparison, p: &PlanComparison) {
    let _ = writeln!(
        s,
        "<h2>{} <small>({} base, {} new runs)</small></h2>",
        esc(&p.plan),
        p.base_runs.len(),
        p.new_runs.len()
    );
    for n in &p.notes {
        let _ = writeln!(s, "<p class=\"warn\">note: {}</p>", esc(n));
    }
    if let Some(note) = presence_note(p) {
        let _ = writeln!(s, "<p>{}</p>", esc(note));
        return;
    }
    let h = headings(c);
    let _ = writeln!(
        s,
        "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>each run</th><th>{}</th><th>{}</th><th>{}</th><th>interval</th></tr>",
        esc(&h[0]),
        esc(&h[1]),
        esc(&h[5]),
        esc(&h[2]),
        esc(&h[3]),
        esc(&h[4])
    );
    for m in &p.metrics {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"verdict {}\">{}</td><td>{}</td><td class=\"num\">{}</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&m.metric),
            runs_text(m),
            class(m.verdict),
            esc(&verdict_cell(m)),
            strip(m),
            esc(&m.base_text),
            esc(&m.new_text),
            esc(&m.delta_text),
            interval(m)
        );
    }
    s.push_str("</table>\n");
}

fn class(v: MetricVerdict) -> &'static str {
    match v {
        MetricVerdict::Regression => "v-regression",
        MetricVerdict::LikelyWorse => "v-worse",
        MetricVerdict::LikelyBetter => "v-better",
        MetricVerdict::Same => "v-same",
        MetricVerdict::Inconclusive { .. } => "v-unsure",
        MetricVerdict::Info { why } => match why {
            NotJudged::Context | NotJudged::NotMeasured | NotJudged::DifferentSchedules => "v-info",
        },
    }
}

const STRIP_W: f64 = 260.0;
const STRIP_H: f64 = 44.0;
const PAD: f64 = 8.0;

/// Maps `lo..hi` onto `PAD..width-PAD`.
fn scale(lo: f64, hi: f64, width: f64) -> impl Fn(f64) -> f64 {
    let span = if hi > lo { hi - lo } else { 1.0 };
    move |v| PAD + (v - lo) / span * (width - 2.0 * PAD)
}

/// Both sides' runs as dots on one axis, medians as ticks.
fn strip(m: &MetricDelta) -> String {
    let all: Vec<f64> = m
        .base_values
        .iter()
        .chain(&m.new_values)
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if all.is_empty() {
        return String::new();
    }
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0))
    };
    let x = scale(lo, hi, STRIP_W);
    let mut s = format!(
        "<svg width=\"{STRIP_W}\" height=\"{STRIP_H}\" viewBox=\"0 0 {STRIP_W} {STRIP_H}\" role=\"img\">"
    );
    let rows = [
        (&m.base_values, m.base.as_ref(), 11.0, BASE_COLOR, "base"),
        (&m.new_values, m.new.as_ref(), 27.0, NEW_COLOR, "new"),
    ];
    for (values, summary, y, color, side) in rows {
        let _ = write!(
            s,
            "<line x1=\"{PAD}\" x2=\"{:.1}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#eee\"/>",
            STRIP_W - PAD
        );
        for v in values.iter().filter(|v| v.is_finite()) {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{y}\" r=\"3\" fill=\"{color}\" fill-opacity=\"0.55\"><title>{side} {}</title></circle>",
                x(*v),
                fmt_num(*v)
            );
        }
        if let Some(sm) = summary {
            let _ = write!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\" stroke=\"{color}\" stroke-width=\"2\"><title>{side} median {3}</title></line>",
                x(sm.median),
                y - 7.0,
                y + 7.0,
                fmt_num(sm.median)
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{PAD}\" y=\"42\">{}</text><text x=\"{:.1}\" y=\"42\" text-anchor=\"end\">{} {}</text></svg>",
        fmt_num(lo),
        STRIP_W - PAD,
        fmt_num(hi),
        esc(m.unit)
    );
    s
}

const DIFF_W: f64 = 180.0;

/// The interval of NEW − BASE against zero and ±threshold.
fn interval(m: &MetricDelta) -> String {
    let Some(d) = &m.difference else {
        return String::new();
    };
    if !d.diff.is_finite() {
        return String::new();
    }
    let t = m.threshold.filter(|t| t.is_finite()).unwrap_or(0.0);
    let mut reach = d.diff.abs().max(t);
    if let Some(ci) = d.ci {
        reach = reach.max(ci.lo.abs()).max(ci.hi.abs());
    }
    if !reach.is_finite() || reach <= 0.0 {
        reach = 1.0;
    }
    let reach = reach * 1.15;
    let x = scale(-reach, reach, DIFF_W);
    let mut s = format!(
        "<svg width=\"{DIFF_W}\" height=\"{STRIP_H}\" viewBox=\"0 0 {DIFF_W} {STRIP_H}\" role=\"img\">"
    );
    let _ = write!(
        s,
        "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"4\" y2=\"34\" stroke=\"#999\"/>",
        x(0.0)
    );
    if t > 0.0 {
        for edge in [-t, t] {
            let _ = write!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"4\" y2=\"34\" stroke=\"#b00020\" stroke-dasharray=\"3,2\"><title>threshold {1}</title></line>",
                x(edge),
                fmt_num(edge)
            );
        }
    }
    let color = match m.verdict {
        MetricVerdict::Regression => "#b00020",
        MetricVerdict::LikelyWorse => "#d9822b",
        MetricVerdict::LikelyBetter => "#1b6e20",
        MetricVerdict::Same | MetricVerdict::Inconclusive { .. } | MetricVerdict::Info { .. } => {
            "#555"
        }
    };
    if let Some(ci) = d.ci {
        let (a, b) = (x(ci.lo), x(ci.hi));
        let _ = write!(
            s,
            "<rect x=\"{a:.1}\" y=\"14\" width=\"{:.1}\" height=\"10\" fill=\"{color}\" fill-opacity=\"0.35\"><title>interval {} .. {}</title></rect>",
            (b - a).max(1.0),
            fmt_num(ci.lo),
            fmt_num(ci.hi)
        );
    }
    let _ = write!(
        s,
        "<circle cx=\"{:.1}\" cy=\"19\" r=\"3.5\" fill=\"{color}\"><title>new − base {}</title></circle>",
        x(d.diff),
        fmt_num(d.diff)
    );
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"42\" text-anchor=\"middle\">0</text></svg>",
        x(0.0)
    );
    s
}

/// A number short enough for an axis label.
fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else {
        // Three significant figures, without trailing zeros.
        let digits = if a >= 10.0 {
            1
        } else if a >= 1.0 || a == 0.0 {
            2
        } else {
            (2 - a.log10().floor() as i32).clamp(2, 6) as usize
        };
        let t = format!("{v:.digits$}");
        let t = if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t
        };
        if t == "-0" {
            "0".into()
        } else {
            t
        }
    }
}
