//! `rift clean`: removes what runs whose rift process is gone left behind.
//!
//! What a SIGKILLed rift can leave: its per-run cgroups
//! (`<mount>/rift/<run-id>.<pid>` on every hierarchy), with any node
//! process still inside (a node frozen by `pause how = "freeze"` does not
//! die of its death signal on cgroup v1 until thawed). Node processes
//! themselves die with rift (PR_SET_PDEATHSIG, and the guard shell for
//! what they fork); network namespaces and TUN devices vanish with their
//! descriptors; the wire's subnet lock file in the temp dir is shared by
//! every run and holds no state once its holder is gone, so it stays.
//!
//! It also unmounts the faulty disks (FUSE mounts labelled
//! `rift-<run-id>.<pid>-<node>`) of runs whose rift is gone and whose
//! mount the kernel's auto-unmount did not remove (see
//! [`crate::disk::sweep`]).
//!
//! Never touches a cgroup whose owner pid is alive. Prints one line per
//! thing removed and a total; exits 0 (3 when something could not be
//! removed).

use super::exit::Exit;
use super::print::{errln, outln};

/// Sweeps the leftovers of dead runs (see [`crate::cgroup::sweep`]).
pub fn clean() -> Exit {
    let swept = crate::cgroup::sweep();
    for r in &swept.removed {
        let killed = match r.killed {
            0 => String::new(),
            1 => " (killed 1 process still inside)".to_string(),
            n => format!(" (killed {n} processes still inside)"),
        };
        outln!("removed cgroup {}{killed}", r.path.display());
    }
    for f in &swept.failed {
        errln!("error: {f}");
    }
    let unmounted = crate::disk::sweep();
    for line in &unmounted {
        outln!("{line}");
    }
    let n = swept.removed.len() + unmounted.len();
    outln!(
        "removed {n} leftover{} of dead runs",
        if n == 1 { "" } else { "s" }
    );
    if swept.failed.is_empty() {
        Exit::Pass
    } else {
        Exit::CannotRun
    }
}
