//! The Docker mechanism against the real engine: an image built from host
//! binaries, a container's whole lifecycle (pause, SIGKILL, start again with
//! its volume), logs across restarts, the network holder's namespace, and
//! the sweep of a dead rift's objects. Skips with one line when no engine
//! answers.
//!
//! The figures in docs/docker.md come from the ignored `measure_*` test:
//! `cargo build -p sample-node && cargo test -p rift --test docker_engine
//! -- --ignored --nocapture`.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rift::docker::{
    self, build_image, container_name, count_run, remove_run, start_holder, sweep_stale, Container,
    ContainerNet, ContainerSpec, Engine, RunLabels, Swept,
};

/// The engine, or `None` after printing the one skip line.
async fn engine() -> Option<Engine> {
    match Engine::connect().await {
        Ok(e) => Some(e),
        Err(err) => {
            eprintln!("skipping: {err}");
            None
        }
    }
}

fn run_id(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("test-{test}-{}-{nanos}", std::process::id())
}

/// Runs `body`, then removes everything of the run whatever happened, and
/// only then lets a failure through.
async fn with_run<F, Fut>(e: &Engine, labels: &RunLabels, body: F)
where
    F: FnOnce(Engine, RunLabels) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(body(e.clone(), labels.clone())).await;
    let removed = remove_run(e, &labels.run_id).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
    removed.unwrap();
    assert_eq!(
        count_run(e, &labels.run_id).await.unwrap(),
        Swept::default()
    );
}

/// Polls `check` every 20 ms until it holds or `within` passes.
async fn wait_for<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sh() -> PathBuf {
    PathBuf::from("/bin/sh")
}

fn sleep() -> PathBuf {
    PathBuf::from("/bin/sleep")
}

#[tokio::test]
async fn an_engine_that_does_not_answer_is_a_quick_clear_error() {
    // Nothing listens on port 1 of loopback: refused at once.
    let t = Instant::now();
    let err = Engine::connect_to(docker::classify("tcp://127.0.0.1:1"))
        .await
        .unwrap_err();
    assert!(t.elapsed() <= docker::CONNECT_TIMEOUT + Duration::from_secs(1));
    let text = err.to_string();
    assert!(
        text.starts_with("no Docker engine answers at tcp://127.0.0.1:1"),
        "{text}"
    );
}

#[tokio::test]
async fn container_lifecycle_pause_kill_restart_logs_and_removal() {
    let Some(e) = engine().await else { return };
    let labels = RunLabels::this_process(&run_id("life"));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("n1.log");
    let log2 = log.clone();
    with_run(&e, &labels, |e, labels| async move {
        let image = build_image(&e, &sh(), &[sleep()], &labels, "shell")
            .await
            .unwrap();
        assert!(docker::image_exists(&e, &image.0).await.unwrap());
        let spec = ContainerSpec {
            name: container_name(&labels.run_id, "n1"),
            node: "n1".into(),
            image: image.0.clone(),
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                // Only the shell and sleep are in the image: count in sh.
                "echo start >> /data/starts; n=0; \
                 while read l; do n=$((n+1)); echo \"line $l\"; done < /data/starts; \
                 echo \"starts=$n $GREETING\"; exec /bin/sleep 1000"
                    .into(),
            ],
            env: vec![("GREETING".into(), "hello".into())],
            net: ContainerNet::None,
            data_volume: true,
            publish: Vec::new(),
            labels: labels.clone(),
        };
        let c = Container::create(&e, &spec).await.unwrap();
        let follower = c.follow_logs(&e, log2.clone());
        c.start(&e).await.unwrap();
        let st = c.state(&e).await.unwrap();
        assert!(st.running && !st.paused && st.pid.is_some(), "{st:?}");
        assert_eq!(st.exit_code, None);

        c.pause(&e).await.unwrap();
        assert!(c.state(&e).await.unwrap().paused);
        c.unpause(&e).await.unwrap();
        assert!(!c.state(&e).await.unwrap().paused);

        c.kill(&e, libc::SIGKILL).await.unwrap();
        wait_for(
            "not running after SIGKILL",
            Duration::from_secs(5),
            || async { !c.state(&e).await.unwrap().running },
        )
        .await;
        assert_eq!(c.state(&e).await.unwrap().exit_code, Some(137));

        // The same container again: its volume kept the first start's line.
        c.start(&e).await.unwrap();
        assert!(c.state(&e).await.unwrap().running);

        let quota = || async {
            let r = e
                .client()
                .inspect_container(
                    &c.id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .unwrap();
            r.host_config.and_then(|h| h.cpu_quota)
        };
        c.set_cpus(&e, Some(0.2)).await.unwrap();
        assert_eq!(quota().await, Some(20_000));
        c.set_cpus(&e, None).await.unwrap();
        assert!(quota().await.is_none_or(|q| q <= 0));
        let read = || std::fs::read_to_string(&log2).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !read().contains("starts=2 hello") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let text = read();
        assert!(text.contains("starts=2 hello"), "log: {text:?}");
        assert_eq!(text.matches("starts=1 hello").count(), 1, "{text}");
        assert_eq!(text.matches("starts=2 hello").count(), 1, "{text}");
        assert_eq!(text.matches("line start").count(), 3, "{text}");
        follower.abort();
    })
    .await;
}

