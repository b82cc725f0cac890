//! Control groups for the nodes of a run: one per-run cgroup
//! (`rift/<run-id>.<rift-pid>` under every hierarchy rift uses) holding one
//! cgroup per node, which the node enters between fork and exec. Through
//! them a node's whole process tree can be frozen (the freezer) and slowed
//! to a fraction of a CPU (the CPU controller's quota and period).
//!
//! Both layouts are supported: cgroup v2 (one unified hierarchy:
//! `cgroup.freeze`, `cpu.max`, `cpu.stat`) and cgroup v1 (separate
//! `freezer`, `cpu` and `cpuacct` hierarchies: `freezer.state`,
//! `cpu.cfs_quota_us`/`cpu.cfs_period_us`, `cpuacct.usage`). A machine with
//! both (hybrid) uses the v1 controllers and falls back on the unified
//! hierarchy only for what v1 lacks.
//!
//! Cleanup is a promise: [`RunCgroup`]'s `Drop` thaws, kills what is left
//! inside and removes every directory it made; a run whose rift was
//! SIGKILLed leaves directories that [`sweep`] (every `rift run`, and
//! `rift clean`) removes once their owner pid is gone. A cgroup whose owner
//! is alive is never touched. It must never write outside `rift/`
//! directories of the cgroup mounts.

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// The directory under each hierarchy's root that holds every run's cgroup.
pub const PARENT: &str = "rift";

/// The CFS period rift sets with a quota: 100 ms, the kernel's default.
pub const PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts (1 ms).
const MIN_QUOTA_US: u64 = 1_000;

/// How long a freeze or thaw may take to settle, and a removal to succeed.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("could not {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} did not become {want} within {within:?}", .path.display())]
    Stuck {
        path: PathBuf,
        want: &'static str,
        within: Duration,
    },
    #[error("{0}")]
    Unsupported(String),
}

fn io_err<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> CgroupError + 'p {
    move |source| CgroupError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// One mounted cgroup hierarchy and the controllers rift uses in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// The unified (cgroup2) hierarchy.
    pub v2: bool,
    pub freezer: bool,
    pub cpu: bool,
    /// CPU time accounting (`cpuacct` on v1; always on v2).
    pub cpuacct: bool,
}

/// The hierarchies of this machine, read from a `/proc/self/mounts` text;
/// v2 controllers come from `controllers(mount)` (its `cgroup.controllers`).
pub fn parse_mounts(mounts: &str, controllers: impl Fn(&Path) -> String) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(mount), Some(fstype), Some(opts)) = (fields.get(1), fields.get(2), fields.get(3))
        else {
            continue;
        };
        let mount = PathBuf::from(mount.replace("\\040", " "));
        let h = match *fstype {
            "cgroup2" => {
                let ctl = controllers(&mount);
                Hierarchy {
                    mount,
                    v2: true,
                    freezer: true,
                    cpu: ctl.split_whitespace().any(|c| c == "cpu"),
                    cpuacct: true,
                }
            }
            "cgroup" => {
                let has = |c: &str| opts.split(',').any(|o| o == c);
                Hierarchy {
                    mount,
                    v2: false,
                    freezer: has("freezer"),
                    cpu: has("cpu"),
                    cpuacct: has("cpuacct"),
                }
            }
            _ => continue,
        };
        if !out.iter().any(|o| o.mount == h.mount) {
            out.push(h);
        }
    }
    out
}

/// The hierarchies rift would use here: for each of freezer, cpu and
/// accounting, the v1 hierarchy with that controller, else the unified one
/// (when it can). Each mount once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub freezer: Option<Hierarchy>,
    pub cpu: Option<Hierarchy>,
    pub cpuacct: Option<Hierarchy>,
}

impl Plan {
    pub fn choose(all: &[Hierarchy]) -> Plan {
        let pick = |want: fn(&Hierarchy) -> bool| {
            all.iter()
                .find(|h| !h.v2 && want(h))
                .or_else(|| all.iter().find(|h| h.v2 && want(h)))
                .cloned()
        };
        Plan {
            freezer: pick(|h| h.freezer),
            cpu: pick(|h| h.cpu),
            cpuacct: pick(|h| h.cpuacct),
        }
    }

