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
//! It removes libfaketime's shared memory and semaphores in /dev/shm whose
//! rift is gone ([`crate::clock::faketime::sweep_stale`]): a node process's
//! guard shell removes them when rift dies, a container's nothing does.
//!
//! With a Docker engine answering (`DOCKER_HOST`, else the local socket),
//! it also removes the containers, volumes, images and networks labelled
//! by runs whose rift is gone ([`crate::docker::sweep_stale`]); without
//! one it says so in one line and goes on.
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
    // The shared parent, when no run is left in it.
    crate::cgroup::remove_empty_parents();
    let unmounted = crate::disk::sweep();
    for line in &unmounted {
        outln!("{line}");
    }
    let shm = crate::clock::faketime::sweep_stale();
    for f in &shm {
        outln!("removed {}", f.display());
    }
    let docker = docker_sweep();
    let n = swept.removed.len() + unmounted.len() + shm.len() + docker;
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

/// The engine's objects of dead runs; how many were removed (0 without an
/// engine, said in one line).
fn docker_sweep() -> usize {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start a runtime to reach the Docker engine: {e}");
            return 0;
        }
    };
    rt.block_on(async {
        let engine = match crate::docker::Engine::connect().await {
            Ok(e) => e,
            Err(e) => {
                outln!("no Docker engine to clean: {e}");
                return 0;
            }
        };
        match crate::docker::sweep_stale(&engine).await {
            Ok(s) => {
                for (n, what) in [
                    (s.containers, "container"),
                    (s.volumes, "volume"),
                    (s.images, "image"),
                    (s.networks, "network"),
                ] {
                    if n > 0 {
                        outln!(
                            "removed {n} Docker {what}{} of dead runs",
                            if n == 1 { "" } else { "s" }
                        );
                    }
                }
                s.containers + s.volumes + s.images + s.networks
            }
            Err(e) => {
                errln!("error: cannot sweep the Docker engine: {e}");
                0
            }
        }
    })
}
