//! `[cluster] backend = "docker"` end to end, through the `rift` binary:
//! the experiment passes with its nodes' logs written and nothing of the
//! run left in the engine; a SIGKILLed rift's containers (and, with a clock
//! step, libfaketime's files in /dev/shm) are removed by `rift clean`; Ctrl-C while the nodes start leaves nothing; a remote
//! engine refuses network faults at validation, without being contacted;
//! `network = "none"` (what a remote engine runs) puts the containers on
//! the run's own bridge, where kill, restart and pause work and nothing of
//! it, the network included, is left.
//! The tests that need the engine (and root, for the wire) skip with one
//! line when it does not answer.

use rift::docker::{count_run, Engine, Swept};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RIFT: &str = env!("CARGO_BIN_EXE_rift");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The engine, or `None` after printing the one skip line (also when the
/// wire cannot be made here).
fn engine(rt: &tokio::runtime::Runtime) -> Option<Engine> {
    if let Err(why) = rift::netns::check_privileges() {
        eprintln!("skipping: the wire {why}");
        return None;
    }
    match rt.block_on(Engine::connect()) {
        Ok(e) => Some(e),
        Err(err) => {
            eprintln!("skipping: {err}");
            None
        }
    }
}

/// The engine, or `None` after printing the one skip line (no wire).
fn engine_only(rt: &tokio::runtime::Runtime) -> Option<Engine> {
    match rt.block_on(Engine::connect()) {
        Ok(e) => Some(e),
        Err(err) => {
            eprintln!("skipping: {err}");
            None
        }
    }
}

/// The node binary for the image: the standalone sample node when it was
/// built beside this test (smaller), else rift itself.
fn node_binary() -> PathBuf {
    let rift = PathBuf::from(RIFT);
    let beside = rift.with_file_name("sample-node");
    if beside.is_file() {
        beside
    } else {
        rift
    }
}

/// The experiment, its `binary` pointed at [`node_binary`], in `dir`;
/// `edit` changes the text further.
fn experiment_in(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/docker-partition.toml");
    let text = std::fs::read_to_string(src).unwrap().replace(
        "binary = \"../target/debug/sample-node\"",
        &format!("binary = {:?}", node_binary().display().to_string()),
    );
    assert!(text.contains(&node_binary().display().to_string()));
    let path = dir.join("docker-partition.toml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// The run id of the newest run of the plan under `out`, once it exists.
fn latest_run(out: &Path, plan: &str) -> Option<String> {
    let link = std::fs::read_link(out.join(plan).join("latest")).ok()?;
    Some(link.to_string_lossy().into_owned())
}

#[test]
fn the_experiment_passes_logs_each_node_and_leaves_nothing_in_the_engine() {
    let rt = runtime();
    let Some(e) = engine(&rt) else { return };
    let dir = tempfile::tempdir().unwrap();
    let plan = experiment_in(dir.path(), |t| t);
    let out = dir.path().join("results");
    let run = Command::new(RIFT)
        .args(["run", "--duration", "17s", "--out"])
        .arg(&out)
        .arg(&plan)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("docker-partition: PASS"), "{stdout}");
    let id = latest_run(&out, "docker-partition").unwrap();
    let nodes = out.join("docker-partition").join(&id).join("nodes");
    for n in 0..5 {
        let log = std::fs::read_to_string(nodes.join(format!("n{n}.log"))).unwrap();
        assert!(log.contains("sample-node starting"), "n{n}: {log}");
    }
    // n1 was SIGKILLed and started again: the same container, its WAL
    // kept on its volume.
    let n1 = std::fs::read_to_string(nodes.join("n1.log")).unwrap();
    assert!(n1.contains("start #2"), "{n1}");
    let recovered = n1.lines().rfind(|l| l.contains("recovered WAL")).unwrap();
    assert!(!recovered.contains("entries=0 "), "{recovered}");
    assert_eq!(rt.block_on(count_run(&e, &id)).unwrap(), Swept::default());
}

#[test]
fn containers_on_the_runs_bridge_survive_kill_restart_and_pause_and_leave_nothing() {
    let rt = runtime();
    let Some(e) = engine_only(&rt) else { return };
    let dir = tempfile::tempdir().unwrap();
    let plan = experiment_in(dir.path(), |t| {
        let head = &t[..t.find("[[step]]").unwrap()];
        let steps = "[[step]]\nat = \"1s\"\nfault = \"kill\"\ntarget = \"n1\"\nsignal = \"SIGKILL\"\n\n\
                     [[step]]\nat = \"2s\"\nfault = \"restart\"\ntarget = \"n1\"\n\n\
                     [[step]]\nat = \"3500ms\"\nfault = \"pause\"\ntarget = \"n2\"\nhow = \"freeze\"\nfor = \"1s\"\n\n\
                     [expect]\nlinearizable = true\nlost_writes = 0\n";
        format!("{head}{steps}")
            .replace("size = 5", "size = 3")
            .replace("network = \"netns\"", "network = \"none\"")
            .replace("clients = 10", "clients = 3")
            .replace("rate = 200", "rate = 50")
    });
    let out = dir.path().join("results");
    let run = Command::new(RIFT)
        .args(["run", "--duration", "6s", "--out"])
        .arg(&out)
        .arg(&plan)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("docker-partition: PASS"), "{stdout}");
    let id = latest_run(&out, "docker-partition").unwrap();
    let nodes = out.join("docker-partition").join(&id).join("nodes");
    // n1 started again: the same container at the same bridge address,
    // its WAL kept on its volume.
    let n1 = std::fs::read_to_string(nodes.join("n1.log")).unwrap();
    assert!(n1.contains("start #2"), "{n1}");
    let recovered = n1.lines().rfind(|l| l.contains("recovered WAL")).unwrap();
    assert!(!recovered.contains("entries=0 "), "{recovered}");
    let addrs: Vec<&str> = n1
        .lines()
        .filter(|l| l.contains("container") && l.contains(" runs: "))
        .collect();
    assert_eq!(addrs.len(), 2, "{n1}");
    assert_eq!(addrs[0], addrs[1]);
    assert!(addrs[0].contains("198.19."), "{n1}");
    assert_eq!(rt.block_on(count_run(&e, &id)).unwrap(), Swept::default());
}

#[test]
fn a_sigkilled_rift_leaves_containers_that_rift_clean_removes() {
    let rt = runtime();
    let Some(e) = engine(&rt) else { return };
    let dir = tempfile::tempdir().unwrap();
    // A clock step (never reached) when libfaketime is here: its files in
    // /dev/shm are left too, and `rift clean` removes them.
    let clocks = rift::clock::faketime::find_library().is_ok();
    let plan = experiment_in(dir.path(), |t| {
        let head = &t[..t.find("[[step]]").unwrap()];
        let clock = if clocks {
            "[[step]]\nat = \"25s\"\nfault = \"clock\"\ntarget = \"n1\"\noffset = \"-1h\"\n"
        } else {
            ""
        };
        format!("{head}{clock}[expect]\n").replace("size = 5", "size = 3")
    });
    let out = dir.path().join("results");
    let mut rift = Command::new(RIFT)
        .args(["run", "--duration", "60s", "--progress", "quiet", "--out"])
        .arg(&out)
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let shm = |pid: u32| -> Vec<String> {
        std::fs::read_dir("/dev/shm")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.contains(&format!("rift-ft-{pid}-")))
            .collect()
    };
    let pid = rift.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        let running = latest_run(&out, "docker-partition").and_then(|id| {
            let s = rt.block_on(count_run(&e, &id)).ok()?;
            // Three node containers and three holders (and, with clocks,
            // each node's shared memory and semaphore).
            (s.containers >= 6 && (!clocks || shm(pid).len() >= 6)).then_some(id)
        });
        if let Some(id) = running {
            break id;
        }
        assert!(Instant::now() < deadline, "the nodes never started");
        assert!(rift.try_wait().unwrap().is_none(), "rift ended early");
        std::thread::sleep(Duration::from_millis(100));
    };
    rift.kill().unwrap();
    rift.wait().unwrap();
    let left = rt.block_on(count_run(&e, &id)).unwrap();
    assert!(
        left.containers >= 6 && left.volumes >= 3 && left.images >= 2,
        "{left:?}"
    );
    if clocks {
        // Each node's shared memory and semaphore.
        assert_eq!(shm(pid).len(), 6, "{:?}", shm(pid));
    }
    let clean = Command::new(RIFT).arg("clean").output().unwrap();
    let said = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(clean.status.code(), Some(0), "{said}");
    assert!(said.contains("Docker container"), "{said}");
    assert_eq!(rt.block_on(count_run(&e, &id)).unwrap(), Swept::default());
    assert_eq!(shm(pid), Vec::<String>::new());
}

