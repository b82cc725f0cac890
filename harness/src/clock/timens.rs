//! Time namespaces (Linux 5.6+): a node started with a monotonic offset
//! runs in a time namespace of its own whose CLOCK_MONOTONIC (with its
//! _COARSE and _RAW forms) and CLOCK_BOOTTIME read the host's value plus
//! the offset. The kernel applies it in the vDSO and in the system call
//! alike, so it reaches static binaries and programs that bypass libc;
//! CLOCK_REALTIME is never touched.
//!
//! Made between fork and exec (the child is single-threaded then, as
//! `setns(CLONE_NEWTIME)` requires): `unshare(CLONE_NEWTIME)` makes the
//! namespace for the child's future children, its offsets are written to
//! `/proc/self/timens_offsets` (allowed until a process enters it), and
//! `setns` on `/proc/self/ns/time_for_children` moves the child itself in,
//! so the program it then executes starts inside. The namespace ends with
//! the last process in it.

use crate::plan::ClockOffset;
use std::ffi::CString;
use std::io;

/// What a child writes between fork and exec: prepared before the fork so
/// the child allocates nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeOffsets {
    /// `monotonic <secs> <nanos>\nboottime <secs> <nanos>\n`.
    line: Vec<u8>,
    offsets_path: CString,
    for_children_path: CString,
}

impl TimeOffsets {
    pub fn new(offset: ClockOffset) -> TimeOffsets {
        let nanos = offset.as_nanos();
        // The kernel wants whole seconds (signed) and nanoseconds in
        // 0..1e9: -1.5s is "-2 500000000".
        let secs = nanos.div_euclid(1_000_000_000);
        let sub = nanos.rem_euclid(1_000_000_000);
        let line = format!("monotonic {secs} {sub}\nboottime {secs} {sub}\n").into_bytes();
        TimeOffsets {
            line,
            offsets_path: c"/proc/self/timens_offsets".to_owned(),
            for_children_path: c"/proc/self/ns/time_for_children".to_owned(),
        }
    }

    /// The text written to `timens_offsets`.
    pub fn text(&self) -> &[u8] {
        &self.line
    }

    /// In the child between fork and exec: enter a new time namespace with
    /// these offsets. Async-signal-safe (unshare, open, write, setns,
    /// close); allocates nothing.
    ///
    /// # Safety
    /// Only call from a `pre_exec` hook (single-threaded child).
    pub unsafe fn enter(&self) -> io::Result<()> {
        // SAFETY: plain system calls on the calling (child) process; the
        // buffers live in `self`, which the parent keeps until exec.
        unsafe {
            if libc::unshare(libc::CLONE_NEWTIME) != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::open(self.offsets_path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = libc::write(fd, self.line.as_ptr().cast(), self.line.len());
            let write_err = io::Error::last_os_error();
            libc::close(fd);
            if n < 0 || n as usize != self.line.len() {
                return Err(write_err);
            }
            let ns = libc::open(
                self.for_children_path.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            );
            if ns < 0 {
                return Err(io::Error::last_os_error());
            }
            let rc = libc::setns(ns, libc::CLONE_NEWTIME);
            let setns_err = io::Error::last_os_error();
            libc::close(ns);
            if rc != 0 {
                return Err(setns_err);
            }
        }
        Ok(())
    }
}

/// Whether this machine and this rift can give nodes time namespaces with
/// `offsets` (node name, offset); the one line saying why not.
pub fn check(offsets: &[(String, ClockOffset)]) -> Result<(), String> {
    if offsets.is_empty() {
        return Ok(());
    }
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        return Err(
            "[cluster] monotonic_offset needs time namespaces, which this kernel lacks (Linux 5.6+ with CONFIG_TIME_NS; /proc/self/ns/time is missing)"
                .into(),
        );
    }
    if !has_cap_sys_admin() {
        return Err(
            "[cluster] monotonic_offset needs CAP_SYS_ADMIN to make time namespaces; run rift as root"
                .into(),
        );
    }
    // The kernel refuses an offset that makes a clock negative.
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    if rc == 0 {
        let now_ns = i128::from(now.tv_sec) * 1_000_000_000 + i128::from(now.tv_nsec);
        for (node, offset) in offsets {
            if now_ns + offset.as_nanos() < 1_000_000_000 {
                return Err(format!(
                    "[cluster] monotonic_offset {node} = \"{offset}\" would make {node}'s CLOCK_MONOTONIC negative: it reads {:.1}s now (the time since boot); use a smaller negative offset",
                    now_ns as f64 / 1e9
                ));
            }
        }
    }
    Ok(())
}

/// CAP_SYS_ADMIN in the effective set (`CapEff` of /proc/self/status).
fn has_cap_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn offsets_are_written_as_the_kernel_wants() {
        let o = |negative, ms| ClockOffset {
            negative,
            magnitude: Duration::from_millis(ms),
        };
        assert_eq!(
            TimeOffsets::new(o(true, 1_500)).text(),
            b"monotonic -2 500000000\nboottime -2 500000000\n"
        );
        assert_eq!(
            TimeOffsets::new(o(false, 3_600_000)).text(),
            b"monotonic 3600 0\nboottime 3600 0\n"
        );
    }

    #[test]
    fn an_offset_below_the_uptime_is_refused() {
        let far_back = ClockOffset {
            negative: true,
            magnitude: Duration::from_secs(100 * 365 * 86_400),
        };
        if std::path::Path::new("/proc/self/ns/time").exists() && has_cap_sys_admin() {
            let e = check(&[("n1".into(), far_back)]).expect_err("negative clock");
            assert!(
                e.contains("would make n1's CLOCK_MONOTONIC negative"),
                "{e}"
            );
        }
        assert_eq!(check(&[]), Ok(()));
    }
}
