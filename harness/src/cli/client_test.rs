//! `rift client-test PLAN`: checks the plan's client program against a live
//! cluster (see [`crate::run::client_test`]) and prints one line per
//! problem, or `client OK`.
//!
//! Exit: 0 the client is OK, 1 it is wrong, 2 the plan is invalid or has no
//! `[workload] client`, 3 the cluster cannot start.

use super::args::ClientTestArgs;
use super::exit::Exit;
use super::plans;
use super::print::{errln, outln};
use crate::plan::Overrides;
use crate::run::RunOptions;

pub fn client_test(args: &ClientTestArgs) -> Exit {
    let plans = match plans::load(std::slice::from_ref(&args.plan), &Overrides::default()) {
        Ok(p) => p,
        Err(exit) => return exit,
    };
    let Some(plan) = plans.into_iter().next() else {
        errln!("error: {}: no plan", args.plan.display());
        return Exit::Invalid;
    };
    let Some(spec) = plan.workload.client.clone() else {
        errln!(
            "error: {}: the plan has no [workload] client to test",
            args.plan.display()
        );
        return Exit::Invalid;
    };
    let opts = RunOptions {
        out: args.out.clone(),
        ..RunOptions::default()
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return Exit::CannotRun;
        }
    };
    match rt.block_on(crate::run::client_test(&plan, &spec, &opts)) {
        Ok(wrong) if wrong.is_empty() => {
            outln!("client OK");
            Exit::Pass
        }
        Ok(wrong) => {
            for w in &wrong {
                outln!("wrong: {w}");
            }
            Exit::Fail
        }
        Err(e) => {
            errln!("error: {}: cannot run: {e}", plan.name);
            if let Some(tail) = e.log_tail() {
                for line in tail.lines() {
                    errln!("  | {line}");
                }
            }
            Exit::CannotRun
        }
    }
}
