//! The faulty disk in real runs: the bundled sample node on `[cluster]
//! disk = "faulty"` (each data dir a FUSE mount of rift's), a `kill` with
//! `lose_unsynced = true` (a power loss recorded in report.json), a `disk`
//! step failing fsync, the one line and exit 3 where the faulty disk is
//! unavailable, and no mount outliving a SIGKILLed rift.
//!
//! Needs root and /dev/fuse (skips with one line without them), except the
//! test of the unavailable disk, which simulates it (`RIFT_NO_FUSE=1`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn available() -> bool {
    match rift::disk::FaultyDisk::check_available() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: the faulty disk is unavailable: {why}");
            false
        }
    }
}

fn rift() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rift"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rift-disk-run-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

const HEAD: &str =
    "[cluster]\nsize = 3\ndisk = \"faulty\"\n[workload]\nkind = \"kv\"\nclients = 4\nrate = 40\n";

fn write_plan(dir: &Path, name: &str, duration: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!("name = \"{name}\"\nduration = \"{duration}\"\n{HEAD}{body}"),
    )
    .expect("write plan");
    p
}

fn run_plan(plan: &Path, out: &Path) -> Output {
    rift()
        .args(["run", "--progress", "quiet", "--seed", "1", "--out"])
        .arg(out)
        .arg(plan)
        .output()
        .expect("run rift")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn report(out: &Path, name: &str) -> Value {
    let path = out.join(name).join("latest").join("report.json");
    let t = std::fs::read_to_string(&path).expect("report.json");
    serde_json::from_str(&t).expect("report is JSON")
}

fn disk_of<'a>(r: &'a Value, node: &str) -> &'a Value {
    r["cluster"]["disks"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["node"] == node))
        .unwrap_or(&Value::Null)
}

