//! One layer tar stream -> changes to the root filesystem.

mod beside;
mod copy;
mod links;

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::{self, Permissions};
use std::io::{self, Read};
use std::os::fd::RawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use filetime::FileTime;

use super::aside::SetAside;
use super::dirs::{DirMeta, FinishDirs, MtimesBefore, Settled};
use super::error::{LayerError, io_err};
use super::header::{check_pax_size, stored_size};
use super::meter::{Meter, Metered};
use super::options::{ApplyOptions, LayerStats};
use super::order::Gate;
use super::path::{PathError, clean, resolve_in_root};
use super::tree::{self, Tree, cstring};
use super::whiteout::{self, Whiteout};
use super::xattrs::Xattrs;
use crate::limits::{LimitError, Limits};
use beside::Step;
use copy::{CopyError, copy};

const COPY_BUFFER: usize = 256 << 10;

/// Applies one layer read from `reader` (an uncompressed tar stream) onto `root`
/// with the default [`Limits`]. The reader is read to its end, so a digest computed
/// over it covers the whole stream, trailing blocks included.
pub fn apply_layer<R: Read>(
    reader: R,
    root: &Path,
    options: &ApplyOptions,
) -> Result<LayerStats, LayerError> {
    apply_layer_limited(reader, root, options, &Limits::DEFAULT)
}

/// [`apply_layer`] with explicit limits on entries, path length and depth, and file
/// content written ([`Limits::max_layer_bytes`], which sparse entries could
/// otherwise inflate far beyond the stream's size).
pub fn apply_layer_limited<R: Read>(
    reader: R,
    root: &Path,
    options: &ApplyOptions,
    limits: &Limits,
) -> Result<LayerStats, LayerError> {
    let (stats, (finish, _)) = apply_entries(reader, root, options, limits, None)?;
    finish.run(root, &mut Settled::default(), &Settled::default())?;
    Ok(stats)
}

/// What is left of a layer once its entries are in place, and the time its
/// entries waited for the layers below.
pub(super) type Finish = (FinishDirs, Duration);

pub(super) fn apply_entries<'a, R: Read>(
    reader: R,
    root: &'a Path,
    options: &'a ApplyOptions,
    limits: &'a Limits,
    gate: Option<Gate<'a>>,
) -> Result<(LayerStats, Finish), LayerError> {
    let mut state = Applier {
        root,
        tree: Tree::open(root).map_err(io_err(".", "open the root directory"))?,
        options,
        limits,
        gate,
        aside: SetAside::default(),
        stats: LayerStats::default(),
        written: HashSet::new(),
        dir_meta: Vec::new(),
        mtimes_before: MtimesBefore::default(),
        parents: HashMap::new(),
        direct: HashSet::new(),
        buf: vec![0; COPY_BUFFER],
    };
    let meter = Meter::new(limits.max_entry_header_bytes());
    let mut archive = tar::Archive::new(Metered {
        inner: reader,
        meter: meter.clone(),
    });
    let mut entries = archive.entries().map_err(LayerError::from_read)?;
    loop {
        meter.open();
        let next = entries.next();
        let Some(entry) = next else { break };
        let mut entry = entry.map_err(LayerError::from_read)?;
        meter.close(stored_size(&entry));
        state.stats.entries += 1;
        if state.stats.entries > limits.max_entries {
            return Err(LimitError::Entries {
                limit: limits.max_entries,
            }
            .into());
        }
        state.entry(&mut entry)?;
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(LayerError::from_read)?;
    if !state.aside.is_empty() {
        state.in_order_now()?;
    }
    let (ahead, waited) = match &state.gate {
        Some(g) => (g.went_ahead(), g.waited()),
        None => (false, Duration::ZERO),
    };
    // Beside other layers, whose removals the generation does not count: look.
    let generation = state.tree.generation();
    let dirs: Vec<DirMeta> = std::mem::take(&mut state.dir_meta)
        .into_iter()
        .map(|(mut meta, made_at)| {
            meta.untouched = made_at == generation && !ahead;
            meta
        })
        .collect();
    let finish = FinishDirs {
        set_back: std::mem::take(&mut state.mtimes_before).set_back(&dirs),
        dirs,
        chown_again: ahead && options.same_owner,
        ahead,
    };
    Ok((state.stats, (finish, waited)))
}

struct Applier<'a> {
    root: &'a Path,
    /// The root's fd and the directories checked in it: entries are created
    /// relative to their parent's fd.
    tree: Tree,
    options: &'a ApplyOptions,
    limits: &'a Limits,
    stats: LayerStats,
    /// Root-relative paths this layer wrote, with their ancestors: whiteouts of this
    /// layer must not touch them.
    written: HashSet<PathBuf>,
    /// Where this layer's entries wait for the layers below, when applied beside
    /// them.
    gate: Option<Gate<'a>>,
    /// Entries set aside until the layers below are applied.
    aside: SetAside,
    /// Directory metadata, set after all entries (children change mtimes), with
    /// the [`Tree::generation`] at which each was made.
    dir_meta: Vec<(DirMeta, u64)>,
    /// Directories whose entries this layer changed, with their mtimes before.
    mtimes_before: MtimesBefore,
    /// Cache of parent directories resolved through symlinks; cleared whenever a
    /// directory or a symlink is removed or a symlink is created, since each can
    /// change such a resolution.
    parents: HashMap<Vec<OsString>, PathBuf>,
    /// Parent directories that resolved to themselves (no symlink on the way, so
    /// every step is one of their own ancestors, which [`Tree::dir`] then made
    /// real directories). A new symlink cannot change that: it would have to
    /// replace one of those directories, a removal. Cleared on removals only.
    direct: HashSet<Vec<OsString>>,
    buf: Vec<u8>,
}

