//! The `rift` commands: one module per subcommand, each taking its parsed
//! arguments ([`args`]) and returning how the invocation ends ([`exit::Exit`]).
//!
//! Owns everything a person sees on the terminal from a command (what is
//! printed to stdout and stderr, in which words) and the mapping of the
//! library's typed outcomes to exit codes. Must never judge a run, load a
//! plan or write a report itself: that is the library's work below; and must
//! never print with the std print macros (see [`print`]).

pub mod args;
pub mod check;
pub mod clean;
pub mod client_test;
pub mod compare;
pub mod exit;
pub mod faulty_disk;
pub mod list;
mod plans;
mod print;
pub mod report;
pub mod run;
pub mod sample_node;
pub mod shrink;
pub mod validate;

/// Logs to stderr at `warn`, `info` (`-v`) or `debug` (`-vv`); `RUST_LOG`
/// overrides. The FUSE crate's own log is shown only at `-vv`: it reports
/// a reply the kernel no longer wants (the node was killed mid-request) as
/// an error, which is what a power loss is.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,fuser=off",
        1 => "info,fuser=off",
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
