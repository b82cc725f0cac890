//! Nothing of a netns run outlives it: after a normal end, after Ctrl-C and
//! after SIGKILL of rift, no node process, no namespace of the run (no
//! `/proc/*/ns/net` holds one), no rift TUN device, no route to the run's
//! /24 and nothing new in `ip netns list` (/run/netns).
//!
//! Runs the real `rift` binary on a 3-node sample cluster. Needs root and
//! skips with one line without it. The tests take turns: each looks for
//! the devices and routes of "its" run.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn privileged() -> bool {
    match rift::netns::check_privileges() {
        Ok(()) => true,
        Err(missing) => {
            eprintln!("skipped: the netns wire {missing}");
            false
        }
    }
}

fn plan(dir: &Path, duration: &str) -> std::path::PathBuf {
    let p = dir.join("cleanup.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"cleanup\"\nseed = 3\nduration = \"{duration}\"\n[cluster]\nsize = 3\nnetwork = \"netns\"\n[workload]\nkind = \"kv\"\nclients = 4\nrate = 50\n[[step]]\nat = \"1s\"\nfault = \"partition\"\ntopology = \"isolate(n0)\"\nfor = \"1s\"\n"
        ),
    )
    .expect("write plan");
    p
}

fn start(dir: &Path, duration: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rift"))
        .args(["run", "--progress", "quiet", "--out"])
        .arg(dir.join("results"))
        .arg(plan(dir, duration))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rift")
}

/// Direct children of `pid` running the sample node.
fn nodes_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for c in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            let cmd = std::fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmd).contains("sample-node") {
                out.push(c);
            }
        }
    }
    out
}

fn netns_of(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|l| l.to_string_lossy().into_owned())
}

/// Every namespace link any process holds.
fn namespaces_held() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
            out.extend(netns_of(pid));
            for t in std::fs::read_dir(format!("/proc/{pid}/task"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(l) = std::fs::read_link(t.path().join("ns/net")) {
                    out.insert(l.to_string_lossy().into_owned());
                }
            }
        }
    }
    out
}

/// rift's TUN devices in this namespace (`rift0`, `rift1`, ...).
fn rift_devices() -> BTreeSet<String> {
    std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| {
            n.strip_prefix("rift")
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
        })
        .collect()
}

/// Destinations of IPv4 routes in 198.18.0.0/15, as hex from /proc/net/route.
fn wire_routes() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .filter(|hex| {
            u32::from_str_radix(hex, 16)
                .map(|le| {
                    let b = le.to_le_bytes();
                    b[0] == 198 && (b[1] == 18 || b[1] == 19)
                })
                .unwrap_or(false)
        })
        .collect()
}

fn named_namespaces() -> BTreeSet<String> {
    std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect()
}

struct Seen {
    nodes: Vec<u32>,
    namespaces: BTreeSet<String>,
    devices: BTreeSet<String>,
}

