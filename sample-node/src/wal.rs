//! The write-ahead log: one append-only file of checksummed records (hard state, entries,
//! truncations) and its recovery. It must never report a record durable before fsync, and
//! never replay a record whose length or checksum does not hold.
//!
//! Frame: `len: u32 LE | crc32(payload): u32 LE | payload`. Payload tags:
//! 1 = hard state (term u64, vote len u16, vote), 2 = entry (index u64, term u64, data),
//! 3 = truncate (from u64). All integers little-endian.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

const TAG_HARD: u8 = 1;
const TAG_ENTRY: u8 = 2;
const TAG_TRUNCATE: u8 = 3;
/// Larger frames are treated as corruption (a client body is at most 1 MiB).
const MAX_FRAME: u32 = 8 << 20;

#[derive(Debug, Error)]
pub enum WalError {
    #[error("wal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One durable record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    HardState { term: u64, vote: Option<String> },
    Entry { index: u64, term: u64, data: String },
    Truncate { from: u64 },
}

/// What recovery found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub term: u64,
    pub vote: Option<String>,
    /// The log as (term, data), index 1 first.
    pub entries: Vec<(u64, String)>,
    /// Bytes cut off the end because they were torn or corrupt.
    pub truncated_bytes: u64,
}

/// An open WAL positioned for appending.
pub struct Wal {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    /// Whether [`Wal::sync`] fsyncs (false only under `--bug no-fsync`).
    fsync: bool,
}

fn encode(rec: &Record, out: &mut Vec<u8>) {
    let mut p = Vec::new();
    match rec {
        Record::HardState { term, vote } => {
            p.push(TAG_HARD);
            p.extend_from_slice(&term.to_le_bytes());
            let v = vote.as_deref().unwrap_or("").as_bytes();
            let n = v.len().min(u16::MAX as usize);
            p.extend_from_slice(&(n as u16).to_le_bytes());
            p.extend_from_slice(&v[..n]);
        }
        Record::Entry { index, term, data } => {
            p.push(TAG_ENTRY);
            p.extend_from_slice(&index.to_le_bytes());
            p.extend_from_slice(&term.to_le_bytes());
            p.extend_from_slice(data.as_bytes());
        }
        Record::Truncate { from } => {
            p.push(TAG_TRUNCATE);
            p.extend_from_slice(&from.to_le_bytes());
        }
    }
    out.extend_from_slice(&(p.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&p).to_le_bytes());
    out.extend_from_slice(&p);
}

fn u64_at(p: &[u8], at: usize) -> Option<u64> {
    p.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
}

fn decode(p: &[u8]) -> Option<Record> {
    match *p.first()? {
        TAG_HARD => {
            let term = u64_at(p, 1)?;
            let n = u16::from_le_bytes(p.get(9..11)?.try_into().ok()?) as usize;
            let v = std::str::from_utf8(p.get(11..11 + n)?).ok()?;
            Some(Record::HardState {
                term,
                vote: (!v.is_empty()).then(|| v.to_string()),
            })
        }
        TAG_ENTRY => {
            let index = u64_at(p, 1)?;
            let term = u64_at(p, 9)?;
            let data = std::str::from_utf8(p.get(17..)?).ok()?.to_string();
            Some(Record::Entry { index, term, data })
        }
        TAG_TRUNCATE => Some(Record::Truncate {
            from: u64_at(p, 1)?,
        }),
        _ => None,
    }
}

/// Parses frames from the start of `bytes`; returns the records and the length of the valid prefix.
pub fn parse(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut recs = Vec::new();
    let mut at = 0usize;
    while let Some(hdr) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let crc = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        if len > MAX_FRAME {
            break;
        }
        let Some(p) = bytes.get(at + 8..at + 8 + len as usize) else {
            break;
        };
        if crc32fast::hash(p) != crc {
            break;
        }
        let Some(rec) = decode(p) else { break };
        recs.push(rec);
        at += 8 + len as usize;
    }
    (recs, at)
}

impl Wal {
    /// Opens (creating if needed) `dir/wal.log`, replays it and cuts off any torn or corrupt tail.
    pub fn open(dir: &Path) -> Result<(Wal, Recovered), WalError> {
        let path = dir.join("wal.log");
        let io = |source| WalError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let (recs, valid) = parse(&bytes);
        let mut rec = Recovered::default();
        let mut valid = valid;
        let mut offset = 0usize;
        for r in recs {
            let mut frame = Vec::new();
            encode(&r, &mut frame);
            match r {
                Record::HardState { term, vote } => {
                    rec.term = term;
                    rec.vote = vote;
                }
                Record::Entry { index, term, data } => {
                    if index == 0 || index > rec.entries.len() as u64 + 1 {
                        // A gap means the file is not what we wrote; keep the consistent prefix.
                        valid = offset;
                        break;
                    }
                    rec.entries.truncate((index - 1) as usize);
                    rec.entries.push((term, data));
                }
                Record::Truncate { from } => {
                    rec.entries.truncate(from.saturating_sub(1) as usize);
                }
            }
            offset += frame.len();
        }
        if valid < bytes.len() {
            rec.truncated_bytes = (bytes.len() - valid) as u64;
            file.set_len(valid as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        // Make the file's directory entry durable too (first start).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok((
            Wal {
                path,
                file,
                buf: Vec::new(),
                fsync: true,
            },
            rec,
        ))
    }

