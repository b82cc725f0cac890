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
            let res = serde_json::to_writer(&mut *file, &op)
                .map_err(std::io::Error::from)
                .and_then(|()| file.write_all(b"\n"));
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

    /// Flushes the file and returns every operation, sorted by id.
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
        let mut ops = inner.ops.clone();
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

/// Reads a history.jsonl file; errors name the line.
pub fn read_history(path: &Path) -> Result<Vec<Op>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut ops = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let op: Op =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        ops.push(op);
    }
    ops.sort_by_key(|o| o.id);
    Ok(ops)
}
