//! The last step of a layer: the modes, mtimes (and, for a layer applied beside
//! the layers below it, owners) of its directory entries, set once every entry is
//! in place, since creating children changes a directory's mtime.
//!
//! A directory whose entries the layer changed without describing it (a package
//! manager's files rewritten in place, as `var/log/dpkg.log`, leave no entry for
//! `var/log`) gets back the mtime it had before the layer first changed it: the
//! layer says nothing about it, so it keeps what the layers below gave it, as
//! umoci keeps it (docker and containerd leave the time of the pull).

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, OsString};
use std::fs;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use super::error::{LayerError, io_err};
use super::path::resolve_in_root;
use super::tree::{self, cstring};

/// A modification time: seconds and nanoseconds since the epoch.
pub(super) type Mtime = (i64, i64);

/// Directory mtimes with the inode they were seen on (a directory removed and
/// made again is another directory).
pub(super) type Settled = HashMap<PathBuf, (Mtime, u64)>;

/// A directory entry's metadata, set when the layer is done.
#[derive(Debug)]
pub(super) struct DirMeta {
    pub rel: PathBuf,
    pub mode: u32,
    pub mtime: u64,
    pub owner: (u64, u64),
    /// Nothing was removed since it was made: it is still a directory, reached
    /// through directories only, and needs no look.
    pub untouched: bool,
}

/// The directory metadata of one layer, to be set after its entries (and, when
/// it was applied beside the layers below, after theirs).
#[derive(Debug)]
pub struct FinishDirs {
    pub(super) dirs: Vec<DirMeta>,
    /// Directories changed but not described by the layer, with their mtimes
    /// before it changed them ([`MtimesBefore::set_back`]).
    pub(super) set_back: Vec<(PathBuf, (Mtime, u64))>,
    /// Set owners again: a layer below may have merged into these directories
    /// after this layer had set them.
    pub(super) chown_again: bool,
    /// Some entry of the layer was applied before the layers below were.
    pub(super) ahead: bool,
}

impl FinishDirs {
    /// Sets back the mtimes of the directories changed and not described, then
    /// sets modes and mtimes (and owners when asked) of those described,
    /// deepest last-created first. A directory that a later entry replaced or
    /// moved behind a symlink is left alone.
    ///
    /// What a directory gets back is what it had before this layer in layer
    /// order: `left`, what the layers below left it (updated here for the
    /// layers above), or else `first`, its mtime before any layer of the pull
    /// changed it; either only for the same directory (inode). Layers applied
    /// side by side may see each other's changes, so what this layer saw first
    /// is the last resort (alone, it is exact).
    pub fn run(self, root: &Path, left: &mut Settled, first: &Settled) -> Result<(), LayerError> {
        let root_dir = fs::File::open(root).map_err(io_err(".", "open the root directory"))?;
        let fd = root_dir.as_raw_fd();
        for (rel, (before, ino)) in self.set_back {
            let name = rel.to_string_lossy().into_owned();
            if !rel.as_os_str().is_empty() && !still_there(root, &rel) {
                continue;
            }
            let c_rel = name_in_root(&rel).map_err(io_err(&name, "set mtime back"))?;
            let now = tree::lstat_at(fd, &c_rel).map_err(io_err(&name, "set mtime back"))?;
            let same = |v: Option<&(Mtime, u64)>| v.filter(|v| v.1 == now.st_ino).map(|v| v.0);
            let mtime = match same(left.get(&rel)).or(same(first.get(&rel))) {
                Some(m) => m,
                None if ino == now.st_ino => before,
                // Made again after this layer first changed it: nothing to keep.
                None => continue,
            };
            tree::set_mtime_at(fd, &c_rel, mtime).map_err(io_err(&name, "set mtime back"))?;
            left.insert(rel, (mtime, now.st_ino));
        }
        for meta in self.dirs.into_iter().rev() {
            let name = meta.rel.to_string_lossy().into_owned();
            let c_rel = cstring(meta.rel.as_os_str()).map_err(io_err(&name, "chmod"))?;
            if !meta.untouched && !still_there(root, &meta.rel) {
                continue;
            }
            if self.chown_again {
                let (uid, gid) = meta.owner;
                tree::lchown_at(fd, &c_rel, uid as u32, gid as u32)
                    .map_err(io_err(&name, "chown"))?;
            }
            tree::chmod_at(fd, &c_rel, meta.mode).map_err(io_err(&name, "chmod"))?;
            tree::set_times_at(fd, &c_rel, meta.mtime as i64)
                .map_err(io_err(&name, "set mtime"))?;
            let st = tree::lstat_at(fd, &c_rel).map_err(io_err(&name, "set mtime"))?;
            left.insert(meta.rel, ((meta.mtime as i64, 0), st.st_ino));
        }
        Ok(())
    }
}

/// The directories a layer changed, with their mtimes (and inodes) before it
/// first did.
#[derive(Debug, Default)]
pub(super) struct MtimesBefore(HashMap<PathBuf, (Mtime, u64)>);

impl MtimesBefore {
    /// Before the layer changes the entries of directory `rel` (root-relative,
    /// resolved; open as `fd`, or else looked up from the root's fd `root_fd`):
    /// its mtime and inode, returned if this is the first change.
    pub(super) fn note(
        &mut self,
        rel: &Path,
        (fd, root_fd): (Option<RawFd>, RawFd),
    ) -> Option<(Mtime, u64)> {
        if self.0.contains_key(rel) {
            return None;
        }
        let st = match fd {
            Some(fd) => tree::lstat_at(fd, c"."),
            None => name_in_root(rel).and_then(|c| tree::lstat_at(root_fd, &c)),
        };
        // Not there, or not a directory: the entry fails or replaces it, and
        // there is nothing to set back.
        let st = st
            .ok()
            .filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)?;
        let seen = ((st.st_mtime, st.st_mtime_nsec), st.st_ino);
        self.0.insert(rel.to_path_buf(), seen);
        Some(seen)
    }

    /// The directories to set back: those changed and not described by the
    /// layer (`dirs`).
    pub(super) fn set_back(self, dirs: &[DirMeta]) -> Vec<(PathBuf, (Mtime, u64))> {
        let described: HashSet<&Path> = dirs.iter().map(|d| d.rel.as_path()).collect();
        self.0
            .into_iter()
            .filter(|(rel, _)| !described.contains(rel.as_path()))
            .collect()
    }
}

/// `rel` as a name relative to the root's fd (`.` for the root itself).
fn name_in_root(rel: &Path) -> std::io::Result<std::borrow::Cow<'static, CStr>> {
    if rel.as_os_str().is_empty() {
        Ok(std::borrow::Cow::Borrowed(c"."))
    } else {
        cstring(rel.as_os_str()).map(std::borrow::Cow::Owned)
    }
}

/// Whether the directory made at `rel` is still a directory that `rel` resolves
/// to (a later entry may have replaced it or moved it behind a symlink).
fn still_there(root: &Path, rel: &Path) -> bool {
    let comps: Vec<OsString> = rel.iter().map(|c| c.to_os_string()).collect();
    let Some((_, parents)) = comps.split_last() else {
        return false;
    };
    let resolved = resolve_in_root(root, parents).is_ok_and(|p| Some(p.as_path()) == rel.parent());
    resolved && fs::symlink_metadata(root.join(rel)).is_ok_and(|m| m.is_dir())
}
