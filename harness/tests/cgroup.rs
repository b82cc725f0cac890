//! Node cgroups against the real kernel: a freeze stops a node's whole
//! process tree without a signal, `slow` holds a CPU-bound node to its
//! share, and no cgroup outlives its run (not even when rift is SIGKILLed:
//! `rift clean` removes what is left, and never a live run's cgroup).
//!
//! Every test needs root and a usable freezer and cpu controller (cgroup
//! v1 or v2), and python3 for its nodes; each skips with one line without.

use rift::cgroup::{Plan, RunCgroup, PARENT};
use rift::cluster::{Cluster, NodeLayout, Ports};
use rift::plan::{
    ArgTemplate, ClusterSpec, NetworkMode, NodeCommand, PauseHow, PeersFormat, Placeholder,
    Readiness, ReadyProbe, Template, TemplatePart,
};
use rift::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The heavy tests one at a time: each `rift run` sweeps the cgroups of
/// dead runs, which must not race the SIGKILL test's `rift clean`; and the
/// slow test measures its node's unthrottled speed, which a run beside it
/// would take CPU from (on a 2-core machine).
static HEAVY: Mutex<()> = Mutex::const_new(());

fn python() -> Option<String> {
    let found = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    found.map(str::to_string)
}

/// The run cgroup for a test, or `None` (having said why, once) when
/// cgroups or python3 cannot be used here.
fn usable(id: &str) -> Option<(Arc<RunCgroup>, String)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: node cgroups need root");
        return None;
    }
    let Some(py) = python() else {
        eprintln!("skipped: python3 is not installed (the test nodes are python scripts)");
        return None;
    };
    let run = match RunCgroup::create(id) {
        Ok(r) => r,
        Err(why) => {
            eprintln!("skipped: cgroups unusable: {why}");
            return None;
        }
    };
    if let Err(why) = run.can_freeze().and_then(|()| run.can_slow()) {
        eprintln!("skipped: {why}");
        return None;
    }
    Some((run, py))
}

fn lit(s: &str) -> ArgTemplate {
    ArgTemplate::One(Template {
        parts: vec![TemplatePart::Lit(s.to_string())],
    })
}

fn var(p: Placeholder) -> ArgTemplate {
    ArgTemplate::One(Template {
        parts: vec![TemplatePart::Var(p)],
    })
}

/// One python node running `script` with its port and data dir as
/// arguments, ready when its port accepts.
fn spec(py: &str, script: &str) -> ClusterSpec {
    ClusterSpec {
        size: 1,
        host: std::net::Ipv4Addr::LOCALHOST.into(),
        command: NodeCommand::External {
            program: py.into(),
            args: vec![
                lit("-c"),
                lit(script),
                var(Placeholder::Port),
                var(Placeholder::DataDir),
            ],
        },
        env: BTreeMap::new(),
        ready: Readiness {
            probe: ReadyProbe::Tcp,
            timeout: Duration::from_secs(10),
        },
        leader: None,
        network: NetworkMode::None,
        peers: PeersFormat {
            format: Template {
                parts: vec![TemplatePart::Var(Placeholder::Name)],
            },
            separator: ",".into(),
            include_self: false,
        },
        separate_peer_port: false,
        stop_timeout: Duration::from_secs(2),
        capture: None,
        clock: Default::default(),
    }
}

const LISTEN: &str = "import os, socket, sys, time
port, d = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', port))
s.listen(16)
def put(name, v):
    p = os.path.join(d, name)
    with open(p + '.tmp', 'w') as f:
        f.write(str(v))
    os.replace(p + '.tmp', p)
";

/// A node that forks a child; both count in files (`parent`, `child`)
/// and say their pids (`parent.pid`, `child.pid`).
fn counting_tree() -> String {
    format!(
        "{LISTEN}who = 'child' if os.fork() == 0 else 'parent'
put(who + '.pid', os.getpid())
n = 0
while True:
    n += 1
    put(who, n)
    time.sleep(0.005)
"
    )
}

/// A node spinning on the CPU, writing its progress to `count`.
fn spinner() -> String {
    format!(
        "{LISTEN}n = 0
while True:
    n += 1
    if n % 20000 == 0:
        put('count', n)
"
    )
}

async fn start_one(spec: &ClusterSpec, dir: &Path, run: &Arc<RunCgroup>) -> Cluster {
    let mut ports = Ports::reserve(spec, dir, 0).expect("ports");
    ports.place_cgroup(NodeId(0), run.node("n0").expect("node cgroup"));
    let peer = |layout: &[NodeLayout]| {
        let a = SocketAddr::from(([127, 0, 0, 1], layout[0].peer_port));
        move |_: NodeId, _: NodeId| a
    };
    let peers = peer(ports.layout());
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let c = Cluster::start(spec, ports, peers, tx).await.expect("start");
    c.wait_ready(&[NodeId(0)], Duration::from_secs(10))
        .await
        .expect("ready");
    c
}

