//! Unit tests of the journal: pure file system work on temp dirs, and a
//! property test against a brute-force model that keeps only what was
//! made durable.

use super::*;
use proptest::prelude::*;

fn rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open")
}

fn setup() -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = Journal::new(&dir.path().join("b"), 7).expect("journal");
    (dir, j)
}

fn new_file(j: &mut Journal, rel: &str, data: &[u8]) -> File {
    let (f, created) = j
        .create(Path::new(rel), 0o644, false, true)
        .expect("create");
    assert!(created);
    j.write(&f, 0, data).expect("write");
    f
}

/// The served tree: relative path -> content (None for a directory).
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    walk(root, &mut |p, md| {
        let rel = p.strip_prefix(root).expect("under root").to_path_buf();
        if rel.starts_with(TRASH) {
            return;
        }
        let content = if md.is_dir() {
            None
        } else {
            Some(fs::read(p).expect("read"))
        };
        out.insert(rel, content);
    })
    .expect("walk");
    out
}

#[test]
fn unsynced_new_file_and_its_entry_are_gone() {
    let (_d, mut j) = setup();
    new_file(&mut j, "a", b"hello");
    let u = j.power_loss(false).expect("power loss");
    assert!(tree(j.root()).is_empty());
    assert_eq!(u.entries, 1);
    assert_eq!(u.bytes, 0, "the file is gone with its entry");
}

#[test]
fn synced_file_in_synced_dir_survives() {
    let (_d, mut j) = setup();
    let f = new_file(&mut j, "a", b"hello");
    j.fsync(&f).expect("fsync");
    j.fsyncdir(Path::new("")).expect("fsyncdir");
    assert_eq!(j.pending(), (0, 0));
    let u = j.power_loss(false).expect("power loss");
    assert_eq!(u, Undone::default());
    assert_eq!(fs::read(j.path(Path::new("a"))).expect("read"), b"hello");
}

#[test]
fn fsync_of_a_file_does_not_make_its_new_entry_durable() {
    let (_d, mut j) = setup();
    let f = new_file(&mut j, "a", b"hello");
    j.fsync(&f).expect("fsync");
    j.power_loss(false).expect("power loss");
    assert!(tree(j.root()).is_empty());
}

#[test]
fn overwrite_and_growth_revert_to_synced_bytes() {
    let (_d, mut j) = setup();
    let f = new_file(&mut j, "a", b"0123456789");
    j.fsync(&f).expect("fsync");
    j.fsyncdir(Path::new("")).expect("fsyncdir");
    j.write(&f, 5, b"abcdefgh").expect("write");
    j.truncate(&f, 3).expect("truncate");
    j.write(&f, 20, b"zz").expect("write");
    let u = j.power_loss(false).expect("power loss");
    assert_eq!(
        fs::read(j.path(Path::new("a"))).expect("read"),
        b"0123456789"
    );
    assert!(u.bytes > 0);
}

#[test]
fn rename_over_a_target_reverts_and_the_target_comes_back() {
    let (_d, mut j) = setup();
    let a = new_file(&mut j, "a", b"AAA");
    let b = new_file(&mut j, "b", b"BBB");
    j.fsync(&a).expect("fsync");
    j.fsync(&b).expect("fsync");
    j.fsyncdir(Path::new("")).expect("fsyncdir");
    j.rename(Path::new("a"), Path::new("b"), 0).expect("rename");
    assert_eq!(tree(j.root()).len(), 1);
    let u = j.power_loss(false).expect("power loss");
    let t = tree(j.root());
    assert_eq!(t.get(Path::new("a")), Some(&Some(b"AAA".to_vec())));
    assert_eq!(t.get(Path::new("b")), Some(&Some(b"BBB".to_vec())));
    assert_eq!(t.len(), 2);
    assert!(u.entries >= 2);
}

#[test]
fn unlink_without_dir_fsync_comes_back_and_with_it_stays_gone() {
    let (_d, mut j) = setup();
    let a = new_file(&mut j, "a", b"AAA");
    let b = new_file(&mut j, "b", b"BBB");
    j.fsync(&a).expect("fsync");
    j.fsync(&b).expect("fsync");
    j.fsyncdir(Path::new("")).expect("fsyncdir");
    j.remove(Path::new("a"), false).expect("unlink");
    j.power_loss(false).expect("power loss");
    assert_eq!(tree(j.root()).len(), 2);
    j.remove(Path::new("a"), false).expect("unlink");
    j.fsyncdir(Path::new("")).expect("fsyncdir");
    assert_eq!(
        fs::read_dir(j.root().join(TRASH)).expect("trash").count(),
        0,
        "the trash is emptied once nothing durable names it"
    );
    j.power_loss(false).expect("power loss");
    assert_eq!(tree(j.root()).len(), 1);
}

