//! The root filesystem as the applier sees it: a directory fd for the root, the
//! directories already known to be real directories, and open fds of recently
//! used parent directories, so that each entry is created with one `*at` call
//! relative to its parent instead of a path walked from `/` after a `stat` of
//! every ancestor.
//!
//! Safety rests on two things. A path is only ever walked by the kernel through
//! directories this applier checked (`known`), and whatever could turn a checked
//! directory into something else (removing a directory or a symlink) forgets
//! everything ([`Tree::forget`]). And the parent fds themselves are opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the kernel has it
//! (Linux 5.6+): if the bookkeeping were ever wrong, the kernel refuses to follow
//! a symlink or leave the root instead of writing somewhere else.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Parent fds kept open at once; tar streams list a directory's entries together,
/// so a few suffice. The cache is emptied when full.
const OPEN_DIRS: usize = 64;

/// Set once a layer of this process gave a directory a default ACL, which new
/// entries below it inherit and which narrows their mode: from then on every
/// layer's new files take a chmod ([`Tree::creates_exactly`]), whatever root
/// they are in (rare, and a chmod too many is only slower).
static DEFAULT_ACL_SET: AtomicBool = AtomicBool::new(false);

/// Mode of directories created implicitly, as docker creates them.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// A directory entries are created in.
#[derive(Clone, Debug)]
pub(super) struct Parent {
    fd: Rc<OwnedFd>,
    /// The group a new entry in it gets: the directory's own when it is set-gid,
    /// the creator's otherwise.
    pub(super) new_gid: u32,
}

impl Parent {
    pub(super) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The root of one layer application.
pub(super) struct Tree {
    root: OwnedFd,
    /// Root-relative paths checked (or made) to be real directories, not symlinks.
    known: HashSet<PathBuf>,
    /// Open `O_PATH` fds of recently used directories, by root-relative path.
    open: HashMap<PathBuf, Parent>,
    /// The owner a new entry gets from the kernel: (euid, egid).
    creator: (u32, u32),
    /// The process's umask when the layer began.
    umask: u32,
    /// Whether new entries get the owner [`Tree::new_owner`] predicts, as seen on
    /// this layer's first regular file (`None`: not seen yet). A filesystem
    /// mounted `grpid`, or one that maps owners, gives others: then every chown
    /// is made.
    owners_as_predicted: Option<bool>,
    /// Whether a new entry's mode is exactly the mode asked for, less the umask:
    /// the root has no default ACL (which directories made inside would inherit
    /// and which would override the umask).
    plain_modes: bool,
    /// Bumped by [`Tree::forget`]: a path checked at generation `g` is still what
    /// it was if nothing was forgotten since.
    generation: u64,
}

impl Tree {
    /// Opens `root` (which must be a directory).
    pub(super) fn open(root: &Path) -> io::Result<Tree> {
        let c = cstring(root.as_os_str())?;
        // SAFETY: `c` is a valid NUL-terminated path; the returned fd is checked
        // and then owned.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        let root = owned(fd)?;
        let plain_modes = !has_default_acl(&c)?;
        // SAFETY: geteuid and getegid have no preconditions and cannot fail.
        let creator = unsafe { (libc::geteuid(), libc::getegid()) };
        Ok(Tree {
            root,
            umask: read_umask(),
            owners_as_predicted: None,
            known: HashSet::new(),
            open: HashMap::new(),
            creator,
            plain_modes,
            generation: 0,
        })
    }

    /// The owner (uid, gid) a new entry in `parent` gets without a chown, when
    /// that is known (see [`Tree::check_owner`]); `None`: chown every entry.
    pub(super) fn new_owner(&self, parent: &Parent) -> Option<(u32, u32)> {
        self.owners_as_predicted
            .filter(|&ok| ok)
            .map(|_| (self.creator.0, parent.new_gid))
    }

    /// On the layer's first new regular file (`file`, just created in `parent`):
    /// whether the kernel gave the owner predicted, which decides whether chowns to
    /// that owner may be skipped for the rest of the layer.
    pub(super) fn check_owner(&mut self, parent: &Parent, file: &std::fs::File) -> io::Result<()> {
        if self.owners_as_predicted.is_none() {
            use std::os::unix::fs::MetadataExt;
            let m = file.metadata()?;
            self.owners_as_predicted = Some((m.uid(), m.gid()) == (self.creator.0, parent.new_gid));
        }
        Ok(())
    }

    /// Whether a file created with `mode` gets exactly `mode` (no set-id or sticky
    /// bits, nothing the umask or an ACL takes away), so no chmod is needed.
    pub(super) fn creates_exactly(&self, mode: u32) -> bool {
        self.plain_modes
            && !DEFAULT_ACL_SET.load(Ordering::Relaxed)
            && mode & 0o7000 == 0
            && mode & self.umask == 0
    }