    /// This machine's choice.
    pub fn detect() -> Plan {
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        Plan::choose(&parse_mounts(&mounts, |m| {
            fs::read_to_string(m.join("cgroup.controllers")).unwrap_or_default()
        }))
    }

    /// Every distinct hierarchy of the choice.
    pub fn hierarchies(&self) -> Vec<Hierarchy> {
        let mut out: Vec<Hierarchy> = Vec::new();
        for h in [&self.freezer, &self.cpu, &self.cpuacct]
            .into_iter()
            .flatten()
        {
            if !out.iter().any(|o| o.mount == h.mount) {
                out.push(h.clone());
            }
        }
        out
    }
}

/// The per-run cgroup's name: `<run-id>.<rift-pid>`, so its owner can be told.
pub fn run_name(run_id: &str, pid: u32) -> String {
    format!("{run_id}.{pid}")
}

/// The owner pid of a per-run cgroup named by [`run_name`].
pub fn owner_pid(name: &str) -> Option<u32> {
    let (run, pid) = name.rsplit_once('.')?;
    if run.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok().filter(|p| *p > 0)
}

/// The CFS quota for `cpu` CPUs over [`PERIOD_US`]: at least the kernel's
/// 1 ms minimum.
pub fn quota_us(cpu: f64) -> u64 {
    let q = (cpu * PERIOD_US as f64).round();
    if q.is_finite() && q > 0.0 {
        (q as u64).max(MIN_QUOTA_US)
    } else {
        MIN_QUOTA_US
    }
}

/// Every run cgroup of this process that is not removed yet, for
/// [`remove_all_now`].
static LIVE: Mutex<Vec<(Hierarchy, PathBuf)>> = Mutex::new(Vec::new());

/// Removes every run cgroup of this process at once (thawed, emptied,
/// deleted), for a forced exit that skips destructors (a second Ctrl-C):
/// a frozen node would otherwise stay frozen, and so alive, on cgroup v1.
pub fn remove_all_now() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(PoisonError::into_inner));
    for (h, dir) in &live {
        thaw_tree(h, dir);
    }
    for (h, dir) in &live {
        let _ = remove_tree(h, dir);
    }
}

/// A run's cgroup on every hierarchy rift uses; removed (thawed, emptied,
/// its node cgroups and itself deleted) on drop.
#[derive(Debug)]
pub struct RunCgroup {
    name: String,
    plan: Plan,
    /// `<mount>/rift/<name>` per hierarchy, in [`Plan::hierarchies`] order.
    dirs: Vec<(Hierarchy, PathBuf)>,
    freeze: Result<(), String>,
    slow: Result<(), String>,
}

impl RunCgroup {
    /// Makes `rift/<run-id>.<pid>` on every usable hierarchy. `Err` says
    /// why nodes cannot have cgroups at all here (not root, no writable
    /// hierarchy); then nodes run as before.
    pub fn create(run_id: &str) -> Result<Arc<RunCgroup>, String> {
        RunCgroup::create_with(run_id, Plan::detect())
    }

