//! The faulty disk: a FUSE filesystem rift serves over a node's data
//! directory, passing every operation through to a backing directory while
//! it tracks what is not yet durable (written ranges since each file's last
//! fsync; created, renamed and unlinked entries since each directory's last
//! fsync), so that a power loss can roll them back, and injecting faults
//! (failing fsync, writes and reads; latency; corrupted reads).
//!
//! THE API BELOW IS THE CONTRACT between the mechanism (this module) and
//! the runner (plan, run, report). Bodies are filled in by the mechanism's
//! work; signatures change only by agreement.

mod faults;
mod fs;
pub mod journal;
pub mod mount;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why the faulty disk cannot be used here, or an operation on it failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// Not root, no /dev/fuse, no fusermount: one line saying what is missing.
    #[error("{0}")]
    Unavailable(String),
    #[error("mount {mountpoint}: {source}")]
    Mount {
        mountpoint: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("roll back {path}: {source}")]
    Rollback {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a failing operation answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Errno {
    Eio,
    Enospc,
}

/// The faults in force on one node's disk (all off by default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiskFaults {
    /// `fsync = "eio"`: fsync and fdatasync fail with this.
    pub fsync: Option<Errno>,
    /// `write = "eio" | "enospc"`: write fails with this (nothing written).
    pub write: Option<Errno>,
    /// `read = "eio"`: read fails with this.
    pub read: Option<Errno>,
    /// Added to every operation (read, write, fsync, create, rename, ...).
    pub latency: Option<Duration>,
    /// Spread of `latency`, uniform in `latency ± jitter` (cut at 0).
    pub jitter: Option<Duration>,
    /// Probability per read of one flipped bit in the data read back
    /// (seeded); the backing file is not changed.
    pub corrupt: Option<f64>,
}

/// Operations counted per node, and how many of each a fault touched.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiskStats {
    /// By operation kind (`read`, `write`, `fsync`, `create`, `rename`,
    /// `unlink`, `mkdir`, `rmdir`, `truncate`, `open`, ...): how many the
    /// node made.
    pub ops: std::collections::BTreeMap<String, u64>,
    /// By operation kind: how many failed because of a fault (errno
    /// injected).
    pub failed: std::collections::BTreeMap<String, u64>,
    /// By operation kind: how many were delayed by `latency`.
    pub delayed: std::collections::BTreeMap<String, u64>,
    /// Reads whose data had a bit flipped.
    pub corrupted: u64,
}

/// What one power loss rolled back.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rollback {
    /// Bytes of file data returned to what they were at the last fsync
    /// (sizes included: a file that grew counts its new bytes).
    pub bytes: u64,
    /// Directory entries undone (creates removed, renames and unlinks
    /// reverted).
    pub entries: u64,
    /// Files whose last unsynced write kept a prefix (`torn = true`).
    pub torn: u64,
}

/// One node's faulty disk: mounted at `mountpoint` (the node's data dir),
/// passing through to `backing`. Unmounted on drop; also unmounted by the
/// kernel if rift dies (auto-unmount), and by `rift clean`.
///
/// Drop it after the node's processes are dead: the unmount is lazy, and
/// while a process still holds a file open on it the FUSE session keeps
/// serving that file, so drop waits until the file is closed.
pub struct FaultyDisk {
    shared: Arc<fs::Shared>,
    session: Option<fuser::BackgroundSession>,
    guard: Option<mount::Guard>,
    mountpoint: PathBuf,
    label: String,
}

impl FaultyDisk {
    /// Whether the faulty disk can be used here: root, /dev/fuse, and what
    /// the mount needs. `Err` is one line naming what is missing.
    pub fn check_available() -> Result<(), DiskError> {
        mount::check_available()
    }

    /// Mounts the filesystem at `mountpoint` (created if missing, must be
    /// empty) over `backing` (created if missing). `label` names the mount
    /// so that `sweep` can tell whose it is (e.g. `rift-<run-id>.<pid>-n0`);
    /// `seed` drives torn prefixes and corrupted bits.
    pub fn mount(
        backing: &Path,
        mountpoint: &Path,
        label: &str,
        seed: u64,
    ) -> Result<FaultyDisk, DiskError> {
        let journal = journal::Journal::new(backing, seed).map_err(|source| DiskError::Mount {
            mountpoint: mountpoint.to_path_buf(),
            source,
        })?;
        let shared =
            Arc::new(
                fs::Shared::new(journal, seed).map_err(|source| DiskError::Mount {
                    mountpoint: mountpoint.to_path_buf(),
                    source,
                })?,
            );
        let session = mount::mount(fs::DiskFs(shared.clone()), mountpoint, label)?;
        let guard = mount::Guard::start(mountpoint);
        Ok(FaultyDisk {
            shared,
            session: Some(session),
            guard,
            mountpoint: mountpoint.to_path_buf(),
            label: label.to_string(),
        })
    }

