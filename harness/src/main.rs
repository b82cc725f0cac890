//! The `rift` command line: parses arguments and dispatches each subcommand
//! to [`rift::cli`], which prints and chooses the exit code
//! ([`rift::cli::exit::Exit`]). Nothing else lives here.

use rift::cli::{self, args::Command};
use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(code) = cli::sample_node::dispatch(&args) {
        return code;
    }
    let parsed = match cli::args::parse(&args) {
        Ok(c) => c,
        Err(exit) => return exit.into(),
    };
    cli::init_logging(parsed.verbose);
    let exit = match parsed.command {
        Command::Run(a) => cli::run::run(a),
        Command::Report(a) => cli::report::report(&a),
        Command::Compare(a) => cli::compare::compare(&a),
        Command::Validate(a) => cli::validate::validate(&a),
        Command::Check(a) => cli::check::check(&a),
        Command::List(a) => cli::list::list(&a),
        Command::ClientTest(a) => cli::client_test::client_test(&a),
        Command::Shrink(a) => cli::shrink::shrink(&a),
        Command::Clean => cli::clean::clean(),
        Command::FaultyDisk(a) => cli::faulty_disk::faulty_disk(&a),
    };
    exit.into()
}
