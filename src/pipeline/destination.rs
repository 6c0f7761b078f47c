//! The destination root filesystem: must be empty or absent; cleared between runs;
//! on failure emptied (and removed if pulltime created it), so no half-extracted
//! tree is left looking complete.

use std::io;
use std::path::{Path, PathBuf};

use super::PullError;

/// A directory pulltime may fill.
#[derive(Debug)]
pub struct Destination {
    path: PathBuf,
    created: bool,
    temp: Option<tempfile::TempDir>,
}

/// Whether this user may create entries in `dir`, checked before any download,
/// so that a directory owned by someone else, or on a read-only filesystem, is
/// refused by name rather than at the first file.
fn writable(dir: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| "contains a NUL byte".to_string())?;
    // SAFETY: access(2) on a NUL-terminated path we own.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    let owner = std::fs::metadata(dir)
        .map(|m| {
            format!(" (owned by uid {}, you are uid {})", m.uid(), unsafe {
                libc::geteuid()
            })
        })
        .unwrap_or_default();
    Err(match e.raw_os_error() {
        Some(libc::EROFS) => format!("{e}: choose a directory on a writable filesystem"),
        _ => format!(
            "cannot write here{owner}: {e}; choose a directory you own, or fix its permissions"
        ),
    })
}

impl Destination {
    /// `--dest DIR`: checks DIR is absent or empty, creating it if absent.
    pub fn given(path: &Path) -> Result<Self, PullError> {
        let err = |reason: String| PullError::Destination {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                let mut entries = std::fs::read_dir(path).map_err(|e| err(e.to_string()))?;
                if entries.next().is_some() {
                    return Err(err(
                        "is not empty; give an empty or new directory, or add --force to empty it first".into(),
                    ));
                }
                writable(path).map_err(err)?;
                Ok(Destination {
                    path: path.into(),
                    created: false,
                    temp: None,
                })
            }
            Ok(_) => Err(err("exists and is not a directory".into())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(path).map_err(|e| err(format!("cannot create: {e}")))?;
                Ok(Destination {
                    path: path.into(),
                    created: true,
                    temp: None,
                })
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// A temporary destination under `parent`, removed when dropped.
    pub fn temporary(parent: &Path) -> Result<Self, PullError> {
        let temp = tempfile::Builder::new()
            .prefix("pulltime-rootfs-")
            .tempdir_in(parent)
            .map_err(|source| PullError::Io {
                what: format!(
                    "creating a temporary root filesystem in {}",
                    parent.display()
                ),
                source,
            })?;
        Ok(Destination {
            path: temp.path().into(),
            created: true,
            temp: Some(temp),
        })
    }

    /// Where the root filesystem goes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes everything inside, keeping the directory (between cold runs).
    pub fn clear(&self) -> io::Result<()> {
        for entry in std::fs::read_dir(&self.path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                // remove_dir_all never follows symlinks it meets.
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    /// After a failed pull: leave nothing that looks like a complete tree.
    pub fn abandon(self) {
        // Best effort: report but do not mask the pull's own error.
        if let Err(e) = self.clear() {
            tracing::warn!(
                "could not clear {} after a failed pull: {e}",
                self.path.display()
            );
        }
        if self.created && self.temp.is_none() {
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_empty_and_files_and_cleans_up() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "x").unwrap();
        assert!(
            Destination::given(d.path())
                .unwrap_err()
                .to_string()
                .contains("not empty")
        );
        assert!(Destination::given(&d.path().join("f")).is_err());
        let new = d.path().join("new/root");
        let dest = Destination::given(&new).unwrap();
        std::fs::create_dir_all(new.join("a/b")).unwrap();
        std::os::unix::fs::symlink(d.path(), new.join("a/up")).unwrap();
        dest.clear().unwrap();
        assert!(new.exists() && std::fs::read_dir(&new).unwrap().next().is_none());
        assert!(
            d.path().join("f").exists(),
            "clear must not follow symlinks"
        );
        std::fs::write(new.join("partial"), "x").unwrap();
        dest.abandon();
        assert!(
            !new.exists(),
            "a destination pulltime created is removed on failure"
        );
    }
}
