//! Small SVG pictures of a run's operations: each checker counterexample as
//! a history diagram (one lane per client, each operation a bar from invoke
//! to complete), and every operation's latency over time coloured by
//! outcome. Pure string work over recorded operations; no script needed.

use super::text::esc;
use crate::check::CheckerId;
use crate::history::{Op, OpKind, Outcome};
use std::collections::BTreeMap;
use std::fmt::Write;

/// `∅` for an absent value, the value otherwise.
fn shown(v: Option<&str>) -> String {
    v.map_or_else(|| "∅".to_string(), str::to_string)
}

/// What an operation did, in a few words: `write k3 := 7`, `read k3 → ∅`.
pub fn label(op: &Op) -> String {
    let key = op.key.as_deref().unwrap_or("");
    let values = || {
        op.values
            .as_ref()
            .map_or_else(|| "?".to_string(), |v| format!("{{{}}}", v.join(", ")))
    };
    let seen = match op.outcome {
        Outcome::Ok => true,
        Outcome::Fail | Outcome::Unknown => false,
    };
    match op.kind {
        OpKind::Read if seen => format!("read {key} → {}", shown(op.result.as_deref())),
        OpKind::Read => format!("read {key}"),
        OpKind::Write => format!("write {key} := {}", shown(op.value.as_deref())),
        OpKind::Cas => format!(
            "cas {key} {} → {}{}",
            shown(op.expect.as_deref()),
            shown(op.value.as_deref()),
            match (op.outcome, op.result.as_deref()) {
                (Outcome::Fail, Some(now)) => format!(" (saw {now})"),
                (Outcome::Fail, None) | (Outcome::Ok | Outcome::Unknown, _) => String::new(),
            }
        ),
        OpKind::Append => format!("append {key} {}", shown(op.value.as_deref())),
        OpKind::Add => format!("add {key} {}", shown(op.value.as_deref())),
        OpKind::ReadSet | OpKind::ReadList if seen => format!("read {key} → {}", values()),
        OpKind::ReadSet | OpKind::ReadList => format!("read {key}"),
        OpKind::Probe => "probe".to_string(),
    }
}

fn outcome_colour(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "#2e7d32",
        Outcome::Fail => "#c62828",
        Outcome::Unknown => "#ef6c00",
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Unknown => "unknown",
    }
}

/// One sentence saying what is impossible about a counterexample.
pub fn impossible(checker: CheckerId, ops: &[Op]) -> String {
    match checker {
        CheckerId::Linearizable => {
            // The last observation is the one no order can explain.
            let observed = ops.iter().rev().find(|o| {
                matches!(o.kind, OpKind::Read | OpKind::Cas)
                    && match o.outcome {
                        Outcome::Ok => o.kind == OpKind::Read,
                        Outcome::Fail => o.kind == OpKind::Cas,
                        Outcome::Unknown => false,
                    }
            });
            match observed {
                Some(o) => format!(
                    "No order of these {} operations that keeps each one inside its interval explains op #{} ({}): the key could not hold that value at any instant of it.",
                    ops.len(),
                    o.id,
                    label(o)
                ),
                None => format!(
                    "No order of these {} operations that keeps each one inside its interval is a legal register history.",
                    ops.len()
                ),
            }
        }
        CheckerId::LostWrites => "An acknowledged write is missing from what the nodes hold after the final heal.".to_string(),
        CheckerId::LedgerAgreement => "The nodes' chains disagree, or an acknowledged transaction is missing from them.".to_string(),
        CheckerId::Set => "An acknowledged add is missing from reads that began after it completed, up to the final reads.".to_string(),
        CheckerId::ListAppend => "These reads cannot all be prefixes of one order of the key's appends.".to_string(),
    }
}

