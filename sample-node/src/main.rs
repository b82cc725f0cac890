//! The `sample-node` binary: all behaviour lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    sample_node::cli_main(std::env::args_os())
}
