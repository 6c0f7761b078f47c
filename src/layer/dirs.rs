//! The last step of a layer: the modes, mtimes (and, for a layer applied beside
//! the layers below it, owners) of its directory entries, set once every entry is
//! in place, since creating children changes a directory's mtime.

use std::ffi::OsString;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::error::{LayerError, io_err};
use super::path::resolve_in_root;
use super::tree::{self, cstring};

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
    /// Set owners again: a layer below may have merged into these directories
    /// after this layer had set them.
    pub(super) chown_again: bool,
    /// Some entry of the layer was applied before the layers below were.
    pub(super) ahead: bool,
}

impl FinishDirs {
    /// Sets modes and mtimes (and owners when asked), deepest last-created first.
    /// A directory that a later entry replaced or moved behind a symlink is left
    /// alone.
    pub fn run(self, root: &Path) -> Result<(), LayerError> {
        let root_dir = fs::File::open(root).map_err(io_err(".", "open the root directory"))?;
        let fd = root_dir.as_raw_fd();
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
        }
        Ok(())
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
