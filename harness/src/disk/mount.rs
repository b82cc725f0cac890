//! Mounting, unmounting and sweeping: what the faulty disk needs of the
//! machine, the fuser session (through `fusermount3`, which also unmounts
//! when rift dies: `auto_unmount`), and the sweep of mounts whose rift is
//! gone.

use super::fs::DiskFs;
use super::DiskError;
use fuser::{BackgroundSession, Config, MountOption, SessionACL};
use std::fs;
use std::path::{Path, PathBuf};

/// FUSE worker threads per mount: how many operations can be in service
/// (and asleep in their latency) at once.
pub const THREADS: usize = 4;

/// The fusermount helper fuser runs (it honours `FUSERMOUNT_PATH`).
fn fusermount() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FUSERMOUNT_PATH") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["fusermount3", "fusermount"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Root, /dev/fuse and fusermount: one line naming what is missing.
pub fn check_available() -> Result<(), DiskError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(DiskError::Unavailable(
            "the faulty disk needs root (it mounts a FUSE filesystem with allow_other)".into(),
        ));
    }
    if let Err(e) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Err(DiskError::Unavailable(format!(
            "the faulty disk needs /dev/fuse ({e}; load the fuse module, or in a container pass --device /dev/fuse)"
        )));
    }
    if fusermount().is_none() {
        return Err(DiskError::Unavailable(
            "the faulty disk needs fusermount3 (or fusermount) on PATH (install the fuse3 package)"
                .into(),
        ));
    }
    Ok(())
}

/// Mounts `fs` at `mountpoint` (an empty directory, created if missing).
pub fn mount(fs_: DiskFs, mountpoint: &Path, label: &str) -> Result<BackgroundSession, DiskError> {
    let err = |source: std::io::Error| DiskError::Mount {
        mountpoint: mountpoint.to_path_buf(),
        source,
    };
    fs::create_dir_all(mountpoint).map_err(err)?;
    if fs::read_dir(mountpoint).map_err(err)?.next().is_some() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::DirectoryNotEmpty,
            "the mountpoint is not empty",
        )));
    }
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(label.to_string()),
        MountOption::Subtype("rift".into()),
        MountOption::AutoUnmount,
        MountOption::DefaultPermissions,
        MountOption::RW,
    ];
    config.acl = SessionACL::All;
    config.n_threads = Some(THREADS);
    config.clone_fd = true;
    fuser::spawn_mount(fs_, mountpoint, &config).map_err(err)
}

/// A tiny shell that lazily unmounts the mountpoint when rift dies however
/// it dies (its stdin, whose other end only rift holds, closes), should
/// fusermount3's own auto-unmount not happen (it is not reliable: seen to
/// leave the mount of a SIGKILLed server in place under load). Told
/// `done` on a clean unmount, it exits without touching anything.
#[derive(Debug)]
pub struct Guard {
    child: std::process::Child,
}

const GUARD_SCRIPT: &str = r#"IFS= read -r l || umount -l -- "$0" 2>/dev/null"#;

impl Guard {
    /// Without /bin/sh there is no guard (fusermount3 and `sweep` remain).
    pub fn start(mountpoint: &Path) -> Option<Guard> {
        use std::os::unix::process::CommandExt;
        let path = fs::canonicalize(mountpoint).unwrap_or_else(|_| mountpoint.to_path_buf());
        let child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(GUARD_SCRIPT)
            .arg(path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Not in rift's process group: a Ctrl-C that kills rift must
            // leave the guard alive to clean up.
            .process_group(0)
            .spawn()
            .ok()?;
        Some(Guard { child })
    }

    /// Dismisses the guard (the mount is gone) and reaps it.
    pub fn dismiss(mut self) {
        use std::io::Write;
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"done\n");
        }
        let _ = self.child.wait();
    }
}

/// One mount from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mountpoint: PathBuf,
    pub fstype: String,
    pub source: String,
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts of /proc/self/mountinfo.
pub fn mounts() -> Vec<MountEntry> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    parse_mountinfo(&text)
}

pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mountpoint = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let source = r.next()?;
            Some(MountEntry {
                mountpoint: PathBuf::from(unescape(mountpoint)),
                fstype: fstype.to_string(),
                source: unescape(source),
            })
        })
        .collect()
}

/// The owner pid a label `rift-<run-id>.<pid>-<node>` (or
/// `rift-<anything>.<pid>`) carries: the digits after the last `.` that
/// are followed by `-` or the end.
pub fn owner_pid(label: &str) -> Option<i32> {
    let rest = label.strip_prefix("rift-")?;
    rest.match_indices('.').rev().find_map(|(i, _)| {
        let digits: String = rest[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        let after = rest[i + 1 + digits.len()..].chars().next();
        if !digits.is_empty() && matches!(after, None | Some('-')) {
            digits.parse().ok()
        } else {
            None
        }
    })
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Lazily unmounts `mountpoint` (MNT_DETACH).
pub fn detach(mountpoint: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(mountpoint.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Lazily unmounts every rift FUSE mount whose owner is gone.
pub fn sweep() -> Vec<String> {
    let mut lines = Vec::new();
    for m in mounts() {
        if !m.fstype.starts_with("fuse") || !m.source.starts_with("rift-") {
            continue;
        }
        let Some(pid) = owner_pid(&m.source) else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        match detach(&m.mountpoint) {
            Ok(()) => lines.push(format!(
                "unmounted faulty disk {} at {} (rift pid {pid} is gone)",
                m.source,
                m.mountpoint.display()
            )),
            Err(e) => lines.push(format!(
                "could not unmount faulty disk {} at {}: {e}",
                m.source,
                m.mountpoint.display()
            )),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_the_label() {
        assert_eq!(owner_pid("rift-20260101T000000-ab12.4242-n0"), Some(4242));
        assert_eq!(owner_pid("rift-x.y.77"), Some(77));
        assert_eq!(owner_pid("rift-a.12-node-1"), Some(12));
        assert_eq!(owner_pid("rift-nopid-n0"), None);
        assert_eq!(owner_pid("other.12-n0"), None);
    }

    #[test]
    fn mountinfo_is_parsed_and_unescaped() {
        let text =
            "36 35 0:40 / /tmp/a\\040b rw,nosuid shared:1 - fuse.rift rift-r.9-n0 rw,user_id=0\n\
                    37 35 0:41 / /mnt rw - ext4 /dev/sda1 rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mountpoint, PathBuf::from("/tmp/a b"));
        assert_eq!(m[0].fstype, "fuse.rift");
        assert_eq!(m[0].source, "rift-r.9-n0");
    }
}
