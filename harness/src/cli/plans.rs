//! Plans named on the command line, loaded for `run` and `validate`: a
//! directory means every `*.toml` in it; every problem of every plan is
//! printed, one marked line each.
//!
//! Must never run or change a plan; it only reports why one cannot load.

use super::exit::Exit;
use super::print::errln;
use crate::plan::{self, Overrides, Plan};
use crate::run::many;
use std::path::PathBuf;

/// Expands directories and loads every plan, each validated with
/// `overrides` applied. On any problem prints them all and returns
/// [`Exit::Invalid`].
pub(super) fn load(args: &[PathBuf], overrides: &Overrides) -> Result<Vec<Plan>, Exit> {
    let paths = many::expand_plan_paths(args).map_err(|e| {
        errln!("error: {e}");
        Exit::Invalid
    })?;
    let mut plans = Vec::new();
    let mut bad = false;
    for p in &paths {
        match plan::load_with(p, overrides) {
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
        Err(Exit::Invalid)
    } else {
        Ok(plans)
    }
}
