//! `rift list [DIR]`: the plans in a directory with their descriptions.
//!
//! Must never fail on an invalid plan: it is listed as invalid instead.

use super::args::ListArgs;
use super::exit::Exit;
use super::print::{errln, outln};
use crate::plan;
use std::path::PathBuf;

/// [`Exit::Invalid`] only when the directory cannot be read.
pub fn list(args: &ListArgs) -> Exit {
    let dir = &args.dir;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errln!("error: cannot read {}: {e}", dir.display());
            return Exit::Invalid;
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
    Exit::Pass
}
