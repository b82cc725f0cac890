//! `rift list [DIR]`: every plan under a directory (recursively) with its
//! description; bug plans (under `bugs/`, or with `finds`) and plans that
//! drive real systems (under `real/`: their packages must be installed) are
//! marked.
//!
//! Must never fail on an invalid plan: it is listed as invalid instead.

use super::args::ListArgs;
use super::exit::Exit;
use super::print::{errln, outln};
use crate::plan::{self, Plan};
use std::path::{Path, PathBuf};

/// [`Exit::Invalid`] only when the directory cannot be read.
pub fn list(args: &ListArgs) -> Exit {
    let dir = &args.dir;
    let mut files = Vec::new();
    if let Err(e) = plan_files(dir, &mut files) {
        errln!("error: cannot read {}: {e}", dir.display());
        return Exit::Invalid;
    }
    files.sort();
    for f in files {
        let shown = f.strip_prefix(dir).unwrap_or(&f);
        match plan::load(&f) {
            Ok(p) => outln!(
                "{:<32} {:<10} {} ({})",
                p.name,
                mark(shown, &p),
                p.description,
                f.display()
            ),
            Err(e) => outln!("{:<32} {:<10} {e}", shown.display(), "[invalid]"),
        }
    }
    outln!(
        "\n[bug]: proves rift catches a known bug (passes when the violation is found); \
[real]: drives a real system: install its packages first (see experiments/real/README.md)"
    );
    Exit::Pass
}

/// Every `*.toml` under `dir`, at any depth; an unreadable subdirectory is
/// skipped with a warning, an unreadable `dir` is an error.
fn plan_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if let Err(e) = plan_files(&path, out) {
                errln!("warning: cannot read {}: {e}", path.display());
            }
        } else if path.extension().is_some_and(|x| x == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// `bug`: the plan proves a bug is caught (it is under `bugs/` or has
/// `finds`); `real`: it drives a real system whose packages must be
/// installed (it is under `real/`); both, or nothing for the rest.
fn mark(relative: &Path, p: &Plan) -> String {
    let under = |name: &str| relative.components().any(|c| c.as_os_str() == name);
    let mut marks = Vec::new();
    if under("bugs") || !p.expect.finds.is_empty() {
        marks.push("bug");
    }
    if under("real") {
        marks.push("real");
    }
    if marks.is_empty() {
        String::new()
    } else {
        format!("[{}]", marks.join(","))
    }
}
