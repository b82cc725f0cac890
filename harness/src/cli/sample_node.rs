//! The hidden `rift sample-node ...` subcommand: rift carries the sample
//! node and re-executes itself as one, so a plan with no command needs
//! nothing else installed.
//!
//! Must never go through rift's own argument parser: everything after
//! `sample-node` belongs to the sample node, and so does the exit status.

use std::ffi::OsString;
use std::process::ExitCode;

/// The subcommand's name, the first argument after the program.
pub const SUBCOMMAND: &str = "sample-node";

/// When `args` (`args[0]` is the program) start with `sample-node`, runs
/// the sample node with the rest and returns its exit status; otherwise
/// `None`.
pub fn dispatch(args: &[OsString]) -> Option<ExitCode> {
    if args.get(1).is_some_and(|a| a == SUBCOMMAND) {
        let node_args = args.iter().take(1).chain(args.iter().skip(2)).cloned();
        Some(sample_node::cli_main(node_args))
    } else {
        None
    }
}
