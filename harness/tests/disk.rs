//! The faulty disk, mounted for real: a FUSE filesystem over a temp dir,
//! exercised with ordinary `std::fs` calls (the same syscalls a node
//! makes), then rolled back by a power loss. Every test needs root and
//! /dev/fuse (and fusermount3) and skips with one line without them.

use rift::disk::{DiskFaults, Errno, FaultyDisk};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A mounted disk and its temp dir (fields drop in order: unmount first).
struct Mounted {
    disk: FaultyDisk,
    dir: tempfile::TempDir,
}

impl Mounted {
    fn mnt(&self, rel: &str) -> PathBuf {
        self.dir.path().join("m").join(rel)
    }
    fn backing(&self, rel: &str) -> PathBuf {
        self.dir.path().join("b").join(rel)
    }
    fn sync_dir(&self, rel: &str) {
        File::open(self.mnt(rel))
            .and_then(|d| d.sync_all())
            .expect("fsync the directory");
    }
}

fn available() -> bool {
    match FaultyDisk::check_available() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

fn mount(seed: u64) -> Option<Mounted> {
    if !available() {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let label = FaultyDisk::label_for("test", "n0");
    let disk = FaultyDisk::mount(&dir.path().join("b"), &dir.path().join("m"), &label, seed)
        .expect("mount");
    Some(Mounted { disk, dir })
}

/// Writes a file through the mount, fsyncs it and its directory.
fn durable(m: &Mounted, rel: &str, data: &[u8]) {
    let mut f = File::create(m.mnt(rel)).expect("create");
    f.write_all(data).expect("write");
    f.sync_all().expect("fsync");
    m.sync_dir("");
}

fn read(m: &Mounted, rel: &str) -> Option<Vec<u8>> {
    fs::read(m.mnt(rel)).ok()
}

#[test]
fn power_loss_keeps_only_what_was_made_durable() {
    let Some(m) = mount(1) else { return };
    durable(&m, "kept", b"durable bytes");
    durable(&m, "over", b"old");
    durable(&m, "gone", b"unlinked");
    durable(&m, "target", b"replaced");
    // Not durable: a new file, an overwrite, a rename over a target, an
    // unlink, a new file fsynced in a directory that is not.
    fs::write(m.mnt("new"), b"never synced").expect("write");
    let f = OpenOptions::new()
        .write(true)
        .open(m.mnt("over"))
        .expect("open");
    f.write_all_at(b"NEW BYTES", 0).expect("write");
    drop(f);
    fs::rename(m.mnt("kept"), m.mnt("target")).expect("rename");
    fs::remove_file(m.mnt("gone")).expect("unlink");
    let mut g = File::create(m.mnt("synced-file-only")).expect("create");
    g.write_all(b"data synced, entry not").expect("write");
    g.sync_all().expect("fsync");
    drop(g);
    assert_eq!(read(&m, "target").as_deref(), Some(&b"durable bytes"[..]));

    let r = m.disk.power_loss(false).expect("power loss");
    assert_eq!(read(&m, "kept").as_deref(), Some(&b"durable bytes"[..]));
    assert_eq!(read(&m, "over").as_deref(), Some(&b"old"[..]));
    assert_eq!(read(&m, "gone").as_deref(), Some(&b"unlinked"[..]));
    assert_eq!(read(&m, "target").as_deref(), Some(&b"replaced"[..]));
    assert_eq!(read(&m, "new"), None);
    assert_eq!(read(&m, "synced-file-only"), None);
    let mut names: Vec<String> = fs::read_dir(m.mnt(""))
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["gone", "kept", "over", "target"]);
    assert!(r.entries >= 4, "{r:?}");
    assert!(r.bytes >= 9, "{r:?}");
    assert_eq!(r.torn, 0);
    // The backing directory holds the same bytes.
    assert_eq!(fs::read(m.backing("over")).expect("backing"), b"old");
}

#[test]
fn subdirectories_renames_and_truncates_roll_back() {
    let Some(m) = mount(2) else { return };
    fs::create_dir(m.mnt("d")).expect("mkdir");
    m.sync_dir("");
    let mut f = File::create(m.mnt("d/log")).expect("create");
    f.write_all(&[b'a'; 8192]).expect("write");
    f.sync_all().expect("fsync");
    m.sync_dir("d");
    f.set_len(100).expect("truncate");
    f.write_all_at(b"zz", 5000).expect("write");
    drop(f);
    fs::create_dir(m.mnt("e")).expect("mkdir");
    fs::rename(m.mnt("d/log"), m.mnt("e/log2")).expect("rename across dirs");
    fs::remove_dir(m.mnt("e")).expect_err("e is not empty");
    m.disk.power_loss(false).expect("power loss");
    assert_eq!(read(&m, "d/log").as_deref(), Some(&[b'a'; 8192][..]));
    assert!(!m.mnt("e").exists());
}

#[test]
fn a_torn_write_keeps_a_seeded_prefix_of_the_last_write() {
    let run = |seed: u64| -> Option<Vec<u8>> {
        let m = mount(seed)?;
        durable(&m, "wal", b"header:");
        let f = OpenOptions::new()
            .write(true)
            .open(m.mnt("wal"))
            .expect("open");
        f.write_all_at(b"HEADER:", 0).expect("write");
        f.write_all_at(&[b'r'; 4000], 7).expect("write");
        drop(f);
        let r = m.disk.power_loss(true).expect("power loss");
        assert_eq!(r.torn, 1);
        read(&m, "wal")
    };
    let Some(a) = run(42) else { return };
    let Some(b) = run(42) else { return };
    assert_eq!(a, b, "the same seed tears at the same length");
    assert!(
        a.starts_with(b"header:"),
        "the earlier unsynced write undone"
    );
    assert!(a.len() < 7 + 4000);
    assert!(a[7..].iter().all(|c| *c == b'r'));
    eprintln!("torn: kept {} of 4000 bytes (seed 42)", a.len() - 7);
}

#[test]
fn injected_errnos_reach_the_syscalls() {
    let Some(m) = mount(3) else { return };
    fs::write(m.mnt("f"), b"content").expect("write");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.mnt("f"))
        .expect("open");

    m.disk.set_faults(DiskFaults {
        fsync: Some(Errno::Eio),
        ..DiskFaults::default()
    });
    let e = f.sync_all().expect_err("fsync fails");
    assert_eq!(e.raw_os_error(), Some(libc::EIO));
    let e = f.sync_data().expect_err("fdatasync fails");
    assert_eq!(e.raw_os_error(), Some(libc::EIO));
    let e = File::open(m.mnt(""))
        .and_then(|d| d.sync_all())
        .expect_err("fsync of the directory fails");
    assert_eq!(e.raw_os_error(), Some(libc::EIO));

    for (errno, raw) in [(Errno::Enospc, libc::ENOSPC), (Errno::Eio, libc::EIO)] {
        m.disk.set_faults(DiskFaults {
            write: Some(errno),
            ..DiskFaults::default()
        });
        let e = f.write_at(b"XX", 0).expect_err("write fails");
        assert_eq!(e.raw_os_error(), Some(raw));
    }

    m.disk.set_faults(DiskFaults {
        read: Some(Errno::Eio),
        ..DiskFaults::default()
    });
    let e = fs::read(m.mnt("f")).expect_err("read fails");
    assert_eq!(e.raw_os_error(), Some(libc::EIO));

    m.disk.set_faults(DiskFaults::default());
    assert_eq!(
        read(&m, "f").as_deref(),
        Some(&b"content"[..]),
        "nothing was written"
    );
    f.sync_all().expect("fsync works again");
    drop(f);
    // Nothing became durable while fsync failed: the entry of `f` was
    // never fsynced (its directory's fsync failed).
    m.disk.power_loss(false).expect("power loss");
    assert_eq!(read(&m, "f"), None);

    let s = m.disk.stats();
    assert_eq!(s.failed.get("fsync"), Some(&1));
    assert_eq!(s.failed.get("fdatasync"), Some(&1));
    assert_eq!(s.failed.get("fsyncdir"), Some(&1));
    assert_eq!(s.failed.get("write"), Some(&2));
    assert!(s.failed.get("read").copied().unwrap_or(0) >= 1);
    assert!(s.ops.get("write").copied().unwrap_or(0) >= 3);
    assert!(s.ops.get("create").copied().unwrap_or(0) >= 1);
    assert!(s.ops.get("fsync").copied().unwrap_or(0) >= 2);
}

