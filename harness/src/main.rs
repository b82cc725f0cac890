//! The `rift` command line: parses arguments, calls the library, maps
//! outcomes to exit codes (0 pass, 1 an expectation failed, 2 invalid plan or
//! arguments, 3 the experiment could not run, 130 interrupted).

use clap::{Parser, Subcommand};
use rift::check::verdict::Verdict;
use rift::plan::{self, Plan};
use rift::report::verdict_word;
use rift::run::{many, ProgressMode, RunOptions};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

// Output that outlives its reader: `rift run … | head` must not panic (the
// std print macros do on a closed pipe) and must still stop its nodes and
// write its report, so write errors on stdout and stderr are ignored.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const EXIT_FAIL: u8 = 1;
const EXIT_INVALID: u8 = 2;
const EXIT_CANNOT_RUN: u8 = 3;
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser)]
#[command(
    name = "rift",
    version,
    about = "Chaos-testing harness for real multi-process clusters"
)]
#[command(
    after_help = "Exit codes: 0 every expectation held, 1 an expectation failed, \
2 invalid plan or arguments, 3 the experiment could not run, 130 interrupted."
)]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run experiment plans against real clusters.
    Run {
        /// Plan files (TOML).
        #[arg(required = true)]
        plans: Vec<PathBuf>,
        /// Results root: runs go to OUT/<plan>/<run-id>/.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Seed for every random choice (overrides the plan's).
        #[arg(long)]
        seed: Option<u64>,
        /// Build label recorded in the report, for comparing builds.
        #[arg(long)]
        label: Option<String>,
        /// Override the plan's duration (e.g. 10s, 2m).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Progress display: auto (bar on a terminal), lines or quiet.
        #[arg(long, default_value = "auto", value_parser = parse_progress)]
        progress: ProgressMode,
        /// Stop at the first plan that does not pass; the rest are skipped.
        #[arg(long)]
        fail_fast: bool,
    },
    /// Write summary.md, junit.xml and report.html of a run again from its
    /// report.json and history.jsonl.
    Report {
        /// Run directories (results/<plan>/<run-id> or results/<plan>/latest).
        #[arg(required = true)]
        run_dirs: Vec<PathBuf>,
    },
    /// Compare two runs or result trees plan by plan; exit 1 on a regression.
    #[command(
        after_help = "BASE and NEW are report.json files, run directories, or results trees \
(the newest run of each plan is used; plans are matched by name).\n\
Exit codes: 0 no regression, 1 a regression, 2 bad input or incompatible report versions."
    )]
    Compare {
        base: PathBuf,
        new: PathBuf,
        /// Output: table (terminal), md (Markdown) or json.
        #[arg(long, default_value = "table", value_parser = ["table", "md", "json"])]
        format: String,
        /// Largest relative increase of p50/p99 latency that is not a regression.
        #[arg(long, default_value = "20%", value_parser = parse_fraction)]
        max_latency_regression: f64,
        /// Latency increases below this are noise (e.g. 2ms).
        #[arg(long, default_value = "2ms", value_parser = parse_duration)]
        latency_slack: Duration,
        /// Smallest change of availability accepted, in percentage points (e.g. -0.5%).
        #[arg(long, default_value = "-0.5%", value_parser = parse_fraction, allow_hyphen_values = true)]
        min_availability_delta: f64,
        /// Largest relative increase of recovery times that is not a regression.
        #[arg(long, default_value = "50%", value_parser = parse_fraction)]
        max_recovery_regression: f64,
        /// Recovery increases below this are noise (e.g. 500ms).
        #[arg(long, default_value = "500ms", value_parser = parse_duration)]
        recovery_slack: Duration,
        /// Largest relative drop of ops/s that is not a regression.
        #[arg(long, default_value = "20%", value_parser = parse_fraction)]
        max_throughput_drop: f64,
    },
    /// Check plans without running them (a directory means every `*.toml`
    /// in it, as for `run`).
    Validate {
        #[arg(required = true)]
        plans: Vec<PathBuf>,
    },
    /// Re-run the checkers on a recorded history, without a cluster.
    ///
    /// PATH is a history.jsonl file or a run directory (its history.jsonl and,
    /// when present, final.json). linearizable runs when the history has
    /// key-value operations; lost_writes and ledger_agreement when final
    /// state is given.
    Check {
        path: PathBuf,
        /// The state read from every node after the run (final.json).
        #[arg(long = "final-reads", value_name = "FILE")]
        final_reads: Option<PathBuf>,
    },
    /// List the plans in a directory with their descriptions.
    List {
        #[arg(default_value = "experiments")]
        dir: PathBuf,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    plan::parse_duration(s)
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    rift::report::compare::parse_fraction(s)
}

