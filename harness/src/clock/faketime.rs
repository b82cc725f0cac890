//! libfaketime preloaded into every node, and the one writer of what it
//! reads: a spec file per node (`nodes/<name>.faketime`), rewritten
//! atomically (write, then rename) whenever a clock step changes the node's
//! wall clock, and re-read by libfaketime on every clock read of the node
//! (`FAKETIME_NO_CACHE=1`), so a change reaches a running node at its next
//! clock read, without a restart.
//!
//! How the spec is computed. libfaketime (0.9.x) answers a wall-clock read
//! with `anchor_fake + rate * (now - anchor_real)`, where for a spec
//! `"+OFFSET xRATE"` `anchor_fake = anchor_real + OFFSET` and `anchor_real`
//! is the start time it keeps in the shared memory named by
//! `FAKETIME_SHARED`. rift creates that shared memory itself, zero-filled,
//! per node: libfaketime then takes the anchor from it (it only sets one
//! when the stored nanoseconds read -1), so the anchor is the epoch, known
//! exactly, and a node's wall clock is `OFFSET + RATE * now`. rift keeps
//! each node's line (offset, rate) and writes the one it wants:
//!
//! * an offset jump `d`: `OFFSET = d`, `RATE = 1` (true time plus `d`);
//! * a rate `r` from instant `T` on, continuous: the clock read
//!   `A = OFFSET + RATE * T` at `T`, so the new line is `OFFSET' = A - r*T`,
//!   `RATE' = r` (no jump at `T`, whatever the node's start time);
//! * true time: `"+0 x1"`. The rate is always written: libfaketime keeps
//!   the last rate it parsed when a spec has none.
//!
//! Because the anchor is the epoch, libfaketime computes `RATE * now` in
//! signed 64-bit nanoseconds, which overflows above about 5x: plans accept
//! rates up to [`ClockChange::MAX_RATE`].
//!
//! CLOCK_MONOTONIC is not faked (`FAKETIME_DONT_FAKE_MONOTONIC=1`): tokio's
//! timers and every timeout of the node run on it, and a monotonic clock
//! that jumps back is not physical. Time namespaces (`timens`) move it
//! instead. File timestamps are left true (`NO_FAKE_STAT=1`).
//!
//! Cleanup: the shared memory and its semaphore live in /dev/shm; they are
//! removed when the controller drops, and, should rift be SIGKILLed, by the
//! guard shell that also kills the nodes. Containers have no guard shell:
//! what a SIGKILLed rift left there is removed by [`sweep_stale`] (every
//! run start, and `rift clean`), which tells a dead rift's files by the pid
//! in their names.

use crate::plan::{ClockChange, ClockOffset};
use crate::NodeId;
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable that overrides where libfaketime is looked for.
pub const LIBRARY_ENV: &str = "RIFT_LIBFAKETIME";

/// Where distributions install libfaketime, first match wins.
pub const LIBRARY_PATHS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/arm-linux-gnueabihf/faketime/libfaketime.so.1",
    "/usr/lib/i386-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/riscv64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/powerpc64le-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/s390x-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// Finds libfaketime: `RIFT_LIBFAKETIME` when set, else [`LIBRARY_PATHS`].
/// The error is the one line a user needs.
pub fn find_library() -> Result<PathBuf, String> {
    find_library_with(std::env::var_os(LIBRARY_ENV).map(PathBuf::from))
}

fn find_library_with(over: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = over {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "clock faults need libfaketime, but {LIBRARY_ENV} points to {}, which is not a file; install the Debian/Ubuntu package `libfaketime` or fix {LIBRARY_ENV}",
                p.display()
            ))
        };
    }
    LIBRARY_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "clock faults need libfaketime, which is not installed (install the Debian/Ubuntu package `libfaketime`, or set {LIBRARY_ENV} to its libfaketime.so.1; looked in {})",
                LIBRARY_PATHS.join(", ")
            )
        })
}

/// A node's wall clock as libfaketime computes it: `base + rate * now`, in
/// nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    pub base_ns: i128,
    pub rate: f64,
}

impl Line {
    /// True time.
    pub const TRUE: Line = Line {
        base_ns: 0,
        rate: 1.0,
    };

    /// True time moved by `offset`.
    pub fn offset(offset: ClockOffset) -> Line {
        Line {
            base_ns: offset.as_nanos(),
            rate: 1.0,
        }
    }

