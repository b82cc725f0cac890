//! `rift run PLAN...`: runs plans against real clusters, prints each plan's
//! table as it finishes, then the aggregate table, and ends with the worst
//! plan's exit code. SIGINT or SIGTERM stops the run cleanly (a second one
//! exits at once with 130).
//!
//! Owns the async runtime, the interrupt handling and what a run prints.
//! Must never decide a verdict or the order of plans: that is
//! [`crate::run::many`]'s, which returns a typed [`RunEnd`] mapped here to
//! an [`Exit`].
//!
//! [`RunEnd`]: crate::run::many::RunEnd

use super::args::RunArgs;
use super::exit::Exit;
use super::plans;
use super::print::{errln, out, outln};
use crate::plan::Overrides;
use crate::report::{aggregate_table, terminal_table, PlanRun};
use crate::run::{many, RunOptions};
use std::path::{Path, PathBuf};

/// Runs every plan of `args` in turn (see [`many::run_many`]).
pub fn run(args: RunArgs) -> Exit {
    let RunArgs {
        plans,
        out,
        seed,
        label,
        duration,
        network,
        progress,
        repeat,
        seeds,
        fail_fast,
        open,
    } = args;
    let repeat = many::Repeat {
        times: repeat as usize,
        seeds,
    };
    // What a replay of one seed needs besides the plan and the seed.
    let mut replay_flags = String::new();
    if let Some(n) = network {
        replay_flags.push_str(&format!(" --network {n}"));
    }
    if let Some(d) = duration {
        replay_flags.push_str(&format!(" --duration {}", crate::plan::format_duration(d)));
    }
    let opts = RunOptions {
        out,
        seed,
        label,
        duration,
        progress,
        sample_node_program: None,
    };
    // The network is part of what validation checks, so it is applied to
    // the plans as they load; each validated plan carries it.
    let plans = match plans::load(&plans, &Overrides { network }) {
        Ok(p) => p,
        Err(exit) => return exit,
    };
    // One thread: every cycle rift spends is taken from the nodes it drives
    // (on a 2-core CI machine, one of the two), and a single-threaded loop
    // wakes no other thread per request or per proxied message.
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
    let outcome = rt.block_on(async {
        let (abort_tx, abort_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_interrupt().await;
            errln!(
                "rift: interrupted; stopping nodes and writing a partial report (again to force)"
            );
            let _ = abort_tx.send(true);
            wait_for_interrupt().await;
            // Exiting skips destructors: remove the runs' cgroups first.
            crate::cgroup::remove_all_now();
            std::process::exit(i32::from(Exit::Interrupted.code()));
        });
        many::run_many(&plans, &opts, repeat, fail_fast, abort_rx, |r| {
            print_plan_run(r, open)
        })
        .await
    });
    if outcome.runs.len() > 1 {
        outln!("\nall plans:");
        out!("{}", aggregate_table(&outcome.runs));
    }
    for r in &outcome.repeated {
        outln!("\nrepeated:");
        out!("{}", r.table(&replay_flags));
    }
    let exit = Exit::from(outcome.end);
    if let Err(e) = many::write_aggregate(&opts.out, &outcome.runs) {
        errln!("error: {e}");
        return exit.max(Exit::CannotRun);
    }
    exit
}

fn print_plan_run(run: &PlanRun, open: bool) {
    match run {
        PlanRun::Ran { report: r, run_dir } => {
            outln!("\n{}: {}", r.plan.name, r.outcome_word());
            out!("{}", terminal_table(r));
            let page = absolute(&run_dir.join("report.html"));
            outln!("  report: {}", file_url(&page));
            if open {
                open_in_browser(&page);
            }
        }
        PlanRun::CannotRun {
            plan,
            error,
            log_tail,
        } => {
            errln!("error: {plan}: cannot run: {error}");
            if let Some(tail) = log_tail {
                errln!("last lines of the node's log:");
                for line in tail.lines() {
                    errln!("  | {line}");
                }
            }
        }
        PlanRun::Skipped { plan, reason } => outln!("\n{plan}: skipped ({reason})"),
    }
}

/// `path` made absolute against the working directory (as it is, when that
/// cannot be read).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The `file://` URL of an absolute path, with the characters a URL cannot
/// hold percent-encoded.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                url.push(char::from(*b))
            }
            other => url.push_str(&format!("%{other:02X}")),
        }
    }
    url
}

/// `--open`: hands the page to `xdg-open`; says so when it cannot, and
/// never fails the run for it.
fn open_in_browser(page: &Path) {
    match std::process::Command::new("xdg-open")
        .arg(page)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        // Not waited for: a browser may keep it running.
        Ok(_child) => {}
        Err(e) => errln!(
            "rift: could not open {} (xdg-open: {e}); open the URL above by hand",
            page.display()
        ),
    }
}

pub(super) async fn wait_for_interrupt() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_url_is_absolute_and_escaped() {
        assert_eq!(
            file_url(Path::new("/tmp/my results/r#1/report.html")),
            "file:///tmp/my%20results/r%231/report.html"
        );
        let page = absolute(Path::new("results/p/report.html"));
        assert!(page.is_absolute(), "{}", page.display());
        assert!(file_url(&page).starts_with("file:///"));
    }
}
