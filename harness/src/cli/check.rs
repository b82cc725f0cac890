//! `rift check PATH`: the verdicts of every checker the recorded data can
//! feed, without a cluster.
//!
//! Owns how a recorded run is found on disk (run directory or history file,
//! optional final state) and how the verdicts are printed. Must never judge
//! an operation itself: verdicts come from [`crate::check`].

use super::args::CheckArgs;
use super::exit::Exit;
use super::print::{errln, outln};
use crate::check::verdict::Verdict;
use crate::check::{self, FinalState};
use crate::report::verdict_word;
use std::path::Path;

/// [`Exit::Pass`] when every checker passes, [`Exit::Fail`] when one fails
/// or cannot decide (or there is nothing to check), [`Exit::Invalid`] on
/// bad input.
pub fn check(args: &CheckArgs) -> Exit {
    let path = args.path.as_path();
    let final_reads = args.final_reads.as_deref();
    let (history, final_path) = if path.is_dir() {
        let f = path.join("final.json");
        (
            path.join("history.jsonl"),
            final_reads
                .map(Path::to_path_buf)
                .or(f.is_file().then_some(f)),
        )
    } else {
        (path.to_path_buf(), final_reads.map(Path::to_path_buf))
    };
    let loaded = crate::history::read_history(&history).and_then(|ops| {
        let fin = match &final_path {
            Some(p) => check::read_final_state(p)?,
            None => FinalState::default(),
        };
        Ok((ops, fin))
    });
    let (ops, fin) = match loaded {
        Ok(x) => x,
        Err(e) => {
            errln!("error: {e}");
            return Exit::Invalid;
        }
    };
    let results = check::run_checkers(&check::feedable(&ops, &fin), &ops, &fin);
    outln!("{}: {} operations", history.display(), ops.len());
    if results.is_empty() {
        outln!("  nothing to check: no key-value operations and no final state");
        return Exit::Fail;
    }
    for r in &results {
        outln!(
            "  {:<18} {:<7} {}",
            r.checker,
            verdict_word(r.verdict),
            r.summary
        );
        for op in r.counterexample.iter().take(10) {
            outln!(
                "      #{} client {} {} {:?} key={} value={} expect={} result={} [{:.3}s..{:.3}s] {:?}",
                op.id,
                op.client,
                op.node,
                op.kind,
                op.key.as_deref().unwrap_or("-"),
                op.value.as_deref().unwrap_or("-"),
                op.expect.as_deref().unwrap_or("-"),
                op.result.as_deref().unwrap_or("-"),
                op.invoke_ns as f64 / 1e9,
                op.complete_ns as f64 / 1e9,
                op.outcome
            );
        }
    }
    if final_path.is_none() {
        outln!("  (no final state: lost_writes and ledger_agreement not run; give --final-reads final.json)");
    }
    let verdict = Verdict::all(results.iter().map(|r| r.verdict));
    outln!("{}", verdict_word(verdict));
    if verdict == Verdict::Pass {
        Exit::Pass
    } else {
        Exit::Fail
    }
}
