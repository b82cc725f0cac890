//! report.html in a real browser: headless Chromium (Debian's `chromium`,
//! installed by `.ci/packages.sh`) renders the report of a partition plan
//! and of a bug plan; the test reads the DOM Chromium built (not the HTML
//! rift wrote) and saves screenshots in the test's temp dir. Skips with one
//! line when Chromium is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&paths).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Runs `plan` (shortened to `duration`) and returns its run directory.
fn run(plan: &str, duration: &str, out: &Path) -> PathBuf {
    let o = Command::new(env!("CARGO_BIN_EXE_rift"))
        .current_dir(repo())
        .args([
            "run",
            "--progress",
            "quiet",
            "--seed",
            "1",
            "--duration",
            duration,
            "--out",
        ])
        .arg(out)
        .arg(plan)
        .output()
        .expect("run rift");
    assert!(
        o.status.code().is_some_and(|c| c == 0 || c == 1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let name = std::fs::read_dir(out)
        .expect("results")
        .flatten()
        .find(|e| e.path().join("latest").exists())
        .map(|e| e.path().join("latest"))
        .expect("a run directory");
    name.canonicalize().unwrap_or(name)
}

/// The DOM Chromium built for `html`, and a screenshot next to it.
fn render(browser: &Path, html: &Path, shot: &Path) -> String {
    let url = format!("file://{}", html.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
    ];
    let dom = Command::new(browser)
        .args(common)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let s = Command::new(browser)
        .args(common)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1300,3000")
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    assert!(
        std::fs::metadata(shot).is_ok_and(|m| m.len() > 10_000),
        "no screenshot at {}",
        shot.display()
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

#[test]
fn reports_render_in_a_real_browser_with_failures_diagrams_and_links() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: chromium is not installed (bash .ci/packages.sh)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let shots = dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshots dir");

    // A partition plan: judged failures apart from the rest, the latency
    // plot, and links to the run's files.
    let part = run(
        "experiments/partition-majority.toml",
        "8s",
        &dir.path().join("p"),
    );
    let dom = render(
        &browser,
        &part.join("report.html"),
        &shots.join("partition.png"),
    );
    assert!(
        dom.contains("id=\"judged-failures\""),
        "judged-failure section"
    );
    assert!(dom.contains("class=\"latency\""), "latency plot");
    for link in [
        "href=\"history.jsonl\"",
        "href=\"report.json\"",
        "href=\"nodes/n0.log\"",
    ] {
        assert!(dom.contains(link), "{link} in the rendered page");
    }
    // The links resolve to files of the run directory.
    for f in ["history.jsonl", "report.json", "nodes/n0.log"] {
        assert!(part.join(f).is_file(), "{f}");
    }

    // A bug plan: the counterexample as a history diagram with its sentence.
    let bug = run(
        "experiments/bugs/stale-reads.toml",
        "6s",
        &dir.path().join("b"),
    );
    let dom = render(&browser, &bug.join("report.html"), &shots.join("bug.png"));
    assert!(dom.contains("class=\"history\""), "counterexample diagram");
    assert!(
        dom.contains("Why it fails:"),
        "the sentence of what is impossible"
    );
    assert!(dom.contains("client "), "a lane per client");
    eprintln!("screenshots in {}", shots.display());
}