impl Applier<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let raw_name = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        let unsafe_err = |e: PathError| LayerError::Unsafe {
            entry: name.clone(),
            reason: e.to_string(),
        };
        if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
            // pax global headers (`git archive` writes one) describe the archive,
            // not a file: docker and containerd ignore them too.
            return Ok(());
        }
        let comps = clean(&raw_name).map_err(unsafe_err)?;
        self.limits
            .check_entry_path(&name, &raw_name, comps.len())?;
        check_pax_size(entry, &name)?;
        let Some((last, parent_comps)) = comps.split_last() else {
            return Ok(()); // the root directory itself: keep the root as it is
        };
        if whiteout::is_aufs_meta(&comps[0]) {
            return Ok(()); // aufs bookkeeping (`.wh..wh.plnk/...`), as docker skips it
        }
        let kind = entry.header().entry_type();
        let mut parent = self
            .entry_parent(last, kind, parent_comps)
            .map_err(unsafe_err)?;
        match self.before_entry(entry, &comps, &parent)? {
            Step::Go => {}
            Step::SetAside => return Ok(()),
            // The layers below are applied now: they may have changed the way.
            Step::InOrder => {
                parent = self
                    .entry_parent(last, kind, parent_comps)
                    .map_err(unsafe_err)?;
            }
        }
        match whiteout::classify(last) {
            Whiteout::Meta => return Ok(()),
            Whiteout::Invalid => {
                return Err(LayerError::Unsafe {
                    entry: name,
                    reason: "whiteout that names no sibling ('.wh.', '.wh..' or '.wh...')".into(),
                });
            }
            Whiteout::Opaque => {
                self.stats.whiteouts += 1;
                self.note_dir(&parent, None);
                self.forget();
                return whiteout::make_opaque(self.root, &parent, &self.written)
                    .map_err(io_err(&name, "opaque whiteout"));
            }
            Whiteout::Delete(target) => {
                self.stats.whiteouts += 1;
                let rel = parent.join(target);
                if !self.written.contains(&rel) {
                    self.note_dir(&parent, None);
                    self.forget();
                    whiteout::remove_path(self.root, &rel).map_err(io_err(&name, "whiteout"))?;
                }
                return Ok(());
            }
            Whiteout::None => {}
        }
        let parent_dir = match self.tree.dir(&parent) {
            // Beside the layers below, a directory they are about to make in place
            // of something else may not be one yet: in order, it would be.
            Err(e) if self.gate.as_ref().is_some_and(|g| !g.in_order()) => {
                tracing::debug!(entry = %name, error = %e, "parent directory not ready beside the layers below: in order");
                self.in_order_now()?;
                parent = self
                    .entry_parent(last, kind, parent_comps)
                    .map_err(unsafe_err)?;
                self.tree.dir(&parent)
            }
            other => other,
        }
        .map_err(io_err(&name, "create parent directories"))?;
        let dir = parent_dir.fd();
        self.note_dir(&parent, Some(dir));
        let c_last = cstring(last).map_err(io_err(&name, "create"))?;
        let rel = parent.join(last);
        let dest = self.root.join(&rel);
        let xattrs = Xattrs::of(entry, &name)?;
        let header = entry.header();
        let mode = header.mode().map_err(LayerError::from_read)? & 0o7777;
        let mtime = header.mtime().unwrap_or(0);
        let owner = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
        // A new entry already has the owner the kernel gives it: no chown to that.
        let same_owner = self.options.same_owner;
        let differs = |predicted: Option<(u32, u32)>| {
            predicted.is_none_or(|(u, g)| owner != (u64::from(u), u64::from(g)))
        };
        let chown_new = same_owner && differs(self.tree.new_owner(&parent_dir));
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                let created = self
                    .prepare_dir(dir, &c_last, &dest)
                    .map_err(io_err(&name, "mkdir"))?;
                if chown_new || (same_owner && !created) {
                    lchown_at(dir, &c_last, owner).map_err(io_err(&name, "chown"))?;
                    // Its group may have changed: so may what new entries get.
                    self.tree.evict(&rel);
                }
                self.tree.know_dir(&rel);
                self.stats.skipped_xattrs += xattrs.set_on_path(&dest, &name)?;
                if xattrs.has_default_acl() {
                    self.tree.default_acl_set();
                }
                let meta = DirMeta {
                    rel: rel.clone(),
                    mode,
                    mtime,
                    owner,
                    untouched: false,
                };
                self.dir_meta.push((meta, self.tree.generation()));
                self.stats.dirs += 1;
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                let total = self.stats.file_bytes.saturating_add(entry.size());
                if total > self.limits.max_layer_bytes {
                    return Err(LimitError::FileBytes {
                        entry: name,
                        total,
                        limit: self.limits.max_layer_bytes,
                    }
                    .into());
                }
                // Without the image's owner, set-id bits would run the file as
                // whoever extracted it: dropped, as libarchive does by default.
                let mode = if self.options.same_owner {
                    mode
                } else {
                    mode & !(libc::S_ISUID | libc::S_ISGID)
                };
                // Made with its final mode when the kernel gives exactly that (no
                // chmod then); otherwise private until the chmod below.
                let exact = self.tree.creates_exactly(mode);
                let create_mode = if exact { mode } else { 0o600 };
                let mut file = match tree::create_at(dir, &c_last, create_mode) {
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        self.replace_at(dir, &c_last, &dest)
                            .map_err(io_err(&name, "replace existing"))?;
                        tree::create_at(dir, &c_last, create_mode)
                    }
                    other => other,
                }
                .map_err(io_err(&name, "create file"))?;
                let written = copy(entry, &mut file, &mut self.buf).map_err(|e| match e {
                    CopyError::Read(e) => LayerError::from_read(e),
                    CopyError::Write(e) => io_err(&name, "write file")(e),
                })?;
                if same_owner {
                    self.tree
                        .check_owner(&parent_dir, &file)
                        .map_err(io_err(&name, "stat"))?;
                }
                if same_owner && differs(self.tree.new_owner(&parent_dir)) {
                    std::os::unix::fs::fchown(&file, Some(owner.0 as u32), Some(owner.1 as u32))
                        .map_err(io_err(&name, "chown"))?;
                }
                // After the chown (which drops a file capability), before the
                // chmod (a read-only file refuses `user.*` to its owner).
                self.stats.skipped_xattrs += xattrs.set_on_file(&file, &name)?;
                if !exact {
                    file.set_permissions(Permissions::from_mode(mode))
                        .map_err(io_err(&name, "chmod"))?;
                }
                let t = FileTime::from_unix_time(mtime as i64, 0);
                filetime::set_file_handle_times(&file, Some(t), Some(t))
                    .map_err(io_err(&name, "set mtime"))?;
                self.stats.files += 1;
                self.stats.file_bytes += written;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| LayerError::Unsafe {
                        entry: name.clone(),
                        reason: "symlink without a target".into(),
                    })?
                    .into_owned();
                self.limits.check_link_target(&name, &target)?;
                let target = CString::new(target).map_err(|_| LayerError::Unsafe {
                    entry: name.clone(),
                    reason: "symlink target contains a NUL byte".into(),
                })?;
                self.parents.clear();
                match tree::symlink_at(&target, dir, &c_last) {
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        self.replace_at(dir, &c_last, &dest)
                            .map_err(io_err(&name, "replace existing"))?;
                        tree::symlink_at(&target, dir, &c_last)
                    }
                    other => other,
                }
                .map_err(io_err(&name, "symlink"))?;
                if chown_new {
                    lchown_at(dir, &c_last, owner).map_err(io_err(&name, "chown"))?;
                }
                self.stats.skipped_xattrs += xattrs.set_on_path(&dest, &name)?;
                tree::set_times_at(dir, &c_last, mtime as i64)
                    .map_err(io_err(&name, "set mtime"))?;
                self.stats.symlinks += 1;
            }
            T::Link => {
                let target = self.hardlink_target(entry, &name)?;
                if target != rel {
                    self.replace(&dest)
                        .map_err(io_err(&name, "replace existing"))?;
                    fs::hard_link(self.root.join(&target), &dest)
                        .map_err(io_err(&name, "hard link"))?;
                    // A hard link to a symlink is a new symlink: resolutions may change.
                    self.parents.clear();
                }
                self.stats.hardlinks += 1;
            }
            T::Char | T::Block | T::Fifo => {
                if kind != T::Fifo && !self.options.devices {
                    self.stats.skipped_devices += 1;
                    return Ok(());
                }
                self.replace(&dest)
                    .map_err(io_err(&name, "replace existing"))?;
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let file_type = match kind {
                    T::Char => libc::S_IFCHR,
                    T::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                match tree::mknod(&dest, file_type | mode, libc::makedev(major, minor)) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EPERM) && kind != T::Fifo => {
                        self.stats.skipped_devices += 1;
                        return Ok(());
                    }
                    Err(e) => return Err(io_err(&name, "mknod")(e)),
                }
                self.lchown(&dest, owner).map_err(io_err(&name, "chown"))?;
                self.stats.skipped_xattrs += xattrs.set_on_path(&dest, &name)?;
                fs::set_permissions(&dest, Permissions::from_mode(mode))
                    .map_err(io_err(&name, "chmod"))?;
                let t = FileTime::from_unix_time(mtime as i64, 0);
                filetime::set_symlink_file_times(&dest, t, t)
                    .map_err(io_err(&name, "set mtime"))?;
            }
            other => {
                return Err(LayerError::Unsafe {
                    entry: name,
                    reason: format!("unsupported tar entry type {other:?}"),
                });
            }
        }
        self.mark_written(rel);
        Ok(())
    }

    /// The resolved parent directory of an entry: from the cache, except for
    /// whiteouts and hard links, which delete and point at what they resolve to and
    /// are resolved afresh, so a stale entry can never lead outside.
    fn entry_parent(
        &mut self,
        last: &OsStr,
        kind: tar::EntryType,
        parent_comps: &[OsString],
    ) -> Result<PathBuf, PathError> {
        match whiteout::classify(last) {
            Whiteout::None if kind != tar::EntryType::Link => self.parent(parent_comps),
            _ => resolve_in_root(self.root, parent_comps),
        }
    }

    /// Resolved parent directory (root-relative) of an entry, cached.
    fn parent(&mut self, comps: &[OsString]) -> Result<PathBuf, PathError> {
        if self.direct.contains(comps) {
            return Ok(comps.iter().collect());
        }
        if let Some(p) = self.parents.get(comps) {
            return Ok(p.clone());
        }
        // A directory this layer checked, in a parent that resolved to itself,
        // resolves to itself without a look.
        if let Some((_, init)) = comps.split_last()
            && (init.is_empty() || self.direct.contains(init))
        {
            let p: PathBuf = comps.iter().collect();
            if self.tree.is_known(&p) {
                self.direct.insert(comps.to_vec());
                return Ok(p);
            }
        }
        let p = resolve_in_root(self.root, comps)?;
        if p.iter().eq(comps.iter()) {
            self.direct.insert(comps.to_vec());
        } else {
            self.parents.insert(comps.to_vec(), p.clone());
        }
        Ok(p)
    }

    /// Removes a non-directory at `dest`, or a directory when a non-directory is
    /// about to take its place.
    fn replace(&mut self, dest: &Path) -> io::Result<()> {
        match fs::symlink_metadata(dest) {
            Ok(m) => {
                self.forget();
                if m.is_dir() {
                    fs::remove_dir_all(dest)
                } else {
                    fs::remove_file(dest)
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Makes room for a new entry `name` in `dir` that is already taken: removes a
    /// non-directory, or a directory (`dest`, its full path) with its contents.
    fn replace_at(&mut self, dir: RawFd, name: &CStr, dest: &Path) -> io::Result<()> {
        let st = tree::lstat_at(dir, name)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                self.forget();
                fs::remove_dir_all(dest)
            }
            kind => {
                // Only a symlink can change how a path resolves.
                if kind == libc::S_IFLNK {
                    self.parents.clear();
                }
                tree::unlink_at(dir, name)
            }
        }
    }

    /// A directory `name` in `dir`: merge with an existing one, replace anything
    /// else. Made with mode 0755 (the final mode is set when the layer is done).
    /// Whether it was made (false: merged).
    fn prepare_dir(&mut self, dir: RawFd, name: &CStr, dest: &Path) -> io::Result<bool> {
        match tree::mkdir_at(dir, name, 0o755) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let st = tree::lstat_at(dir, name)?;
                if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    return Ok(false);
                }
                self.replace_at(dir, name, dest)?;
                match tree::mkdir_at(dir, name, 0o755) {
                    // Made meanwhile by a layer applied beside this one: merge.
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        let st = tree::lstat_at(dir, name)?;
                        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                            return Err(e);
                        }
                        return Ok(false);
                    }
                    other => other?,
                }
            }
            other => other?,
        }
        // Writable by its owner whatever the umask, for the entries to come.
        if self.tree.umask() & 0o700 != 0 {
            tree::chmod_at(dir, name, 0o755)?;
        }
        Ok(true)
    }

    /// Something was removed: forget every cached resolution and checked
    /// directory.
    fn forget(&mut self) {
        self.parents.clear();
        self.direct.clear();
        self.tree.forget();
    }

    /// Before the first change to the entries of directory `rel` (open as `fd`,
    /// or not): its mtime, to set back when the layer is done, and for the
    /// layers beside it, the mtime before any layer changed it.
    fn note_dir(&mut self, rel: &Path, fd: Option<RawFd>) {
        let seen = self.mtimes_before.note(rel, (fd, self.tree.root_fd()));
        if let (Some(seen), Some(gate)) = (seen, &self.gate) {
            gate.note_first_mtime(rel, seen);
        }
    }

    fn mark_written(&mut self, rel: PathBuf) {
        let mut p = rel.as_path();
        while let Some(parent) = p.parent() {
            if parent.as_os_str().is_empty() || !self.written.insert(parent.to_path_buf()) {
                break;
            }
            p = parent;
        }
        self.written.insert(rel);
    }

    fn lchown(&self, path: &Path, (uid, gid): (u64, u64)) -> io::Result<()> {
        if self.options.same_owner {
            std::os::unix::fs::lchown(path, Some(uid as u32), Some(gid as u32))?;
        }
        Ok(())
    }
}

fn lchown_at(dir: RawFd, name: &CStr, (uid, gid): (u64, u64)) -> io::Result<()> {
    tree::lchown_at(dir, name, uid as u32, gid as u32)
}
