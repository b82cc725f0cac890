//! The command line of `rift`: clap argument structs, value parsers, and
//! [`parse`], which prints clap's own errors, help and version.
//!
//! Owns the syntax of every subcommand (names, flags, defaults, help text).
//! Must never run a command: the structs go to the command's module in
//! [`crate::cli`].

use super::exit::Exit;
use crate::plan::{self, NetworkMode};
use crate::run::many::SeedMode;
use crate::run::ProgressMode;
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

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
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

// The argument structs below carry no doc comments of their own: a
// subcommand's help text is the doc comment of its `Command` variant.

#[derive(Subcommand)]
pub enum Command {
    /// Run experiment plans against real clusters.
    Run(RunArgs),
    /// Write summary.md, junit.xml and report.html of a run again from its
    /// report.json and history.jsonl.
    Report(ReportArgs),
    /// Compare two runs or result trees plan by plan; exit 1 on a regression.
    #[command(
        after_help = "BASE and NEW are report.json files, run directories, a plan's results directory \
or results trees (every run of each plan is used, or the newest N with --latest; plans are \
matched by name). docs/compare.md explains the verdicts.\n\
Exit codes: 0 no regression, 1 a regression, 2 bad input or incompatible report versions."
    )]
    Compare(CompareArgs),
    /// Check plans without running them (a directory means every `*.toml`
    /// in it, as for `run`).
    Validate(ValidateArgs),
    /// Re-run the checkers on a recorded history, without a cluster.
    ///
    /// PATH is a history.jsonl file or a run directory (its history.jsonl and,
    /// when present, final.json). linearizable runs when the history has
    /// key-value operations; lost_writes and ledger_agreement when final
    /// state is given.
    Check(CheckArgs),
    /// List the plans under a directory (at any depth) with their
    /// descriptions; bug plans and plans of real systems are marked.
    List(ListArgs),
    /// Check the plan's client program (`[workload] client`) against a live
    /// cluster: a short scripted session of every operation of its model.
    #[command(after_help = "Prints one line per problem, or `client OK`.\n\
Exit codes: 0 the client is OK, 1 the client is wrong, 2 invalid plan or no client, \
3 the cluster could not start.")]
    ClientTest(ClientTestArgs),
    /// Turn a failed run into the smallest plan that still fails the same
    /// way: re-runs it with fewer and shorter faults.
    #[command(
        after_help = "RUN_DIR is a run directory (results/<plan>/<run-id>) of a run that failed.\n\
Exit codes: 0 a failing plan was written, 1 the failure did not reproduce (no plan written), \
2 bad input (no report, a passed or aborted run), 3 could not run."
    )]
    Shrink(ShrinkArgs),
    /// Remove what runs whose rift process is gone left behind: their
    /// cgroups (thawed, any process still inside SIGKILLed). A cgroup whose
    /// rift is alive is never touched.
    #[command(after_help = "Prints one line per thing removed and a total.\n\
Exit codes: 0 done, 3 something could not be removed.")]
    Clean,
    /// (For tests and benches.) Mount a faulty disk at MOUNTPOINT over
    /// BACKING, print `ready`, and serve it until SIGTERM or SIGINT.
    #[command(hide = true)]
    FaultyDisk(FaultyDiskArgs),
}

