//! Paths inside a root filesystem. Tar entry names are cleaned lexically (a leading
//! `/` means the root; a `..` that would climb above the root is refused), and parent
//! directories are resolved with symlinks followed *inside* the root only, as if the
//! root were `/` (the rule docker and containerd apply). The final component of an
//! entry is never followed, so no write, link, chmod or whiteout can land outside.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Symlinks followed while resolving one path before giving up (Linux uses 40).
const MAX_SYMLINK_HOPS: usize = 40;

/// Why a path cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    /// `..` climbs above the root.
    #[error("path escapes the root through '..'")]
    Escapes,
    /// Too many symlinks (a loop).
    #[error("too many levels of symbolic links while resolving the path")]
    SymlinkLoop,
    /// A name component contains a NUL byte.
    #[error("path contains a NUL byte")]
    Nul,
}

/// Splits a tar entry name into normal components, relative to the root.
/// `/a/./b/` -> `[a, b]`; `a/../b` -> `[b]`; `../x` -> [`PathError::Escapes`].
pub fn clean(name: &[u8]) -> Result<Vec<OsString>, PathError> {
    if name.contains(&0) {
        return Err(PathError::Nul);
    }
    let mut out: Vec<OsString> = Vec::new();
    for comp in name.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(PathError::Escapes);
                }
            }
            c => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(out)
}

/// Resolves `components` under `root`, following every symlink met on the way but
/// scoped to `root`: absolute targets restart at the root and `..` stops at it.
/// Components that do not exist are kept as they are. Returns the resolved path
/// relative to `root`, made only of real directories (or not-yet-existing names).
pub fn resolve_in_root(root: &Path, components: &[OsString]) -> Result<PathBuf, PathError> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = components.iter().cloned().collect();
    let mut hops = 0;
    while let Some(c) = pending.pop_front() {
        match c.as_bytes() {
            b"" | b"." => continue,
            b".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(PathError::SymlinkLoop);
                }
                let target = std::fs::read_link(&candidate).map_err(|_| PathError::SymlinkLoop)?;
                let bytes = target.as_os_str().as_bytes();
                if bytes.starts_with(b"/") {
                    resolved.clear();
                }
                for t in bytes.split(|b| *b == b'/').rev() {
                    pending.push_front(OsStr::from_bytes(t).to_os_string());
                }
            }
            _ => resolved.push(c),
        }
    }
    Ok(resolved.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn comps(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean(b"/a/./b/").unwrap(), comps(&["a", "b"]));
        assert_eq!(clean(b"a/../b").unwrap(), comps(&["b"]));
        assert_eq!(clean(b"./").unwrap(), comps(&[]));
        assert_eq!(clean(b"../x"), Err(PathError::Escapes));
        assert_eq!(clean(b"a/../../x"), Err(PathError::Escapes));
        assert_eq!(clean(b"/../etc/passwd"), Err(PathError::Escapes));
        assert_eq!(clean(b"a\0b"), Err(PathError::Nul));
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("/usr/lib", root.join("lib")).unwrap();
        symlink("../../../../etc", root.join("usr/up")).unwrap();
        symlink("/", root.join("rootlink")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        let r = |v: &[&str]| resolve_in_root(root, &comps(v));
        assert_eq!(r(&["lib", "x"]).unwrap(), PathBuf::from("usr/lib/x"));
        // `..` in a target stops at the root instead of leaving it.
        assert_eq!(
            r(&["usr", "up", "passwd"]).unwrap(),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(r(&["rootlink", "tmp"]).unwrap(), PathBuf::from("tmp"));
        assert_eq!(r(&["loop1", "x"]), Err(PathError::SymlinkLoop));
        assert_eq!(r(&["new", "dir"]).unwrap(), PathBuf::from("new/dir"));
    }
}