#[tokio::test]
async fn holder_owns_a_namespace_that_a_joined_container_shares() {
    let Some(e) = engine().await else { return };
    let labels = RunLabels::this_process(&run_id("holder"));
    with_run(&e, &labels, |e, labels| async move {
        let (holder, pid) = start_holder(&e, &labels, "n1").await.unwrap();
        let ns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
        let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
        assert_ne!(ns(pid), mine);
        let spec = ContainerSpec {
            name: container_name(&labels.run_id, "n1"),
            node: "n1".into(),
            image: docker::image_tag(&labels.run_id, "holder"),
            argv: vec!["/bin/sleep".into(), "1000".into()],
            env: Vec::new(),
            net: ContainerNet::Join(holder.id.clone()),
            data_volume: false,
            publish: Vec::new(),
            labels: labels.clone(),
        };
        let node = Container::create(&e, &spec).await.unwrap();
        node.start(&e).await.unwrap();
        let node_pid = node.state(&e).await.unwrap().pid.unwrap();
        assert_eq!(ns(node_pid), ns(pid));
        // Killed and started again, it rejoins the same namespace.
        node.kill(&e, libc::SIGKILL).await.unwrap();
        wait_for("node stopped", Duration::from_secs(5), || async {
            !node.state(&e).await.unwrap().running
        })
        .await;
        node.start(&e).await.unwrap();
        let again = node.state(&e).await.unwrap().pid.unwrap();
        assert_eq!(ns(again), ns(pid));
    })
    .await;
}

async fn volume_exists(e: &Engine, name: &str) -> bool {
    e.client().inspect_volume(name).await.is_ok()
}

#[tokio::test]
async fn sweep_removes_objects_of_dead_rifts_and_keeps_live_ones() {
    let Some(e) = engine().await else { return };
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let live = RunLabels::this_process(&run_id("sweep-live"));
    let dead = RunLabels {
        run_id: run_id("sweep-dead"),
        pid: dead_pid,
        pid_start: live.pid_start,
    };
    let reused = RunLabels {
        run_id: run_id("sweep-reused"),
        pid: live.pid,
        pid_start: live.pid_start + 1,
    };
    // A "rift" that is SIGKILLed between two sweeps.
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let killed = RunLabels {
        run_id: run_id("sweep-killed"),
        pid: victim.id(),
        pid_start: docker::labels::pid_start(victim.id()).unwrap(),
    };
    let mut names = Vec::new();
    for l in [&live, &dead, &reused, &killed] {
        let name = format!("{}-data", container_name(&l.run_id, "n1"));
        e.client()
            .create_volume(bollard::models::VolumeCreateRequest {
                name: Some(name.clone()),
                labels: Some(l.to_map(Some("n1"))),
                ..Default::default()
            })
            .await
            .unwrap();
        names.push(name);
    }
    let swept = sweep_stale(&e).await;
    let kept = volume_exists(&e, &names[0]).await;
    let dead_left = volume_exists(&e, &names[1]).await;
    let reused_left = volume_exists(&e, &names[2]).await;
    let victim_kept = volume_exists(&e, &names[3]).await;
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    let swept_again = sweep_stale(&e).await;
    let victim_left = volume_exists(&e, &names[3]).await;
    for l in [&live, &dead, &reused, &killed] {
        remove_run(&e, &l.run_id).await.unwrap();
    }
    assert!(swept.unwrap().volumes >= 2);
    assert!(swept_again.unwrap().volumes >= 1);
    assert!(kept, "a live rift's volume was swept");
    assert!(victim_kept, "a live process's volume was swept");
    assert!(!dead_left, "a dead rift's volume was kept");
    assert!(!reused_left, "a volume whose pid was reused was kept");
    assert!(!victim_left, "a SIGKILLed process's volume was kept");
}

/// The sample node binary (`cargo build -p sample-node`) beside this test
/// binary's target directory.
fn sample_node() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let debug = exe.parent()?.parent()?;
    let p = debug.join("sample-node");
    p.is_file().then_some(p)
}