    /// What the clock reads at real time `now_ns`.
    pub fn at(&self, now_ns: i128) -> i128 {
        self.base_ns + (self.rate * now_ns as f64) as i128
    }

    /// The line running at `rate` from real time `now_ns` on, reading
    /// there what `self` reads (continuous).
    pub fn with_rate(&self, rate: f64, now_ns: i128) -> Line {
        Line {
            base_ns: self.at(now_ns) - (rate * now_ns as f64) as i128,
            rate,
        }
    }

    /// The spec libfaketime reads: `"+SECS.NANOS xRATE"`.
    pub fn spec(&self) -> String {
        let sign = if self.base_ns < 0 { '-' } else { '+' };
        let abs = self.base_ns.unsigned_abs();
        format!(
            "{sign}{}.{:09} x{}\n",
            abs / 1_000_000_000,
            abs % 1_000_000_000,
            self.rate
        )
    }
}

/// Real time now, in nanoseconds since the epoch.
pub fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

struct NodeState {
    line: Line,
    /// Bumped by every change, so a strobe that was replaced stops.
    generation: u64,
    strobe: Option<tokio::task::JoinHandle<()>>,
}

struct NodeClock {
    spec_path: PathBuf,
    tmp_path: PathBuf,
    sem: CString,
    shm: CString,
    state: Mutex<NodeState>,
}

impl NodeClock {
    fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `line` as the node's spec (write + rename: libfaketime
    /// never reads half a line).
    fn write(&self, line: Line) -> io::Result<()> {
        std::fs::write(&self.tmp_path, line.spec())?;
        std::fs::rename(&self.tmp_path, &self.spec_path)
    }
}