#[test]
fn torn_write_keeps_a_seeded_prefix() {
    let run = || {
        let (_d, mut j) = setup();
        let f = new_file(&mut j, "a", b"first");
        j.fsync(&f).expect("fsync");
        j.fsyncdir(Path::new("")).expect("fsyncdir");
        j.write(&f, 0, b"FIRST").expect("write");
        j.write(&f, 5, &[b'x'; 100]).expect("write");
        let u = j.power_loss(true).expect("power loss");
        (u, fs::read(j.path(Path::new("a"))).expect("read"))
    };
    let (u, data) = run();
    assert_eq!(u.torn, 1);
    assert!(data.len() < 105, "a prefix of 0..len bytes");
    assert_eq!(&data[..5], b"first", "the earlier unsynced write is undone");
    assert!(
        data[5..].iter().all(|b| *b == b'x'),
        "a prefix of the last write"
    );
    let (_, again) = run();
    assert_eq!(data, again, "the same seed tears the same way");
}

#[test]
fn past_the_cap_the_log_becomes_a_snapshot() {
    let (_d, mut j) = setup();
    let f = new_file(&mut j, "a", b"synced");
    j.fsync(&f).expect("fsync");
    j.fsyncdir(Path::new("")).expect("fsyncdir");
    let chunk = vec![7u8; 1 << 20];
    for i in 0..10u64 {
        // Overwrites of the same MiB: the log grows, the file does not.
        j.write(&f, i % 2, &chunk).expect("write");
    }
    assert!(matches!(
        j.files.values().next().map(|l| &l.undo),
        Some(Undo::Snapshot { .. })
    ));
    j.write(&f, 3, b"tail").expect("write");
    let u = j.power_loss(true).expect("power loss");
    let data = fs::read(j.path(Path::new("a"))).expect("read");
    assert!(
        data.starts_with(b"syn"),
        "{:?}",
        &data[..data.len().min(16)]
    );
    assert!(data.len() <= 7);
    assert_eq!(u.torn, 1);
}

#[test]
fn a_large_truncate_snapshots_instead_of_keeping_the_tail_in_memory() {
    let (_d, mut j) = setup();
    let big = vec![3u8; (UNDO_CAP + (1 << 20)) as usize];
    let f = new_file(&mut j, "a", &big);
    j.fsync(&f).expect("fsync");
    j.fsyncdir(Path::new("")).expect("fsyncdir");
    j.truncate(&f, 10).expect("truncate");
    assert!(matches!(
        j.files.values().next().map(|l| &l.undo),
        Some(Undo::Snapshot { .. })
    ));
    j.power_loss(false).expect("power loss");
    assert_eq!(fs::read(j.path(Path::new("a"))).expect("read"), big);
}

#[test]
fn exchange_and_noreplace() {
    let (_d, mut j) = setup();
    let a = new_file(&mut j, "a", b"AAA");
    j.mkdir(Path::new("d"), 0o755).expect("mkdir");
    let b = new_file(&mut j, "d/b", b"BBB");
    j.fsync(&a).expect("fsync");
    j.fsync(&b).expect("fsync");
    j.fsyncdir(Path::new("")).expect("fsyncdir");
    j.fsyncdir(Path::new("d")).expect("fsyncdir");
    let e = j
        .rename(Path::new("a"), Path::new("d/b"), libc::RENAME_NOREPLACE)
        .expect_err("target exists");
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    j.rename(Path::new("a"), Path::new("d/b"), libc::RENAME_EXCHANGE)
        .expect("exchange");
    assert_eq!(fs::read(j.path(Path::new("a"))).expect("read"), b"BBB");
    j.fsyncdir(Path::new("d")).expect("fsyncdir");
    // d is durable with the exchanged entry, the root is not: `a` comes
    // back as it was, and d/b keeps the file that was `a` (two names).
    j.power_loss(false).expect("power loss");
    let t = tree(j.root());
    assert_eq!(t.get(Path::new("a")), Some(&Some(b"AAA".to_vec())));
    assert_eq!(t.get(Path::new("d/b")), Some(&Some(b"AAA".to_vec())));
}

#[test]
fn rmdir_and_mkdir_revert() {
    let (_d, mut j) = setup();
    j.mkdir(Path::new("d"), 0o755).expect("mkdir");
    j.fsyncdir(Path::new("")).expect("fsyncdir");
    j.mkdir(Path::new("e"), 0o755).expect("mkdir");
    j.remove(Path::new("d"), true).expect("rmdir");
    j.power_loss(false).expect("power loss");
    let t = tree(j.root());
    assert_eq!(t.keys().collect::<Vec<_>>(), vec![Path::new("d")]);
}

// ---- the property: random operations, then a power loss, against a
// model that keeps only what fsync and fsyncdir made durable ----