#[test]
fn corrupt_flips_one_bit_of_what_is_read_and_never_the_backing_file() {
    let Some(m) = mount(4) else { return };
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7) as u8).collect();
    fs::write(m.mnt("f"), &data).expect("write");
    m.disk.set_faults(DiskFaults {
        corrupt: Some(1.0),
        ..DiskFaults::default()
    });
    let mut got = Vec::new();
    File::open(m.mnt("f"))
        .expect("open")
        .read_to_end(&mut got)
        .expect("read");
    assert_eq!(got.len(), data.len());
    let flipped: u32 = got
        .iter()
        .zip(&data)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    let reads = m.disk.stats().ops.get("read").copied().unwrap_or(0);
    let corrupted = m.disk.stats().corrupted;
    assert!(corrupted >= 1);
    assert_eq!(
        u64::from(flipped),
        corrupted,
        "one bit per corrupted read ({reads} reads)"
    );
    assert_eq!(fs::read(m.backing("f")).expect("backing"), data);
}

#[test]
fn latency_delays_every_operation() {
    let Some(m) = mount(5) else { return };
    fs::write(m.mnt("f"), b"x").expect("write");
    m.disk.set_faults(DiskFaults {
        latency: Some(Duration::from_millis(20)),
        ..DiskFaults::default()
    });
    let t = Instant::now();
    let f = OpenOptions::new()
        .write(true)
        .open(m.mnt("f"))
        .expect("open");
    f.write_at(b"y", 0).expect("write");
    let w = Instant::now();
    f.sync_data().expect("fdatasync");
    let synced = w.elapsed();
    let total = t.elapsed();
    drop(f);
    eprintln!(
        "latency 20ms: open+write+fdatasync took {:.1} ms (the fdatasync alone {:.1} ms)",
        total.as_secs_f64() * 1e3,
        synced.as_secs_f64() * 1e3
    );
    assert!(synced >= Duration::from_millis(20), "{synced:?}");
    let s = m.disk.stats();
    assert!(s.delayed.get("write").copied().unwrap_or(0) >= 1);
    assert!(s.delayed.get("fdatasync").copied().unwrap_or(0) >= 1);
    m.disk.set_faults(DiskFaults::default());
}

