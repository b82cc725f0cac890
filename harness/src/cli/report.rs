//! `rift report RUN_DIR...`: writes summary.md, junit.xml and report.html
//! of recorded runs again from their report.json and history.jsonl.
//!
//! Must never re-judge a run: the recorded verdicts are kept.

use super::args::ReportArgs;
use super::exit::Exit;
use super::print::{errln, outln};
use crate::report::Report;

/// [`Exit::Invalid`] when any run directory could not be regenerated (the
/// others still are).
pub fn report(args: &ReportArgs) -> Exit {
    let mut exit = Exit::Pass;
    for d in &args.run_dirs {
        match Report::regenerate(d) {
            Ok(r) => outln!(
                "{}: {} -> {}",
                r.plan.name,
                r.outcome_word(),
                d.join("report.html").display()
            ),
            Err(e) => {
                errln!("error: {e}");
                exit = Exit::Invalid;
            }
        }
    }
    exit
}