    /// Where it is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The label it was mounted with (its fsname in /proc/self/mountinfo).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A label for a node's disk that `sweep` can read the owner from:
    /// `rift-<run-id>.<this pid>-<node>`.
    pub fn label_for(run_id: &str, node: &str) -> String {
        format!("rift-{run_id}.{}-{node}", std::process::id())
    }

    /// Replaces the faults in force (`DiskFaults::default()` clears them).
    pub fn set_faults(&self, faults: DiskFaults) {
        self.shared.inject.set(faults);
    }

    /// A power loss: call only once every process of the node is dead.
    /// Rolls back every write since each file's last fsync and every
    /// directory change since each directory's last fsync; with `torn`,
    /// the last unsynced write of each file keeps a seeded random prefix.
    pub fn power_loss(&self, torn: bool) -> Result<Rollback, DiskError> {
        let mut j = self
            .shared
            .journal
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let root = j.root().to_path_buf();
        let err = |source: std::io::Error| DiskError::Rollback {
            path: root.clone(),
            source,
        };
        // Whatever the kernel cached from the node's requests expires
        // within the TTL of the last one: wait that out (the node is dead,
        // so no request comes), on top of invalidating what rift knows the
        // kernel may hold (names that a rename or unlink left negative in
        // the kernel's cache are not known to rift).
        let settled = self.shared.inject.last_request() + fs::TTL + Duration::from_millis(50);
        let now = std::time::Instant::now();
        if settled > now {
            std::thread::sleep(settled - now);
        }
        let known = self.shared.known();
        let undone = j.power_loss(torn).map_err(err)?;
        let map = j.inode_map().map_err(err)?;
        drop(j);
        self.shared.remap(&map);
        self.invalidate(&known);
        Ok(Rollback {
            bytes: undone.bytes,
            entries: undone.entries,
            torn: undone.torn,
        })
    }

    /// Has the kernel forget every entry and attribute it may have cached
    /// from before a power loss (the names known then, the inodes known).
    fn invalidate(&self, known: &[(u64, PathBuf)]) {
        let Some(session) = &self.session else {
            return;
        };
        let notifier = session.notifier();
        let by_path: std::collections::HashMap<&Path, u64> = known
            .iter()
            .map(|(ino, rel)| (rel.as_path(), *ino))
            .collect();
        for (ino, rel) in known {
            if let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) {
                if let Some(pino) = by_path.get(parent) {
                    // ENOENT: the kernel does not hold that name; fine.
                    let _ = notifier.inval_entry(fuser::INodeNo(*pino), name);
                }
            }
            let _ = notifier.inval_inode(fuser::INodeNo(*ino), 0, 0);
        }
    }

    /// Counters since the mount.
    pub fn stats(&self) -> DiskStats {
        self.shared.inject.stats()
    }

    /// Unmounts and joins the session (what drop does), reporting failure.
    pub fn unmount(mut self) -> Result<(), DiskError> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<(), DiskError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        // Unmounted here first (rift is root): fuser's own unmount of an
        // auto_unmount mount only closes fusermount3's socket, and
        // fusermount3 (3.14) then leaves the mount of a live server in
        // place, so the join would wait for ever. Once the mount is gone
        // the worker threads read ENODEV and end.
        // Already gone (swept, or unmounted by someone else): nothing to do.
        let detached = match mount::detach(&self.mountpoint) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) => Ok(()),
            other => other,
        };
        let joined = session.umount_and_join();
        if let Some(g) = self.guard.take() {
            g.dismiss();
        }
        detached.and(joined).map_err(|source| DiskError::Mount {
            mountpoint: self.mountpoint.clone(),
            source,
        })
    }
}

impl Drop for FaultyDisk {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_inner() {
            tracing::warn!("faulty disk: {e}");
        }
    }
}

/// Mounts of runs whose rift is gone, unmounted lazily (MNT_DETACH); for
/// every `rift run` and `rift clean`. Returns one line per mount removed.
pub fn sweep() -> Vec<String> {
    mount::sweep()
}