fn read_num(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Polls `f` every 10 ms until it returns `Some`, up to `within`.
async fn poll<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The state letter of `/proc/<pid>/stat` (R, S, T, ...).
fn proc_state(pid: u64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn tempdir(tag: &str) -> PathBuf {
    // One per test (tags differ) and per test process.
    let d = std::env::temp_dir().join(format!("rift-cgroup-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[tokio::test]
async fn freeze_stops_the_whole_tree_without_a_signal_and_thaw_resumes_it() {
    let Some((run, py)) = usable("test-freeze") else {
        return;
    };
    let dir = tempdir("freeze");
    let c = start_one(&spec(&py, &counting_tree()), &dir, &run).await;
    let data = dir.join("data").join("n0");
    let pids = poll(Duration::from_secs(5), || {
        Some((
            read_num(&data.join("parent.pid"))?,
            read_num(&data.join("child.pid"))?,
        ))
    })
    .await
    .expect("both processes say their pid");
    // Both are inside the node's cgroup.
    let inside = c.cgroup(NodeId(0)).expect("cgroup").pids();
    assert!(
        inside.contains(&(pids.0 as u32)) && inside.contains(&(pids.1 as u32)),
        "{inside:?} vs {pids:?}"
    );
    let count = |who: &str| read_num(&data.join(who));
    let before = (count("parent"), count("child"));
    poll(Duration::from_secs(5), || {
        (count("parent") > before.0 && count("child") > before.1).then_some(())
    })
    .await
    .expect("both count before the freeze");

    c.pause_with(NodeId(0), PauseHow::Freeze).expect("freeze");
    assert_eq!(c.state(NodeId(0)), rift::NodeState::Paused);
    let frozen = (count("parent"), count("child"));
    // Watch for 300 ms: nothing may move, and nobody is stopped by a signal.
    let watch_until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < watch_until {
        assert_eq!(
            (count("parent"), count("child")),
            frozen,
            "a frozen node counted"
        );
        for pid in [pids.0, pids.1] {
            let st = proc_state(pid);
            assert!(
                !matches!(st, Some('T') | Some('t')),
                "pid {pid} shows state {st:?}: a signal stopped it"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    c.resume(NodeId(0)).expect("thaw");
    assert_eq!(c.state(NodeId(0)), rift::NodeState::Up);
    poll(Duration::from_secs(5), || {
        (count("parent") > frozen.0 && count("child") > frozen.1).then_some(())
    })
    .await
    .expect("both count again after the thaw");

    // A frozen node stops (it is thawed first) and its restart enters the
    // same cgroup, thawed.
    c.pause_with(NodeId(0), PauseHow::Freeze)
        .expect("freeze again");
    c.stop(NodeId(0)).await.expect("stop a frozen node");
    c.start_node(NodeId(0)).await.expect("restart");
    c.wait_ready(&[NodeId(0)], Duration::from_secs(10))
        .await
        .expect("ready again");
    let pid = c.pid(NodeId(0)).expect("restarted pid");
    assert!(c.cgroup(NodeId(0)).expect("cgroup").pids().contains(&pid));
    assert!(!c.cgroup(NodeId(0)).expect("cgroup").is_frozen());

    // And the teardown of a frozen node is prompt.
    c.pause_with(NodeId(0), PauseHow::Freeze)
        .expect("freeze a third time");
    let t = Instant::now();
    c.shutdown().await.expect("shutdown of a frozen node");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn slow_holds_a_spinning_node_to_its_cpu_share() {
    let Some((run, py)) = usable("test-slow") else {
        return;
    };
    let _one = HEAVY.lock().await;
    let dir = tempdir("slow");
    let c = start_one(&spec(&py, &spinner()), &dir, &run).await;
    let cg = c.cgroup(NodeId(0)).expect("cgroup").clone();
    let file = dir.join("data").join("n0").join("count");
    poll(Duration::from_secs(5), || read_num(&file))
        .await
        .expect("the spinner counts");
    // Progress per second and CPU share over a window.
    let window = |len: Duration| {
        let file = file.clone();
        let cg = cg.clone();
        async move {
            let (n0, u0, t0) = (read_num(&file), cg.cpu_usage(), Instant::now());
            tokio::time::sleep(len).await;
            let (n1, u1, dt) = (read_num(&file), cg.cpu_usage(), t0.elapsed());
            let rate = n1.unwrap_or(0).saturating_sub(n0.unwrap_or(0)) as f64 / dt.as_secs_f64();
            let share = match (u0, u1) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64() / dt.as_secs_f64()),
                _ => None,
            };
            (rate, share)
        }
    };
    let (fast, fast_share) = window(Duration::from_millis(1000)).await;
    c.set_cpu(NodeId(0), Some(0.2)).expect("slow");
    // Let the throttled period start before measuring.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (slow, slow_share) = window(Duration::from_millis(1500)).await;
    c.set_cpu(NodeId(0), None).expect("fast again");
    eprintln!(
        "spinner: {fast:.0}/s (cpu {fast_share:?}) before, {slow:.0}/s (cpu {slow_share:?}) at cpu = 0.2"
    );
    assert!(fast > 0.0, "the spinner made no progress unthrottled");
    // The loop's speed on a whole CPU: on a busy 2-core machine the
    // unthrottled window may get less than one CPU, so its rate is scaled
    // by the share it really got (when the accounting says).
    let full = match fast_share {
        Some(share) if share > 0.05 => fast / share.min(1.0),
        Some(_) | None => fast,
    };
    let ratio = slow / full;
    assert!(
        ratio < 0.35,
        "slowed to {ratio:.2} of its speed on a whole CPU ({:.2} of its unthrottled speed), not about 0.2",
        slow / fast
    );
    match slow_share {
        Some(share) => assert!(
            (0.1..=0.3).contains(&share),
            "the cgroup got {share:.2} of a CPU at cpu = 0.2"
        ),
        None => eprintln!("note: no CPU accounting (cpuacct) here; share not checked"),
    }
    c.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every `<mount>/rift/<run>.<pid>` directory of rift process `pid`.
fn run_dirs_of(pid: u32) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for h in Plan::detect().hierarchies() {
        let Ok(entries) = std::fs::read_dir(h.mount.join(PARENT)) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            if e.file_name().to_str().and_then(rift::cgroup::owner_pid) == Some(pid) {
                out.push(e.path());
            }
        }
    }
    out
}

fn frozen(dir: &Path) -> bool {
    let v1 = std::fs::read_to_string(dir.join("freezer.state"));
    let v2 = std::fs::read_to_string(dir.join("cgroup.events"));
    v1.is_ok_and(|s| s.trim() == "FROZEN") || v2.is_ok_and(|s| s.contains("frozen 1"))
}

fn gone(pid: u32) -> bool {
    matches!(proc_state(u64::from(pid)), None | Some('Z') | Some('X'))
}

fn write_plan(dir: &Path, name: &str, duration: &str, steps: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "name = \"{name}\"\nduration = \"{duration}\"\n[cluster]\nsize = 3\n[workload]\nkind = \"kv\"\nclients = 2\nrate = 40\nkeys = 5\ntimeout = \"1s\"\n{steps}"
        ),
    )
    .expect("write plan");
    p
}

fn rift() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rift"))
}

#[tokio::test]
async fn a_run_leaves_no_cgroup_behind() {
    let Some((_probe, _)) = usable("test-normal") else {
        return;
    };
    let _one = HEAVY.lock().await;
    let dir = tempdir("normal");
    let plan = write_plan(
        &dir,
        "cg-normal",
        "3s",
        "[[step]]\nat = \"1s\"\nfault = \"pause\"\nhow = \"freeze\"\ntarget = \"n1\"\nfor = \"500ms\"\n[[step]]\nat = \"1500ms\"\nfault = \"slow\"\ntarget = \"n2\"\ncpu = 0.2\n",
    );
    let child = rift()
        .args(["run", "--progress", "quiet", "--out"])
        .arg(dir.join("out"))
        .arg(&plan)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rift");
    let pid = child.id();
    // Its nodes run in its cgroup while it runs.
    let seen = poll(Duration::from_secs(10), || {
        let dirs = run_dirs_of(pid);
        let with_nodes = dirs.iter().any(|d| {
            std::fs::read_to_string(d.join("n0").join("cgroup.procs"))
                .is_ok_and(|s| !s.trim().is_empty())
        });
        with_nodes.then_some(dirs)
    })
    .await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("rift ran");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(seen.is_some(), "the nodes never ran inside rift's cgroup");
    assert_eq!(run_dirs_of(pid), Vec::<PathBuf>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_sigkilled_run_leaves_no_cgroup_and_rift_clean_spares_a_live_one() {
    let Some((_probe, _)) = usable("test-kill") else {
        return;
    };
    let _one = HEAVY.lock().await;
    let dir = tempdir("kill");
    let plan = write_plan(
        &dir,
        "cg-kill",
        "30s",
        "[[step]]\nat = \"500ms\"\nfault = \"pause\"\nhow = \"freeze\"\ntarget = \"n0\"\nfor = \"20s\"\n",
    );
    let mut child = rift()
        .args(["run", "--progress", "quiet", "--out"])
        .arg(dir.join("out"))
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rift");
    let pid = child.id();
    // Until n0 is frozen inside rift's cgroup.
    let dirs = poll(Duration::from_secs(15), || {
        let dirs = run_dirs_of(pid);
        dirs.iter().any(|d| frozen(&d.join("n0"))).then_some(dirs)
    })
    .await;
    let Some(dirs) = dirs else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("n0 was never frozen in rift's cgroup");
    };
    let pids_of = |node: &str| -> Vec<u32> {
        std::fs::read_to_string(dirs[0].join(node).join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let (frozen_pids, others): (Vec<u32>, Vec<u32>) =
        (pids_of("n0"), [pids_of("n1"), pids_of("n2")].concat());
    assert!(!frozen_pids.is_empty() && !others.is_empty());

    // A cgroup of a live owner (this test process) sits next to it.
    let live = dirs[0]
        .parent()
        .expect("rift dir")
        .join(format!("live-test.{}", std::process::id()));
    std::fs::create_dir(&live).expect("live cgroup");

    // SIGKILL: nothing in rift runs; its nodes die by PDEATHSIG, and the
    // guard shell that outlives rift thaws the frozen one, kills it and
    // removes the run's cgroups.
    child.kill().expect("SIGKILL rift");
    let _ = child.wait();
    poll(Duration::from_secs(10), || {
        others
            .iter()
            .chain(&frozen_pids)
            .all(|p| gone(*p))
            .then_some(())
    })
    .await
    .expect("every node, the frozen one too, died with rift");
    poll(Duration::from_secs(10), || {
        dirs.iter().all(|d| !d.exists()).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the guard left cgroups behind: {dirs:?}"));
    assert!(live.exists(), "the guard removed a live owner's cgroup");

    // What a guard could not remove (it was killed too), `rift clean`
    // does: a run cgroup whose owner pid is dead, next to the live one.
    let mut gone_child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead = gone_child.id();
    let _ = gone_child.wait();
    let leftover = dirs[0]
        .parent()
        .expect("rift dir")
        .join(format!("20260101-000000-dead.{dead}"));
    std::fs::create_dir_all(leftover.join("n0")).expect("leftover cgroup");
    let out = rift().arg("clean").output().expect("rift clean");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let live_kept = live.exists();
    let _ = std::fs::remove_dir(&live);
    assert!(live_kept, "rift clean removed the cgroup of a live owner");
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("removed cgroup {}", leftover.display())),
        "{text}"
    );
    assert!(!leftover.exists(), "{} is still there", leftover.display());
    assert!(text.contains("leftover"), "{text}");
    assert!(
        !text.contains(&format!("live-test.{}", std::process::id())),
        "a live owner's cgroup was touched: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without root, a plan that needs cgroups cannot run (exit 3, one line
/// saying why) but still validates. As root the test drops to `nobody`
/// with `setpriv`.
#[test]
fn without_root_a_freeze_plan_validates_but_cannot_run() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = Path::new("/usr/bin/setpriv");
    if root && !setpriv.is_file() {
        eprintln!("skipped: running as root and setpriv (util-linux) is missing to drop it");
        return;
    }
    let dir = tempdir("nonroot");
    write_plan(
        &dir,
        "cg-nonroot",
        "3s",
        "[[step]]\nat = \"1s\"\nfault = \"pause\"\nhow = \"freeze\"\ntarget = \"n1\"\n",
    );
    // Readable and writable by nobody.
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("a+rwX")
        .arg(&dir)
        .status();
    let as_user = |args: &[&str]| {
        let mut c = if root {
            let mut c = Command::new(setpriv);
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_rift"));
            c
        } else {
            rift()
        };
        c.args(args).current_dir(&dir).output().expect("rift")
    };
    let out_dir = dir.join("out");
    let out_dir = out_dir.to_str().expect("utf-8 temp dir");
    let ran = as_user(&[
        "run",
        "--progress",
        "quiet",
        "--out",
        out_dir,
        "cg-nonroot.toml",
    ]);
    let err = String::from_utf8_lossy(&ran.stderr).to_string();
    if root && err.contains("Permission denied") && err.contains("executable") {
        eprintln!("skipped: nobody cannot execute the test build of rift");
        return;
    }
    assert_eq!(ran.status.code(), Some(3), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("pause with how = \"freeze\" (plan line 11) needs cgroups, but"),
        "{err}"
    );
    let checked = as_user(&["validate", "cg-nonroot.toml"]);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
