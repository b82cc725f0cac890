//! The FUSE filesystem: every operation passed through to the backing
//! directory by way of the [`Journal`] (which records what is not durable)
//! after the [`Injector`] counted it, delayed it and decided its fault.
//!
//! Inode numbers are rift's own (1 is the root), each mapped to the backing
//! path it was last seen at and the backing inode number; a rename rewrites
//! the paths of the renamed entry and everything under it. Entries and
//! attributes are given a TTL of zero, so the kernel asks again and a power
//! loss is seen at once.

use super::faults::{Class, Injector};
use super::journal::{Journal, TRASH};
use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, IoctlFlags, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLock, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the kernel may cache entries and attributes. Every change
/// goes through rift, which the kernel sees; the one change it does not
/// see, a power loss, invalidates what it may hold (`FaultyDisk::power_loss`).
pub const TTL: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Inodes {
    /// rift inode -> (path relative to the root, backing inode).
    by_ino: HashMap<u64, (PathBuf, u64)>,
    by_backing: HashMap<u64, u64>,
    next: u64,
}

#[derive(Debug)]
struct Handle {
    file: File,
    /// Opened with O_SYNC or O_DSYNC: every write is durable at once.
    sync: bool,
}

/// State shared by the FUSE worker threads and the [`super::FaultyDisk`].
#[derive(Debug)]
pub struct Shared {
    pub journal: Mutex<Journal>,
    inodes: Mutex<Inodes>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
    pub inject: Injector,
    root: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn errno(e: &io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn kind_of(md: &Metadata) -> FileType {
    FileType::from_std(md.file_type()).unwrap_or(FileType::RegularFile)
}

impl Shared {
    pub fn new(journal: Journal, seed: u64) -> io::Result<Shared> {
        let root = journal.root().to_path_buf();
        let mut inodes = Inodes {
            next: 2,
            ..Inodes::default()
        };
        let rino = fs::symlink_metadata(&root)?.ino();
        inodes.by_ino.insert(1, (PathBuf::new(), rino));
        inodes.by_backing.insert(rino, 1);
        Ok(Shared {
            journal: Mutex::new(journal),
            inodes: Mutex::new(inodes),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            inject: Injector::new(seed),
            root,
        })
    }

    /// After a power loss: every known inode's path found again by its
    /// backing inode (those gone are forgotten).
    pub fn remap(&self, by_backing: &HashMap<u64, PathBuf>) {
        let mut inodes = lock(&self.inodes);
        let mut gone = Vec::new();
        for (ino, (rel, bino)) in inodes.by_ino.iter_mut() {
            match by_backing.get(bino) {
                Some(p) => *rel = p.clone(),
                None => gone.push((*ino, *bino)),
            }
        }
        for (ino, bino) in gone {
            if ino != 1 {
                inodes.by_ino.remove(&ino);
                inodes.by_backing.remove(&bino);
            }
        }
    }

    /// Every known inode and its path (for invalidating the kernel's cache).
    pub fn known(&self) -> Vec<(u64, PathBuf)> {
        lock(&self.inodes)
            .by_ino
            .iter()
            .map(|(ino, (rel, _))| (*ino, rel.clone()))
            .collect()
    }

    fn rel(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        lock(&self.inodes)
            .by_ino
            .get(&ino.0)
            .map(|(p, _)| p.clone())
            .ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        if parent == INodeNo::ROOT && name == TRASH {
            return Err(Errno::EPERM);
        }
        Ok(self.rel(parent)?.join(name))
    }

    fn path(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// The rift inode of the backing entry at `rel` (assigned if new).
    fn node(&self, rel: &Path, md: &Metadata) -> u64 {
        let mut inodes = lock(&self.inodes);
        let bino = md.ino();
        if let Some(ino) = inodes.by_backing.get(&bino).copied() {
            inodes.by_ino.insert(ino, (rel.to_path_buf(), bino));
            return ino;
        }
        let ino = inodes.next;
        inodes.next += 1;
        inodes.by_ino.insert(ino, (rel.to_path_buf(), bino));
        inodes.by_backing.insert(bino, ino);
        ino
    }

    fn attr(&self, ino: u64, md: &Metadata) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: md.size(),
            blocks: md.blocks(),
            atime: time(md.atime(), md.atime_nsec()),
            mtime: time(md.mtime(), md.mtime_nsec()),
            ctime: time(md.ctime(), md.ctime_nsec()),
            crtime: time(md.ctime(), md.ctime_nsec()),
            kind: kind_of(md),
            perm: (md.mode() & 0o7777) as u16,
            nlink: md.nlink() as u32,
            uid: md.uid(),
            gid: md.gid(),
            rdev: md.rdev() as u32,
            blksize: md.blksize() as u32,
            flags: 0,
        }
    }

    fn entry(&self, rel: &Path) -> Result<FileAttr, Errno> {
        let md = fs::symlink_metadata(self.path(rel)).map_err(|e| errno(&e))?;
        let ino = self.node(rel, &md);
        Ok(self.attr(ino, &md))
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<Handle>, Errno> {
        lock(&self.handles).get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn add_handle(&self, file: File, flags: i32) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let sync = flags & (libc::O_SYNC | libc::O_DSYNC) != 0;
        lock(&self.handles).insert(fh, Arc::new(Handle { file, sync }));
        FileHandle(fh)
    }

    /// Paths of everything under `from` now under `to` (and, for an
    /// exchange, the other way round too).
    fn renamed(&self, from: &Path, to: &Path, exchange: bool) {
        // `Path::join("")` would add a trailing slash (ENOTDIR on a file).
        let moved = |base: &Path, rest: &Path| {
            if rest.as_os_str().is_empty() {
                base.to_path_buf()
            } else {
                base.join(rest)
            }
        };
        let mut inodes = lock(&self.inodes);
        for (rel, _) in inodes.by_ino.values_mut() {
            if let Ok(rest) = rel.strip_prefix(from) {
                *rel = moved(to, rest);
            } else if exchange {
                if let Ok(rest) = rel.strip_prefix(to) {
                    *rel = moved(from, rest);
                }
            }
        }
    }

    /// A name gone to the trash: its inode now lives at `trash`.
    fn trashed(&self, trash: &Path) {
        if let Ok(md) = fs::symlink_metadata(trash) {
            let rel = trash
                .strip_prefix(&self.root)
                .unwrap_or(trash)
                .to_path_buf();
            let mut inodes = lock(&self.inodes);
            if let Some(ino) = inodes.by_backing.get(&md.ino()).copied() {
                inodes.by_ino.insert(ino, (rel, md.ino()));
            }
        }
    }

    fn set_times(
        &self,
        path: &Path,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
    ) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let spec = |t: Option<TimeOrNow>| match t {
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            Some(TimeOrNow::Now) => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_NOW,
            },
            Some(TimeOrNow::SpecificTime(t)) => {
                let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
                libc::timespec {
                    tv_sec: d.as_secs() as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                }
            }
        };
        let times = [spec(atime), spec(mtime)];
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a valid path string and an array of two timespecs.
        let rc = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// What a setattr asks to change.
struct SetAttr {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
    fh: Option<FileHandle>,
}

/// The filesystem handed to fuser (its worker threads share it).
pub struct DiskFs(pub Arc<Shared>);

impl DiskFs {
    fn enter(&self, kind: &str, class: Class) -> Result<(), Errno> {
        match self.0.inject.enter(kind, class) {
            Some(e) => Err(Errno::from_i32(e)),
            None => Ok(()),
        }
    }

    fn do_setattr(&self, ino: INodeNo, a: SetAttr) -> Result<FileAttr, Errno> {
        let SetAttr {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
            fh,
        } = a;
        let s = &self.0;
        let rel = s.rel(ino)?;
        let path = s.path(&rel);
        let io = |e: io::Error| errno(&e);
        if let Some(size) = size {
            self.enter("truncate", Class::Other)?;
            let handle = fh.and_then(|fh| s.handle(fh).ok());
            let opened;
            let file = match &handle {
                Some(h) => &h.file,
                None => {
                    opened = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .map_err(io)?;
                    &opened
                }
            };
            lock(&s.journal).truncate(file, size).map_err(io)?;
        } else {
            self.enter("setattr", Class::Other)?;
        }
        if let Some(mode) = mode {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777)).map_err(io)?;
        }
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(&path, uid, gid).map_err(io)?;
        }
        if atime.is_some() || mtime.is_some() {
            s.set_times(&path, atime, mtime).map_err(io)?;
        }
        s.entry(&rel)
    }
}

