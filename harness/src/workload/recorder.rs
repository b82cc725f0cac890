//! Records completed operations: streamed to history.jsonl as they happen (so
//! a crash of rift keeps what was recorded) and kept in memory for checkers.
//!
//! Owns the history file; never interprets operations.

use crate::history::Op;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Live counters the progress display reads without locking.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub unknown: AtomicU64,
}

impl LiveCounters {
    pub fn total(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
            + self.unknown.load(Ordering::Relaxed)
    }
    pub fn errors(&self) -> u64 {
        self.failed.load(Ordering::Relaxed) + self.unknown.load(Ordering::Relaxed)
    }
}

struct Inner {
    file: Option<BufWriter<std::fs::File>>,
    ops: Vec<Op>,
    last_flush: Instant,
    write_error: Option<String>,
}

/// Cheap to clone; every client holds one.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
    next_id: Arc<AtomicU64>,
    pub counters: Arc<LiveCounters>,
}

/// Flushing at most this often bounds what a SIGKILL of rift can lose.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

impl Recorder {
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        let file = std::fs::File::create(path)?;
        Ok(Self::with_file(Some(BufWriter::new(file))))
    }

    /// A recorder that only keeps operations in memory.
    pub fn in_memory() -> Recorder {
        Self::with_file(None)
    }

    fn with_file(file: Option<BufWriter<std::fs::File>>) -> Recorder {
        Recorder {
            inner: Arc::new(Mutex::new(Inner {
                file,
                ops: Vec::new(),
                last_flush: Instant::now(),
                write_error: None,
            })),
            next_id: Arc::new(AtomicU64::new(0)),
            counters: Arc::new(LiveCounters::default()),
        }
    }

    /// Reserves the id of an operation at its invocation.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn record(&self, op: Op) {
        use crate::history::Outcome;
        let counter = match op.outcome {
            Outcome::Ok => &self.counters.ok,
            Outcome::Fail => &self.counters.failed,
            Outcome::Unknown => &self.counters.unknown,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let inner = &mut *inner;
        if let Some(file) = inner.file.as_mut() {
            // Every line carries the format version: `{"v":1,` then the op's
            // own fields (its JSON object without the opening brace).
            let res = serde_json::to_vec(&op)
                .map_err(std::io::Error::from)
                .and_then(|line| {
                    file.write_all(VERSION_PREFIX.as_bytes())?;
                    file.write_all(line.get(1..).unwrap_or_default())?;
                    file.write_all(b"\n")
                });
            if let Err(e) = res {
                inner.write_error.get_or_insert_with(|| e.to_string());
            }
            if inner.last_flush.elapsed() >= FLUSH_EVERY {
                if let Err(e) = file.flush() {
                    inner.write_error.get_or_insert_with(|| e.to_string());
                }
                inner.last_flush = Instant::now();
            }
        }
        inner.ops.push(op);
    }

    /// Flushes the file and hands over every operation, sorted by id; the
    /// recorder keeps none (it is called once, when the clients are done).
    pub fn finish(&self) -> (Vec<Op>, Option<String>) {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(file) = inner.file.as_mut() {
            if let Err(e) = file.flush() {
                inner.write_error.get_or_insert_with(|| e.to_string());
            }
        }
        let mut ops = std::mem::take(&mut inner.ops);
        ops.sort_by_key(|o| o.id);
        (ops, inner.write_error.clone())
    }

    pub fn flush(&self) {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(file) = inner.file.as_mut() {
            let _ = file.flush();
        }
    }
}

/// What starts every line rift writes: the format version.
const VERSION_PREFIX: &str = concat!("{\"v\":", 1, ",");
const _: () = assert!(
    crate::history::HISTORY_VERSION == 1,
    "update VERSION_PREFIX"
);

/// The version marks a line may carry: `"v"` in an operation line, or a
/// header line `{"rift_history": N}` (for converters). Both may be absent.
#[derive(serde::Deserialize)]
struct Marks {
    v: Option<u32>,
    rift_history: Option<u32>,
    id: Option<serde_json::Value>,
}

/// Reads a history.jsonl file (format version 1, with or without version
/// marks); errors name the line. Operations come back sorted by id.
pub fn read_history(path: &Path) -> Result<Vec<Op>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_history(&text).map_err(|(line, e)| format!("{}:{line}: {e}", path.display()))
}

/// Parses history text; an error gives the 1-based line and what is wrong.
pub fn parse_history(text: &str) -> Result<Vec<Op>, (usize, String)> {
    let supported = crate::history::HISTORY_VERSION;
    let mut ops = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let marks: Marks = serde_json::from_str(line).map_err(|e| (i + 1, e.to_string()))?;
        let version = marks.v.or(marks.rift_history).unwrap_or(supported);
        if version != supported {
            return Err((
                i + 1,
                format!("history format version {version}; this rift reads version {supported}"),
            ));
        }
        if marks.rift_history.is_some() && marks.id.is_none() {
            continue; // a header line
        }
        let op: Op = serde_json::from_str(line).map_err(|e| (i + 1, e.to_string()))?;
        if !ids.insert(op.id) {
            return Err((i + 1, format!("operation id {} appears twice", op.id)));
        }
        ops.push(op);
    }
    ops.sort_by_key(|o| o.id);
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpKind, Outcome};
    use crate::NodeId;

    fn op(id: u64) -> Op {
        Op {
            id,
            client: 1,
            node: NodeId(2),
            kind: OpKind::Write,
            key: Some("k0".into()),
            value: Some("1.1".into()),
            expect: None,
            invoke_ns: 10,
            complete_ns: 20,
            outcome: Outcome::Ok,
            result: None,
            status: Some(200),
            error: None,
        }
    }

    #[test]
    fn lines_carry_the_version_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.jsonl");
        let r = Recorder::create(&path).expect("create");
        r.record(op(1));
        r.record(op(0));
        r.finish();
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.lines().all(|l| l.starts_with(r#"{"v":1,"id":"#)),
            "{text}"
        );
        assert_eq!(read_history(&path), Ok(vec![op(0), op(1)]));
    }

    #[test]
    fn versions_are_optional_but_never_ignored() {
        let plain = serde_json::to_string(&op(3)).expect("json");
        let header = format!("{{\"rift_history\":1}}\n{plain}\n");
        assert_eq!(parse_history(&header).map(|o| o.len()), Ok(1));
        assert_eq!(parse_history(&plain).map(|o| o.len()), Ok(1));
        let newer = plain.replacen('{', r#"{"v":2,"#, 1);
        assert_eq!(
            parse_history(&newer).map_err(|e| e.0),
            Err(1),
            "a newer format must be refused"
        );
        let twice = format!("{plain}\n{plain}\n");
        assert!(parse_history(&twice).is_err());
        assert_eq!(parse_history("{nope").map_err(|e| e.0), Err(1));
    }
}
