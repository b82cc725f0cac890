//! Clock faults against real sample nodes, read back from each node's own
//! `/health` (`wall_ms`: its CLOCK_REALTIME, `mono_ms`: its
//! CLOCK_MONOTONIC): libfaketime offsets, rates, strobes and their undo
//! move only the target's wall clock, without a restart; a time namespace
//! moves a node's monotonic clock from its start, restarts included; a plan
//! with clock steps runs green through the CLI and leaves nothing behind;
//! a node that cannot take libfaketime stops the run with exit 3 and one
//! line. Tests needing libfaketime (the `libfaketime` package) or root
//! (time namespaces) skip with one line without them.

use rift::clock::faketime::{self, Faketime};
use rift::cluster::{Cluster, NodeEvent, Ports, SampleNodeProgram};
use rift::plan::{ClockChange, ClockOffset, ClusterSpec};
use rift::NodeId;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn libfaketime() -> bool {
    match faketime::find_library() {
        Ok(_) => true,
        Err(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

fn sample_node() -> SampleNodeProgram {
    SampleNodeProgram {
        program: env!("CARGO_BIN_EXE_rift").into(),
        leading_args: vec!["sample-node".into()],
    }
}

fn spec(size: usize, extra: &str) -> ClusterSpec {
    rift::plan::parse(
        &format!(
            "name = \"c\"\nduration = \"10s\"\n[cluster]\nsize = {size}\nnetwork = \"none\"\n{extra}"
        ),
        Path::new("inline.toml"),
    )
    .expect("plan")
    .cluster
}

struct Fixture {
    cluster: Cluster,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(spec: ClusterSpec) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = Ports::reserve(&spec, dir.path(), 0).expect("ports");
    let peers: Vec<SocketAddr> = ports
        .layout()
        .iter()
        .map(|l| SocketAddr::new(l.host, l.port))
        .collect();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel::<NodeEvent>();
    let cluster = Cluster::start_with(&spec, ports, |_, b| peers[b.index()], tx, sample_node())
        .await
        .expect("start");
    let all: Vec<NodeId> = (0..spec.size).map(NodeId).collect();
    cluster
        .wait_ready(&all, Duration::from_secs(10))
        .await
        .expect("ready");
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(700))
        .build()
        .expect("client");
    Fixture {
        cluster,
        http,
        _dir: dir,
    }
}

fn real_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn mono_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

/// One reading of a node's clocks: (its wall_ms, true time at the request's
/// midpoint, its mono_ms, rift's monotonic at the midpoint), all in ms.
#[derive(Clone, Copy)]
struct Reading {
    wall: f64,
    real: f64,
    mono: f64,
    real_mono: f64,
}

impl Reading {
    /// How far the node's wall clock is from true time.
    fn skew(&self) -> f64 {
        self.wall - self.real
    }
}

impl Fixture {
    async fn read(&self, n: NodeId) -> Reading {
        let url = format!("http://{}/health", self.cluster.client_addr(n));
        for _ in 0..20 {
            let (r0, m0) = (real_ms(), mono_ms());
            let got: Option<Value> = match self.http.get(&url).send().await {
                Ok(resp) => resp.json().await.ok(),
                Err(_) => None,
            };
            let (r1, m1) = (real_ms(), mono_ms());
            if let Some(h) = got {
                if let (Some(w), Some(m)) = (h["wall_ms"].as_f64(), h["mono_ms"].as_f64()) {
                    // A slow answer says little about when it was read.
                    if r1 - r0 < 50.0 {
                        return Reading {
                            wall: w,
                            real: (r0 + r1) / 2.0,
                            mono: m,
                            real_mono: (m0 + m1) / 2.0,
                        };
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{n} gave no timely /health with wall_ms and mono_ms");
    }

    fn clocks(&self) -> &Faketime {
        self.cluster.faketime().expect("libfaketime preloaded")
    }

    /// Polls `n`'s skew until it is within `tol` ms of `want`; how long that
    /// took, or a panic after 3 s.
    async fn skew_reaches(&self, n: NodeId, want: f64, tol: f64) -> Duration {
        let t0 = Instant::now();
        let mut last = 0.0;
        while t0.elapsed() < Duration::from_secs(3) {
            last = self.read(n).await.skew();
            if (last - want).abs() <= tol {
                return t0.elapsed();
            }
        }
        panic!("{n}'s wall clock never read true time {want:+} ms (last {last:+.0} ms)");
    }
}

fn offset(ms: i64) -> ClockOffset {
    ClockOffset {
        negative: ms < 0,
        magnitude: Duration::from_millis(ms.unsigned_abs()),
    }
}

/// Allowed error of one skew reading: loopback round trips and the
/// millisecond resolution of `wall_ms`.
const TOL_MS: f64 = 60.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_rate_strobe_and_undo_move_only_the_target_wall_clock() {
    if !libfaketime() {
        return;
    }
    let mut s = spec(2, "");
    s.clock.faketime = true;
    let f = start(s).await;
    let (n0, n1) = (NodeId(0), NodeId(1));
    for n in [n0, n1] {
        let r = f.read(n).await;
        assert!(
            r.skew().abs() < TOL_MS,
            "{n} starts at true time: {:+.0}",
            r.skew()
        );
    }

    // An offset: a jump, seen at the node's next read.
    f.clocks()
        .set(n1, ClockChange::Offset(offset(30_000)))
        .expect("set");
    let took = f.skew_reaches(n1, 30_000.0, TOL_MS).await;
    eprintln!("offset +30s took effect after {took:?} (first /health after the write)");
    assert!(took < Duration::from_millis(100), "{took:?}");
    assert!(f.read(n0).await.skew().abs() < TOL_MS, "n0 untouched");

    // A rate: continuous at the change, then twice as fast.
    let before = f.read(n1).await;
    f.clocks().set(n1, ClockChange::Rate(2.0)).expect("rate");
    let at_change = f.read(n1).await;
    let jump = at_change.skew() - before.skew();
    eprintln!(
        "rate change: skew {:+.1} ms before, {:+.1} ms right after ({:.1} ms of real time later)",
        before.skew(),
        at_change.skew(),
        at_change.real - before.real
    );
    // Continuous: from the change on the skew grows by (2-1) ms per ms, so
    // between the two reads it may grow by at most their distance, plus
    // the reads' own uncertainty (half a round trip each, 1 ms steps).
    let apart = at_change.real - before.real;
    assert!(
        jump > -30.0 && jump < apart + 30.0,
        "no jump at the rate change: skew {:+.1} -> {:+.1} over {apart:.1} ms",
        before.skew(),
        at_change.skew()
    );
    let t0 = Instant::now();
    let mut last = at_change;
    while t0.elapsed() < Duration::from_millis(1500) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = f.read(n1).await;
    }
    let first = f.read(n0).await;
    let factor = (last.wall - at_change.wall) / (last.real - at_change.real);
    eprintln!(
        "rate 2.0: {:.0} ms of n1's clock over {:.0} ms of real time ({factor:.3}x)",
        last.wall - at_change.wall,
        last.real - at_change.real
    );
    assert!((factor - 2.0).abs() < 0.08, "{factor}");
    assert!(first.skew().abs() < TOL_MS, "n0 runs at true speed");

    // A negative offset replaces the rate: the clock reads true time - 10 s.
    f.clocks()
        .set(n1, ClockChange::Offset(offset(-10_000)))
        .expect("back");
    f.skew_reaches(n1, -10_000.0, TOL_MS).await;

    // A strobe flips between true time and +5 s.
    f.clocks()
        .set(
            n1,
            ClockChange::Strobe {
                offset: offset(5_000),
                every: Duration::from_millis(200),
            },
        )
        .expect("strobe");
    // Its first flip (to the offset) is made at once.
    f.skew_reaches(n1, 5_000.0, TOL_MS).await;
    let (mut at_true, mut at_offset, mut other) = (0, 0, 0);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(1200) {
        let skew = f.read(n1).await.skew();
        if skew.abs() < TOL_MS {
            at_true += 1;
        } else if (skew - 5_000.0).abs() < TOL_MS {
            at_offset += 1;
        } else {
            other += 1;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eprintln!("strobe: {at_true} reads at true time, {at_offset} at +5s, {other} else");
    assert!(at_true >= 3 && at_offset >= 3 && other == 0);

    // Undo: true time again, and the strobe stays stopped.
    f.clocks().reset(n1).expect("reset");
    f.skew_reaches(n1, 0.0, TOL_MS).await;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(500) {
        let skew = f.read(n1).await.skew();
        assert!(skew.abs() < TOL_MS, "after the undo: {skew:+.0}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The node never restarted.
    let pid = f.cluster.pid(n1);
    assert!(pid.is_some());
    let _ = f.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monotonic_offset_moves_mono_ms_from_the_start_and_after_a_restart() {
    let offsets = [("n1".to_string(), offset(3_600_000))];
    if let Err(why) = rift::clock::timens::check(&offsets) {
        eprintln!("skipped: {why}");
        return;
    }
    let s = spec(2, "monotonic_offset = { n1 = \"+1h\" }\n");
    let f = start(s).await;
    let (n0, n1) = (NodeId(0), NodeId(1));
    let lead = |r: &Reading| r.mono - r.real_mono;
    let r1 = f.read(n1).await;
    let r0 = f.read(n0).await;
    assert!(
        (lead(&r1) - 3_600_000.0).abs() < TOL_MS,
        "n1 mono ahead by {:.0} ms",
        lead(&r1)
    );
    assert!(lead(&r0).abs() < TOL_MS, "n0 {:.0}", lead(&r0));
    // The wall clock is not touched by a time namespace.
    assert!(r1.skew().abs() < TOL_MS);
    f.cluster.stop(n1).await.expect("stop");
    f.cluster.start_node(n1).await.expect("restart");
    f.cluster
        .wait_ready(&[n1], Duration::from_secs(10))
        .await
        .expect("ready again");
    let again = f.read(n1).await;
    assert!(
        (lead(&again) - 3_600_000.0).abs() < TOL_MS,
        "after a restart {:.0}",
        lead(&again)
    );
    let _ = f.cluster.shutdown().await;
}

fn rift() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rift"));
    c.env_remove("RUST_LOG").env("NO_COLOR", "1");
    c
}

fn write_plan(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, format!("name = \"{name}\"\n{body}")).expect("write plan");
    p
}

fn run(plan: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    run_pid(plan, out, env).0
}

/// [`run`], and the pid rift ran as.
fn run_pid(plan: &Path, out: &Path, env: &[(&str, &str)]) -> (Output, u32) {
    let mut c = rift();
    c.args(["run", "--progress", "quiet", "--out"])
        .arg(out)
        .arg(plan)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c.spawn().expect("rift runs");
    let pid = child.id();
    (child.wait_with_output().expect("rift ends"), pid)
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// What rift (pid `pid`) left in /dev/shm: libfaketime's shared memory
/// and semaphores are named after it.
fn shm_of(pid: u32) -> Vec<String> {
    let tag = format!("rift-ft-{pid}-");
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(&tag))
                .collect()
        })
        .unwrap_or_default()
}

const CLOCK_PLAN: &str = r#"duration = "4s"
seed = 3

[cluster]
size = 3

[workload]
kind = "kv"
clients = 4
rate = 100
keys = 5
timeout = "1s"

[[step]]
at = "500ms"
fault = "clock"
target = "leader"
offset = "-10s"
for = "1s"

[[step]]
at = "1s"
fault = "clock"
target = "followers"
rate = 2.0

[[step]]
at = "2s"
fault = "clock"
target = "n0"
strobe = { offset = "+5s", every = "100ms" }

[expect]
linearizable = true
lost_writes = 0
"#;

#[test]
fn a_plan_with_clock_steps_runs_green_and_leaves_true_time_and_no_shared_memory() {
    if !libfaketime() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(dir.path(), "clocks", CLOCK_PLAN);
    let out = dir.path().join("out");
    let (o, pid) = run_pid(&plan, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        shm_of(pid),
        Vec::<String>::new(),
        "shared memory left behind"
    );
    let run_dir = out.join("clocks").join("latest");
    let report: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).expect("report.json"))
            .expect("json");
    let text = report.to_string();
    assert!(text.contains("\"clock\""), "timeline names clock steps");
    assert!(text.contains("-10s"), "the offset is in the report");
    assert!(text.contains("back to true time"), "the undo is recorded");
    // The final heal put every node back on true time.
    for n in 0..3 {
        let spec = std::fs::read_to_string(run_dir.join("nodes").join(format!("n{n}.faketime")))
            .expect("spec file");
        assert_eq!(spec, "+0.000000000 x1\n", "n{n}");
    }
}

#[test]
fn libfaketime_missing_exits_3_with_one_line_naming_the_package() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(dir.path(), "noft", CLOCK_PLAN);
    let o = run(
        &plan,
        &dir.path().join("out"),
        &[("RIFT_LIBFAKETIME", "/nonexistent/libfaketime.so.1")],
    );
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let line: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("libfaketime"))
        .collect();
    assert_eq!(line.len(), 1, "{stderr}");
    assert!(
        line[0].contains("package `libfaketime`")
            && line[0].contains("/nonexistent/libfaketime.so.1"),
        "{stderr}"
    );
    // `rift validate` accepts the same plan.
    let v = rift()
        .arg("validate")
        .arg(&plan)
        .output()
        .expect("validate");
    assert_eq!(v.status.code(), Some(0), "{}", show(&v));
}

/// A statically linked program on this machine, if there is one.
fn static_binary() -> Option<PathBuf> {
    [
        "/sbin/ldconfig",
        "/usr/sbin/ldconfig",
        "/bin/busybox",
        "/usr/bin/busybox",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| rift::clock::elf::linkage(p) == rift::clock::elf::Linkage::Static)
}

#[test]
fn a_static_node_binary_exits_3_with_one_line() {
    if !libfaketime() {
        return;
    }
    let Some(bin) = static_binary() else {
        eprintln!("skipped: no statically linked program found (ldconfig, busybox)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let body = format!(
        "duration = \"2s\"\n[cluster]\nsize = 1\nnetwork = \"none\"\ncommand = \"{}\"\nready = {{ tcp = true, timeout = \"1s\" }}\n[workload]\nkind = \"probe\"\npath = \"/\"\nrate = 1\n[[step]]\nat = \"1s\"\nfault = \"clock\"\ntarget = \"n0\"\noffset = \"+1s\"\n",
        bin.display()
    );
    let plan = write_plan(dir.path(), "static", &body);
    let o = run(&plan, &dir.path().join("out"), &[]);
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("statically linked"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(&bin.display().to_string()), "{stderr}");
}

#[test]
fn sigkill_of_rift_leaves_no_shared_memory() {
    if !libfaketime() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let body = CLOCK_PLAN.replace("duration = \"4s\"", "duration = \"30s\"");
    let plan = write_plan(dir.path(), "killed", &body);
    let mut child = rift()
        .args(["run", "--progress", "quiet", "--out"])
        .arg(dir.path().join("out"))
        .arg(&plan)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rift runs");
    let pid = child.id();
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}");
    };
    // Every node's shared memory and semaphore exist once all started.
    wait("the nodes' shared memory", &|| shm_of(pid).len() == 6);
    let _ = child.kill();
    let _ = child.wait();
    wait("the guard to remove it", &|| shm_of(pid).is_empty());
}