/// Creates and starts `n` sample-node containers (`parallel` at a time),
/// each checked running; returns the time taken.
async fn start_many(
    e: &Engine,
    labels: &RunLabels,
    image: &str,
    program: &str,
    first: usize,
    n: usize,
    parallel: usize,
) -> Duration {
    let t = Instant::now();
    let mut idx = first;
    while idx < first + n {
        let batch: Vec<usize> = (idx..(idx + parallel).min(first + n)).collect();
        idx += batch.len();
        let mut tasks = Vec::new();
        for i in batch {
            let e = e.clone();
            let node = format!("n{i}");
            let spec = ContainerSpec {
                name: container_name(&labels.run_id, &node),
                node: node.clone(),
                image: image.to_string(),
                // The image holds the binary at its host path.
                argv: vec![
                    program.to_string(),
                    "--id".into(),
                    node,
                    "--listen".into(),
                    "127.0.0.1:7000".into(),
                    "--data-dir".into(),
                    "/data".into(),
                ],
                env: Vec::new(),
                net: ContainerNet::None,
                data_volume: true,
                publish: Vec::new(),
                labels: labels.clone(),
            };
            tasks.push(tokio::spawn(async move {
                let c = Container::create(&e, &spec).await.unwrap();
                c.start(&e).await.unwrap();
                assert!(c.state(&e).await.unwrap().running);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    t.elapsed()
}

#[tokio::test]
#[ignore = "measurement for docs/docker.md; needs `cargo build -p sample-node`"]
async fn measure_build_and_start_rates() {
    let Some(e) = engine().await else { return };
    let Some(bin) = sample_node() else {
        eprintln!("skipping: no sample-node binary; run `cargo build -p sample-node`");
        return;
    };
    let labels = RunLabels::this_process(&run_id("measure"));
    with_run(&e, &labels, |e, labels| async move {
        let size = std::fs::metadata(&bin).unwrap().len();
        for name in ["sample-node", "sample-node-again"] {
            let t = Instant::now();
            build_image(&e, &bin, &[], &labels, name).await.unwrap();
            println!(
                "build {name}: {} MB binary, {:.2} s",
                size / 1_000_000,
                t.elapsed().as_secs_f64()
            );
        }
        let image = docker::image_tag(&labels.run_id, "sample-node");
        let program = bin.to_string_lossy().into_owned();
        let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
        let seq = start_many(&e, &labels, &image, &program, 0, 10, 1).await;
        println!(
            "sequential: 10 created+started in {:.2} s ({:.1}/s)",
            seq.as_secs_f64(),
            rate(10, seq)
        );
        let par = start_many(&e, &labels, &image, &program, 10, 10, 5).await;
        println!(
            "5 at a time: 10 created+started in {:.2} s ({:.1}/s)",
            par.as_secs_f64(),
            rate(10, par)
        );
        remove_run(&e, &labels.run_id).await.unwrap();
        build_image(&e, &bin, &[], &labels, "sample-node")
            .await
            .unwrap();
        let all = start_many(&e, &labels, &image, &program, 0, 25, 5).await;
        println!(
            "25 sample-node containers, create to running, 5 at a time: {:.2} s",
            all.as_secs_f64()
        );
        let t = Instant::now();
        start_holder(&e, &labels, "h0").await.unwrap();
        println!(
            "first holder (image built from sleep, then started): {:.2} s",
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        for i in 1..=5 {
            start_holder(&e, &labels, &format!("h{i}")).await.unwrap();
        }
        println!(
            "5 more holders, one after another: {:.2} s",
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let swept = remove_run(&e, &labels.run_id).await.unwrap();
        println!(
            "remove_run: {swept:?} in {:.2} s",
            t.elapsed().as_secs_f64()
        );
    })
    .await;
}

#[tokio::test]
async fn a_bridge_network_is_labelled_and_removed_with_its_run() {
    let Some(e) = engine().await else { return };
    let labels = RunLabels::this_process(&run_id("bridge"));
    with_run(&e, &labels, |e, labels| async move {
        let name = docker::create_bridge(&e, &labels).await.unwrap();
        let counted = count_run(&e, &labels.run_id).await.unwrap();
        assert_eq!(counted.networks, 1, "{name}: {counted:?}");
    })
    .await;
}

#[tokio::test]
async fn host_paths_and_the_host_ipc_namespace_reach_a_container() {
    let Some(e) = engine().await else { return };
    let labels = RunLabels::this_process(&run_id("extras"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec"), "from-host\n").unwrap();
    // Removed on drop, a failed assertion included.
    let shm_file = tempfile::Builder::new()
        .prefix("rift-test-")
        .tempfile_in("/dev/shm")
        .unwrap();
    std::fs::write(shm_file.path(), "shared\n").unwrap();
    let shm = shm_file.path().display().to_string();
    let log = dir.path().join("c.log");
    let (inside, log2, shm2) = (dir.path().to_path_buf(), log.clone(), shm.clone());
    with_run(&e, &labels, |e, labels| async move {
        build_image(&e, &sh(), &[PathBuf::from("/bin/cat")], &labels, "cat")
            .await
            .unwrap();
        let spec = ContainerSpec {
            name: container_name(&labels.run_id, "n1"),
            node: "n1".into(),
            image: docker::image_tag(&labels.run_id, "cat"),
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                format!("/bin/cat {}/spec {shm2}", inside.display()),
            ],
            env: Vec::new(),
            net: ContainerNet::None,
            data_volume: false,
            publish: Vec::new(),
            labels: labels.clone(),
        };
        let extras = docker::ContainerExtras {
            binds: vec![(inside.clone(), inside.clone(), true)],
            ipc_host: true,
        };
        let c = Container::create_with(&e, &spec, &extras).await.unwrap();
        let follower = c.follow_logs(&e, log2.clone());
        c.start(&e).await.unwrap();
        wait_for("both files read", Duration::from_secs(5), || async {
            std::fs::read_to_string(&log2).unwrap_or_default() == "from-host\nshared\n"
        })
        .await;
        follower.abort();
    })
    .await;
}