#[derive(Clone, Debug)]
enum Op {
    Create(usize, usize),
    Write(usize, usize, u64, usize, u8),
    Truncate(usize, usize, u64),
    Fsync(usize, usize),
    Rename(usize, usize, usize, usize),
    Unlink(usize, usize),
    FsyncDir(usize),
}

const DIRS: [&str; 2] = ["", "d"];
const NAMES: [&str; 3] = ["a", "b", "c"];

fn op() -> impl Strategy<Value = Op> {
    let d = 0..DIRS.len();
    let n = 0..NAMES.len();
    prop_oneof![
        (d.clone(), n.clone()).prop_map(|(d, n)| Op::Create(d, n)),
        (d.clone(), n.clone(), 0..40u64, 1..24usize, any::<u8>())
            .prop_map(|(d, n, o, l, b)| Op::Write(d, n, o, l, b)),
        (d.clone(), n.clone(), 0..50u64).prop_map(|(d, n, s)| Op::Truncate(d, n, s)),
        (d.clone(), n.clone()).prop_map(|(d, n)| Op::Fsync(d, n)),
        (d.clone(), n.clone(), d.clone(), n.clone())
            .prop_map(|(a, b, c, e)| Op::Rename(a, b, c, e)),
        (d.clone(), n.clone()).prop_map(|(d, n)| Op::Unlink(d, n)),
        d.prop_map(Op::FsyncDir),
    ]
}

#[derive(Default)]
struct Model {
    cur: [BTreeMap<usize, usize>; 2],
    dur: [BTreeMap<usize, usize>; 2],
    data: HashMap<usize, Vec<u8>>,
    synced: HashMap<usize, Vec<u8>>,
    next: usize,
}

fn rel(d: usize, n: usize) -> PathBuf {
    Path::new(DIRS[d]).join(NAMES[n])
}

fn apply(j: &mut Journal, m: &mut Model, op: &Op) {
    match *op {
        Op::Create(d, n) => {
            if m.cur[d].contains_key(&n) {
                return;
            }
            j.create(&rel(d, n), 0o644, true, true).expect("create");
            let id = m.next;
            m.next += 1;
            m.cur[d].insert(n, id);
            m.data.insert(id, Vec::new());
            m.synced.insert(id, Vec::new());
        }
        Op::Write(d, n, off, len, byte) => {
            let Some(id) = m.cur[d].get(&n).copied() else {
                return;
            };
            let f = rw(&j.path(&rel(d, n)));
            j.write(&f, off, &vec![byte; len]).expect("write");
            let v = m.data.entry(id).or_default();
            let end = off as usize + len;
            if v.len() < end {
                v.resize(end, 0);
            }
            v[off as usize..end].fill(byte);
        }
        Op::Truncate(d, n, size) => {
            let Some(id) = m.cur[d].get(&n).copied() else {
                return;
            };
            let f = rw(&j.path(&rel(d, n)));
            j.truncate(&f, size).expect("truncate");
            m.data.entry(id).or_default().resize(size as usize, 0);
        }
        Op::Fsync(d, n) => {
            let Some(id) = m.cur[d].get(&n).copied() else {
                return;
            };
            let f = rw(&j.path(&rel(d, n)));
            j.fsync(&f).expect("fsync");
            let now = m.data.get(&id).cloned().unwrap_or_default();
            m.synced.insert(id, now);
        }
        Op::Rename(d1, n1, d2, n2) => {
            let Some(id) = m.cur[d1].get(&n1).copied() else {
                return;
            };
            j.rename(&rel(d1, n1), &rel(d2, n2), 0).expect("rename");
            if (d1, n1) != (d2, n2) {
                m.cur[d1].remove(&n1);
                m.cur[d2].insert(n2, id);
            }
        }
        Op::Unlink(d, n) => {
            if m.cur[d].remove(&n).is_none() {
                return;
            }
            j.remove(&rel(d, n), false).expect("unlink");
        }
        Op::FsyncDir(d) => {
            j.fsyncdir(Path::new(DIRS[d])).expect("fsyncdir");
            m.dur[d] = m.cur[d].clone();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn power_loss_keeps_exactly_what_was_made_durable(ops in proptest::collection::vec(op(), 0..30)) {
        let (_d, mut j) = setup();
        j.mkdir(Path::new("d"), 0o755).expect("mkdir");
        j.fsyncdir(Path::new("")).expect("fsyncdir");
        let mut m = Model::default();
        for op in &ops {
            apply(&mut j, &mut m, op);
        }
        j.power_loss(false).expect("power loss");
        let mut expected = BTreeMap::new();
        expected.insert(PathBuf::from("d"), None);
        for (d, entries) in m.dur.iter().enumerate() {
            for (n, id) in entries {
                let content = m.synced.get(id).cloned().unwrap_or_default();
                expected.insert(rel(d, *n), Some(content));
            }
        }
        prop_assert_eq!(tree(j.root()), expected);
        prop_assert_eq!(j.pending(), (0, 0));
    }
}