/// The wall clocks of a cluster's nodes: their libfaketime specs and the
/// strobes flipping them.
pub struct Faketime {
    library: PathBuf,
    nodes: Vec<Arc<NodeClock>>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Faketime {
    /// Specs at true time for `names`, in `dir` (the run's `nodes/`).
    pub fn new(library: PathBuf, dir: &Path, names: &[String]) -> io::Result<Faketime> {
        let tag = format!(
            "{SHM_PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut nodes = Vec::new();
        for name in names {
            let cstr = |suffix: &str| {
                CString::new(format!("/{tag}-{name}-{suffix}"))
                    .map_err(|_| io::Error::other("a node name holds a NUL byte"))
            };
            let node = NodeClock {
                spec_path: dir.join(format!("{name}.faketime")),
                tmp_path: dir.join(format!(".{name}.faketime.tmp")),
                sem: cstr("sem")?,
                shm: cstr("shm")?,
                state: Mutex::new(NodeState {
                    line: Line::TRUE,
                    generation: 0,
                    strobe: None,
                }),
            };
            node.write(Line::TRUE)?;
            nodes.push(Arc::new(node));
        }
        Ok(Faketime { library, nodes })
    }

    pub fn library(&self) -> &Path {
        &self.library
    }

    fn node(&self, node: NodeId) -> io::Result<&Arc<NodeClock>> {
        self.nodes
            .get(node.index())
            .ok_or_else(|| io::Error::other(format!("{node} has no clock")))
    }

    /// The node's spec file.
    pub fn spec_path(&self, node: NodeId) -> Option<&Path> {
        self.nodes.get(node.index()).map(|n| n.spec_path.as_path())
    }

    /// The environment that preloads libfaketime into `node`, with
    /// `LD_PRELOAD` appended to `preload` (what the node would have had).
    pub fn env(&self, node: NodeId, preload: Option<&str>) -> Vec<(String, String)> {
        let Some(n) = self.nodes.get(node.index()) else {
            return Vec::new();
        };
        let lib = self.library.display().to_string();
        let ld_preload = match preload.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => format!("{p}:{lib}"),
            None => lib,
        };
        vec![
            ("LD_PRELOAD".into(), ld_preload),
            (
                "FAKETIME_TIMESTAMP_FILE".into(),
                n.spec_path.display().to_string(),
            ),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
            ("NO_FAKE_STAT".into(), "1".into()),
            (
                "FAKETIME_SHARED".into(),
                format!("{} {}", n.sem.to_string_lossy(), n.shm.to_string_lossy()),
            ),
        ]
    }

    /// Files in /dev/shm this controller may create, for the guard that
    /// removes them should rift die without dropping it.
    pub fn shm_files(&self) -> Vec<PathBuf> {
        self.nodes
            .iter()
            .flat_map(|n| {
                let sem = n.sem.to_string_lossy();
                let shm = n.shm.to_string_lossy();
                [
                    PathBuf::from(format!("/dev/shm/sem.{}", sem.trim_start_matches('/'))),
                    PathBuf::from(format!("/dev/shm/{}", shm.trim_start_matches('/'))),
                ]
            })
            .collect()
    }

    /// Just before `node` is (re)started: a fresh zero-filled shared memory
    /// (the anchor at the epoch) and semaphore for its libfaketime.
    pub fn prepare_spawn(&self, node: NodeId) -> io::Result<()> {
        let n = self.node(node)?;
        unlink(n);
        // SAFETY: plain libc calls on NUL-terminated names we own; every
        // handle opened here is closed here.
        unsafe {
            let sem = libc::sem_open(
                n.sem.as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                0o600 as libc::c_uint,
                1 as libc::c_uint,
            );
            if sem == libc::SEM_FAILED {
                return Err(io::Error::last_os_error());
            }
            libc::sem_close(sem);
            let fd = libc::shm_open(
                n.shm.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
                0o600,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let rc = libc::ftruncate(fd, 4096);
            let err = io::Error::last_os_error();
            libc::close(fd);
            if rc != 0 {
                return Err(err);
            }
        }
        Ok(())
    }

    /// Applies a clock step's change to `node`, replacing whatever its
    /// clock did before.
    pub fn set(&self, node: NodeId, change: ClockChange) -> io::Result<()> {
        let n = self.node(node)?;
        let mut st = n.lock();
        stop_strobe(&mut st);
        match change {
            ClockChange::Offset(o) => {
                st.line = Line::offset(o);
                n.write(st.line)
            }
            ClockChange::Rate(r) => {
                st.line = st.line.with_rate(r, now_ns());
                n.write(st.line)
            }
            ClockChange::Strobe { offset, every } => {
                let runtime = tokio::runtime::Handle::try_current()
                    .map_err(|_| io::Error::other("a strobe needs a tokio runtime to flip"))?;
                let generation = st.generation;
                let clock = n.clone();
                st.strobe = Some(runtime.spawn(strobe(clock, generation, offset, every)));
                Ok(())
            }
        }
    }

    /// Puts `node` back on true time (and stops its strobe).
    pub fn reset(&self, node: NodeId) -> io::Result<()> {
        let n = self.node(node)?;
        let mut st = n.lock();
        stop_strobe(&mut st);
        st.line = Line::TRUE;
        n.write(st.line)
    }
}

fn stop_strobe(st: &mut NodeState) {
    st.generation += 1;
    if let Some(h) = st.strobe.take() {
        h.abort();
    }
}

/// Flips `clock` between `offset` and true time every `every`, starting
/// with the offset, until its generation moves on.
async fn strobe(clock: Arc<NodeClock>, generation: u64, offset: ClockOffset, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut on = true;
    loop {
        tick.tick().await;
        let mut st = clock.lock();
        if st.generation != generation {
            return;
        }
        st.line = if on { Line::offset(offset) } else { Line::TRUE };
        if let Err(e) = clock.write(st.line) {
            tracing::warn!("strobe of {}: {e}", clock.spec_path.display());
        }
        on = !on;
    }
}

/// The prefix of every name in /dev/shm a controller creates:
/// `rift-ft-<pid>-<seq>-<node>-shm` and `sem.rift-ft-<pid>-<seq>-<node>-sem`.
const SHM_PREFIX: &str = "rift-ft-";

/// Removes from /dev/shm the shared memory and semaphores of rift
/// processes that are gone; returns what it removed.
pub fn sweep_stale() -> Vec<PathBuf> {
    sweep_stale_in(Path::new("/dev/shm"))
}

/// [`sweep_stale`] in `dir`. A file is stale when the pid in its name is
/// no process, or a process that started after the file was last written
/// (the pid was reused). Files of a live rift are kept; a file whose
/// name has no pid, or that cannot be read, is left alone.
fn sweep_stale_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if crate::cgroup::owner_alive(pid, meta.modified().ok()) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) => tracing::debug!("cannot remove {}: {e}", path.display()),
        }
    }
    removed
}

