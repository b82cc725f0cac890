//! `rift validate PLAN...`: loads plans without running them. Every plan
//! named (a directory means every `*.toml` in it) is checked on its own:
//! one `ok:` line per valid plan, every error of every invalid one, and a
//! warning when a plan's `[cluster] command` names no executable file.
//!
//! Must never start a cluster or write anything but its output.

use super::args::ValidateArgs;
use super::exit::Exit;
use super::print::{errln, outln};
use crate::plan::{self, NodeCommand, Overrides, Plan};
use crate::run::many;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// [`Exit::Pass`] when every plan is valid (warnings do not count),
/// [`Exit::Invalid`] otherwise.
pub fn validate(args: &ValidateArgs) -> Exit {
    let overrides = Overrides {
        network: args.network,
    };
    let paths = match many::expand_plan_paths(&args.plans) {
        Ok(p) => p,
        Err(e) => {
            errln!("error: {e}");
            return Exit::Invalid;
        }
    };
    let mut exit = Exit::Pass;
    for path in &paths {
        match plan::load_with(path, &overrides) {
            Ok(p) => {
                outln!(
                    "ok: {} ({}): {} nodes, {} steps{}, {:?}",
                    p.path.display(),
                    p.name,
                    p.cluster.size,
                    p.steps.len(),
                    nemesis_note(&p),
                    p.duration
                );
                if let Some(w) = command_warning(&p) {
                    errln!("warning: {}: {w}", p.path.display());
                }
            }
            Err(e) => {
                // One line per problem, each marked, so none reads as context.
                for one in e.errors() {
                    errln!("error: {one}");
                }
                exit = Exit::Invalid;
            }
        }
    }
    exit
}

/// A warning when the plan's node program cannot be found as a run would
/// look for it (a path when it has a slash, else on PATH; the same rule as
/// the cluster's own lookup). Not an error: the program may be installed
/// on the machine that runs the plan.
fn command_warning(p: &Plan) -> Option<String> {
    match &p.cluster.command {
        NodeCommand::SampleNode { .. } => None,
        NodeCommand::External { program, .. } => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let found = if program.contains('/') {
                is_executable(Path::new(program))
            } else {
                !program.is_empty()
                    && std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
            };
            (!found).then(|| {
                format!(
                    "[cluster] command `{program}` names no executable file {}; \
a run would fail to start its nodes",
                    if program.contains('/') {
                        "at that path"
                    } else {
                        "on PATH"
                    }
                )
            })
        }
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `, a random nemesis (...)` when the plan has one: how many faults the
/// plan's own seed draws, or that the run's seed decides.
fn nemesis_note(p: &plan::Plan) -> String {
    let Some(spec) = &p.nemesis else {
        return String::new();
    };
    match p.seed {
        Some(seed) => {
            let drawn = crate::fault::random::generate(
                spec,
                seed,
                p.duration,
                p.cluster.size,
                p.cluster.network,
            );
            format!(
                " + a random nemesis ({} faults with seed {seed})",
                drawn.len()
            )
        }
        None => " + a random nemesis (its faults drawn from the run's seed)".into(),
    }
}
