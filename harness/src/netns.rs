//! Unnamed Linux network namespaces, held by a file descriptor.
//!
//! A namespace made here has no name (nothing in `ip netns list`) and no
//! mount: it lives exactly as long as this handle's descriptor or a process
//! or socket inside it, so it cannot outlive rift and the nodes it started.
//! Creating one needs CAP_SYS_ADMIN; entering one (a node at spawn, a test's
//! thread) needs it too.
//!
//! It must never change the namespace of a thread it did not create: work
//! that needs a namespace runs on a fresh thread that ends with the work.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::thread;

/// A handle on one network namespace; clones share the descriptor.
#[derive(Clone, Debug)]
pub struct Netns {
    fd: Arc<OwnedFd>,
}

impl PartialEq for Netns {
    fn eq(&self, other: &Netns) -> bool {
        Arc::ptr_eq(&self.fd, &other.fd)
    }
}

impl Eq for Netns {}

impl Netns {
    /// Creates a namespace and runs `setup` on a thread inside it (bring
    /// devices up, open sockets and devices that must belong to it). The
    /// thread ends with `setup`; what it made stays in the namespace.
    pub fn create<T, F>(setup: F) -> io::Result<(Netns, T)>
    where
        T: Send,
        F: FnOnce() -> io::Result<T> + Send,
    {
        thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: unshare only changes this thread's namespace, and
                // this thread is ours and ends right after `setup`.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                let fd = std::fs::File::open("/proc/thread-self/ns/net")?;
                let netns = Netns {
                    fd: Arc::new(OwnedFd::from(fd)),
                };
                let made = setup()?;
                Ok((netns, made))
            })
            .join()
            .map_err(|_| io::Error::other("namespace setup thread panicked"))?
        })
    }

    /// Runs `work` on a fresh thread inside this namespace and returns its
    /// result (tests and benches measure from inside with it).
    pub fn run<T, F>(&self, work: F) -> io::Result<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        thread::scope(|s| {
            s.spawn(|| {
                self.enter()?;
                Ok(work())
            })
            .join()
            .map_err(|_| io::Error::other("thread inside the namespace panicked"))?
        })
    }

    /// Moves the calling thread into this namespace. Only for threads that
    /// end with their work, and for a child between fork and exec (it is
    /// async-signal-safe: one system call, no allocation).
    pub fn enter(&self) -> io::Result<()> {
        // SAFETY: setns on a descriptor we own; it changes only this thread.
        if unsafe { libc::setns(self.fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The descriptor, for a spawn's pre-exec hook.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A namespace someone else made, opened by path: `/proc/<pid>/ns/net`
    /// of a process inside it (a container's network holder). The handle
    /// keeps it alive as long as it is held.
    pub fn open(path: &std::path::Path) -> io::Result<Netns> {
        let fd = std::fs::File::open(path)?;
        Ok(Netns {
            fd: Arc::new(OwnedFd::from(fd)),
        })
    }

    /// The namespace the calling process started in (`/proc/self/ns/net`
    /// of the main thread), for tests that compare.
    pub fn of_process() -> io::Result<Netns> {
        let fd = std::fs::File::open("/proc/self/ns/net")?;
        Ok(Netns {
            fd: Arc::new(OwnedFd::from(fd)),
        })
    }

    /// The kernel's identity of the namespace (the inode behind the fd), as
    /// `/proc/<pid>/ns/net` links show it: `net:[<inode>]`.
    pub fn inode(&self) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let link = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        Ok(std::fs::metadata(link)?.ino())
    }
}

/// Whether this process may create network namespaces and TUN devices:
/// effective CAP_SYS_ADMIN and CAP_NET_ADMIN, and `/dev/net/tun`. `Err`
/// names what is missing.
pub fn check_privileges() -> Result<(), String> {
    let caps = effective_caps().map_err(|e| format!("cannot read capabilities: {e}"))?;
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    let missing: Vec<&str> = [
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
    ]
    .into_iter()
    .filter(|(bit, _)| caps & (1u64 << bit) == 0)
    .map(|(_, name)| name)
    .collect();
    if !missing.is_empty() {
        return Err(format!("needs root ({} missing)", missing.join(" and ")));
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Err("needs /dev/net/tun (the tun kernel module)".into());
    }
    Ok(())
}

/// `CapEff` of this process, from /proc/self/status.
fn effective_caps() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or_else(|| io::Error::other("no CapEff line in /proc/self/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_is_new_and_entered_by_its_threads() {
        if let Err(missing) = check_privileges() {
            eprintln!("skipped: network namespaces {missing}");
            return;
        }
        let (ns, ()) = Netns::create(|| Ok(())).expect("create");
        let ours = Netns::of_process().expect("own namespace");
        assert_ne!(ns.inode().expect("inode"), ours.inode().expect("inode"));
        let seen = ns
            .run(|| std::fs::read_link("/proc/thread-self/ns/net").expect("readlink"))
            .expect("run");
        assert_eq!(
            seen.to_string_lossy(),
            format!("net:[{}]", ns.inode().expect("inode"))
        );
        // The caller's thread is untouched.
        let here = std::fs::read_link("/proc/thread-self/ns/net").expect("readlink");
        assert_eq!(
            here.to_string_lossy(),
            format!("net:[{}]", ours.inode().expect("inode"))
        );
    }
}
