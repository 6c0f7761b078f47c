//! OCI whiteouts (image-spec `layer.md`): `.wh.NAME` deletes NAME from lower layers;
//! `.wh..wh..opq` hides every lower-layer child of its directory. Neither touches
//! entries of the layer that carries it, and neither is ever written to disk.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Prefix of a whiteout file name.
pub const PREFIX: &[u8] = b".wh.";
/// Name of the opaque-directory marker.
pub const OPAQUE: &[u8] = b".wh..wh..opq";

/// What a file name means for layer application.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// Not a whiteout.
    None,
    /// Delete this sibling.
    Delete(&'a OsStr),
    /// The directory is opaque.
    Opaque,
    /// Other `.wh..wh.` names (aufs metadata): ignored.
    Meta,
    /// `.wh.`, `.wh..` or `.wh...`: names no sibling (the last would delete the
    /// parent's parent); refused.
    Invalid,
}

/// Classifies the last component of an entry path.
pub fn classify(name: &OsStr) -> Whiteout<'_> {
    let b = name.as_bytes();
    if b == OPAQUE {
        Whiteout::Opaque
    } else if b.starts_with(b".wh..wh.") {
        Whiteout::Meta
    } else if let Some(rest) = b.strip_prefix(PREFIX) {
        match rest {
            b"" | b"." | b".." => Whiteout::Invalid,
            _ => Whiteout::Delete(OsStr::from_bytes(rest)),
        }
    } else {
        Whiteout::None
    }
}

/// Whether a top-level name is aufs metadata (`.wh..wh.plnk`, `.wh..wh.aufs`),
/// which is skipped with everything under it.
pub fn is_aufs_meta(first_component: &OsStr) -> bool {
    let b = first_component.as_bytes();
    b.starts_with(b".wh..wh.") && b != OPAQUE
}

/// Removes whatever is at `root/rel` (a directory with its contents) without
/// following a symlink there. Missing is fine.
pub fn remove_path(root: &Path, rel: &Path) -> io::Result<()> {
    let p = root.join(rel);
    match std::fs::symlink_metadata(&p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p),
        Ok(_) => std::fs::remove_file(&p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes every descendant of `root/dir` that this layer did not write (`written`
/// holds root-relative paths written by the current layer). Descends into
/// directories this layer wrote, since their lower-layer contents are hidden too.
pub fn make_opaque(root: &Path, dir: &Path, written: &HashSet<PathBuf>) -> io::Result<()> {
    let full = root.join(dir);
    match std::fs::symlink_metadata(&full) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    for child in std::fs::read_dir(&full)? {
        let child = child?;
        let rel = dir.join(child.file_name());
        if !written.contains(&rel) {
            remove_path(root, &rel)?;
        } else if child.file_type()?.is_dir() {
            make_opaque(root, &rel, written)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            classify(OsStr::new(".wh.foo")),
            Whiteout::Delete(OsStr::new("foo"))
        );
        assert_eq!(classify(OsStr::new(".wh..wh..opq")), Whiteout::Opaque);
        assert_eq!(classify(OsStr::new(".wh..wh.plnk")), Whiteout::Meta);
        assert_eq!(classify(OsStr::new("wh.foo")), Whiteout::None);
        assert_eq!(classify(OsStr::new(".whfoo")), Whiteout::None);
        assert_eq!(classify(OsStr::new(".wh...")), Whiteout::Invalid);
        assert_eq!(classify(OsStr::new(".wh..")), Whiteout::Invalid);
        assert_eq!(classify(OsStr::new(".wh.")), Whiteout::Invalid);
    }

    #[test]
    fn opaque_keeps_this_layers_entries_and_hides_lower_ones_recursively() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for p in ["d/lower", "d/sub/lower", "d/sub/new"] {
            std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
            std::fs::write(root.join(p), p).unwrap();
        }
        std::fs::write(root.join("outside"), "keep").unwrap();
        let written: HashSet<PathBuf> = ["d/sub", "d/sub/new"].iter().map(PathBuf::from).collect();
        make_opaque(root, Path::new("d"), &written).unwrap();
        assert!(!root.join("d/lower").exists());
        assert!(!root.join("d/sub/lower").exists());
        assert!(root.join("d/sub/new").exists());
        assert!(root.join("outside").exists());
    }

    #[test]
    fn remove_does_not_follow_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("link")).unwrap();
        remove_path(d.path(), Path::new("link")).unwrap();
        assert!(!d.path().join("link").exists());
        assert!(outside.path().join("precious").exists());
        remove_path(d.path(), Path::new("missing")).unwrap();
    }
}
