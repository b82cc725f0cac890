//! `rift compare BASE NEW`: every run of each plan on both sides, as a
//! table, Markdown, JSON or one HTML page.
//!
//! Must never decide what a regression is: thresholds are parsed here, the
//! comparison is [`crate::report::compare`]'s.

use super::args::CompareArgs;
use super::exit::Exit;
use super::print::{errln, out, outln};
use crate::report::compare::{self, Options, Thresholds};
use crate::report::compare_html;
use std::path::Path;

/// [`Exit::Fail`] on a regression, [`Exit::Invalid`] when either side
/// cannot be loaded or the output cannot be written.
pub fn compare(args: &CompareArgs) -> Exit {
    let opts = Options {
        thresholds: Thresholds {
            max_latency_regression: args.max_latency_regression,
            latency_slack_ms: args.latency_slack.as_secs_f64() * 1000.0,
            min_availability_delta: args.min_availability_delta,
            max_recovery_regression: args.max_recovery_regression,
            recovery_slack_s: args.recovery_slack.as_secs_f64(),
            max_throughput_drop: args.max_throughput_drop,
        },
        confidence: args.confidence,
        latest: args
            .latest
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        across_schedules: args.across_schedules,
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
        &opts,
    );
    let mut text = match args.format.as_str() {
        "md" => compare::render_markdown(&c),
        "json" => compare::render_json(&c),
        "html" => compare_html::render(&c),
        _ => compare::render_table(&c),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text.as_bytes()) {
                errln!("error: cannot write {}: {e}", path.display());
                return Exit::Invalid;
            }
            outln!("{}", compare::closing_line(&c));
        }
        None => out!("{text}"),
    }
    if c.regressions > 0 {
        Exit::Fail
    } else {
        Exit::Pass
    }
}