/// The lines of /proc/self/mountinfo naming a disk of rift `pid`.
fn mounts_of(pid: u32) -> Vec<String> {
    let needle = format!(".{pid}-n");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("rift-") && l.contains(&needle))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_correct_node_passes_on_the_faulty_disk() {
    if !available() {
        return;
    }
    let dir = tmp("plain");
    let plan = write_plan(
        &dir,
        "disk-ok",
        "3s",
        "[expect]\nlinearizable = true\nlost_writes = 0\n",
    );
    let out = dir.join("results");
    let o = run_plan(&plan, &out);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&out, "disk-ok");
    let disks = r["cluster"]["disks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(disks.len(), 3, "{}", r["cluster"]);
    for d in &disks {
        let writes = d["stats"]["ops"]["write"].as_u64().unwrap_or(0);
        assert!(writes > 0, "every node wrote through its disk: {d}");
        assert_eq!(
            d["stats"]["failed"]
                .as_object()
                .map(|m| m.values().filter(|v| v.as_u64() != Some(0)).count()),
            Some(0),
            "{d}"
        );
    }
    let summary =
        std::fs::read_to_string(out.join("disk-ok/latest/summary.md")).unwrap_or_default();
    assert!(summary.contains("faulty disks:"), "{summary}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_power_loss_is_recorded_and_fsync_errors_are_counted() {
    if !available() {
        return;
    }
    let dir = tmp("faults");
    // n2 crashes on its WAL's failing fsync by design: no_unexpected_exits
    // is not asked for.
    let plan = write_plan(
        &dir,
        "disk-faults",
        "5s",
        "[[step]]\nat = \"1s\"\nfault = \"kill\"\ntarget = \"n1\"\nlose_unsynced = true\ntorn = true\nrestart_after = \"1s\"\n\
[[step]]\nat = \"2500ms\"\nfault = \"disk\"\ntarget = \"n2\"\nfsync = \"eio\"\nfor = \"1s\"\n\
[expect]\nlinearizable = true\nlost_writes = 0\nno_unexpected_exits = false\n",
    );
    let out = dir.join("results");
    let o = run_plan(&plan, &out);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&out, "disk-faults");
    let n1 = disk_of(&r, "n1");
    let losses = n1["power_losses"].as_array().cloned().unwrap_or_default();
    assert_eq!(losses.len(), 1, "{n1}");
    assert_eq!(losses[0]["torn"], true, "{n1}");
    assert!(losses[0]["rollback"]["bytes"].is_u64(), "{n1}");
    assert!(losses[0]["error"].is_null(), "{n1}");
    // The timeline says what was rolled back; n1 came back and caught up.
    let kill = r["timeline"]
        .as_array()
        .and_then(|t| t.iter().find(|e| e["action"] == "kill"))
        .cloned()
        .unwrap_or_default();
    assert!(
        kill["detail"]
            .as_str()
            .unwrap_or("")
            .contains("n1 rolled back"),
        "{kill}"
    );
    assert!(
        r["convergence"]["seconds"].is_number(),
        "{}",
        r["convergence"]
    );
    let n2 = disk_of(&r, "n2");
    let failed_syncs = ["fsync", "fdatasync"]
        .iter()
        .map(|k| n2["stats"]["failed"][k].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert!(failed_syncs > 0, "{n2}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_the_faulty_disk_the_run_exits_3_with_one_line() {
    let dir = tmp("nofuse");
    let plan = write_plan(&dir, "disk-none", "3s", "");
    let v = rift()
        .arg("validate")
        .arg(&plan)
        .output()
        .expect("rift validate");
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    let o = rift()
        .env("RIFT_NO_FUSE", "1")
        .args(["run", "--progress", "quiet", "--out"])
        .arg(dir.join("results"))
        .arg(&plan)
        .output()
        .expect("run rift");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("rift: running"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("disk = \"faulty\" needs the faulty disk")
            && lines[0].contains("RIFT_NO_FUSE"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_mount_outlives_a_sigkilled_rift() {
    if !available() {
        return;
    }
    let dir = tmp("sigkill");
    let plan = write_plan(&dir, "disk-kill", "20s", "");
    let mut child = rift()
        .args(["run", "--progress", "quiet", "--out"])
        .arg(dir.join("results"))
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rift");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(15);
    while mounts_of(pid).len() < 3 {
        assert!(Instant::now() < deadline, "rift never mounted its 3 disks");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL: nothing of rift runs its Drop.
    let _ = child.kill();
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !mounts_of(pid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = mounts_of(pid);
    if !left.is_empty() {
        // The kernel's auto-unmount did not: `rift clean` must.
        let o = rift().arg("clean").output().expect("rift clean");
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !mounts_of(pid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(
        mounts_of(pid),
        Vec::<String>::new(),
        "mounts of rift {pid} remain"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// What `rift validate` says of a plan with every disk mistake: one line
/// each, naming file, line, column and field. No root needed.
#[test]
fn disk_mistakes_name_file_line_column_and_field() {
    let dir = tmp("validate");
    let p = dir.join("bad.toml");
    std::fs::write(
        &p,
        "name = \"bad\"\nduration = \"10s\"\n[workload]\nkind = \"kv\"\n\
[[step]]\nat = \"1s\"\nfault = \"kill\"\ntarget = \"n1\"\nlose_unsynced = true\n\
[[step]]\nat = \"2s\"\nfault = \"kill\"\ntarget = \"n1\"\ntorn = true\n\
[[step]]\nat = \"3s\"\nfault = \"disk\"\ntarget = \"n1\"\n",
    )
    .expect("write plan");
    let o = rift()
        .arg("validate")
        .arg(&p)
        .output()
        .expect("rift validate");
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let file = p.display().to_string();
    for want in [
        format!("{file}:9:17: step[0].lose_unsynced: `lose_unsynced` (a power loss) needs [cluster] disk = \"faulty\""),
        format!("{file}:14:8: step[1].torn: `torn` is part of a power loss; it needs `lose_unsynced = true` too"),
        format!("{file}:17:9: step[2].fault: a disk step needs [cluster] disk = \"faulty\""),
        format!("{file}:15:1: step[2]: a disk step needs at least one of `fsync`, `write`, `read`, `latency`, `corrupt`"),
    ] {
        assert!(all.contains(&want), "missing {want:?} in:\n{all}");
    }
    // Bad errno names, under the faulty disk.
    let q = dir.join("errno.toml");
    std::fs::write(
        &q,
        "name = \"errno\"\nduration = \"10s\"\n[cluster]\ndisk = \"faulty\"\n[workload]\nkind = \"kv\"\n\
[[step]]\nat = \"1s\"\nfault = \"disk\"\ntarget = \"n1\"\nfsync = \"enospc\"\nwrite = \"EIO\"\n",
    )
    .expect("write plan");
    let o = rift()
        .arg("validate")
        .arg(&q)
        .output()
        .expect("rift validate");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let file = q.display().to_string();
    for want in [
        format!("{file}:11:9: step[0].fsync: expected \"eio\" (the error the node's fsync gets), found \"enospc\""),
        format!("{file}:12:9: step[0].write: expected \"eio\" or \"enospc\" (the error the node's write gets), found \"EIO\""),
    ] {
        assert!(all.contains(&want), "missing {want:?} in:\n{all}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
