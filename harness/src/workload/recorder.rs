//! Records completed operations: streamed to history.jsonl as they happen (so
//! a crash of rift keeps what was recorded) and kept in memory for checkers.
//!
//! Owns writing the history file; never interprets operations. Reading it
//! back is `crate::history`'s job.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{read_history, OpKind, Outcome};
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
            values: None,
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
}