fn parse_progress(s: &str) -> Result<ProgressMode, String> {
    match s {
        "auto" => Ok(ProgressMode::Auto),
        "lines" => Ok(ProgressMode::Lines),
        "quiet" => Ok(ProgressMode::Quiet),
        other => Err(format!("expected auto, lines or quiet, found `{other}`")),
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // rift carries the sample node and re-executes itself as one, so a plan
    // with no command needs nothing else installed.
    if args.get(1).is_some_and(|a| a == "sample-node") {
        let node_args = args.iter().take(1).chain(args.iter().skip(2)).cloned();
        return sample_node::cli_main(node_args);
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_INVALID } else { 0 });
        }
    };
    init_logging(cli.verbose);
    match cli.command {
        Command::Validate { plans } => validate(&plans),
        Command::List { dir } => list(&dir),
        Command::Check { path, final_reads } => check_recorded(&path, final_reads.as_deref()),
        Command::Run {
            plans,
            out,
            seed,
            label,
            duration,
            progress,
            fail_fast,
        } => {
            let opts = RunOptions {
                out,
                seed,
                label,
                duration,
                progress,
                sample_node_program: None,
            };
            run_plans(&plans, &opts, fail_fast)
        }
        Command::Report { run_dirs } => regenerate(&run_dirs),
        Command::Compare {
            base,
            new,
            format,
            max_latency_regression,
            latency_slack,
            min_availability_delta,
            max_recovery_regression,
            recovery_slack,
            max_throughput_drop,
        } => {
            let t = rift::report::compare::Thresholds {
                max_latency_regression,
                latency_slack_ms: latency_slack.as_secs_f64() * 1000.0,
                min_availability_delta,
                max_recovery_regression,
                recovery_slack_s: recovery_slack.as_secs_f64(),
                max_throughput_drop,
            };
            compare(&base, &new, &format, &t)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // A log line that cannot be written is dropped; by default the
    // subscriber would report it with `eprintln!`, which panics when
    // stderr is a closed pipe.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .try_init();
}

fn load_all(paths: &[PathBuf]) -> Result<Vec<Plan>, ExitCode> {
    let mut plans = Vec::new();
    let mut bad = false;
    for p in paths {
        match plan::load(p) {
            Ok(plan) => plans.push(plan),
            Err(e) => {
                // One line per problem, each marked, so none reads as context.
                for one in e.errors() {
                    errln!("error: {one}");
                }
                bad = true;
            }
        }
    }
    if bad {
        Err(ExitCode::from(EXIT_INVALID))
    } else {
        Ok(plans)
    }
}

fn validate(paths: &[PathBuf]) -> ExitCode {
    let paths = match many::expand_plan_paths(paths) {
        Ok(p) => p,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    match load_all(&paths) {
        Ok(plans) => {
            for p in plans {
                outln!(
                    "ok: {} ({}): {} nodes, {} steps, {:?}",
                    p.path.display(),
                    p.name,
                    p.cluster.size,
                    p.steps.len(),
                    p.duration
                );
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `rift check`: verdicts of every checker the recorded data can feed;
/// exit 0 when all pass, 1 when one fails or cannot decide, 2 on bad input.
fn check_recorded(path: &Path, final_reads: Option<&Path>) -> ExitCode {
    use rift::check::{self, FinalState};
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
    let loaded = rift::history::read_history(&history).and_then(|ops| {
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
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let results = check::run_checkers(&check::feedable(&ops, &fin), &ops, &fin);
    outln!("{}: {} operations", history.display(), ops.len());
    if results.is_empty() {
        outln!("  nothing to check: no key-value operations and no final state");
        return ExitCode::from(EXIT_FAIL);
    }
    for r in &results {
        outln!(
            "  {:<18} {:<7} {}",
            r.checker.name(),
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
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAIL)
    }
}

fn list(dir: &Path) -> ExitCode {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errln!("error: cannot read {}: {e}", dir.display());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for f in files {
        match plan::load(&f) {
            Ok(p) => outln!("{:<24} {}", p.name, p.description),
            Err(e) => outln!("{:<24} (invalid: {e})", f.display()),
        }
    }
    ExitCode::SUCCESS
}

fn run_plans(paths: &[PathBuf], opts: &RunOptions, fail_fast: bool) -> ExitCode {
    let paths = match many::expand_plan_paths(paths) {
        Ok(p) => p,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let plans = match load_all(&paths) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_CANNOT_RUN);
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
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        });
        many::run_many(&plans, opts, fail_fast, abort_rx, print_plan_run).await
    });
    if outcome.runs.len() > 1 {
        outln!("\nall plans:");
        out!("{}", rift::report::aggregate_table(&outcome.runs));
    }
    if let Err(e) = many::write_aggregate(&opts.out, &outcome.runs) {
        errln!("error: {e}");
        return ExitCode::from(outcome.exit_code.max(EXIT_CANNOT_RUN));
    }
    ExitCode::from(outcome.exit_code)
}

fn print_plan_run(run: &rift::report::PlanRun) {
    use rift::report::PlanRun;
    match run {
        PlanRun::Ran { report: r, run_dir } => {
            outln!("\n{}: {}", r.plan.name, verdict_word(r.verdict));
            out!("{}", rift::report::terminal_table(r));
            outln!("  report: {}", run_dir.join("report.html").display());
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

fn regenerate(dirs: &[PathBuf]) -> ExitCode {
    let mut code = 0u8;
    for d in dirs {
        match rift::report::Report::regenerate(d) {
            Ok(r) => outln!(
                "{}: {} -> {}",
                r.plan.name,
                verdict_word(r.verdict),
                d.join("report.html").display()
            ),
            Err(e) => {
                errln!("error: {e}");
                code = EXIT_INVALID;
            }
        }
    }
    ExitCode::from(code)
}

fn compare(
    base: &Path,
    new: &Path,
    format: &str,
    t: &rift::report::compare::Thresholds,
) -> ExitCode {
    use rift::report::compare;
    let load = |p: &Path| {
        compare::load_reports(p).map_err(|e| {
            errln!("error: cannot compare: {e}");
            ExitCode::from(EXIT_INVALID)
        })
    };
    let (b, n) = match (load(base), load(new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let c = compare::compare(
        &base.display().to_string(),
        &b,
        &new.display().to_string(),
        &n,
        t,
    );
    let text = match format {
        "md" => compare::render_markdown(&c),
        "json" => compare::render_json(&c),
        _ => compare::render_table(&c),
    };
    out!("{text}");
    if !text.ends_with('\n') {
        outln!();
    }
    ExitCode::from(if c.regressions > 0 { EXIT_FAIL } else { 0 })
}

async fn wait_for_interrupt() {
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
