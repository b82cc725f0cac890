//! `rift shrink RUN_DIR`: prints the shrink's progress, one line per
//! candidate, and what was written; maps how it ended to an exit code.
//! The search itself is [`crate::shrink`]'s.

use super::args::ShrinkArgs;
use super::exit::Exit;
use super::print::{errln, outln};
use crate::plan::format_duration;
use crate::shrink::{shrink_run, ShrinkEnd, ShrinkError, ShrinkOptions};

/// Shrinks the failed run `args.run_dir` (see [`shrink_run`]).
pub fn shrink(args: &ShrinkArgs) -> Exit {
    let opts = ShrinkOptions {
        run_dir: args.run_dir.clone(),
        need: args.need,
        attempts: args.attempts,
        max_runs: args.max_runs,
        out: args.out.clone(),
        results: args.results.clone(),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return Exit::CannotRun;
        }
    };
    let (abort_tx, abort_rx) = tokio::sync::watch::channel(false);
    rt.spawn(async move {
        super::run::wait_for_interrupt().await;
        errln!("rift: interrupted; stopping the current run and the shrink (again to force)");
        let _ = abort_tx.send(true);
        super::run::wait_for_interrupt().await;
        std::process::exit(i32::from(Exit::Interrupted.code()));
    });
    let mut progress = |line: &str| outln!("{line}");
    match shrink_run(&opts, &rt, abort_rx, &mut progress) {
        Ok(ShrinkEnd::Written(s)) => {
            outln!(
                "\nwrote {}: fails the same way ({}) in {} of {} attempts",
                s.out.display(),
                s.failure,
                s.tally.failed,
                s.tally.ran
            );
            outln!(
                "faults: {} -> {} (fault time {} -> {}); duration {} -> {}; {} runs spent",
                s.faults_before,
                s.faults_after,
                format_duration(s.fault_time_before),
                format_duration(s.fault_time_after),
                format_duration(s.duration_before),
                format_duration(s.duration_after),
                s.runs
            );
            for step in &s.steps {
                outln!("  {step}");
            }
            if !s.smaller() {
                outln!("nothing smaller failed: the plan is the run's schedule as it was");
            }
            if s.exhausted {
                outln!("the budget (--max-runs) ran out: the plan may not be minimal");
            }
            outln!("relative paths in the plan (client programs, scripts) are as in the original: relative to where rift is run");
            Exit::Pass
        }
        Ok(ShrinkEnd::NotReproduced { tally, runs }) => {
            outln!(
                "\nthe original failure did not reproduce: {} of {} attempts failed the same way \
(needed {}); no plan written ({runs} runs spent)",
                tally.failed,
                tally.ran,
                args.need
            );
            Exit::Fail
        }
        Ok(ShrinkEnd::Interrupted { runs }) => {
            errln!("rift: shrink interrupted after {runs} runs; no plan written");
            Exit::Interrupted
        }
        Err(ShrinkError::Input { message }) => {
            errln!("error: {message}");
            Exit::Invalid
        }
        Err(ShrinkError::CannotRun { message }) => {
            errln!("error: {message}");
            Exit::CannotRun
        }
    }
}
