//! The nodes' clocks: libfaketime preloaded into each node so clock steps
//! move its wall clock while it runs (`faketime`), time namespaces that
//! move CLOCK_MONOTONIC and BOOTTIME from a node's start (`timens`), and
//! the ELF check that tells whether a program can take a preload at all
//! (`elf`). What each mechanism reaches is in docs/faults.md, "Clocks".
//!
//! It never picks nodes or reads a plan step: the cluster spawns nodes with
//! what it sets up, the nemesis calls [`Faketime::set`] and
//! [`Faketime::reset`].

pub mod elf;
pub mod faketime;
pub mod timens;

pub use faketime::Faketime;
pub use timens::TimeOffsets;

use std::path::Path;

/// Whether `program` can take libfaketime; the one line saying why not.
pub fn check_preloadable(program: &Path) -> Result<(), String> {
    match elf::linkage(program) {
        elf::Linkage::Dynamic | elf::Linkage::Unknown => Ok(()),
        elf::Linkage::Static => Err(format!(
            "clock faults preload libfaketime into every node, but {} is statically linked (its ELF has no interpreter), so nothing can be preloaded into it; use a dynamically linked build of the node, or no clock steps",
            program.display()
        )),
        elf::Linkage::StaticInterpreter(interp) => Err(format!(
            "clock faults preload libfaketime into every node, but {}'s interpreter {} is statically linked, so nothing can be preloaded into it; use a dynamically linked interpreter, or no clock steps",
            program.display(),
            interp.display()
        )),
    }
}
