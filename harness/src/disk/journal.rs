//! What is not durable yet, and its rollback: the namespace and data
//! operations of the faulty disk carried out on the backing directory, each
//! recording how to undo it until an fsync makes it durable.
//!
//! - A file (keyed by its backing inode number, so renames do not matter)
//!   keeps an undo log since its last fsync: its size then, and the old
//!   bytes of every range a write or truncate changed, in order. Past
//!   [`UNDO_CAP`] bytes the log collapses into a whole-file snapshot of the
//!   synced content (a copy in the trash), after which writes log nothing.
//! - A directory (keyed by its backing inode number) keeps the entries it
//!   had at its last fsync (name -> inode), taken when it first changes.
//! - Whatever leaves the tree (unlink, rmdir, a rename's replaced target)
//!   moves into the trash (`<backing>/.rift-trash`, hidden from the mount)
//!   so that a power loss can bring it back; it is deleted once no
//!   directory's durable entries refer to it.
//!
//! [`Journal::power_loss`] restores every changed directory's durable
//! entries, then every changed file's synced content. Pure file system
//! work on the backing directory: no FUSE, unit-testable on a temp dir.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The trash directory's name at the root of the backing directory.
pub const TRASH: &str = ".rift-trash";

/// Undo bytes kept per file before its log collapses into a snapshot.
pub const UNDO_CAP: u64 = 8 << 20;

/// What one power loss rolled back (see [`super::Rollback`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Undone {
    pub bytes: u64,
    pub entries: u64,
    pub torn: u64,
}

/// One undoable change of a file's data.
#[derive(Debug)]
enum Record {
    /// A write at `offset` of `len` bytes; `old` the bytes it overwrote
    /// (those below the size then), `size` the size before it.
    Write {
        offset: u64,
        len: u64,
        old: Vec<u8>,
        size: u64,
    },
    /// A size change; `tail` the bytes cut off (when it shrank).
    Truncate { size: u64, tail: Vec<u8> },
}

#[derive(Debug)]
enum Undo {
    Log {
        records: Vec<Record>,
        bytes: u64,
    },
    /// The synced content, copied into the trash (name in the trash).
    Snapshot {
        name: OsString,
        last: Option<(u64, u64)>,
        changed: u64,
    },
}

#[derive(Debug)]
struct FileLog {
    /// The size at the last fsync.
    synced_size: u64,
    undo: Undo,
}

/// The journal over one backing directory.
#[derive(Debug)]
pub struct Journal {
    root: PathBuf,
    files: HashMap<u64, FileLog>,
    /// Directory inode -> its entries at its last fsync.
    dirs: HashMap<u64, BTreeMap<OsString, u64>>,
    trash_seq: u64,
    seed: u64,
    power_losses: u64,
}

fn ino_of(path: &Path) -> io::Result<u64> {
    Ok(fs::symlink_metadata(path)?.ino())
}

fn entries_of(dir: &Path) -> io::Result<BTreeMap<OsString, u64>> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        out.insert(e.file_name(), std::os::unix::fs::DirEntryExt::ino(&e));
    }
    Ok(out)
}