/// The pid in a controller's /dev/shm name (`None` for any other name).
fn owner_pid(name: &str) -> Option<u32> {
    let name = name.strip_prefix("sem.").unwrap_or(name);
    let rest = name.strip_prefix(SHM_PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

fn unlink(n: &NodeClock) {
    // SAFETY: NUL-terminated names we own; a missing object is fine.
    unsafe {
        libc::sem_unlink(n.sem.as_ptr());
        libc::shm_unlink(n.shm.as_ptr());
    }
}

impl Drop for Faketime {
    fn drop(&mut self) {
        for n in &self.nodes {
            stop_strobe(&mut n.lock());
            unlink(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_specs() {
        assert_eq!(Line::TRUE.spec(), "+0.000000000 x1\n");
        let back = Line::offset(ClockOffset {
            negative: true,
            magnitude: Duration::from_millis(10_250),
        });
        assert_eq!(back.spec(), "-10.250000000 x1\n");
        assert_eq!(back.at(100_000_000_000), 89_750_000_000);
        // A rate change is continuous at the instant it is made.
        let t = 1_796_155_855_123_456_789i128;
        let fast = back.with_rate(2.0, t);
        assert!((fast.at(t) - back.at(t)).abs() < 1_000, "{fast:?}");
        assert!((fast.at(t + 1_000_000_000) - fast.at(t) - 2_000_000_000).abs() < 1_000);
        let slow = fast.with_rate(0.5, t + 1_000_000_000);
        assert!(
            (slow.at(t + 1_000_000_000) - fast.at(t + 1_000_000_000)).abs() < 1_000,
            "{slow:?}"
        );
        assert!(slow.spec().ends_with(" x0.5\n"), "{}", slow.spec());
    }

    #[test]
    fn a_missing_library_says_what_to_install() {
        let e =
            find_library_with(Some("/nonexistent/libfaketime.so.1".into())).expect_err("missing");
        assert!(e.contains("`libfaketime`"), "{e}");
        assert!(e.contains("RIFT_LIBFAKETIME points to /nonexistent"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[tokio::test]
    async fn specs_are_written_and_shared_memory_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ft = Faketime::new("/lib/x.so".into(), dir.path(), &["n0".into(), "n1".into()])
            .expect("new");
        let spec = |n: usize| std::fs::read_to_string(dir.path().join(format!("n{n}.faketime")));
        assert_eq!(spec(0).ok().as_deref(), Some("+0.000000000 x1\n"));
        ft.set(
            NodeId(1),
            ClockChange::Offset(ClockOffset {
                negative: false,
                magnitude: Duration::from_secs(30),
            }),
        )
        .expect("set");
        assert_eq!(spec(1).ok().as_deref(), Some("+30.000000000 x1\n"));
        ft.prepare_spawn(NodeId(0)).expect("shm");
        let files = ft.shm_files();
        assert!(files[0].exists() && files[1].exists(), "{files:?}");
        let env = ft.env(NodeId(0), Some("/a.so"));
        assert_eq!(env[0], ("LD_PRELOAD".into(), "/a.so:/lib/x.so".into()));
        drop(ft);
        assert!(!files[0].exists() && !files[1].exists(), "{files:?}");
    }

    #[test]
    fn the_sweep_removes_dead_and_reused_pids_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        let touch = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"").unwrap();
            path
        };
        let dead_shm = touch(&format!("rift-ft-{dead}-0-n0-shm"));
        let dead_sem = touch(&format!("sem.rift-ft-{dead}-0-n0-sem"));
        let live = touch(&format!("rift-ft-{me}-0-n1-shm"));
        let other = touch(&format!("sem.other-{dead}"));
        // Written a day before this process started: its pid was reused.
        let reused = touch(&format!("rift-ft-{me}-1-n2-shm"));
        let day_ago = std::time::SystemTime::now() - Duration::from_secs(86_400);
        std::fs::File::options()
            .write(true)
            .open(&reused)
            .unwrap()
            .set_modified(day_ago)
            .unwrap();
        let mut removed = sweep_stale_in(dir.path());
        removed.sort();
        let mut expected = vec![dead_shm, dead_sem, reused];
        expected.sort();
        assert_eq!(removed, expected);
        assert!(live.exists() && other.exists());
        assert_eq!(owner_pid("rift-ft-12-0-n0-shm"), Some(12));
        assert_eq!(owner_pid("sem.rift-ft-12-3-n0-sem"), Some(12));
        assert_eq!(owner_pid("rift-ft-x-0-n0-shm"), None);
    }
}
