//! Packet capture of the wire: `wire.pcap` holds every packet delivered,
//! `dropped.pcap` every packet a fault discarded; standard pcap with
//! LINKTYPE_RAW (bare IP packets), written by the `pcap-file` crate on a
//! thread of its own so a slow disk never slows the wire.
//!
//! Bounded: past `limit` bytes (both files together) it stops and says so.
//! A full queue loses capture records, never packets, and is counted.

use super::stats::CaptureRecord;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which file a packet goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Which {
    Wire,
    Dropped,
}

struct Record {
    which: Which,
    at: Duration,
    data: Vec<u8>,
}

/// The wire's end of the capture.
pub(super) struct Capture {
    tx: Option<SyncSender<Record>>,
    missed: u64,
    thread: Option<JoinHandle<()>>,
    result: Arc<Mutex<Outcome>>,
    run_dir: PathBuf,
    files: (PathBuf, PathBuf),
}

#[derive(Default)]
struct Outcome {
    packets: u64,
    bytes: u64,
    note: Option<String>,
}

const QUEUE: usize = 8192;

impl Capture {
    /// Opens `dir/wire.pcap` and `dir/dropped.pcap` (the report names them
    /// relative to `dir`, the run directory).
    pub fn start(dir: &Path, limit: u64) -> io::Result<Capture> {
        let wire = dir.join("wire.pcap");
        let dropped = dir.join("dropped.pcap");
        let open = |p: &Path| -> io::Result<PcapWriter<BufWriter<File>>> {
            let header = PcapHeader {
                datalink: DataLink::RAW,
                ..PcapHeader::default()
            };
            PcapWriter::with_header(BufWriter::new(File::create(p)?), header)
                .map_err(|e| io::Error::other(format!("{}: {e}", p.display())))
        };
        let writers = (open(&wire)?, open(&dropped)?);
        let (tx, rx) = sync_channel(QUEUE);
        let result = Arc::new(Mutex::new(Outcome::default()));
        let shared = result.clone();
        let thread = std::thread::Builder::new()
            .name("rift-capture".into())
            .spawn(move || write_all(rx, writers, limit, &shared))?;
        Ok(Capture {
            tx: Some(tx),
            missed: 0,
            thread: Some(thread),
            result,
            run_dir: dir.to_path_buf(),
            files: (wire, dropped),
        })
    }

    /// Queues a copy of `packet` for `which`.
    pub fn record(&mut self, which: Which, packet: &[u8]) {
        let Some(tx) = self.tx.as_ref() else { return };
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        match tx.try_send(Record {
            which,
            at,
            data: packet.to_vec(),
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.missed += 1,
            // The writer stopped (limit or error): nothing more to record.
            Err(TrySendError::Disconnected(_)) => self.tx = None,
        }
    }

    /// Flushes and closes both files; what was written.
    pub fn finish(&mut self) -> CaptureRecord {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let out = self.result.lock().unwrap_or_else(PoisonError::into_inner);
        let mut note = out.note.clone();
        if self.missed > 0 {
            let missed = format!(
                "{} packets were carried but not captured (the capture queue was full)",
                self.missed
            );
            note = Some(match note {
                Some(n) => format!("{n}; {missed}"),
                None => missed,
            });
        }
        let rel = |p: &Path| {
            p.strip_prefix(&self.run_dir)
                .unwrap_or(p)
                .display()
                .to_string()
        };
        CaptureRecord {
            wire: rel(&self.files.0),
            dropped: rel(&self.files.1),
            packets: out.packets,
            bytes: out.bytes,
            note,
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.tx = None;
    }
}

/// pcap's per-packet header.
const RECORD_HEADER: u64 = 16;

fn write_all(
    rx: Receiver<Record>,
    mut writers: (PcapWriter<BufWriter<File>>, PcapWriter<BufWriter<File>>),
    limit: u64,
    out: &Mutex<Outcome>,
) {
    let mut written: u64 = 48; // both file headers
    let mut note = None;
    let mut packets = 0;
    for r in rx {
        let size = RECORD_HEADER + r.data.len() as u64;
        if written + size > limit {
            note = Some(format!(
                "capture stopped at its limit of {limit} bytes (capture_limit); later packets are not in the files"
            ));
            break;
        }
        let w = match r.which {
            Which::Wire => &mut writers.0,
            Which::Dropped => &mut writers.1,
        };
        let len = u32::try_from(r.data.len()).unwrap_or(u32::MAX);
        if let Err(e) = w.write_packet(&PcapPacket::new(r.at, len, &r.data)) {
            note = Some(format!("capture stopped: {e}"));
            break;
        }
        written += size;
        packets += 1;
    }
    for w in [writers.0, writers.1] {
        if let Err(e) = std::io::Write::flush(&mut w.into_writer()) {
            note.get_or_insert_with(|| format!("capture could not flush: {e}"));
        }
    }
    let mut o = out.lock().unwrap_or_else(PoisonError::into_inner);
    o.packets = packets;
    o.bytes = written;
    o.note = note;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_stops_at_its_limit_and_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Room for the two file headers and three 100-byte packets.
        let limit = 48 + 3 * (16 + 100);
        let mut c = Capture::start(dir.path(), limit).expect("start");
        for i in 0..10u8 {
            let which = if i % 2 == 0 {
                Which::Wire
            } else {
                Which::Dropped
            };
            c.record(which, &[i; 100]);
        }
        let r = c.finish();
        assert_eq!(r.packets, 3);
        assert!(r.bytes <= limit);
        assert!(
            r.note.as_deref().is_some_and(|n| n.contains("limit")),
            "{r:?}"
        );
        assert_eq!(
            (r.wire.as_str(), r.dropped.as_str()),
            ("wire.pcap", "dropped.pcap")
        );
        let size = |n: &str| {
            std::fs::metadata(dir.path().join(n))
                .map(|m| m.len())
                .unwrap_or(0)
        };
        assert_eq!(size("wire.pcap") + size("dropped.pcap"), r.bytes);
    }
}
