//! Real third-party systems from Debian's packages (`.ci/packages.sh`),
//! driven through the client protocol: Redis with Sentinel loses
//! acknowledged adds when a partition cuts the primary from the majority
//! (Jepsen, 2013), and rift's set checker lists them. Needs root (the plan
//! uses `network = "netns"`), redis-server, redis-sentinel and python3;
//! skips with one line naming what is missing.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

fn missing(programs: &[&str]) -> Option<String> {
    if let Err(m) = rift::netns::check_privileges() {
        return Some(format!("the netns wire {m}"));
    }
    let absent: Vec<&str> = programs.iter().copied().filter(|p| !on_path(p)).collect();
    (!absent.is_empty())
        .then(|| format!("{} not installed (bash .ci/packages.sh)", absent.join(", ")))
}

#[test]
fn redis_sentinel_loses_acknowledged_adds_under_a_partition() {
    if let Some(why) = missing(&["redis-server", "redis-sentinel", "python3"]) {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_rift"))
        .current_dir(repo())
        .args(["run", "--progress", "quiet", "--duration", "36s", "--out"])
        .arg(dir.path())
        .arg("experiments/real/redis-sentinel-set.toml")
        .output()
        .expect("run rift");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "the plan's finds must hold\n{text}"
    );
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("redis-sentinel-set/latest/report.json"))
            .expect("report.json"),
    )
    .expect("report is JSON");
    let set = report["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["checker"] == "set"))
        .expect("the set checker ran");
    assert_eq!(set["verdict"], "fail");
    let lost = set["details"]["lost_count"].as_u64().unwrap_or(0);
    assert!(lost > 0, "acknowledged adds lost: {lost}");
    assert!(set["details"]["lost"]
        .as_array()
        .is_some_and(|l| !l.is_empty()));
}