    fn create_with(run_id: &str, plan: Plan) -> Result<Arc<RunCgroup>, String> {
        let hiers = plan.hierarchies();
        if hiers.is_empty() {
            return Err("no cgroup hierarchy is mounted (/proc/self/mounts)".into());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("rift is not root (creating cgroups needs root)".into());
        }
        let name = run_name(run_id, std::process::id());
        let mut run = RunCgroup {
            name,
            plan,
            dirs: Vec::new(),
            freeze: Ok(()),
            slow: Ok(()),
        };
        let mut unmade: Option<String> = None;
        for h in hiers {
            let parent = h.mount.join(PARENT);
            let dir = parent.join(&run.name);
            if let Err(e) = fs::create_dir_all(&dir) {
                // Only what this hierarchy serves is lost (a read-only
                // cpu hierarchy leaves the freezer usable).
                let why = format!("cannot create cgroup {}: {e}", dir.display());
                if run.plan.freezer.as_ref() == Some(&h) {
                    run.freeze = Err(why.clone());
                }
                if run.plan.cpu.as_ref() == Some(&h) {
                    run.slow = Err(why.clone());
                }
                unmade.get_or_insert(why);
                continue;
            }
            run.dirs.push((h.clone(), dir.clone()));
            LIVE.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((h.clone(), dir.clone()));
            if h.v2 && h.cpu && run.plan.cpu.as_ref() == Some(&h) {
                for d in [h.mount.clone(), parent.clone(), dir.clone()] {
                    if let Err(e) = enable_cpu(&d) {
                        run.slow = Err(format!(
                            "cannot enable the cpu controller in {}: {e}",
                            d.join("cgroup.subtree_control").display()
                        ));
                        break;
                    }
                }
            }
            if h.v2 && run.plan.freezer.as_ref() == Some(&h) && !dir.join("cgroup.freeze").exists()
            {
                run.freeze = Err(
                    "the kernel's cgroup v2 has no freezer (cgroup.freeze needs Linux 5.2)".into(),
                );
            }
        }
        if let (Some(why), true) = (unmade, run.dirs.is_empty()) {
            return Err(why);
        }
        if run.plan.freezer.is_none() {
            run.freeze = Err("no cgroup freezer is mounted (v1 freezer or cgroup2)".into());
        }
        if run.plan.cpu.is_none() {
            run.slow = Err("no cgroup cpu controller is available (v1 cpu, or cpu in cgroup2's cgroup.controllers)".into());
        }
        Ok(Arc::new(run))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every directory of the run's cgroup, one per hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).collect()
    }

    /// Whether `how = "freeze"` works here; `Err` says why not.
    pub fn can_freeze(&self) -> Result<(), String> {
        self.freeze.clone()
    }

    /// Whether `slow` works here; `Err` says why not.
    pub fn can_slow(&self) -> Result<(), String> {
        self.slow.clone()
    }

