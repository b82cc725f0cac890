//! Forks node processes from one long-lived thread and reaps them.
//!
//! It must never fork from a thread that can exit before the process does,
//! and never signal a process group after its leader has been reaped.

use super::command::NodeArgv;
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::File;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, PoisonError};
use std::thread;
use tokio::sync::oneshot;

/// How a node process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

struct SpawnRequest {
    argv: NodeArgv,
    log: File,
    reply: oneshot::Sender<io::Result<Child>>,
}

// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not
// when the process does. Tokio's blocking pool (and any short-lived thread)
// retires idle threads, which would SIGKILL healthy nodes mid-run. So every
// fork happens on this one thread, created on first use and never ended: it
// dies only with rift, which is exactly when the nodes must die too.
static SPAWNER: Mutex<Option<mpsc::Sender<SpawnRequest>>> = Mutex::new(None);

/// Starts `argv` with stdout and stderr going to `log`, in a process group
/// of its own, set to be SIGKILLed when rift dies.
pub(crate) async fn spawn(argv: NodeArgv, log: File) -> io::Result<Child> {
    let (reply, answer) = oneshot::channel();
    send(SpawnRequest { argv, log, reply })?;
    answer
        .await
        .map_err(|_| io::Error::other("rift's spawner thread stopped"))?
}

fn send(req: SpawnRequest) -> io::Result<()> {
    let mut guard = SPAWNER.lock().unwrap_or_else(PoisonError::into_inner);
    let req = match guard.as_ref() {
        Some(tx) => match tx.send(req) {
            Ok(()) => return Ok(()),
            // The thread is gone (it cannot panic, but stay robust): start anew.
            Err(mpsc::SendError(req)) => req,
        },
        None => req,
    };
    let (tx, rx) = mpsc::channel::<SpawnRequest>();
    thread::Builder::new()
        .name("rift-spawner".into())
        .spawn(move || {
            start_guard();
            for req in rx {
                let result = spawn_now(&req.argv, req.log);
                if let Ok(child) = &result {
                    tell_guard(&format!("+{}\n", child.id()));
                }
                if let Err(Ok(mut child)) = req.reply.send(result) {
                    // The caller went away (cancelled): do not leave an orphan.
                    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                    let _ = child.wait();
                }
            }
        })?;
    tx.send(req)
        .map_err(|_| io::Error::other("rift's spawner thread stopped"))?;
    *guard = Some(tx);
    Ok(())
}

