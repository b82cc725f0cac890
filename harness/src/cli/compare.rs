//! `rift compare BASE NEW`: two runs or result trees, plan by plan, as a
//! table, Markdown or JSON.
//!
//! Must never decide what a regression is: thresholds are parsed here, the
//! comparison is [`crate::report::compare`]'s.

use super::args::CompareArgs;
use super::exit::Exit;
use super::print::{errln, out, outln};
use crate::report::compare::{self, Thresholds};
use std::path::Path;

/// [`Exit::Fail`] on a regression, [`Exit::Invalid`] when either side
/// cannot be loaded.
pub fn compare(args: &CompareArgs) -> Exit {
    let t = Thresholds {
        max_latency_regression: args.max_latency_regression,
        latency_slack_ms: args.latency_slack.as_secs_f64() * 1000.0,
        min_availability_delta: args.min_availability_delta,
        max_recovery_regression: args.max_recovery_regression,
        recovery_slack_s: args.recovery_slack.as_secs_f64(),
        max_throughput_drop: args.max_throughput_drop,
    };
    let load = |p: &Path| {
        compare::load_reports(p).map_err(|e| {
            errln!("error: cannot compare: {e}");
            Exit::Invalid
        })
    };
    let (b, n) = match (load(&args.base), load(&args.new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(exit), _) | (_, Err(exit)) => return exit,
    };
    let c = compare::compare(
        &args.base.display().to_string(),
        &b,
        &args.new.display().to_string(),
        &n,
        &t,
    );
    let text = match args.format.as_str() {
        "md" => compare::render_markdown(&c),
        "json" => compare::render_json(&c),
        _ => compare::render_table(&c),
    };
    out!("{text}");
    if !text.ends_with('\n') {
        outln!();
    }
    if c.regressions > 0 {
        Exit::Fail
    } else {
        Exit::Pass
    }
}