impl Filesystem for DiskFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = (|| {
            self.enter("lookup", Class::Other)?;
            if parent == INodeNo::ROOT && name == TRASH {
                return Err(Errno::ENOENT);
            }
            self.0.entry(&self.0.child(parent, name)?)
        })();
        match r {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = (|| {
            self.enter("getattr", Class::Other)?;
            if let Some(h) = fh.and_then(|fh| self.0.handle(fh).ok()) {
                let md = h.file.metadata().map_err(|e| errno(&e))?;
                return Ok(self.0.attr(ino.0, &md));
            }
            let rel = self.0.rel(ino)?;
            let md = fs::symlink_metadata(self.0.path(&rel)).map_err(|e| errno(&e))?;
            Ok(self.0.attr(ino.0, &md))
        })();
        match r {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let a = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
            fh,
        };
        match self.do_setattr(ino, a) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        use std::os::unix::ffi::OsStrExt;
        let r = (|| {
            self.enter("readlink", Class::Other)?;
            let rel = self.0.rel(ino)?;
            fs::read_link(self.0.path(&rel)).map_err(|e| errno(&e))
        })();
        match r {
            Ok(t) => reply.data(t.as_os_str().as_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let r = (|| {
            self.enter("create", Class::Other)?;
            if mode & libc::S_IFMT != libc::S_IFREG {
                return Err(Errno::EPERM);
            }
            let rel = self.0.child(parent, name)?;
            lock(&self.0.journal)
                .create(&rel, mode & !umask & 0o7777, true, false)
                .map_err(|e| errno(&e))?;
            self.0.entry(&rel)
        })();
        match r {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = (|| {
            self.enter("mkdir", Class::Other)?;
            let rel = self.0.child(parent, name)?;
            lock(&self.0.journal)
                .mkdir(&rel, mode & !umask & 0o7777)
                .map_err(|e| errno(&e))?;
            self.0.entry(&rel)
        })();
        match r {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = (|| {
            self.enter("unlink", Class::Other)?;
            let rel = self.0.child(parent, name)?;
            let t = lock(&self.0.journal)
                .remove(&rel, false)
                .map_err(|e| errno(&e))?;
            self.0.trashed(&t);
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = (|| {
            self.enter("rmdir", Class::Other)?;
            let rel = self.0.child(parent, name)?;
            let t = lock(&self.0.journal)
                .remove(&rel, true)
                .map_err(|e| errno(&e))?;
            self.0.trashed(&t);
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = (|| {
            self.enter("symlink", Class::Other)?;
            let rel = self.0.child(parent, link_name)?;
            lock(&self.0.journal)
                .symlink(&rel, target)
                .map_err(|e| errno(&e))?;
            self.0.entry(&rel)
        })();
        match r {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            self.enter("rename", Class::Other)?;
            let from = self.0.child(parent, name)?;
            let to = self.0.child(newparent, newname)?;
            let trashed = lock(&self.0.journal)
                .rename(&from, &to, flags.bits())
                .map_err(|e| errno(&e))?;
            if let Some(t) = &trashed {
                self.0.trashed(t);
            }
            self.0
                .renamed(&from, &to, flags.contains(RenameFlags::RENAME_EXCHANGE));
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let r = (|| {
            self.enter("open", Class::Other)?;
            let rel = self.0.rel(ino)?;
            let write = flags.0 & libc::O_ACCMODE != libc::O_RDONLY;
            let file = OpenOptions::new()
                .read(true)
                .write(write)
                .custom_flags(flags.0 & libc::O_NONBLOCK)
                .open(self.0.path(&rel))
                .map_err(|e| errno(&e))?;
            Ok(self.0.add_handle(file, flags.0))
        })();
        match r {
            Ok(fh) => reply.opened(fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let r = (|| {
            self.enter("read", Class::Read)?;
            let h = self.0.handle(fh)?;
            let mut buf = vec![0u8; size as usize];
            let mut done = 0;
            while done < buf.len() {
                let n = h
                    .file
                    .read_at(&mut buf[done..], offset + done as u64)
                    .map_err(|e| errno(&e))?;
                if n == 0 {
                    break;
                }
                done += n;
            }
            buf.truncate(done);
            self.0.inject.corrupt(&mut buf);
            Ok(buf)
        })();
        match r {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = (|| {
            self.enter("write", Class::Write)?;
            let h = self.0.handle(fh)?;
            let mut j = lock(&self.0.journal);
            let n = j.write(&h.file, offset, data).map_err(|e| errno(&e))?;
            if h.sync {
                h.file.sync_data().map_err(|e| errno(&e))?;
                j.fsync(&h.file).map_err(|e| errno(&e))?;
            }
            Ok(n as u32)
        })();
        match r {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        match self.enter("flush", Class::Other) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.0.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            self.enter(if datasync { "fdatasync" } else { "fsync" }, Class::Sync)?;
            let h = self.0.handle(fh)?;
            // What was written so far is durable in rift's model; the
            // backing file's own fsync runs outside the journal's lock, so
            // writers of other files are not held up by the real disk.
            lock(&self.0.journal)
                .fsync(&h.file)
                .map_err(|e| errno(&e))?;
            let synced = if datasync {
                h.file.sync_data()
            } else {
                h.file.sync_all()
            };
            synced.map_err(|e| errno(&e))
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = (|| {
            self.enter("opendir", Class::Other)?;
            let rel = self.0.rel(ino)?;
            let md = fs::metadata(self.0.path(&rel)).map_err(|e| errno(&e))?;
            if md.is_dir() {
                Ok(())
            } else {
                Err(Errno::ENOTDIR)
            }
        })();
        match r {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let r = (|| {
            self.enter("readdir", Class::Other)?;
            let rel = self.0.rel(ino)?;
            let mut names: Vec<(std::ffi::OsString, u64, FileType)> = Vec::new();
            names.push((".".into(), ino.0, FileType::Directory));
            names.push(("..".into(), ino.0, FileType::Directory));
            let mut entries: Vec<_> = fs::read_dir(self.0.path(&rel))
                .map_err(|e| errno(&e))?
                .filter_map(|e| e.ok())
                .filter(|e| !(rel.as_os_str().is_empty() && e.file_name() == TRASH))
                .collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let Ok(md) = fs::symlink_metadata(e.path()) else {
                    continue;
                };
                let child = rel.join(e.file_name());
                let cino = self.0.node(&child, &md);
                names.push((e.file_name(), cino, kind_of(&md)));
            }
            Ok(names)
        })();
        match r {
            Ok(names) => {
                for (i, (name, cino, kind)) in names.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(cino), (i + 1) as u64, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            self.enter("fsyncdir", Class::Sync)?;
            let rel = self.0.rel(ino)?;
            lock(&self.0.journal)
                .fsyncdir(&rel)
                .map_err(|e| errno(&e))?;
            File::open(self.0.path(&rel))
                .and_then(|d| d.sync_all())
                .map_err(|e| errno(&e))
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let r = (|| {
            self.enter("statfs", Class::Other)?;
            nix::sys::statvfs::statvfs(&self.0.root).map_err(|e| Errno::from_i32(e as i32))
        })();
        match r {
            Ok(v) => reply.statfs(
                v.blocks(),
                v.blocks_free(),
                v.blocks_available(),
                v.files(),
                v.files_free(),
                v.block_size() as u32,
                v.name_max() as u32,
                v.fragment_size() as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    // Extended attributes: not supported. ENOSYS (rather than fuser's
    // default, which logs a warning) makes the kernel stop asking, instead
    // of asking for security.capability before every write.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS);
    }

    // Hard links are not supported (the journal keys files by inode and
    // knows one name per entry it brings back).
    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _ = self.enter("link", Class::Other);
        reply.error(Errno::EPERM);
    }

    // POSIX locks: ENOSYS makes the kernel keep them locally.
    fn getlk(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        _start: u64,
        _end: u64,
        _typ: i32,
        _pid: u32,
        reply: ReplyLock,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn setlk(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        _start: u64,
        _end: u64,
        _typ: i32,
        _pid: u32,
        _sleep: bool,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(Errno::from_i32(libc::ENOTTY));
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = (|| {
            self.enter("create", Class::Other)?;
            let rel = self.0.child(parent, name)?;
            let (file, _) = lock(&self.0.journal)
                .create(
                    &rel,
                    mode & !umask & 0o7777,
                    flags & libc::O_EXCL != 0,
                    true,
                )
                .map_err(|e| errno(&e))?;
            let attr = self.0.entry(&rel)?;
            Ok((attr, self.0.add_handle(file, flags)))
        })();
        match r {
            Ok((attr, fh)) => reply.created(&TTL, &attr, Generation(0), fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            self.enter("fallocate", Class::Write)?;
            if mode != 0 {
                return Err(Errno::from_i32(libc::EOPNOTSUPP));
            }
            let h = self.0.handle(fh)?;
            lock(&self.0.journal)
                .allocate(&h.file, offset, length)
                .map_err(|e| errno(&e))
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
