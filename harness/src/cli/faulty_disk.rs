//! `rift faulty-disk MOUNTPOINT BACKING` (hidden): mounts one faulty disk
//! with no fault in force, prints `ready`, and serves it until SIGTERM or
//! SIGINT (then unmounts). For the tests (a mount whose owner is
//! SIGKILLed must vanish) and for benchmarks of a node on the faulty disk.

use super::args::FaultyDiskArgs;
use super::exit::Exit;
use super::print::{errln, outln};
use crate::disk::FaultyDisk;
use nix::sys::signal::{SigSet, Signal};

pub fn faulty_disk(a: &FaultyDiskArgs) -> Exit {
    if let Err(e) = FaultyDisk::check_available() {
        errln!("error: {e}");
        return Exit::CannotRun;
    }
    // Blocked before the FUSE threads start, so they inherit the mask and
    // only this thread takes the signal, in `wait`.
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    if let Err(e) = set.thread_block() {
        errln!("error: block signals: {e}");
        return Exit::CannotRun;
    }
    let label = a
        .label
        .clone()
        .unwrap_or_else(|| FaultyDisk::label_for("test", "disk"));
    let disk = match FaultyDisk::mount(&a.backing, &a.mountpoint, &label, a.seed) {
        Ok(d) => d,
        Err(e) => {
            errln!("error: {e}");
            return Exit::CannotRun;
        }
    };
    outln!("ready");
    let signal = set.wait();
    match disk.unmount() {
        Ok(()) => match signal {
            Ok(_) => Exit::Pass,
            Err(e) => {
                errln!("error: wait for a signal: {e}");
                Exit::CannotRun
            }
        },
        Err(e) => {
            errln!("error: {e}");
            Exit::CannotRun
        }
    }
}