    /// Makes (or reuses) the node's cgroup `<run>/<node>` on every
    /// hierarchy and opens its `cgroup.procs` for the node to enter.
    pub fn node(self: &Arc<Self>, node: &str) -> Result<NodeCgroup, CgroupError> {
        let mut dirs = Vec::new();
        let mut procs = Vec::new();
        for (h, run_dir) in &self.dirs {
            let dir = run_dir.join(node);
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err("create cgroup", &dir)(e)),
            }
            let file = dir.join("cgroup.procs");
            let fd = OpenOptions::new()
                .write(true)
                .open(&file)
                .map_err(io_err("open", &file))?;
            procs.push(OwnedFd::from(fd));
            dirs.push((h.clone(), dir));
        }
        Ok(NodeCgroup {
            inner: Arc::new(NodeInner {
                run: self.clone(),
                dirs,
                procs,
            }),
        })
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        LIVE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(_, d)| !self.dirs.iter().any(|(_, mine)| mine == d));
        // Thaw first on every hierarchy: a process frozen in one would not
        // die of the SIGKILL sent while emptying another.
        for (h, dir) in &self.dirs {
            thaw_tree(h, dir);
        }
        for (h, dir) in &self.dirs {
            let _ = remove_tree(h, dir);
            // The shared `rift/` parent too, once no run is left in it (a
            // cgroup directory with children cannot be removed, so another
            // run's is never touched).
            if let Some(parent) = dir.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

fn enable_cpu(dir: &Path) -> io::Result<()> {
    let current = fs::read_to_string(dir.join("cgroup.subtree_control"))?;
    if current.split_whitespace().any(|c| c == "cpu") {
        return Ok(());
    }
    fs::write(dir.join("cgroup.subtree_control"), "+cpu")
}

#[derive(Debug)]
struct NodeInner {
    /// Keeps the run's cgroup (and so this one) until the last node is gone.
    #[allow(dead_code)]
    run: Arc<RunCgroup>,
    dirs: Vec<(Hierarchy, PathBuf)>,
    /// `cgroup.procs` of each directory, opened before any fork.
    procs: Vec<OwnedFd>,
}

/// One node's cgroup on every hierarchy of its run; clones share it.
#[derive(Clone, Debug)]
pub struct NodeCgroup {
    inner: Arc<NodeInner>,
}

impl PartialEq for NodeCgroup {
    fn eq(&self, other: &NodeCgroup) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for NodeCgroup {}

impl NodeCgroup {
    /// The `cgroup.procs` descriptors a child writes "0" to between fork and
    /// exec (see [`NodeCgroup::enter`]).
    pub(crate) fn procs_fds(&self) -> Vec<RawFd> {
        self.inner.procs.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// In a child between fork and exec: move the calling process into
    /// every cgroup of `fds`. Async-signal-safe (write); allocates nothing.
    ///
    /// # Safety
    /// Only call from a `pre_exec` hook, with descriptors from
    /// [`NodeCgroup::procs_fds`] that are still open.
    pub(crate) unsafe fn enter(fds: &[RawFd]) -> io::Result<()> {
        for &fd in fds {
            // SAFETY: a write of a static byte to a descriptor we own.
            let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            if n != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Every directory of the node's cgroup.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.inner.dirs.iter().map(|(_, d)| d.clone()).collect()
    }

    fn dir_for(&self, which: &Option<Hierarchy>) -> Option<&(Hierarchy, PathBuf)> {
        let want = which.as_ref()?;
        self.inner.dirs.iter().find(|(h, _)| h.mount == want.mount)
    }

    fn freezer(&self) -> Result<&(Hierarchy, PathBuf), CgroupError> {
        self.inner
            .run
            .freeze
            .clone()
            .map_err(CgroupError::Unsupported)?;
        self.dir_for(&self.inner.run.plan.freezer)
            .ok_or_else(|| CgroupError::Unsupported("no cgroup freezer".into()))
    }

    /// Freezes every process in the node's cgroup at once, and waits (a
    /// bounded while) until the kernel says they all are.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        let (h, dir) = self.freezer()?;
        set_frozen(h, dir, true)
    }

    /// Thaws the node's cgroup; thawing a thawed one is a no-op.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        let (h, dir) = self.freezer()?;
        set_frozen(h, dir, false)
    }

    /// Whether the kernel reports the cgroup frozen.
    pub fn is_frozen(&self) -> bool {
        self.freezer()
            .ok()
            .is_some_and(|(h, dir)| frozen_now(h, dir) == Some(true))
    }

    /// Limits the node to `cpu` CPUs (`0.1` = 10% of one), or lifts the
    /// limit with `None`.
    pub fn set_cpu(&self, cpu: Option<f64>) -> Result<(), CgroupError> {
        self.inner
            .run
            .slow
            .clone()
            .map_err(CgroupError::Unsupported)?;
        let (h, dir) = self
            .dir_for(&self.inner.run.plan.cpu)
            .ok_or_else(|| CgroupError::Unsupported("no cgroup cpu controller".into()))?;
        if h.v2 {
            let value = match cpu {
                Some(c) => format!("{} {PERIOD_US}", quota_us(c)),
                None => format!("max {PERIOD_US}"),
            };
            let f = dir.join("cpu.max");
            fs::write(&f, value).map_err(io_err("write", &f))
        } else {
            let period = dir.join("cpu.cfs_period_us");
            let quota = dir.join("cpu.cfs_quota_us");
            match cpu {
                Some(c) => {
                    fs::write(&period, PERIOD_US.to_string()).map_err(io_err("write", &period))?;
                    fs::write(&quota, quota_us(c).to_string()).map_err(io_err("write", &quota))
                }
                None => fs::write(&quota, "-1").map_err(io_err("write", &quota)),
            }
        }
    }

    /// The CPU time the cgroup's processes have received so far, when the
    /// accounting is available (`cpu.stat` usage_usec on v2, `cpuacct.usage`
    /// on v1).
    pub fn cpu_usage(&self) -> Option<Duration> {
        let (h, dir) = self.dir_for(&self.inner.run.plan.cpuacct)?;
        if h.v2 {
            let stat = fs::read_to_string(dir.join("cpu.stat")).ok()?;
            stat.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse().ok())
                .map(Duration::from_micros)
        } else {
            fs::read_to_string(dir.join("cpuacct.usage"))
                .ok()?
                .trim()
                .parse()
                .ok()
                .map(Duration::from_nanos)
        }
    }

    /// The pids in the node's cgroup (of its first hierarchy).
    pub fn pids(&self) -> Vec<u32> {
        self.inner
            .dirs
            .first()
            .map(|(_, d)| read_pids(d))
            .unwrap_or_default()
    }
}

fn read_pids(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// `Some(true)` frozen, `Some(false)` thawed, `None` in between or unknown.
fn frozen_now(h: &Hierarchy, dir: &Path) -> Option<bool> {
    if h.v2 {
        let events = fs::read_to_string(dir.join("cgroup.events")).ok()?;
        events
            .lines()
            .find_map(|l| l.strip_prefix("frozen "))
            .map(|v| v.trim() == "1")
    } else {
        match fs::read_to_string(dir.join("freezer.state")).ok()?.trim() {
            "FROZEN" => Some(true),
            "THAWED" => Some(false),
            _ => None,
        }
    }
}

fn set_frozen(h: &Hierarchy, dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let (file, value, want) = match (h.v2, frozen) {
        (true, true) => ("cgroup.freeze", "1", "frozen"),
        (true, false) => ("cgroup.freeze", "0", "thawed"),
        (false, true) => ("freezer.state", "FROZEN", "frozen"),
        (false, false) => ("freezer.state", "THAWED", "thawed"),
    };
    let path = dir.join(file);
    let deadline = Instant::now() + SETTLE;
    loop {
        // v1: writing FROZEN again retries a freeze stuck in FREEZING.
        fs::write(&path, value).map_err(io_err("write", &path))?;
        if frozen_now(h, dir) == Some(frozen) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CgroupError::Stuck {
                path,
                want,
                within: SETTLE,
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Thaws `dir` and every cgroup below it (on a hierarchy with a freezer).
fn thaw_tree(h: &Hierarchy, dir: &Path) {
    if !h.freezer {
        return;
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                thaw_tree(h, &e.path());
            }
        }
    }
    // A frozen v1 task does not die of SIGKILL until thawed.
    let _ = if h.v2 {
        fs::write(dir.join("cgroup.freeze"), "0")
    } else {
        fs::write(dir.join("freezer.state"), "THAWED")
    };
}

/// SIGKILLs every process in `dir` and its children (thawing them first,
/// see [`thaw_tree`]), and removes the children then `dir` itself, waiting
/// (bounded) for the processes to go. Returns how many processes it killed.
fn remove_tree(h: &Hierarchy, dir: &Path) -> Result<usize, CgroupError> {
    thaw_tree(h, dir);
    let mut killed = 0;
    let children: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err("read", dir))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    for child in &children {
        killed += remove_tree(h, child)?;
    }
    let deadline = Instant::now() + SETTLE;
    loop {
        let pids = read_pids(dir);
        for &pid in &pids {
            if let Ok(p) = i32::try_from(pid) {
                if kill(Pid::from_raw(p), Signal::SIGKILL).is_ok() {
                    killed += 1;
                }
            }
        }
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(killed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(killed),
            Err(e) if Instant::now() >= deadline => return Err(io_err("remove", dir)(e)),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// One leftover cgroup [`sweep`] removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    pub path: PathBuf,
    /// Processes still inside that were SIGKILLed.
    pub killed: usize,
}

/// What [`sweep`] found.
#[derive(Debug, Default)]
pub struct Swept {
    pub removed: Vec<Removed>,
    /// Leftovers that could not be removed, and why.
    pub failed: Vec<String>,
}

/// Removes the per-run cgroups of runs whose rift is gone, on every
/// mounted hierarchy. A cgroup whose owner pid is alive (and started before
/// the cgroup was made, so it is not a reused pid) is never touched.
pub fn sweep() -> Swept {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let all = parse_mounts(&mounts, |m| {
        fs::read_to_string(m.join("cgroup.controllers")).unwrap_or_default()
    });
    let mut dead: Vec<(&Hierarchy, PathBuf)> = Vec::new();
    for h in &all {
        let parent = h.mount.join(PARENT);
        let Ok(entries) = fs::read_dir(&parent) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let Some(pid) = e.file_name().to_str().and_then(owner_pid) else {
                continue;
            };
            let made = e.metadata().ok().and_then(|m| m.modified().ok());
            if !owner_alive(pid, made) {
                dead.push((h, e.path()));
            }
        }
    }
    // Thaw everything first: a process frozen on one hierarchy would not
    // die while another hierarchy's cgroup is being emptied.
    for (h, path) in &dead {
        thaw_tree(h, path);
    }
    let mut out = Swept::default();
    let swept_any = !dead.is_empty();
    for (h, path) in dead {
        match remove_tree(h, &path) {
            Ok(killed) => out.removed.push(Removed { path, killed }),
            Err(err) => out.failed.push(err.to_string()),
        }
    }
    if swept_any {
        remove_empty_parents();
    }
    out
}

/// Removes the shared `rift/` directory of every hierarchy when no run is
/// left in it (a cgroup with children cannot be removed, so a live run's is
/// never touched). Each run's end does this too; two runs ending at once
/// can both see the other's cgroup and leave it, so `rift clean` and a
/// sweep that removed something finish the job.
pub fn remove_empty_parents() {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let all = parse_mounts(&mounts, |m| {
        fs::read_to_string(m.join("cgroup.controllers")).unwrap_or_default()
    });
    for h in &all {
        let _ = fs::remove_dir(h.mount.join(PARENT));
    }
}

/// Whether `pid` is alive and could have made a cgroup at `made`.
pub fn owner_alive(pid: u32, made: Option<SystemTime>) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return false;
    };
    match kill(Pid::from_raw(p), None) {
        Ok(()) | Err(Errno::EPERM) => {}
        Err(_) => return false,
    }
    match (process_start(pid), made) {
        // A process that started after the cgroup was last changed is a
        // reused pid, not the owner (a second of slack for clock ticks).
        (Some(start), Some(made)) => start <= made + Duration::from_secs(1),
        _ => true,
    }
}

/// When `pid` started, from /proc (boot time + its start in clock ticks).
fn process_start(pid: u32) -> Option<SystemTime> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let btime: u64 = fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
    Some(
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(btime)
            + Duration::from_millis(ticks * 1000 / hz),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
sysfs /sys sysfs rw 0 0
tmpfs /sys/fs/cgroup tmpfs ro 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nsdelegate 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,xattr,name=systemd 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,nosuid,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,cpuacct 0 0
cgroup /sys/fs/cgroup/freezer cgroup rw,freezer 0 0
";

    #[test]
    fn hybrid_uses_the_v1_controllers() {
        let all = parse_mounts(HYBRID, |_| String::new());
        assert_eq!(all.len(), 5);
        let plan = Plan::choose(&all);
        let mount = |h: &Option<Hierarchy>| h.as_ref().map(|h| h.mount.clone());
        assert_eq!(mount(&plan.freezer), Some("/sys/fs/cgroup/freezer".into()));
        assert_eq!(mount(&plan.cpu), Some("/sys/fs/cgroup/cpu".into()));
        assert_eq!(mount(&plan.cpuacct), Some("/sys/fs/cgroup/cpuacct".into()));
        assert_eq!(plan.hierarchies().len(), 3);
    }

    #[test]
    fn pure_v2_uses_the_unified_hierarchy_once() {
        let all = parse_mounts("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n", |_| {
            "cpuset cpu io memory pids\n".into()
        });
        let plan = Plan::choose(&all);
        assert_eq!(plan.hierarchies().len(), 1);
        assert!(plan.cpu.as_ref().is_some_and(|h| h.v2));
        // Without the cpu controller, slow has no hierarchy; freeze still does.
        let plan = Plan::choose(&parse_mounts(
            "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n",
            |_| "memory pids".into(),
        ));
        assert!(plan.cpu.is_none());
        assert!(plan.freezer.is_some());
    }

    #[test]
    fn co_mounted_cpu_and_cpuacct_are_one_hierarchy() {
        let all = parse_mounts(
            "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n",
            |_| String::new(),
        );
        let plan = Plan::choose(&all);
        assert_eq!(plan.hierarchies().len(), 1);
        assert!(plan.freezer.is_none());
    }

    #[test]
    fn names_carry_their_owner() {
        let n = run_name("20261201-200944-ab12", 4242);
        assert_eq!(n, "20261201-200944-ab12.4242");
        assert_eq!(owner_pid(&n), Some(4242));
        assert_eq!(owner_pid("20261201-200944-ab12"), None);
        assert_eq!(owner_pid("x.12a"), None);
        assert_eq!(owner_pid(".12"), None);
        assert_eq!(owner_pid("x.0"), None);
    }

    #[test]
    fn quota_is_a_share_of_the_period_with_the_kernel_minimum() {
        assert_eq!(quota_us(0.1), 10_000);
        assert_eq!(quota_us(0.2), 20_000);
        assert_eq!(quota_us(1.5), 150_000);
        assert_eq!(quota_us(0.001), MIN_QUOTA_US);
        assert_eq!(quota_us(0.0), MIN_QUOTA_US);
    }

    /// The cgroup v2 freezer and CPU accounting, on whatever unified
    /// hierarchy this machine mounts (hybrid machines too: the v2 freezer
    /// needs no controller). Needs root.
    #[test]
    fn the_v2_freezer_freezes_and_thaws() {
        let v2 = parse_mounts(
            &fs::read_to_string("/proc/self/mounts").unwrap_or_default(),
            |m| fs::read_to_string(m.join("cgroup.controllers")).unwrap_or_default(),
        )
        .into_iter()
        .find(|h| h.v2);
        // SAFETY: geteuid has no preconditions.
        let (Some(v2), true) = (v2, unsafe { libc::geteuid() } == 0) else {
            eprintln!("skipped: needs root and a cgroup2 mount");
            return;
        };
        let plan = Plan {
            freezer: Some(v2.clone()),
            cpu: None,
            cpuacct: Some(v2),
        };
        let run = match RunCgroup::create_with("unit-v2", plan) {
            Ok(r) => r,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        };
        if let Err(why) = run.can_freeze() {
            eprintln!("skipped: {why}");
            return;
        }
        let node = run.node("n0").expect("node cgroup");
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawn a spinner");
        let dir = node.dirs()[0].clone();
        fs::write(dir.join("cgroup.procs"), child.id().to_string()).expect("enter");
        assert_eq!(node.pids(), vec![child.id()]);
        node.freeze().expect("freeze");
        assert!(node.is_frozen());
        let used = node.cpu_usage().expect("cpu.stat");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(node.cpu_usage(), Some(used), "a frozen spinner used CPU");
        node.thaw().expect("thaw");
        assert!(!node.is_frozen());
        assert!(
            node.set_cpu(Some(0.5)).is_err(),
            "no cpu controller was chosen"
        );
        // Dropping the run removes the cgroups and kills what is inside.
        node.freeze().expect("freeze again");
        drop(node);
        drop(run);
        assert!(!dir.exists());
        let _ = child.wait();
    }

    #[test]
    fn a_dead_pid_owns_nothing_and_a_live_one_does() {
        let me = std::process::id();
        assert!(owner_alive(me, Some(SystemTime::now())));
        // Made before this process started: the pid was reused.
        assert!(!owner_alive(me, Some(SystemTime::UNIX_EPOCH)));
        assert!(!owner_alive(u32::MAX - 1, None));
    }
}