    /// A directory got a default ACL: new entries may not get their mode
    /// exactly any more, in this layer or the next ones (see
    /// [`Tree::creates_exactly`]).
    pub(super) fn default_acl_set(&mut self) {
        self.plain_modes = false;
        DEFAULT_ACL_SET.store(true, Ordering::Relaxed);
    }

    /// The process's umask when the layer began.
    pub(super) fn umask(&self) -> u32 {
        self.umask
    }

    /// Forgets the open fd of `rel` (its owner or mode changed: the group new
    /// entries in it get may have too).
    pub(super) fn evict(&mut self, rel: &Path) {
        self.open.remove(rel);
    }

    /// The root directory's fd.
    pub(super) fn root_fd(&self) -> RawFd {
        self.root.as_raw_fd()
    }

    /// The current generation (see [`Tree::forget`]).
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Forgets every checked directory and open fd: something was removed, so a
    /// checked path may now be a symlink or gone.
    pub(super) fn forget(&mut self) {
        self.known.clear();
        self.open.clear();
        self.generation += 1;
    }

    /// Records that `rel` is now a real directory (the applier just made or
    /// checked it).
    pub(super) fn know_dir(&mut self, rel: &Path) {
        self.known.insert(rel.to_path_buf());
    }

    /// Whether `rel` was checked (or made) to be a real directory.
    pub(super) fn is_known(&self, rel: &Path) -> bool {
        self.known.contains(rel)
    }

    /// An fd of the root-relative directory `rel`, creating missing directories on
    /// the way with mode 0755. `rel` must be resolved (no symlinks meant to be
    /// followed in it); a component that is not a directory is an error.
    pub(super) fn dir(&mut self, rel: &Path) -> io::Result<Parent> {
        if let Some(p) = self.open.get(rel) {
            return Ok(p.clone());
        }
        self.make_dirs(rel)?;
        let fd = open_beneath(&self.root, rel)?;
        let st = fstat(&fd)?;
        let new_gid = if st.st_mode & libc::S_ISGID != 0 {
            st.st_gid
        } else {
            self.creator.1
        };
        let parent = Parent {
            fd: Rc::new(fd),
            new_gid,
        };
        if self.open.len() >= OPEN_DIRS {
            self.open.clear();
        }
        self.open.insert(rel.to_path_buf(), parent.clone());
        Ok(parent)
    }

    /// Checks every ancestor of `rel` (and `rel`) is a real directory, creating
    /// the missing ones; each is walked by the kernel only through checked ones.
    fn make_dirs(&mut self, rel: &Path) -> io::Result<()> {
        let mut cur = PathBuf::new();
        for c in rel.components() {
            cur.push(c);
            if self.known.contains(&cur) {
                continue;
            }
            let c_cur = cstring(cur.as_os_str())?;
            match lstat_at(self.root_fd(), &c_cur) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!("{} is not a directory", c.as_os_str().to_string_lossy()),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Always chmod: the umask, a default ACL or a set-gid parent
                    // would otherwise decide the mode (these are rare anyway).
                    match mkdir_at(self.root_fd(), &c_cur, IMPLICIT_DIR_MODE) {
                        Ok(()) => chmod_at(self.root_fd(), &c_cur, IMPLICIT_DIR_MODE)?,
                        // Made meanwhile by a layer applied beside this one.
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                            let st = lstat_at(self.root_fd(), &c_cur)?;
                            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                                return Err(e);
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
            self.known.insert(cur.clone());
        }
        Ok(())
    }
}

/// Whether the directory at `path` has a default ACL (`system.posix_acl_default`);
/// a filesystem without ACLs has none.
fn has_default_acl(path: &CStr) -> io::Result<bool> {
    // SAFETY: a size query (NULL buffer, size 0) of an xattr of a NUL-terminated
    // path; nothing is written.
    let rc = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"system.posix_acl_default".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    if rc >= 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENODATA) | Some(libc::EOPNOTSUPP) => Ok(false),
        _ => Err(e),
    }
}

fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    // SAFETY: stat is plain old data that fstat fills for a valid fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// Whether `openat2` is worth trying (cleared on the first ENOSYS or EPERM).
static OPENAT2: AtomicBool = AtomicBool::new(true);