// `rift faulty-disk` (hidden).
#[derive(Args)]
pub struct FaultyDiskArgs {
    pub mountpoint: PathBuf,
    pub backing: PathBuf,
    /// The mount's label (its fsname) [default: rift-test.<pid>-disk].
    #[arg(long)]
    pub label: Option<String>,
    /// Seed of torn prefixes and corrupted bits.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

// `rift run`.
#[derive(Args)]
pub struct RunArgs {
    /// Plan files (TOML), or directories: a directory runs every `*.toml`
    /// directly inside it, in name order.
    #[arg(required = true, value_name = "PLAN|DIR")]
    pub plans: Vec<PathBuf>,
    /// Results root: runs go to OUT/<plan>/<run-id>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Seed for every random choice (overrides the plan's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Build label recorded in the report, for comparing builds.
    #[arg(long)]
    pub label: Option<String>,
    /// Override the plan's duration (e.g. 10s, 2m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Run under this network instead of the plan's [cluster] network:
    /// proxy, netns or none. The plan is validated for it, and the report
    /// records it.
    #[arg(long, value_name = "MODE", value_parser = parse_network)]
    pub network: Option<NetworkMode>,
    /// Progress display: auto (bar on a terminal), lines or quiet.
    #[arg(long, default_value = "auto", value_parser = parse_progress)]
    pub progress: ProgressMode,
    /// Run each plan K times, with seeds seed..seed+K-1 (the seed from
    /// --seed, else the plan's, else one random seed, printed), then print a
    /// table of seed, verdict and why each failed, with the command that
    /// replays a failed seed.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub repeat: u32,
    /// With --repeat: consecutive (seed, seed+1, ...) or same (the same seed
    /// every time, to measure how much a run varies by itself).
    #[arg(long, value_name = "MODE", default_value = "consecutive", value_parser = parse_seeds)]
    pub seeds: SeedMode,
    /// Stop at the first plan that does not pass; the rest are skipped.
    #[arg(long)]
    pub fail_fast: bool,
    /// Open each run's report.html with `xdg-open` when the run ends.
    #[arg(long)]
    pub open: bool,
}

// `rift report`.
#[derive(Args)]
pub struct ReportArgs {
    /// Run directories (results/<plan>/<run-id> or results/<plan>/latest).
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
}

// `rift compare`.
#[derive(Args)]
pub struct CompareArgs {
    pub base: PathBuf,
    pub new: PathBuf,
    /// Output: table (terminal), md (Markdown), json, or html (one
    /// self-contained page).
    #[arg(long, default_value = "table", value_parser = ["table", "md", "json", "html"])]
    pub format: String,
    /// Write the output to FILE instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Use only the newest N runs of each plan on each side (default: all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub latest: Option<u64>,
    /// Confidence level of the interval of each difference of medians.
    #[arg(long, default_value = "0.95", value_parser = parse_confidence)]
    pub confidence: f64,
    /// Judge latency, recovery, availability and throughput even when the
    /// sides ran different seeds (different fault schedules).
    #[arg(long)]
    pub across_schedules: bool,
    /// Largest relative increase of p50/p99 latency that is not a regression.
    #[arg(long, default_value = "20%", value_parser = parse_fraction)]
    pub max_latency_regression: f64,
    /// Latency increases below this are noise (e.g. 2ms).
    #[arg(long, default_value = "2ms", value_parser = parse_duration)]
    pub latency_slack: Duration,
    /// Smallest change of availability accepted, in percentage points (e.g. -0.5%).
    #[arg(long, default_value = "-0.5%", value_parser = parse_fraction, allow_hyphen_values = true)]
    pub min_availability_delta: f64,
    /// Largest relative increase of recovery times that is not a regression.
    #[arg(long, default_value = "50%", value_parser = parse_fraction)]
    pub max_recovery_regression: f64,
    /// Recovery increases below this are noise (e.g. 500ms).
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub recovery_slack: Duration,
    /// Largest relative drop of ops/s that is not a regression.
    #[arg(long, default_value = "20%", value_parser = parse_fraction)]
    pub max_throughput_drop: f64,
}

/// A confidence level strictly between 0.5 and 1 (`0.95` or `95%`).
fn parse_confidence(s: &str) -> Result<f64, String> {
    match parse_fraction(s) {
        Ok(v) if v > 0.5 && v < 1.0 => Ok(v),
        Ok(_) => Err(format!(
            "a confidence level is between 0.5 and 1, found `{s}`"
        )),
        Err(e) => Err(e),
    }
}

// `rift validate`.
#[derive(Args)]
pub struct ValidateArgs {
    #[arg(required = true)]
    pub plans: Vec<PathBuf>,
    /// Check the plans for this network instead of their [cluster] network:
    /// proxy, netns or none (as `rift run --network` would run them).
    #[arg(long, value_name = "MODE", value_parser = parse_network)]
    pub network: Option<NetworkMode>,
}

// `rift check`.
#[derive(Args)]
pub struct CheckArgs {
    pub path: PathBuf,
    /// The state read from every node after the run (final.json).
    #[arg(long = "final-reads", value_name = "FILE")]
    pub final_reads: Option<PathBuf>,
}

// `rift client-test`.
#[derive(Args)]
pub struct ClientTestArgs {
    pub plan: PathBuf,
    /// Where the cluster's and the client's logs go: OUT/<plan>/client-test-<id>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
}

// `rift shrink`.
#[derive(Args)]
pub struct ShrinkArgs {
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// A candidate is kept when at least NEED of its attempts fail the same
    /// way as the original run.
    #[arg(long, default_value_t = 2, value_name = "NEED")]
    pub need: usize,
    /// Attempts per candidate (stopped early once decided).
    #[arg(long, default_value_t = 3, value_name = "R")]
    pub attempts: usize,
    /// Runs the whole shrink may spend, the reproduction included.
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub max_runs: usize,
    /// Where the smallest failing plan goes [default: RUN_DIR/shrunk.toml].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Results root of the shrink's own runs [default: RUN_DIR/shrink].
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
}

// `rift list`.
#[derive(Args)]
pub struct ListArgs {
    #[arg(default_value = "experiments")]
    pub dir: PathBuf,
}

/// Parses the command line (`args[0]` is the program). On an error, or on
/// `--help`/`--version`, prints what clap says and returns how to exit:
/// [`Exit::Invalid`] for an error, [`Exit::Pass`] for help and version.
pub fn parse(args: &[OsString]) -> Result<Cli, Exit> {
    Cli::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            Exit::Invalid
        } else {
            Exit::Pass
        }
    })
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    plan::parse_duration(s)
}