fn mounted(mountpoint: &Path) -> bool {
    let want = mountpoint.to_string_lossy().replace(' ', "\\040");
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

fn wait_until(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Starts `rift faulty-disk` and waits for its `ready`.
fn spawn_helper(dir: &Path, label: &str) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rift"))
        .arg("faulty-disk")
        .arg(dir.join("m"))
        .arg(dir.join("b"))
        .args(["--label", label])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rift faulty-disk");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    assert_eq!(line.trim(), "ready", "rift faulty-disk did not mount");
    child
}

#[test]
fn the_mount_disappears_when_its_owner_is_sigkilled() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // Not a `rift-` label: the sweep test running alongside must not be
    // the one that unmounts it.
    let mut child = spawn_helper(dir.path(), "test-killed");
    let mp = dir.path().join("m");
    assert!(mounted(&mp));
    fs::write(mp.join("f"), b"x").expect("write through the helper's mount");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(5), || !mounted(&mp)),
        "auto-unmount did not happen"
    );
    eprintln!("auto-unmount after SIGKILL took {:?}", t.elapsed());
}

#[test]
fn sweep_unmounts_a_mount_whose_owner_is_gone() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // A pid that is surely dead: a child already reaped.
    let mut gone = Command::new("true").spawn().expect("spawn true");
    let dead = gone.id();
    gone.wait().expect("reap");
    let label = format!("rift-sweeptest.{dead}-n0");
    let mut child = spawn_helper(dir.path(), &label);
    let mp = dir.path().join("m");
    assert!(mounted(&mp));
    let lines = rift::disk::sweep();
    assert!(
        lines.iter().any(|l| l.contains(&label)),
        "sweep said {lines:?}"
    );
    assert!(!mounted(&mp));
    // A live owner's mount (this test process's) is never swept.
    let live = mount(6).expect("mount");
    rift::disk::sweep();
    assert!(mounted(&live.dir.path().join("m")));
    // SAFETY: a plain kill of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("reap");
    assert!(status.success(), "the helper ends cleanly: {status:?}");
}