    /// Buffers a record; nothing is durable until [`Wal::sync`].
    pub fn push(&mut self, rec: &Record) {
        encode(rec, &mut self.buf);
    }

    /// `--bug no-fsync`: from now on [`Wal::sync`] writes without fsync,
    /// so records it reports durable are only in the page cache.
    pub fn skip_fsync(&mut self) {
        self.fsync = false;
    }

    /// Writes buffered records and fsyncs them (one fsync covers the whole batch).
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let io = |source| WalError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&self.buf).map_err(io)?;
        if self.fsync {
            self.file.sync_data().map_err(io)?;
        }
        self.buf.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &str) -> Record {
        Record::Entry {
            index,
            term,
            data: data.to_string(),
        }
    }

    fn write(dir: &Path, recs: &[Record]) {
        let (mut w, _) = Wal::open(dir).expect("open");
        for r in recs {
            w.push(r);
        }
        w.sync().expect("sync");
    }

    #[test]
    fn append_then_recover_replays_state_and_truncations() {
        let d = tempfile::tempdir().expect("tempdir");
        write(
            d.path(),
            &[
                Record::HardState {
                    term: 2,
                    vote: Some("n1".into()),
                },
                entry(1, 1, "a"),
                entry(2, 1, "b"),
                entry(3, 2, "c"),
                Record::Truncate { from: 3 },
                entry(3, 3, "d"),
            ],
        );
        write(d.path(), &[entry(4, 3, "e")]);
        let (_, r) = Wal::open(d.path()).expect("reopen");
        assert_eq!(r.term, 2);
        assert_eq!(r.vote.as_deref(), Some("n1"));
        let data: Vec<&str> = r.entries.iter().map(|(_, d)| d.as_str()).collect();
        assert_eq!(data, vec!["a", "b", "d", "e"]);
        assert_eq!(r.truncated_bytes, 0);
    }

    #[test]
    fn torn_tail_is_cut_and_earlier_records_survive() {
        let d = tempfile::tempdir().expect("tempdir");
        write(
            d.path(),
            &[entry(1, 1, "keep"), entry(2, 1, "torn-record-payload")],
        );
        let path = d.path().join("wal.log");
        let len = std::fs::metadata(&path).expect("meta").len();
        let f = OpenOptions::new().write(true).open(&path).expect("open");
        f.set_len(len - 5).expect("truncate mid-record");
        drop(f);
        let (mut w, r) = Wal::open(d.path()).expect("reopen");
        assert_eq!(r.entries, vec![(1, "keep".to_string())]);
        assert!(r.truncated_bytes > 0);
        // Appending after the cut yields a clean file again.
        w.push(&entry(2, 1, "new"));
        w.sync().expect("sync");
        let (_, r) = Wal::open(d.path()).expect("reopen again");
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.truncated_bytes, 0);
    }

    #[test]
    fn corrupt_checksum_is_detected_and_cut() {
        let d = tempfile::tempdir().expect("tempdir");
        write(
            d.path(),
            &[entry(1, 1, "one"), entry(2, 1, "two"), entry(3, 1, "three")],
        );
        let path = d.path().join("wal.log");
        let mut bytes = std::fs::read(&path).expect("read");
        let n = bytes.len();
        bytes[n - 1] ^= 0xff; // flip a payload byte of the last record
        std::fs::write(&path, &bytes).expect("write");
        let (_, r) = Wal::open(d.path()).expect("reopen");
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.truncated_bytes, (8 + 17 + 5) as u64);
        assert_eq!(
            std::fs::metadata(&path).expect("meta").len(),
            (n - 30) as u64
        );
    }

    #[test]
    fn garbage_length_does_not_panic() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), &[entry(1, 1, "one")]);
        let path = d.path().join("wal.log");
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.extend_from_slice(&[0xff; 12]);
        std::fs::write(&path, &bytes).expect("write");
        let (_, r) = Wal::open(d.path()).expect("reopen");
        assert_eq!(r.entries.len(), 1);
        assert_eq!(r.truncated_bytes, 12);
    }

    proptest::proptest! {
        /// Any prefix of a valid file recovers exactly the records wholly inside the prefix.
        #[test]
        fn any_prefix_recovers_whole_records(n in 1usize..20, cut in 0usize..2000) {
            let mut buf = Vec::new();
            let mut ends = Vec::new();
            for i in 0..n {
                encode(&entry(i as u64 + 1, 1, &"x".repeat(i * 7)), &mut buf);
                ends.push(buf.len());
            }
            let cut = cut.min(buf.len());
            let (recs, valid) = parse(&buf[..cut]);
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            proptest::prop_assert_eq!(recs.len(), whole);
            proptest::prop_assert_eq!(valid, if whole == 0 { 0 } else { ends[whole - 1] });
        }
    }
}
