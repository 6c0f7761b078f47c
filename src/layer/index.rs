//! What a layer touches, read from its tar headers alone: the paths it writes,
//! removes or hides. Layers are applied concurrently only where these show that
//! their paths do not interact ([`super::order`]).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use super::path::{clean, resolve_in_root};
use super::whiteout::{self, Whiteout};
use crate::limits::Limits;

/// How an entry touches its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Touch {
    /// Creates or merges a directory (and sets its metadata).
    Dir,
    /// Removes every child of the directory (`.wh..wh..opq`).
    Opaque,
    /// Removes the path with everything under it (`.wh.NAME`).
    Whiteout,
    /// Writes a non-directory (file, symlink, hard link, device, fifo), replacing
    /// whatever is there; or is the target of a hard link. Ordered last: a path
    /// touched twice keeps the touch that interacts most.
    Other,
}

/// The paths one layer touches (root-relative, as its entries name them), and
/// every proper ancestor of those paths.
#[derive(Debug, Default)]
pub struct LayerIndex {
    touched: HashMap<PathBuf, Touch>,
    ancestors: HashSet<PathBuf>,
    /// Symlinks and hard links (which may link a symlink): the entries that can
    /// change where a path below them leads.
    links: HashSet<PathBuf>,
    /// Every touch with its path's components, for [`LayerIndex::direct_in`].
    raw: Vec<(Touch, Vec<OsString>)>,
    /// False when the stream could not be read to its end, broke a limit, or has an
    /// entry below a non-directory of its own (its paths then depend on its own
    /// links): nothing may be applied beside such a layer.
    usable: bool,
}

impl LayerIndex {
    /// The index of the tar stream `reader`; content is skipped with `seek`. An
    /// unreadable or hostile stream gives an unusable index: the applier, which
    /// reads the same stream, reports why.
    pub fn read<R: Read + Seek>(reader: R, limits: &Limits) -> LayerIndex {
        let mut index = LayerIndex {
            usable: true,
            ..LayerIndex::default()
        };
        if index.read_entries(reader, limits).is_none() {
            index.usable = false;
        }
        if index.usable {
            // A link of this layer with entries of this layer below it: those go
            // wherever it leads.
            index.usable = !index.links.iter().any(|p| index.ancestors.contains(p));
        }
        index.raw.shrink_to_fit();
        index
    }