fn spawn_now(argv: &NodeArgv, log: File) -> io::Result<Child> {
    let err_log = log.try_clone()?;
    let mut cmd = Command::new(&argv.program);
    cmd.args(&argv.args)
        .envs(argv.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err_log))
        // Own group: signals reach the node and anything it forks, and a
        // Ctrl-C on rift's terminal does not reach nodes behind rift's back.
        .process_group(0);
    if argv.env.iter().any(|(k, _)| k == "FAKETIME_TIMESTAMP_FILE") {
        // A `FAKETIME` would override the spec file rift writes.
        cmd.env_remove("FAKETIME");
    }
    let parent = std::process::id() as libc::pid_t;
    // The namespace handle lives in `argv` until spawn returns.
    let netns = argv.netns.as_ref().map(|ns| ns.raw_fd());
    // Prepared here, before the fork: the child only reads them.
    let timens = argv.timens.clone();
    // The cgroup's `cgroup.procs` descriptors (opened long before the fork,
    // held in `argv` until spawn returns): the child enters its cgroup
    // before exec, so no process of the node ever runs outside it.
    let cgroup_fds = argv
        .cgroup
        .as_ref()
        .map(crate::cgroup::NodeCgroup::procs_fds)
        .unwrap_or_default();
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe calls (write, setns, unshare, open, close, prctl,
    // getppid, _exit); it allocates nothing (the descriptor list was made
    // before the fork).
    unsafe {
        cmd.pre_exec(move || {
            crate::cgroup::NodeCgroup::enter(&cgroup_fds)?;
            if let Some(fd) = netns {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(t) = &timens {
                t.enter()?;
            }
            die_with_parent(parent)
        });
    }
    cmd.spawn()
}

/// In a child between fork and exec: be SIGKILLed when `parent` (rift)
/// dies. Async-signal-safe (prctl, getppid, _exit); allocates nothing.
///
/// # Safety
/// Only call from a `pre_exec` hook.
pub(crate) unsafe fn die_with_parent(parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: plain system calls on the calling (child) process.
    unsafe {
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        // If rift died between fork and prctl, the death signal was never
        // armed; we have been reparented, so give up now.
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    Ok(())
}

/// Watches `child` on a thread of its own. `before_reap` runs while the
/// exited leader is still a zombie (so its pid and group id cannot be reused
/// yet): it must forget the pid so that nobody signals it any more. Then
/// stragglers in the group are killed, the leader is reaped, and `after_reap`
/// runs.
pub(crate) fn supervise(
    name: String,
    mut child: Child,
    before_reap: impl FnOnce(ExitInfo) + Send + 'static,
    after_reap: impl FnOnce(ExitInfo) + Send + 'static,
) -> io::Result<()> {
    let pid = Pid::from_raw(child.id() as i32);
    thread::Builder::new()
        .name(format!("rift-reap-{name}"))
        .spawn(move || {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
            let info = loop {
                match waitid(Id::Pid(pid), flags) {
                    Ok(WaitStatus::Exited(_, code)) => {
                        break Some(ExitInfo {
                            code: Some(code),
                            signal: None,
                        })
                    }
                    Ok(WaitStatus::Signaled(_, sig, _)) => {
                        break Some(ExitInfo {
                            code: None,
                            signal: Some(sig as i32),
                        })
                    }
                    Ok(_) | Err(Errno::EINTR) => continue,
                    Err(_) => break None,
                }
            };
            match info {
                Some(info) => {
                    before_reap(info);
                    // The zombie leader still holds the group id, so this
                    // reaches only processes the node left behind.
                    let _ = killpg(pid, Signal::SIGKILL);
                    // Forget the group while its id cannot be reused yet.
                    tell_guard(&format!("-{}\n", child.id()));
                    let _ = child.wait();
                    after_reap(info);
                }
                None => {
                    // waitid is unusable; reaping directly is still correct,
                    // only the straggler sweep must be skipped.
                    let status = child.wait();
                    let info = match status {
                        Ok(s) => ExitInfo {
                            code: s.code(),
                            signal: s.signal(),
                        },
                        Err(_) => ExitInfo {
                            code: None,
                            signal: None,
                        },
                    };
                    before_reap(info);
                    after_reap(info);
                }
            }
        })?;
    Ok(())
}

// What PR_SET_PDEATHSIG cannot cover: processes a node forks do not carry
// the death signal. A tiny guard shell, started once, is told every node
// group on its stdin ("+pgid" / "-pgid"); when rift dies, however it dies,
// the pipe closes and the guard SIGKILLs the groups it still knows. A group
// is forgotten while its zombie leader still pins the id, so the guard can
// never hit a reused pid. "!path" names a file (libfaketime's shared memory
// in /dev/shm, see `clock::faketime`) to remove once the groups are killed.
// "=dir" names a cgroup directory of the run (see `crate::cgroup`): each is
// thawed, whatever is still inside is SIGKILLed, and the directories are
// removed, the latest named first (a node's before the run's), retrying
// for up to 5 s while the killed processes exit. A run that ends normally
// removed them already; a SIGKILLed rift leaves none behind.
const GUARD_SCRIPT: &str = r#"gs=' '
fs=''
ds=''
while IFS= read -r l; do
  case $l in
    +*) gs="$gs${l#+} " ;;
    -*) g=${l#-}; case $gs in *" $g "*) gs="${gs%% "$g" *} ${gs#* "$g" }" ;; esac ;;
    !*) fs="$fs ${l#!}" ;;
    =*) d=${l#=}; case " $ds " in *" $d "*) ;; *) ds="$d $ds" ;; esac ;;
  esac
done
for g in $gs; do kill -s KILL -- "-$g" 2>/dev/null; done
for f in $fs; do rm -f -- "$f"; done
for d in $ds; do
  [ -f "$d/freezer.state" ] && echo THAWED > "$d/freezer.state" 2>/dev/null
  [ -f "$d/cgroup.freeze" ] && echo 0 > "$d/cgroup.freeze" 2>/dev/null
  for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -s KILL "$p" 2>/dev/null; done
done
for d in $ds; do
  n=0
  while [ -d "$d" ] && ! rmdir "$d" 2>/dev/null && [ $n -lt 50 ]; do n=$((n+1)); sleep 0.1; done
done"#;

static GUARD_PIPE: Mutex<Option<std::process::ChildStdin>> = Mutex::new(None);

/// Starts the guard shell; without `/bin/sh` rift runs unguarded (the
/// nodes themselves still die with rift).
fn start_guard() {
    let spawned = Command::new("/bin/sh")
        .args(["-c", GUARD_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Not in rift's group: a Ctrl-C that kills rift must leave the guard
        // alive to clean up.
        .process_group(0)
        .spawn();
    // The guard exits only once rift is gone, so its Child is never waited.
    if let Ok(mut child) = spawned {
        *GUARD_PIPE.lock().unwrap_or_else(PoisonError::into_inner) = child.stdin.take();
    }
}

/// Has the guard remove `path` when rift dies (a path without spaces or
/// newlines; others are not handed over). Only once a node was spawned
/// (the guard starts with the first spawn).
pub(crate) fn remove_when_rift_dies(path: &std::path::Path) {
    let p = path.display().to_string();
    if !p.is_empty() && !p.contains(char::is_whitespace) {
        tell_guard(&format!("!{p}\n"));
    }
}

/// Has the guard remove the cgroup directory `dir` when rift dies (after
/// thawing it and killing what is inside); directories named later are
/// removed first. Only once a node was spawned.
pub(crate) fn remove_cgroup_when_rift_dies(dir: &std::path::Path) {
    let d = dir.display().to_string();
    if !d.is_empty() && !d.contains(char::is_whitespace) {
        tell_guard(&format!("={d}\n"));
    }
}

fn tell_guard(line: &str) {
    use std::io::Write;
    let mut pipe = GUARD_PIPE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(p) = pipe.as_mut() {
        // A guard that died (someone killed it) costs only the extra safety.
        if p.write_all(line.as_bytes()).is_err() {
            *pipe = None;
        }
    }
}
