//! One client process: forked from a long-lived thread (so its
//! `PR_SET_PDEATHSIG` fires only when rift dies), in a process group of its
//! own, stdin and stdout piped, stderr to its log; lines read with a bound.
//!
//! Never waits for a process it has not SIGKILLed first, and never signals
//! a group after reaping its leader: the group id cannot be reused while
//! the leader is an unreaped zombie.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, PoisonError};
use std::thread;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

/// The longest line rift reads from a client; a longer one is a problem.
pub const MAX_LINE: usize = 1024 * 1024;

/// What to start.
#[derive(Clone, Debug)]
pub struct Argv {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

struct SpawnRequest {
    argv: Argv,
    stderr: File,
    reply: oneshot::Sender<io::Result<Child>>,
}

// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits; so
// every client is forked on this one thread, started on first use and never
// ended (as cluster/spawn.rs does for nodes).
static SPAWNER: Mutex<Option<mpsc::Sender<SpawnRequest>>> = Mutex::new(None);

/// A running client process.
pub struct Proc {
    pid: Pid,
    child: Option<Child>,
    stdin: tokio::process::ChildStdin,
    stdout: BufReader<tokio::process::ChildStdout>,
}

/// Why no line came.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("the client closed its stdout (exited?)")]
    Eof,
    #[error("a line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("reading the client's stdout: {0}")]
    Io(#[from] io::Error),
}

impl Proc {
    /// Starts `argv` with stderr going to `stderr`.
    pub async fn spawn(argv: Argv, stderr: File) -> io::Result<Proc> {
        let (reply, answer) = oneshot::channel();
        send(SpawnRequest {
            argv,
            stderr,
            reply,
        })?;
        let mut child = answer
            .await
            .map_err(|_| io::Error::other("rift's client spawner thread stopped"))??;
        let pid = Pid::from_raw(child.id() as i32);
        let pipes = child.stdin.take().zip(child.stdout.take());
        let Some((stdin, stdout)) = pipes else {
            kill_and_reap(pid, child);
            return Err(io::Error::other("the client's pipes are missing"));
        };
        let opened = tokio::process::ChildStdin::from_std(stdin)
            .and_then(|i| tokio::process::ChildStdout::from_std(stdout).map(|o| (i, o)));
        match opened {
            Ok((stdin, stdout)) => Ok(Proc {
                pid,
                child: Some(child),
                stdin,
                stdout: BufReader::new(stdout),
            }),
            Err(e) => {
                kill_and_reap(pid, child);
                Err(e)
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Writes one line (a `\n` is added).
    pub async fn send(&mut self, line: &str) -> io::Result<()> {
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.write_all(b"\n").await?;
        self.stdin.flush().await
    }

    /// Reads one line, without its `\n`; at most [`MAX_LINE`] bytes.
    pub async fn read_line(&mut self) -> Result<Vec<u8>, LineError> {
        let mut line = Vec::new();
        loop {
            let buf = self.stdout.fill_buf().await?;
            if buf.is_empty() {
                return Err(LineError::Eof);
            }
            let (take, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(pos) => (pos, true),
                None => (buf.len(), false),
            };
            if line.len() + take > MAX_LINE {
                return Err(LineError::TooLong);
            }
            line.extend_from_slice(&buf[..take]);
            self.stdout.consume(take + usize::from(done));
            if done {
                return Ok(line);
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            kill_and_reap(self.pid, child);
        }
    }
}

/// SIGKILLs the group (its leader is not reaped yet, so the id is still
/// ours), then reaps the leader on a thread of its own.
fn kill_and_reap(pid: Pid, mut child: Child) {
    let _ = killpg(pid, Signal::SIGKILL);
    let reaped = thread::Builder::new()
        .name("rift-client-reap".into())
        .spawn(move || {
            let _ = child.wait();
        });
    if let Err(e) = reaped {
        tracing::warn!("cannot reap client process {pid}: {e}");
    }
}

fn send(req: SpawnRequest) -> io::Result<()> {
    let mut guard = SPAWNER.lock().unwrap_or_else(PoisonError::into_inner);
    let req = match guard.as_ref() {
        Some(tx) => match tx.send(req) {
            Ok(()) => return Ok(()),
            Err(mpsc::SendError(req)) => req,
        },
        None => req,
    };
    let (tx, rx) = mpsc::channel::<SpawnRequest>();
    thread::Builder::new()
        .name("rift-client-spawner".into())
        .spawn(move || {
            for req in rx {
                let result = spawn_now(&req.argv, req.stderr);
                if let Err(Ok(child)) = req.reply.send(result) {
                    // The caller went away: leave no orphan.
                    kill_and_reap(Pid::from_raw(child.id() as i32), child);
                }
            }
        })?;
    tx.send(req)
        .map_err(|_| io::Error::other("rift's client spawner thread stopped"))?;
    *guard = Some(tx);
    Ok(())
}

fn spawn_now(argv: &Argv, stderr: File) -> io::Result<Child> {
    let mut cmd = Command::new(&argv.program);
    cmd.args(&argv.args)
        .envs(argv.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        // Own group: killing the client reaches what it forks, and a Ctrl-C
        // on rift's terminal does not reach it behind rift's back.
        .process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: runs between fork and exec and makes only async-signal-safe
    // calls (prctl, getppid, _exit); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || crate::cluster::die_with_parent(parent));
    }
    cmd.spawn()
}