fn parse_network(s: &str) -> Result<NetworkMode, String> {
    NetworkMode::from_name(s).ok_or_else(|| format!("expected proxy, netns or none, found `{s}`"))
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    crate::report::compare::parse_fraction(s)
}

fn parse_seeds(s: &str) -> Result<SeedMode, String> {
    SeedMode::from_name(s).ok_or_else(|| format!("expected consecutive or same, found `{s}`"))
}

fn parse_progress(s: &str) -> Result<ProgressMode, String> {
    match s {
        "auto" => Ok(ProgressMode::Auto),
        "lines" => Ok(ProgressMode::Lines),
        "quiet" => Ok(ProgressMode::Quiet),
        other => Err(format!("expected auto, lines or quiet, found `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("rift").chain(args.iter().copied()))
    }

    #[test]
    fn shrink_defaults_to_2_of_3_within_40_runs() {
        let Ok(Cli {
            command: Command::Shrink(s),
            ..
        }) = cli(&["shrink", "results/p/latest"])
        else {
            panic!("shrink should parse");
        };
        assert_eq!((s.need, s.attempts, s.max_runs), (2, 3, 40));
        assert_eq!((s.out, s.results), (None, None));
        let Ok(Cli {
            command: Command::Shrink(s),
            ..
        }) = cli(&[
            "shrink",
            "d",
            "--need",
            "1",
            "--attempts",
            "1",
            "--max-runs",
            "8",
            "--out",
            "x.toml",
        ])
        else {
            panic!("shrink with flags should parse");
        };
        assert_eq!((s.need, s.attempts, s.max_runs), (1, 1, 8));
        assert_eq!(s.out, Some(PathBuf::from("x.toml")));
    }

    #[test]
    fn network_overrides_the_plans_network_for_run_and_validate() {
        let Ok(Cli {
            command: Command::Run(run),
            ..
        }) = cli(&["run", "--network", "netns", "p.toml"])
        else {
            panic!("run --network netns should parse");
        };
        assert_eq!(run.network, Some(NetworkMode::Netns));
        let Ok(Cli {
            command: Command::Run(run),
            ..
        }) = cli(&["run", "p.toml"])
        else {
            panic!("run should parse");
        };
        assert_eq!(run.network, None);
        let Ok(Cli {
            command: Command::Validate(v),
            ..
        }) = cli(&["validate", "--network=none", "p.toml"])
        else {
            panic!("validate --network=none should parse");
        };
        assert_eq!(v.network, Some(NetworkMode::None));
        let Err(e) = cli(&["run", "--network", "tap", "p.toml"]) else {
            panic!("--network tap should be refused");
        };
        assert!(
            e.to_string()
                .contains("expected proxy, netns or none, found `tap`"),
            "{e}"
        );
    }
}
