//! `rift validate PLAN...`: loads plans without running them and prints one
//! `ok:` line per valid plan.
//!
//! Must never start a cluster or write anything but its output.

use super::args::ValidateArgs;
use super::exit::Exit;
use super::plans;
use super::print::outln;
use crate::plan::Overrides;

/// [`Exit::Pass`] when every plan is valid, [`Exit::Invalid`] otherwise.
pub fn validate(args: &ValidateArgs) -> Exit {
    let overrides = Overrides {
        network: args.network,
    };
    let plans = match plans::load(&args.plans, &overrides) {
        Ok(p) => p,
        Err(exit) => return exit,
    };
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
    Exit::Pass
}