/// Opens the directory `rel` below `root` without following any symlink and
/// without leaving `root`: `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`,
/// or, on kernels without it, `openat` with `O_NOFOLLOW` on a path whose
/// components the caller checked.
fn open_beneath(root: &OwnedFd, rel: &Path) -> io::Result<OwnedFd> {
    let path = if rel.as_os_str().is_empty() {
        c".".to_owned()
    } else {
        cstring(rel.as_os_str())?
    };
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    if OPENAT2.load(Ordering::Relaxed) {
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = flags as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
        // SAFETY: `how` is a valid open_how of the size passed; `path` is a valid
        // NUL-terminated path; the returned fd is checked and then owned.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        } as RawFd;
        match owned(fd) {
            // ENOSYS: an older kernel; EPERM: a seccomp profile that denies it
            // (older container runtimes). Fall back to openat, as documented.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
                OPENAT2.store(false, Ordering::Relaxed);
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(io::Error::other(format!(
                    "refusing to follow a symlink in {} (checked as a directory)",
                    rel.display()
                )));
            }
            other => return other,
        }
    }
    // SAFETY: as above, with openat.
    owned(unsafe { libc::openat(root.as_raw_fd(), path.as_ptr(), flags) })
}

/// The process's umask, from /proc (reading it with `umask(2)` would change it
/// for a moment under other threads).
fn read_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        // Unknown: assume it strips everything, so every chmod is made.
        .unwrap_or(0o777)
}

pub(super) fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a non-negative fd just returned by the kernel, owned by no one.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// A system call's return code as a result (`errno` on failure).
pub(super) fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub(super) fn lstat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: stat is plain old data that fstatat fills; `name` is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

pub(super) fn mkdir_at(dir: RawFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; mkdirat does not retain it.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode as libc::mode_t) })
}

/// `fchmodat` (follows a final symlink: callers pass directories they checked).
pub(super) fn chmod_at(dir: RawFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; fchmodat does not retain it.
    check(unsafe { libc::fchmodat(dir, name.as_ptr(), mode as libc::mode_t, 0) })
}

/// `fchownat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub(super) fn lchown_at(dir: RawFd, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; fchownat does not retain it.
    check(unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })
}

/// Sets the modification time of `name` itself (not a symlink's target) to
/// `(seconds, nanoseconds)`, leaving its access time alone.
pub(super) fn set_mtime_at(dir: RawFd, name: &CStr, (secs, nanos): (i64, i64)) -> io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: secs as libc::time_t,
            tv_nsec: nanos as _,
        },
    ];
    utimens_nofollow(dir, name, &times)
}

/// Sets access and modification times of `name` itself (not a symlink's target).
pub(super) fn set_times_at(dir: RawFd, name: &CStr, secs: i64) -> io::Result<()> {
    let t = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    utimens_nofollow(dir, name, &[t, t])
}

/// `utimensat(dir, name, times, AT_SYMLINK_NOFOLLOW)`.
fn utimens_nofollow(dir: RawFd, name: &CStr, times: &[libc::timespec; 2]) -> io::Result<()> {
    // SAFETY: `times` holds two timespecs as utimensat requires; `name` is
    // NUL-terminated.
    check(unsafe {
        libc::utimensat(
            dir,
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

pub(super) fn symlink_at(target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated; symlinkat does not retain them.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) })
}

/// Removes the non-directory `name` in `dir`.
pub(super) fn unlink_at(dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; unlinkat does not retain it.
    check(unsafe { libc::unlinkat(dir, name.as_ptr(), 0) })
}

/// Creates the regular file `name` in `dir`, which must not exist, for writing.
pub(super) fn create_at(dir: RawFd, name: &CStr, mode: u32) -> io::Result<std::fs::File> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `name` is NUL-terminated; the returned fd is checked and owned.
    let fd = owned(unsafe { libc::openat(dir, name.as_ptr(), flags, mode as libc::c_uint) })?;
    Ok(std::fs::File::from(fd))
}

/// `mknod` of a device node or FIFO at `path` (whose parents the caller checked).
pub(super) fn mknod(path: &Path, mode: u32, dev: libc::dev_t) -> io::Result<()> {
    let c = cstring(path.as_os_str())?;
    // SAFETY: `c` is a valid NUL-terminated path; mknod does not retain it.
    check(unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, dev) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn directories_are_made_and_symlinks_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let mut tree = Tree::open(&root).unwrap();
        tree.dir(Path::new("a/b/c")).unwrap();
        assert!(root.join("a/b/c").is_dir());
        // A symlink swapped in behind the tree's back (the applier forgets on every
        // removal, so only a bug could do this) is refused, not followed.
        std::fs::remove_dir_all(root.join("a/b")).unwrap();
        symlink(&outside, root.join("a/b")).unwrap();
        tree.open.clear();
        let err = tree.dir(Path::new("a/b/c")).unwrap_err();
        if OPENAT2.load(Ordering::Relaxed) {
            assert!(err.to_string().contains("symlink"), "{err}");
        }
        assert!(!outside.join("c").exists());
        // After forgetting, the component is checked again and refused.
        tree.forget();
        let err = tree.dir(Path::new("a/b/c")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory, "{err}");
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
    }
}
