//! What [`super::snapshot`] leaves out: owners, mtimes, extended attributes
//! and which paths share an inode. Compared where two trees must be the same
//! to the last attribute (pulltime against umoci, layers applied side by side
//! against in order).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A path's owner, mtime, hard-link identity and extended attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub owner: (u32, u32),
    /// Nanoseconds since the epoch; `None` for a time within the last day (the
    /// time of the extraction, which no layer gave, and which differs between
    /// two trees made a moment apart).
    pub mtime: Option<i128>,
    /// For a non-directory with several links: the first of its paths (sorted).
    pub hard_link_of: Option<String>,
    /// Extended attributes, by name.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// [`Meta`] of every path under `root` (relative).
pub fn metadata(root: &Path) -> BTreeMap<String, Meta> {
    let recent = SystemTime::now() - Duration::from_secs(86_400);
    let recent = recent.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i128;
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<u64, Vec<String>> = HashMap::new();
    walk(root, root, &mut |rel, m| {
        let mtime = m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
        if !m.is_dir() && m.nlink() > 1 {
            inodes.entry(m.ino()).or_default().push(rel.clone());
        }
        let meta = Meta {
            owner: (m.uid(), m.gid()),
            mtime: (mtime < recent).then_some(mtime),
            hard_link_of: None,
            xattrs: xattrs(&root.join(&rel)),
        };
        out.insert(rel, meta);
    });
    for mut paths in inodes.into_values() {
        paths.sort();
        for p in &paths {
            out.get_mut(p).unwrap().hard_link_of = Some(paths[0].clone());
        }
    }
    out
}

fn walk(root: &Path, dir: &Path, f: &mut impl FnMut(String, std::fs::Metadata)) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let m = std::fs::symlink_metadata(&path).unwrap();
        if m.is_dir() {
            walk(root, &path, f);
        }
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        f(rel, m);
    }
}

/// The first differences between two [`metadata`] maps.
pub fn diff_metadata(a: &BTreeMap<String, Meta>, b: &BTreeMap<String, Meta>) -> String {
    let mut out = String::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push_str(&format!("only in left: {k}\n")),
            Some(w) if w != v => out.push_str(&format!("differs: {k}: {v:?} vs {w:?}\n")),
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push_str(&format!("only in right: {k}\n"));
    }
    out
}

/// The extended attributes of `path` itself (not a symlink's target).
pub fn xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 64 << 10];
    // SAFETY: `c` is NUL-terminated and `names` valid for its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(
        n >= 0,
        "llistxattr {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    names.truncate(n as usize);
    let mut out = BTreeMap::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let c_name = std::ffi::CString::new(name).unwrap();
        let mut value = vec![0u8; 64 << 10];
        // SAFETY: as above.
        let n = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                c_name.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert!(
            n >= 0,
            "lgetxattr {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        value.truncate(n as usize);
        out.insert(String::from_utf8_lossy(name).into_owned(), value);
    }
    out
}