/// Polls until rift's three nodes run in namespaces of their own and its
/// device is up.
fn wait_running(rift: &mut Child, before: &BTreeSet<String>) -> Seen {
    let deadline = Instant::now() + Duration::from_secs(30);
    let ours = netns_of(std::process::id());
    loop {
        let nodes = nodes_of(rift.id());
        let namespaces: BTreeSet<String> = nodes.iter().filter_map(|&p| netns_of(p)).collect();
        let devices: BTreeSet<String> = rift_devices().difference(before).cloned().collect();
        if nodes.len() == 3 && namespaces.len() == 3 && !devices.is_empty() {
            assert!(ours.as_ref().is_some_and(|o| !namespaces.contains(o)));
            return Seen {
                nodes,
                namespaces,
                devices,
            };
        }
        if let Ok(Some(status)) = rift.try_wait() {
            panic!("rift ended before its nodes ran: {status}");
        }
        assert!(Instant::now() < deadline, "nodes never ran: {nodes:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until nothing of the run is left; panics naming what is.
fn assert_gone(seen: &Seen, named_before: &BTreeSet<String>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let alive: Vec<u32> = seen
            .nodes
            .iter()
            .copied()
            .filter(|p| Path::new(&format!("/proc/{p}")).exists())
            .collect();
        let held: Vec<String> = namespaces_held()
            .intersection(&seen.namespaces)
            .cloned()
            .collect();
        let devices: Vec<String> = rift_devices()
            .intersection(&seen.devices)
            .cloned()
            .collect();
        let routes = wire_routes();
        let named = named_namespaces();
        if alive.is_empty()
            && held.is_empty()
            && devices.is_empty()
            && routes.is_empty()
            && &named == named_before
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: nodes {alive:?}, namespaces {held:?}, devices {devices:?}, routes {routes:?}, named {named:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls until the workload has recorded operations: the run is under way.
fn wait_workload(dir: &Path) {
    let history = dir.join("results/cleanup/latest/history.jsonl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::metadata(&history).is_ok_and(|m| m.len() > 0) {
        assert!(Instant::now() < deadline, "the workload never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check(end: impl FnOnce(&mut Child, &Path), duration: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let before = rift_devices();
    let named_before = named_namespaces();
    let mut rift = start(dir.path(), duration);
    let seen = wait_running(&mut rift, &before);
    end(&mut rift, dir.path());
    assert_gone(&seen, &named_before);
}

#[test]
fn nothing_outlives_a_normal_run() {
    check(
        |rift, _| {
            let out = rift.wait().expect("wait");
            assert!(out.code().is_some(), "{out}");
        },
        "3s",
    );
}

#[test]
fn nothing_outlives_ctrl_c() {
    check(
        |rift, dir| {
            wait_workload(dir);
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(rift.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            )
            .expect("SIGINT");
            let out = rift.wait().expect("wait");
            assert!(
                out.code().is_some(),
                "rift handled Ctrl-C and exited: {out}"
            );
        },
        "60s",
    );
}

#[test]
fn nothing_outlives_sigkill() {
    check(
        |rift, dir| {
            wait_workload(dir);
            rift.kill().expect("SIGKILL");
            let _ = rift.wait();
        },
        "60s",
    );
}

/// Without the privileges, a netns plan is still valid, and running it
/// exits 3 with one line naming what is missing and the alternative. As
/// root the test drops them (`setpriv` to nobody) to see the same.
#[test]
fn without_root_a_netns_run_exits_3_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = plan(dir.path(), "3s");
    let rift = env!("CARGO_BIN_EXE_rift");
    let validate = Command::new(rift)
        .arg("validate")
        .arg(&plan)
        .output()
        .expect("validate");
    assert!(validate.status.success(), "{validate:?}");
    let mut cmd = if rift::netns::check_privileges().is_ok() {
        if !Path::new("/usr/bin/setpriv").exists() {
            eprintln!("skipped: running as root and setpriv (util-linux) is missing to drop root");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777));
        let mut c = Command::new("/usr/bin/setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(rift);
        c
    } else {
        Command::new(rift)
    };
    let out = cmd
        .args(["run", "--progress", "quiet", "--out"])
        .arg(dir.path().join("results"))
        .arg(&plan)
        .output()
        .expect("run rift");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("needs root") && errors[0].contains("network = \"proxy\""),
        "{stderr}"
    );
}

/// A node killed and restarted re-enters its own namespace: the same
/// address before and after, and the cluster takes it back.
#[test]
fn a_restarted_node_keeps_its_address() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("restart.toml");
    std::fs::write(
        &plan,
        "name = \"restart\"\nseed = 5\nduration = \"6s\"\n[cluster]\nsize = 3\nnetwork = \"netns\"\n[workload]\nkind = \"kv\"\nclients = 4\nrate = 50\n[[step]]\nat = \"1s\"\nfault = \"kill\"\ntarget = \"n1\"\nrestart_after = \"1s\"\n[expect]\nlost_writes = 0\n",
    )
    .expect("write plan");
    let out = Command::new(env!("CARGO_BIN_EXE_rift"))
        .args(["run", "--progress", "quiet", "--out"])
        .arg(dir.path().join("results"))
        .arg(&plan)
        .output()
        .expect("run rift");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(dir.path().join("results/restart/latest/nodes/n1.log"))
        .expect("n1's log");
    let listens: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("sample-node starting"))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("listen=")))
        .collect();
    assert_eq!(listens.len(), 2, "two starts of n1:\n{log}");
    assert_eq!(listens[0], listens[1]);
    assert!(listens[0].starts_with("listen=198.1"), "{}", listens[0]);
}