    fn read_entries<R: Read + Seek>(&mut self, reader: R, limits: &Limits) -> Option<()> {
        let mut archive = tar::Archive::new(reader);
        let mut count = 0u64;
        for entry in archive.entries_with_seek().ok()? {
            let entry = entry.ok()?;
            count += 1;
            if count > limits.max_entries {
                return None;
            }
            let kind = entry.header().entry_type();
            if kind == tar::EntryType::XGlobalHeader {
                continue;
            }
            let comps = clean(&entry.path_bytes()).ok()?;
            let Some(last) = comps.last() else { continue };
            if whiteout::is_aufs_meta(&comps[0]) {
                continue;
            }
            let parent = &comps[..comps.len() - 1];
            match whiteout::classify(last) {
                Whiteout::Meta => {}
                Whiteout::Invalid => return None,
                Whiteout::Opaque => self.add(Touch::Opaque, parent.to_vec()),
                Whiteout::Delete(target) => {
                    let mut path = parent.to_vec();
                    path.push(target.to_os_string());
                    self.add(Touch::Whiteout, path);
                }
                Whiteout::None => {
                    if kind == tar::EntryType::Link {
                        let target = clean(&entry.link_name_bytes()?).ok()?;
                        self.add(Touch::Other, target);
                    }
                    let touch = if kind == tar::EntryType::Directory {
                        Touch::Dir
                    } else {
                        Touch::Other
                    };
                    if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                        self.links.insert(comps.iter().collect());
                    }
                    self.add(touch, comps);
                }
            }
        }
        Some(())
    }

    /// An index that lets nothing be applied beside its layer (one that could not
    /// be decoded, say).
    pub fn unusable() -> LayerIndex {
        LayerIndex::default()
    }

    fn add(&mut self, touch: Touch, comps: Vec<OsString>) {
        let path: PathBuf = comps.iter().collect();
        self.insert(path, touch);
        self.raw.push((touch, comps));
    }

    /// Adds one path the layer touches.
    pub(super) fn add_path(&mut self, path: PathBuf, touch: Touch) {
        self.insert(path, touch);
    }

    fn insert(&mut self, path: PathBuf, touch: Touch) {
        let mut p = path.as_path();
        while let Some(parent) = p.parent() {
            if parent.as_os_str().is_empty() || !self.ancestors.insert(parent.to_path_buf()) {
                break;
            }
            p = parent;
        }
        // A path touched twice keeps the touch that interacts most.
        let slot = self.touched.entry(path).or_insert(touch);
        *slot = (*slot).max(touch);
    }

    /// Whether nothing may be applied beside this layer.
    pub fn usable(&self) -> bool {
        self.usable
    }

    /// Whether every entry's parent (an opaque directory: the directory itself)
    /// resolves in `root`, as it is now, to itself: no symlink on the way. Only
    /// then are the names in the stream the places the entries land, whatever
    /// other layers do that does not interact with them, and only then may
    /// anything be applied beside this layer.
    pub fn direct_in(&self, root: &Path) -> bool {
        let mut seen: HashSet<&[OsString]> = HashSet::new();
        self.raw.iter().all(|(touch, comps)| {
            let dir = match touch {
                Touch::Opaque => &comps[..],
                _ => &comps[..comps.len() - 1],
            };
            !seen.insert(dir) || resolve_in_root(root, dir).is_ok_and(|r| r.iter().eq(dir.iter()))
        })
    }

    /// Whether a link of this layer is a proper ancestor of `path`: once made,
    /// it leads `path` elsewhere.
    pub fn link_above(&self, path: &Path) -> bool {
        !self.links.is_empty() && path.ancestors().skip(1).any(|a| self.links.contains(a))
    }

    /// Whether a link of this layer lies on the way to an entry of `above`: where
    /// that entry lands then depends on this layer.
    pub fn redirects(&self, above: &LayerIndex) -> bool {
        self.links.iter().any(|p| above.ancestors.contains(p))
    }

    /// Whether this layer makes or merges a directory at `path` (named by an entry
    /// or below one): a directory entry of a layer above merging there needs it to
    /// be a directory already, or the two would race to replace what is there.
    pub fn merges(&self, path: &Path) -> bool {
        self.touched.get(path) == Some(&Touch::Dir) || self.ancestors.contains(path)
    }

    /// Whether an entry of a layer above this one, touching `path` as `touch`,
    /// interacts with this layer: applied before this layer is complete, the result
    /// could differ from applying the layers in order.
    pub fn interacts(&self, path: &Path, touch: Touch) -> bool {
        if let Some(mine) = self.touched.get(path)
            && !(touch == Touch::Dir && *mine == Touch::Dir)
        {
            return true;
        }
        // Below something this layer replaces or removes.
        let mut p = path;
        while let Some(parent) = p.parent() {
            if parent.as_os_str().is_empty() {
                break;
            }
            if self.touched.get(parent).is_some_and(|t| *t != Touch::Dir) {
                return true;
            }
            p = parent;
        }
        // Above something this layer writes, and not a directory that merges.
        touch != Touch::Dir && self.ancestors.contains(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            let data: &[u8] = if *kind == tar::EntryType::Regular {
                b"content"
            } else {
                b""
            };
            h.set_size(data.len() as u64);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            b.append_data(&mut h, name, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn index(entries: &[(&str, tar::EntryType, &str)]) -> LayerIndex {
        LayerIndex::read(std::io::Cursor::new(tar(entries)), &Limits::DEFAULT)
    }

    use tar::EntryType as T;

    #[test]
    fn directories_merge_and_everything_else_interacts() {
        let i = index(&[
            ("usr/", T::Directory, ""),
            ("usr/bin/", T::Directory, ""),
            ("usr/bin/gcc", T::Regular, ""),
            ("etc/alternatives/cc", T::Symlink, "/usr/bin/gcc"),
            ("usr/lib/x/.wh.old", T::Regular, ""),
            ("opt/.wh..wh..opq", T::Regular, ""),
            ("usr/bin/cc", T::Link, "usr/bin/gcc"),
        ]);
        assert!(i.usable());
        let ok = |p: &str, t| !i.interacts(Path::new(p), t);
        // Shared directories merge; new names beside this layer's do not interact.
        assert!(ok("usr", Touch::Dir) && ok("usr/bin", Touch::Dir) && ok("etc", Touch::Dir));
        assert!(ok("usr/bin/g++", Touch::Other) && ok("usr/share/doc", Touch::Whiteout));
        // The same path, as anything but two directories.
        assert!(!ok("usr/bin/gcc", Touch::Other) && !ok("usr/bin/gcc", Touch::Dir));
        assert!(!ok("usr/bin", Touch::Other) && !ok("usr", Touch::Whiteout));
        assert!(!ok("usr/bin", Touch::Opaque) && !ok("usr/bin/cc", Touch::Other));
        // Below a symlink, a file, a whiteout or an opaque directory of this layer.
        assert!(!ok("etc/alternatives/cc/x", Touch::Other));
        assert!(!ok("usr/lib/x/old/y", Touch::Dir) && !ok("opt/z", Touch::Other));
        // The layer's own directory, made opaque: its children go.
        assert!(!ok("opt", Touch::Dir));
    }

    #[test]
    fn entries_below_their_own_non_directory_make_a_layer_unusable() {
        let i = index(&[("lib", T::Symlink, "usr/lib"), ("lib/x", T::Regular, "")]);
        assert!(!i.usable());
        let i = index(&[("a", T::Regular, ""), ("b/c", T::Regular, "")]);
        assert!(i.usable());
        // Its own children of an opaque directory, a path recreated after its
        // whiteout: they stay where they are named.
        let i = index(&[
            ("d/.wh..wh..opq", T::Regular, ""),
            ("d/x", T::Regular, ""),
            ("e/.wh.f", T::Regular, ""),
            ("e/f/g", T::Regular, ""),
        ]);
        assert!(i.usable());
    }

    #[test]
    fn unreadable_or_hostile_streams_are_unusable() {
        let mut bytes = tar(&[("a", T::Regular, "")]);
        bytes.truncate(300); // within the first header
        assert!(!LayerIndex::read(std::io::Cursor::new(bytes), &Limits::DEFAULT).usable());
        assert!(!index(&[("a/.wh..", T::Regular, "")]).usable());
        let few = Limits {
            max_entries: 1,
            ..Limits::DEFAULT
        };
        let two = tar(&[("a", T::Regular, ""), ("b", T::Regular, "")]);
        assert!(!LayerIndex::read(std::io::Cursor::new(two), &few).usable());
    }

    #[test]
    fn only_layers_whose_entries_meet_no_symlink_are_direct() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.path().join("lib")).unwrap();
        let through = index(&[
            ("usr/lib/a", T::Regular, ""),
            ("lib/libc.so", T::Regular, ""),
        ]);
        assert!(!through.direct_in(root.path()));
        let opaque = index(&[("lib/.wh..wh..opq", T::Regular, "")]);
        assert!(!opaque.direct_in(root.path()));
        // Missing parents are made as directories: direct.
        let direct = index(&[("usr/lib/a", T::Regular, ""), ("new/dir/b", T::Regular, "")]);
        assert!(direct.direct_in(root.path()));
        // A symlink of a lower layer on the way to an entry of this one.
        let lower = index(&[("new", T::Symlink, "usr")]);
        assert!(lower.redirects(&direct) && !direct.redirects(&lower));
        assert!(lower.link_above(Path::new("new/dir/c")) && !lower.link_above(Path::new("new")));
    }
}