fn remove_any(path: &Path) -> io::Result<()> {
    let md = fs::symlink_metadata(path)?;
    if md.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

fn read_at(file: &File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let mut done = 0usize;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

impl Journal {
    /// A journal over `root` (created if missing), with its trash.
    pub fn new(root: &Path, seed: u64) -> io::Result<Journal> {
        fs::create_dir_all(root)?;
        let trash = root.join(TRASH);
        if trash.exists() {
            fs::remove_dir_all(&trash)?;
        }
        fs::create_dir(&trash)?;
        Ok(Journal {
            root: root.to_path_buf(),
            files: HashMap::new(),
            dirs: HashMap::new(),
            trash_seq: 0,
            seed,
            power_losses: 0,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The backing path of `rel` (relative to the served root).
    pub fn path(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    fn trash(&self) -> PathBuf {
        self.root.join(TRASH)
    }

    fn next_trash(&mut self) -> (OsString, PathBuf) {
        self.trash_seq += 1;
        let name = OsString::from(format!("t{}", self.trash_seq));
        let path = self.trash().join(&name);
        (name, path)
    }

    /// Records a directory's entries before its first change since its
    /// last fsync.
    fn touch_dir(&mut self, dir_rel: &Path) -> io::Result<()> {
        let dir = self.path(dir_rel);
        let ino = ino_of(&dir)?;
        if let std::collections::hash_map::Entry::Vacant(slot) = self.dirs.entry(ino) {
            let mut entries = entries_of(&dir)?;
            if dir_rel.as_os_str().is_empty() {
                entries.remove(OsStr::new(TRASH));
            }
            slot.insert(entries);
        }
        Ok(())
    }

    /// Number of directories and files with something not durable.
    pub fn pending(&self) -> (usize, usize) {
        (self.dirs.len(), self.files.len())
    }

    // ---- namespace operations ----

    /// Creates (or opens, when it exists and `excl` is off) a regular file.
    pub fn create(
        &mut self,
        rel: &Path,
        mode: u32,
        excl: bool,
        read: bool,
    ) -> io::Result<(File, bool)> {
        let path = self.path(rel);
        let existed = fs::symlink_metadata(&path).is_ok();
        if existed && excl {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        if !existed {
            self.touch_dir(parent_of(rel))?;
        }
        let file = OpenOptions::new()
            .read(read)
            .write(true)
            .create(true)
            .mode(mode)
            .open(&path)?;
        if !existed {
            // A new file: nothing of it is durable, its synced size is 0.
            let ino = file.metadata()?.ino();
            self.files.insert(
                ino,
                FileLog {
                    synced_size: 0,
                    undo: Undo::Log {
                        records: Vec::new(),
                        bytes: 0,
                    },
                },
            );
        }
        Ok((file, !existed))
    }

    pub fn mkdir(&mut self, rel: &Path, mode: u32) -> io::Result<()> {
        self.touch_dir(parent_of(rel))?;
        fs::DirBuilder::new().mode(mode).create(self.path(rel))
    }

    pub fn symlink(&mut self, rel: &Path, target: &Path) -> io::Result<()> {
        self.touch_dir(parent_of(rel))?;
        std::os::unix::fs::symlink(target, self.path(rel))
    }

    /// Unlinks a file (or, with `dir`, removes an empty directory) by moving
    /// it into the trash. Returns its path in the trash.
    pub fn remove(&mut self, rel: &Path, dir: bool) -> io::Result<PathBuf> {
        let path = self.path(rel);
        let md = fs::symlink_metadata(&path)?;
        if dir && !md.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        if !dir && md.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        if dir && fs::read_dir(&path)?.next().is_some() {
            return Err(io::Error::from_raw_os_error(libc::ENOTEMPTY));
        }
        self.touch_dir(parent_of(rel))?;
        let (_, to) = self.next_trash();
        fs::rename(&path, &to)?;
        Ok(to)
    }

    /// Renames `from` to `to` (`flags`: 0, RENAME_NOREPLACE or
    /// RENAME_EXCHANGE). A replaced target goes to the trash first (a hard
    /// link for a file, so no one sees the name missing). Returns the
    /// replaced target's path in the trash.
    pub fn rename(&mut self, from: &Path, to: &Path, flags: u32) -> io::Result<Option<PathBuf>> {
        let src = self.path(from);
        let dst = self.path(to);
        let src_md = fs::symlink_metadata(&src)?;
        let dst_md = fs::symlink_metadata(&dst).ok();
        if flags & libc::RENAME_EXCHANGE != 0 {
            if dst_md.is_none() {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
            self.touch_dir(parent_of(from))?;
            self.touch_dir(parent_of(to))?;
            renameat2(&src, &dst, libc::RENAME_EXCHANGE)?;
            return Ok(None);
        }
        if flags & !libc::RENAME_NOREPLACE != 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if let Some(d) = &dst_md {
            if d.ino() == src_md.ino() {
                return Ok(None);
            }
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(io::Error::from_raw_os_error(libc::EEXIST));
            }
            if d.is_dir() != src_md.is_dir() {
                return Err(io::Error::from_raw_os_error(if d.is_dir() {
                    libc::EISDIR
                } else {
                    libc::ENOTDIR
                }));
            }
            if d.is_dir() && fs::read_dir(&dst)?.next().is_some() {
                return Err(io::Error::from_raw_os_error(libc::ENOTEMPTY));
            }
        }
        if src_md.is_dir() && to.starts_with(from) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.touch_dir(parent_of(from))?;
        self.touch_dir(parent_of(to))?;
        let mut trashed = None;
        if let Some(d) = &dst_md {
            let (_, t) = self.next_trash();
            if d.is_dir() {
                fs::rename(&dst, &t)?;
            } else {
                fs::hard_link(&dst, &t)?;
            }
            trashed = Some(t);
        }
        fs::rename(&src, &dst)?;
        Ok(trashed)
    }

    // ---- data operations ----

    fn log_for(&mut self, file: &File) -> io::Result<(u64, u64)> {
        let md = file.metadata()?;
        let ino = md.ino();
        self.files.entry(ino).or_insert(FileLog {
            synced_size: md.len(),
            undo: Undo::Log {
                records: Vec::new(),
                bytes: 0,
            },
        });
        Ok((ino, md.len()))
    }

    /// Writes `data` at `offset` (write-through), logging the old bytes.
    pub fn write(&mut self, file: &File, offset: u64, data: &[u8]) -> io::Result<usize> {
        let (ino, size) = self.log_for(file)?;
        let len = data.len() as u64;
        let record = match self.files.get(&ino).map(|f| &f.undo) {
            Some(Undo::Log { .. }) => {
                let old_len = size.saturating_sub(offset).min(len);
                let old = if old_len > 0 {
                    read_at(file, offset, old_len)?
                } else {
                    Vec::new()
                };
                Some(Record::Write {
                    offset,
                    len,
                    old,
                    size,
                })
            }
            _ => None,
        };
        file.write_all_at(data, offset)?;
        self.push(ino, file, record, (offset, len), true)?;
        Ok(data.len())
    }

    /// Sets the file's size, logging the bytes cut off.
    pub fn truncate(&mut self, file: &File, new_size: u64) -> io::Result<()> {
        let (ino, size) = self.log_for(file)?;
        let logging = matches!(
            self.files.get(&ino).map(|f| &f.undo),
            Some(Undo::Log { .. })
        );
        if logging && size.saturating_sub(new_size) > UNDO_CAP {
            // Cutting more than the cap: snapshot instead of reading the
            // whole tail into memory.
            self.collapse(ino, file)?;
        }
        let record = match self.files.get(&ino).map(|f| &f.undo) {
            Some(Undo::Log { .. }) => {
                let tail = if new_size < size {
                    read_at(file, new_size, size - new_size)?
                } else {
                    Vec::new()
                };
                Some(Record::Truncate { size, tail })
            }
            _ => None,
        };
        file.set_len(new_size)?;
        let change = (new_size.min(size), size.abs_diff(new_size));
        self.push(ino, file, record, change, false)
    }

    /// Extends the file to at least `offset + len` (fallocate mode 0).
    pub fn allocate(&mut self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        let size = file.metadata()?.len();
        let end = offset.saturating_add(len);
        if end > size {
            self.truncate(file, end)?;
        }
        Ok(())
    }

    fn push(
        &mut self,
        ino: u64,
        file: &File,
        record: Option<Record>,
        change: (u64, u64),
        is_write: bool,
    ) -> io::Result<()> {
        let Some(log) = self.files.get_mut(&ino) else {
            return Ok(());
        };
        match &mut log.undo {
            Undo::Log { records, bytes } => {
                if let Some(r) = record {
                    *bytes += match &r {
                        Record::Write { old, .. } => old.len() as u64 + 32,
                        Record::Truncate { tail, .. } => tail.len() as u64 + 32,
                    };
                    records.push(r);
                }
                if *bytes > UNDO_CAP {
                    self.collapse(ino, file)?;
                }
            }
            Undo::Snapshot { last, changed, .. } => {
                *last = if is_write && change.1 > 0 {
                    Some(change)
                } else {
                    None
                };
                *changed += change.1;
            }
        }
        Ok(())
    }

    /// Turns a file's undo log into a snapshot of its synced content.
    fn collapse(&mut self, ino: u64, file: &File) -> io::Result<()> {
        let (name, snap) = self.next_trash();
        let Some(log) = self.files.get_mut(&ino) else {
            return Ok(());
        };
        let Undo::Log { records, .. } = &mut log.undo else {
            return Ok(());
        };
        let mut copy = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&snap)?;
        let mut src = file.try_clone()?;
        io::Seek::seek(&mut src, io::SeekFrom::Start(0))?;
        io::copy(&mut src, &mut copy)?;
        let (changed, _) = undo_records(&copy, records)?;
        copy.set_len(log.synced_size)?;
        log.undo = Undo::Snapshot {
            name,
            last: None,
            changed,
        };
        Ok(())
    }

    /// An fsync of a file: its data (and size) become durable; its
    /// directory entry does not.
    pub fn fsync(&mut self, file: &File) -> io::Result<()> {
        let ino = file.metadata()?.ino();
        if let Some(log) = self.files.remove(&ino) {
            if let Undo::Snapshot { name, .. } = log.undo {
                let _ = fs::remove_file(self.trash().join(name));
            }
        }
        Ok(())
    }

    /// An fsync of a directory: its entries become durable (not the data of
    /// the files they name). Trash no durable entry refers to is deleted.
    pub fn fsyncdir(&mut self, dir_rel: &Path) -> io::Result<()> {
        let ino = ino_of(&self.path(dir_rel))?;
        if self.dirs.remove(&ino).is_some() {
            self.purge_trash(false)?;
        }
        Ok(())
    }

    /// Deletes trash entries that no durable entry refers to (all, with
    /// `all`), and the logs of the files deleted.
    fn purge_trash(&mut self, all: bool) -> io::Result<()> {
        let wanted: BTreeSet<u64> = if all {
            BTreeSet::new()
        } else {
            self.dirs
                .values()
                .flat_map(|e| e.values().copied())
                .collect()
        };
        let snapshots: BTreeSet<OsString> = self
            .files
            .values()
            .filter_map(|f| match &f.undo {
                Undo::Snapshot { name, .. } => Some(name.clone()),
                Undo::Log { .. } => None,
            })
            .collect();
        for e in fs::read_dir(self.trash())? {
            let e = e?;
            let ino = std::os::unix::fs::DirEntryExt::ino(&e);
            if wanted.contains(&ino) || (!all && snapshots.contains(&e.file_name())) {
                continue;
            }
            let path = e.path();
            let mut gone = Vec::new();
            if e.file_type()?.is_dir() {
                walk(&path, &mut |_, md| gone.push(md.ino()))?;
            } else if fs::symlink_metadata(&path)?.nlink() <= 1 {
                gone.push(ino);
            }
            remove_any(&path)?;
            for g in gone {
                // Only if no name is left for it (a hard link elsewhere).
                if !wanted.contains(&g) {
                    self.drop_file_log(g);
                }
            }
        }
        Ok(())
    }

    fn drop_file_log(&mut self, ino: u64) {
        if let Some(log) = self.files.remove(&ino) {
            if let Undo::Snapshot { name, .. } = log.undo {
                let _ = fs::remove_file(self.trash().join(name));
            }
        }
    }

    // ---- power loss ----

    /// Inode -> path (relative to the root) of everything in the tree; the
    /// trash last, so a live name wins.
    pub fn inode_map(&self) -> io::Result<HashMap<u64, PathBuf>> {
        let mut map = HashMap::new();
        map.insert(ino_of(&self.root)?, PathBuf::new());
        let root = self.root.clone();
        let trash = self.trash();
        let mut in_trash = Vec::new();
        walk(&root, &mut |p, md| {
            let rel = p.strip_prefix(&root).unwrap_or(p).to_path_buf();
            if p.starts_with(&trash) {
                in_trash.push((md.ino(), rel));
            } else {
                map.insert(md.ino(), rel);
            }
        })?;
        for (ino, rel) in in_trash {
            map.entry(ino).or_insert(rel);
        }
        Ok(map)
    }

    /// Rolls back everything not durable; `torn` keeps a seeded prefix of
    /// each file's last unsynced write. Clears the journal.
    pub fn power_loss(&mut self, torn: bool) -> io::Result<Undone> {
        self.power_losses += 1;
        let mut undone = Undone::default();
        let trash_rel = PathBuf::from(TRASH);
        let dirs = std::mem::take(&mut self.dirs);
        // Sorted by inode for a deterministic order.
        let dirs: BTreeMap<u64, BTreeMap<OsString, u64>> = dirs.into_iter().collect();

        // 1. Every name a changed directory did not have at its fsync (or
        //    that now names another inode) goes to the trash.
        let mut map = self.inode_map()?;
        for (dino, durable) in &dirs {
            let Some(drel) = map.get(dino).cloned() else {
                continue;
            };
            let dpath = self.path(&drel);
            let mut current = entries_of(&dpath)?;
            if drel.as_os_str().is_empty() {
                current.remove(OsStr::new(TRASH));
            }
            let mut moved_dir = false;
            for (name, ino) in current {
                if durable.get(&name) != Some(&ino) {
                    let from = dpath.join(&name);
                    moved_dir |= fs::symlink_metadata(&from)?.is_dir();
                    let (_, to) = self.next_trash();
                    fs::rename(&from, &to)?;
                    undone.entries += 1;
                }
            }
            if moved_dir {
                map = self.inode_map()?;
            }
        }
        // 2. Every durable name missing comes back (from the trash, or as a
        //    second name of a file that lives elsewhere now).
        map = self.inode_map()?;
        for (dino, durable) in &dirs {
            for (name, ino) in durable {
                let Some(drel) = map.get(dino).cloned() else {
                    continue;
                };
                let dst = self.path(&drel).join(name);
                if fs::symlink_metadata(&dst).is_ok() {
                    continue;
                }
                let Some(srel) = map.get(ino).cloned() else {
                    continue;
                };
                let src = self.path(&srel);
                let md = fs::symlink_metadata(&src)?;
                if srel.starts_with(&trash_rel) || md.is_dir() {
                    if md.is_dir() && drel.starts_with(&srel) {
                        continue;
                    }
                    fs::rename(&src, &dst)?;
                    undone.entries += 1;
                    if md.is_dir() {
                        map = self.inode_map()?;
                    } else {
                        map.insert(*ino, drel.join(name));
                    }
                } else {
                    fs::hard_link(&src, &dst)?;
                    undone.entries += 1;
                }
            }
        }
        // 3. File data back to its last fsync.
        let map = self.inode_map()?;
        let files = std::mem::take(&mut self.files);
        let files: BTreeMap<u64, FileLog> = files.into_iter().collect();
        for (ino, log) in files {
            let reachable = map.get(&ino).filter(|r| !r.starts_with(&trash_rel));
            let Some(rel) = reachable.cloned() else {
                if let Undo::Snapshot { name, .. } = &log.undo {
                    let _ = fs::remove_file(self.trash().join(name));
                }
                continue;
            };
            let path = self.path(&rel);
            let rollback =
                |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(rollback)?;
            let tear = if torn {
                self.tear(&file, &log, &rel).map_err(rollback)?
            } else {
                None
            };
            match log.undo {
                Undo::Log { records, .. } => {
                    let (bytes, _) = undo_records(&file, &records).map_err(rollback)?;
                    undone.bytes += bytes;
                }
                Undo::Snapshot { name, changed, .. } => {
                    let snap = self.trash().join(&name);
                    let mut from = File::open(&snap).map_err(rollback)?;
                    let mut to = file.try_clone().map_err(rollback)?;
                    io::Seek::seek(&mut to, io::SeekFrom::Start(0)).map_err(rollback)?;
                    io::copy(&mut from, &mut to).map_err(rollback)?;
                    let _ = fs::remove_file(&snap);
                    undone.bytes += changed;
                }
            }
            file.set_len(log.synced_size).map_err(rollback)?;
            if let Some((offset, prefix)) = tear {
                file.write_all_at(&prefix, offset).map_err(rollback)?;
                undone.bytes = undone.bytes.saturating_sub(prefix.len() as u64);
                undone.torn += 1;
            }
        }
        self.purge_trash(true)?;
        Ok(undone)
    }

    /// The prefix of the file's last write that a torn write keeps.
    fn tear(&self, file: &File, log: &FileLog, rel: &Path) -> io::Result<Option<(u64, Vec<u8>)>> {
        let last = match &log.undo {
            Undo::Log { records, .. } => match records.last() {
                Some(Record::Write { offset, len, .. }) => Some((*offset, *len)),
                Some(Record::Truncate { .. }) | None => None,
            },
            Undo::Snapshot { last, .. } => *last,
        };
        let Some((offset, len)) = last else {
            return Ok(None);
        };
        if len == 0 {
            return Ok(None);
        }
        let mut h = self.seed ^ self.power_losses.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for b in rel.as_os_str().as_encoded_bytes() {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        let keep = ChaCha8Rng::seed_from_u64(h).random_range(0..len);
        Ok(Some((offset, read_at(file, offset, keep)?)))
    }
}

/// Applies undo records in reverse; returns the bytes they touched.
fn undo_records(file: &File, records: &[Record]) -> io::Result<(u64, ())> {
    let mut bytes = 0;
    for r in records.iter().rev() {
        match r {
            Record::Write {
                offset,
                len,
                old,
                size,
            } => {
                file.write_all_at(old, *offset)?;
                file.set_len(*size)?;
                bytes += len;
            }
            Record::Truncate { size, tail } => {
                let now = file.metadata()?.len();
                file.set_len(*size)?;
                if !tail.is_empty() {
                    file.write_all_at(tail, now.min(*size))?;
                }
                bytes += size.abs_diff(now);
            }
        }
    }
    Ok((bytes, ()))
}

fn parent_of(rel: &Path) -> &Path {
    rel.parent().unwrap_or(Path::new(""))
}

/// Every path under `dir` (not following symlinks), depth first.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata)) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        let md = fs::symlink_metadata(&p)?;
        f(&p, &md);
        if md.is_dir() {
            walk(&p, f)?;
        }
    }
    Ok(())
}

pub fn renameat2(from: &Path, to: &Path, flags: u32) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(from.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let b = std::ffi::CString::new(to.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: both are valid NUL-terminated strings for the call's length.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
