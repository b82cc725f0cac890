//! What the faulty disk's FUSE layer costs (no fault in force), against
//! the plain backing file system in the same run, per operation:
//!
//! 1. append a 4 KiB record and fdatasync it (a write-ahead log);
//! 2. read 4 KiB at random offsets of a 16 MiB file, each from a fresh
//!    open (the page cache is dropped on every open of a FUSE file, so
//!    this measures reads that reach rift);
//! 3. create, write 100 bytes to, and close a new file;
//! 4. `stat` an existing file.
//!
//! Prints one JSON object: microseconds per operation plain and faulty,
//! and their ratio. Needs root and /dev/fuse; prints `{"skipped": ...}`
//! without them. `cargo bench -p rift --bench disk`.

use rift::disk::FaultyDisk;
use serde_json::{json, Value};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

const RECORDS: usize = 300;
const READS: usize = 2000;
const CREATES: usize = 300;
const STATS: usize = 3000;

fn us_per(n: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    (t.elapsed().as_secs_f64() * 1e6 / n as f64 * 10.0).round() / 10.0
}

fn measure(dir: &Path) -> Value {
    fs::create_dir_all(dir).expect("dir");
    let record = [0x5au8; 4096];
    let wal = us_per(RECORDS, || {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("wal"))
            .expect("open wal");
        for _ in 0..RECORDS {
            f.write_all(&record).expect("append");
            f.sync_data().expect("fdatasync");
        }
    });
    let big = dir.join("big");
    {
        let f = File::create(&big).expect("create big");
        let chunk = vec![7u8; 1 << 20];
        for i in 0..16u64 {
            f.write_all_at(&chunk, i << 20).expect("fill");
        }
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let read = us_per(READS, || {
        let mut buf = [0u8; 4096];
        for _ in 0..READS {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = (x % 4096) * 4096;
            let f = File::open(&big).expect("open big");
            f.read_exact_at(&mut buf, off).expect("read");
        }
    });
    let create = us_per(CREATES, || {
        for i in 0..CREATES {
            let mut f = File::create(dir.join(format!("f{i}"))).expect("create");
            f.write_all(&[1u8; 100]).expect("write");
        }
    });
    let stat = us_per(STATS, || {
        for _ in 0..STATS {
            fs::metadata(&big).expect("stat");
        }
    });
    json!({ "append_4k_fdatasync_us": wal, "read_4k_fresh_open_us": read,
            "create_write_close_us": create, "stat_us": stat })
}

fn main() {
    if let Err(e) = FaultyDisk::check_available() {
        println!("{}", json!({ "skipped": e.to_string() }));
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let plain = measure(&tmp.path().join("plain"));
    let disk = FaultyDisk::mount(
        &tmp.path().join("backing"),
        &tmp.path().join("mnt"),
        &FaultyDisk::label_for("bench", "disk"),
        1,
    )
    .expect("mount");
    let faulty = measure(&tmp.path().join("mnt").join("run"));
    let stats = disk.stats();
    drop(disk);
    let mut ratio = serde_json::Map::new();
    if let (Value::Object(p), Value::Object(f)) = (&plain, &faulty) {
        for (k, v) in p {
            if let (Some(a), Some(b)) = (v.as_f64(), f.get(k).and_then(Value::as_f64)) {
                ratio.insert(k.clone(), json!((b / a * 100.0).round() / 100.0));
            }
        }
    }
    let ops: u64 = stats.ops.values().sum();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "plain": plain, "faulty": faulty, "ratio_faulty_to_plain": ratio,
            "fuse_ops_served": ops,
            "backing_fs": "the temp dir's file system",
        }))
        .expect("json")
    );
}