#[test]
fn a_remote_engine_refuses_network_faults_without_being_contacted() {
    let dir = tempfile::tempdir().unwrap();
    let plan = experiment_in(dir.path(), |t| t);
    let started = Instant::now();
    let out = Command::new(RIFT)
        .arg("validate")
        .arg(&plan)
        .env("DOCKER_HOST", "tcp://192.0.2.1:2375")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(
            "network faults need the engine on rift's own machine: DOCKER_HOST=tcp://192.0.2.1:2375 is remote"
        ),
        "{said}"
    );
    // The partition steps are refused for the same reason.
    assert!(
        said.contains("a partition step needs network faults"),
        "{said}"
    );
    // 192.0.2.1 is a documentation address: nothing answers there, and
    // validation never tried.
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn ctrl_c_while_the_nodes_start_leaves_nothing_in_the_engine() {
    let rt = runtime();
    let Some(e) = engine(&rt) else { return };
    let dir = tempfile::tempdir().unwrap();
    let plan = experiment_in(dir.path(), |t| t);
    let out = dir.path().join("results");
    let mut rift = Command::new(RIFT)
        .args(["run", "--progress", "quiet", "--out"])
        .arg(&out)
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // As soon as the engine holds anything of the run (holders, images).
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let seen = latest_run(&out, "docker-partition").filter(|id| {
            rt.block_on(count_run(&e, id))
                .is_ok_and(|s| s.containers + s.images > 0)
        });
        if let Some(id) = seen {
            break id;
        }
        assert!(Instant::now() < deadline, "nothing of the run appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: signalling the child we started, which has not been waited.
    assert_eq!(unsafe { libc::kill(rift.id() as i32, libc::SIGINT) }, 0);
    let status = rift.wait().unwrap();
    assert_ne!(status.code(), Some(0));
    assert_eq!(rt.block_on(count_run(&e, &id)).unwrap(), Swept::default());
}