/// A history diagram of `ops`: one lane per client, time left to right.
pub fn history_svg(ops: &[Op]) -> String {
    if ops.is_empty() {
        return String::new();
    }
    let t0 = ops.iter().map(|o| o.invoke_ns).min().unwrap_or(0);
    let t1 = ops
        .iter()
        .map(|o| o.complete_ns)
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let lanes: BTreeMap<u32, usize> = {
        let mut clients: Vec<u32> = ops.iter().map(|o| o.client).collect();
        clients.sort_unstable();
        clients.dedup();
        clients
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c, i))
            .collect()
    };
    let (left, width, lane_h) = (90.0, 760.0, 34.0);
    let height = 24.0 + lanes.len() as f64 * lane_h;
    let x = |t: u64| left + (t - t0) as f64 / (t1 - t0) as f64 * width;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"history\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"history diagram\">",
        left + width + 20.0
    );
    for (client, lane) in &lanes {
        let y = 8.0 + *lane as f64 * lane_h;
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{}\" font-size=\"11\">client {client}</text><line x1=\"{left}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#ddd\"/>",
            y + 14.0,
            left + width,
            y + 18.0,
            y + 18.0
        );
    }
    for op in ops {
        let lane = lanes.get(&op.client).copied().unwrap_or(0);
        let y = 8.0 + lane as f64 * lane_h;
        let (a, b) = (
            x(op.invoke_ns),
            x(op.complete_ns).max(x(op.invoke_ns) + 3.0),
        );
        let colour = outcome_colour(op.outcome);
        let _ = write!(
            s,
            "<g><title>#{} {} · {} · {:.4}s → {:.4}s on {}</title><rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\" fill=\"{colour}\" fill-opacity=\"0.35\" stroke=\"{colour}\"/><text x=\"{a:.1}\" y=\"{:.1}\" font-size=\"10\">#{} {} [{}]</text></g>",
            op.id,
            esc(&label(op)),
            outcome_name(op.outcome),
            op.invoke_ns as f64 / 1e9,
            op.complete_ns as f64 / 1e9,
            op.node,
            y + 14.0,
            b - a,
            y + 10.0,
            op.id,
            esc(&label(op)),
            outcome_name(op.outcome)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{}\" font-size=\"10\" fill=\"#555\">{:.4}s</text><text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\" text-anchor=\"end\">{:.4}s</text></svg>",
        height - 2.0,
        t0 as f64 / 1e9,
        left + width,
        height - 2.0,
        t1 as f64 / 1e9
    );
    s
}

/// The most points the latency plot draws per outcome.
pub const MAX_POINTS: usize = 4000;

/// Every operation's latency (log scale) over the run, coloured by
/// outcome, over the run's periods (`(start_s, end_s, faulty)`).
pub fn latency_svg(ops: &[Op], duration_s: f64, periods: &[(f64, f64, bool)]) -> String {
    let (left, width, top, plot_h) = (60.0, 900.0, 22.0, 220.0);
    let dur = duration_s.max(1e-3);
    let x = |s: f64| left + (s / dur).clamp(0.0, 1.0) * width;
    // 0.1 ms .. 10 s, log10.
    let (lo, hi) = (-4.0_f64, 1.0_f64);
    let y = |secs: f64| {
        let l = secs.max(1e-4).log10().clamp(lo, hi);
        top + plot_h - (l - lo) / (hi - lo) * plot_h
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"latency\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"latency of every operation by outcome\">",
        left + width + 20.0,
        top + plot_h + 36.0
    );
    for &(a, b, faulty) in periods {
        if faulty {
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{plot_h}\" fill=\"#fff3b0\"/>",
                x(a),
                (x(b) - x(a)).max(1.0)
            );
        }
    }
    for (label, secs) in [
        ("0.1ms", 1e-4),
        ("1ms", 1e-3),
        ("10ms", 1e-2),
        ("100ms", 0.1),
        ("1s", 1.0),
        ("10s", 10.0),
    ] {
        let yy = y(secs);
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{label}</text>",
            left + width,
            left - 4.0,
            yy + 3.0
        );
    }
    // Unknowns and failures drawn last, so they stay visible over the oks.
    // A long run is thinned to at most MAX_POINTS points per outcome (every
    // k-th operation), so the page stays small; the caption says so.
    for pass in [Outcome::Ok, Outcome::Fail, Outcome::Unknown] {
        let colour = outcome_colour(pass);
        let of_kind = ops.iter().filter(|o| o.outcome == pass).count();
        let every = of_kind.div_ceil(MAX_POINTS).max(1);
        for op in ops.iter().filter(|o| o.outcome == pass).step_by(every) {
            let t = op.invoke_ns as f64 / 1e9;
            let lat = op.complete_ns.saturating_sub(op.invoke_ns) as f64 / 1e9;
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.6\" fill=\"{colour}\" fill-opacity=\"0.6\"/>",
                x(t),
                y(lat)
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{}\" font-size=\"10\">0s</text><text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{dur:.0}s (time of invocation)</text><text x=\"{}\" y=\"{}\" font-size=\"10\">latency (log)</text>",
        top + plot_h + 14.0,
        left + width,
        top + plot_h + 14.0,
        4.0,
        12.0
    );
    let _ = write!(
        s,
        "<g font-size=\"11\"><circle cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">ok</text><circle cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">fail</text><circle cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">unknown (timeout)</text><rect x=\"{}\" y=\"{}\" width=\"10\" height=\"8\" fill=\"#fff3b0\"/><text x=\"{}\" y=\"{}\">fault in force</text></g></svg>",
        left + 10.0, top + plot_h + 28.0, outcome_colour(Outcome::Ok), left + 18.0, top + plot_h + 32.0,
        left + 60.0, top + plot_h + 28.0, outcome_colour(Outcome::Fail), left + 68.0, top + plot_h + 32.0,
        left + 110.0, top + plot_h + 28.0, outcome_colour(Outcome::Unknown), left + 118.0, top + plot_h + 32.0,
        left + 230.0, top + plot_h + 24.0, left + 244.0, top + plot_h + 32.0
    );
    s
}

