//! `results/<plan>/runs.json`: every run of a plan in its results
//! directory, oldest first, rewritten (temporary file, then rename) after
//! each run. Runs deleted by hand drop out at the next write; runs the
//! index misses (an older rift, a lost race between two rifts) are found
//! again by scanning the directory. `rift compare` scans too, so the index
//! is for people and scripts: nothing breaks when it is stale or gone.

use crate::check::verdict::Verdict;
use crate::report::Report;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file name, in a plan's results directory.
pub const INDEX_FILE: &str = "runs.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunIndex {
    /// Bumped on an incompatible change of the file.
    pub schema_version: u32,
    pub plan: String,
    pub runs: Vec<IndexEntry>,
}

/// One run of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub run_id: String,
    /// The run directory, relative to the plan's results directory.
    pub dir: String,
    pub seed: u64,
    pub started_at: String,
    pub verdict: Verdict,
    pub plan_hash: String,
    pub rift_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot encode the run index: {0}")]
    Encode(#[from] serde_json::Error),
}

impl IndexEntry {
    fn of(dir: &str, r: &Report) -> IndexEntry {
        IndexEntry {
            run_id: r.run_id.clone(),
            dir: dir.to_string(),
            seed: r.seed,
            started_at: r.started_at.clone(),
            verdict: r.verdict,
            plan_hash: r.plan.hash.clone(),
            rift_version: r.rift_version.clone(),
            label: r.label.clone(),
        }
    }
}

/// Reads `plan_dir/runs.json`; `None` when absent or unreadable.
pub fn read(plan_dir: &Path) -> Option<RunIndex> {
    let text = std::fs::read_to_string(plan_dir.join(INDEX_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Adds (or replaces) the run in `plan_dir/<dir>` whose report is `report`,
/// drops entries whose report is gone, adds runs found on disk that the
/// index missed, and rewrites the file atomically.
pub fn record(plan_dir: &Path, dir: &str, report: &Report) -> Result<RunIndex, IndexError> {
    let mut runs: Vec<IndexEntry> = read(plan_dir).map(|i| i.runs).unwrap_or_default();
    runs.retain(|e| e.dir != dir && plan_dir.join(&e.dir).join("report.json").is_file());
    runs.push(IndexEntry::of(dir, report));
    for (name, r) in unlisted(plan_dir, &runs) {
        runs.push(IndexEntry::of(&name, &r));
    }
    runs.sort_by(|a, b| (&a.started_at, &a.run_id).cmp(&(&b.started_at, &b.run_id)));
    let index = RunIndex {
        schema_version: 1,
        plan: report.plan.name.clone(),
        runs,
    };
    let json = serde_json::to_string_pretty(&index)?;
    let path = plan_dir.join(INDEX_FILE);
    // A name of this process's own: two rifts writing at once never share
    // a temporary file; the last rename wins and the next run heals it.
    let tmp = plan_dir.join(format!(".{INDEX_FILE}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, json.as_bytes())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            IndexError::Write {
                path: path.display().to_string(),
                source,
            }
        })?;
    Ok(index)
}

/// Run directories under `plan_dir` holding a readable report.json that no
/// entry names (links such as `latest` skipped).
fn unlisted(plan_dir: &Path, listed: &[IndexEntry]) -> Vec<(String, Report)> {
    let Ok(entries) = std::fs::read_dir(plan_dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_dir() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        if listed.iter().any(|x| x.dir == name) {
            continue;
        }
        if let Ok(r) = Report::read(&e.path().join("report.json")) {
            out.push((name, r));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: &str, at: &str) -> Report {
        let text = std::fs::read_to_string("tests/fixtures/report-v1/report.json").unwrap();
        let mut r: Report = serde_json::from_str(&text).unwrap();
        r.run_id = id.into();
        r.started_at = at.into();
        r
    }

    fn put(plan_dir: &Path, r: &Report) {
        let d = plan_dir.join(&r.run_id);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("report.json"), serde_json::to_string(r).unwrap()).unwrap();
    }

    #[test]
    fn the_index_lists_every_run_and_forgets_deleted_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        let a = report("run-a", "2026-01-01T00:00:01Z");
        let b = report("run-b", "2026-01-01T00:00:02Z");
        let c = report("run-c", "2026-01-01T00:00:03Z");
        // A run from before the index existed is found by scanning.
        put(p, &a);
        put(p, &b);
        let i = record(p, "run-b", &b).unwrap();
        let ids: Vec<&str> = i.runs.iter().map(|e| e.run_id.as_str()).collect();
        assert_eq!(ids, ["run-a", "run-b"]);
        std::fs::remove_dir_all(p.join("run-a")).unwrap();
        put(p, &c);
        record(p, "run-c", &c).unwrap();
        let i = read(p).unwrap();
        let ids: Vec<&str> = i.runs.iter().map(|e| e.run_id.as_str()).collect();
        assert_eq!(ids, ["run-b", "run-c"]);
        assert_eq!(i.runs[1].seed, c.seed);
        assert_eq!(i.runs[1].plan_hash, c.plan.hash);
        // No temporary file is left behind.
        let left: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