/// Operations per kind and outcome, as a table.
pub fn throughput_table(ops: &[Op], duration_s: f64) -> String {
    let mut counts: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    for op in ops {
        let kind = serde_json::to_value(op.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let slot = match op.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Unknown => 2,
        };
        counts.entry(kind).or_default()[slot] += 1;
    }
    let per_s = |n: u64| n as f64 / duration_s.max(1e-3);
    let mut t = String::from(
        "<table><tr><th>kind</th><th>ok</th><th>fail</th><th>unknown</th><th>ok/s</th><th>all/s</th></tr>",
    );
    for (kind, [ok, fail, unknown]) in &counts {
        let _ = write!(
            t,
            "<tr><td>{}</td><td class=\"num\">{ok}</td><td class=\"num\">{fail}</td><td class=\"num\">{unknown}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td></tr>",
            esc(kind),
            per_s(*ok),
            per_s(ok + fail + unknown)
        );
    }
    t.push_str("</table>");
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;

    fn op(id: u64, client: u32, kind: OpKind, span: (u64, u64), outcome: Outcome) -> Op {
        Op {
            id,
            client,
            node: NodeId(0),
            kind,
            key: Some("k1".into()),
            value: None,
            expect: None,
            invoke_ns: span.0,
            complete_ns: span.1,
            outcome,
            result: None,
            values: None,
            status: None,
            error: None,
        }
    }

    #[test]
    fn absent_values_show_as_empty_set_signs_and_refused_cas_says_what_it_saw() {
        let read = op(1, 0, OpKind::Read, (0, 10), Outcome::Ok);
        assert_eq!(label(&read), "read k1 → ∅");
        let mut cas = op(2, 1, OpKind::Cas, (5, 20), Outcome::Fail);
        cas.expect = Some("1".into());
        cas.value = Some("2".into());
        cas.result = Some("3".into());
        assert_eq!(label(&cas), "cas k1 1 → 2 (saw 3)");
        cas.expect = None;
        cas.result = None;
        assert_eq!(label(&cas), "cas k1 ∅ → 2");
    }

    #[test]
    fn a_history_diagram_has_a_lane_per_client_and_a_bar_per_operation() {
        let mut w = op(7, 3, OpKind::Write, (1_000, 2_000), Outcome::Ok);
        w.value = Some("1".into());
        let mut r = op(9, 5, OpKind::Read, (3_000, 4_000), Outcome::Ok);
        r.result = Some("2".into());
        let ops = [w, r];
        let svg = history_svg(&ops);
        assert!(
            svg.contains("client 3") && svg.contains("client 5"),
            "{svg}"
        );
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("#7 write k1 := 1") && svg.contains("#9 read k1 → 2"));
        let why = impossible(CheckerId::Linearizable, &ops);
        assert!(why.contains("op #9 (read k1 → 2)"), "{why}");
        assert_eq!(history_svg(&[]), "");
    }

    #[test]
    fn latency_plot_draws_every_operation_and_throughput_counts_by_outcome() {
        let ops = [
            op(1, 0, OpKind::Read, (0, 1_000_000), Outcome::Ok),
            op(
                2,
                0,
                OpKind::Read,
                (2_000_000, 1_002_000_000),
                Outcome::Unknown,
            ),
            op(3, 1, OpKind::Write, (3_000_000, 4_000_000), Outcome::Fail),
        ];
        let svg = latency_svg(&ops, 2.0, &[(0.5, 1.0, true)]);
        assert_eq!(
            svg.matches("<circle cx").count(),
            3 + 3,
            "3 points and 3 legend dots"
        );
        assert!(svg.contains("#fff3b0"));
        let t = throughput_table(&ops, 2.0);
        assert!(t.contains("<td>read</td><td class=\"num\">1</td><td class=\"num\">0</td><td class=\"num\">1</td>"), "{t}");
    }
}
