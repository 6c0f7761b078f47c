//! Extended attributes from an entry's pax records (`SCHILY.xattr.NAME`, as
//! docker, containerd, Go's archive/tar and GNU tar write them), set on what the
//! entry made: file capabilities (`security.capability`, e.g. `ping`'s
//! `cap_net_raw`), ACLs (`system.posix_acl_*`) and the rest, as umoci, docker
//! and containerd set them.
//!
//! Each is set after the entry's owner and content, since the kernel drops
//! `security.capability` on a chown or a write, and before its mode (a
//! read-only file refuses `user.*` attributes to its owner). One the process
//! may not set (a `trusted.*` or `security.*` attribute without the
//! privilege), that the filesystem does not support, or that is larger than
//! Linux holds is skipped and counted ([`super::LayerStats::skipped_xattrs`]),
//! as a device node it may not make; any other refusal (a malformed ACL) fails
//! the layer, naming the attribute. In a layer applied beside the layers below
//! it, an entry that carries any goes in order (`apply/beside.rs`).

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::Path;

use super::error::{LayerError, io_err};
use super::tree::{check, cstring};

const PAX_XATTR: &str = "SCHILY.xattr.";

/// An entry's extended attributes: names and values.
#[derive(Debug, Default)]
pub(super) struct Xattrs(Vec<(CString, Vec<u8>)>);

impl Xattrs {
    /// Those of `entry` (none for most entries: one look at its pax records).
    pub(super) fn of<R: Read>(
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<Self, LayerError> {
        let mut out = Vec::new();
        let Some(records) = entry.pax_extensions().map_err(LayerError::from_read)? else {
            return Ok(Xattrs(out));
        };
        for record in records {
            let record = record.map_err(LayerError::from_read)?;
            let Some(attr) = record.key_bytes().strip_prefix(PAX_XATTR.as_bytes()) else {
                continue;
            };
            // An empty value deletes the keyword (POSIX pax): no attribute, as
            // Go's archive/tar (docker, containerd, umoci) reads it.
            if record.value_bytes().is_empty() {
                continue;
            }
            let attr = CString::new(attr).map_err(|_| LayerError::Unsafe {
                entry: name.to_string(),
                reason: "extended attribute name contains a NUL byte".into(),
            })?;
            out.push((attr, record.value_bytes().to_vec()));
        }
        Ok(Xattrs(out))
    }

    /// Whether one of them is a default ACL (which new entries in the
    /// directory inherit, and which overrides the umask).
    pub(super) fn has_default_acl(&self) -> bool {
        self.0
            .iter()
            .any(|(name, _)| name.as_bytes() == b"system.posix_acl_default")
    }

    /// Whether `entry` carries any (an unreadable record counts: the entry
    /// fails when it is applied).
    pub(super) fn any<R: Read>(entry: &mut tar::Entry<'_, R>) -> bool {
        Self::of(entry, "").is_ok_and(|x| !x.0.is_empty())
    }

    /// Sets them on the open file `file`; returns how many were skipped.
    pub(super) fn set_on_file(&self, file: &std::fs::File, name: &str) -> Result<u64, LayerError> {
        self.set_each(name, |attr, value| {
            // SAFETY: `attr` is NUL-terminated and `value` valid for its length.
            check(unsafe {
                libc::fsetxattr(
                    file.as_raw_fd(),
                    attr.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    0,
                )
            })
        })
    }

    /// Sets them on `path` itself (not a symlink's target); its parents were
    /// resolved in the root, with no symlink on the way. Returns how many were
    /// skipped.
    pub(super) fn set_on_path(&self, path: &Path, name: &str) -> Result<u64, LayerError> {
        if self.0.is_empty() {
            return Ok(0);
        }
        let c_path = cstring(path.as_os_str()).map_err(io_err(name, "set extended attribute"))?;
        self.set_each(name, |attr, value| {
            // SAFETY: both strings are NUL-terminated, `value` valid for its length.
            check(unsafe {
                libc::lsetxattr(
                    c_path.as_ptr(),
                    attr.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    0,
                )
            })
        })
    }

    fn set_each(
        &self,
        name: &str,
        mut set: impl FnMut(&CString, &[u8]) -> io::Result<()>,
    ) -> Result<u64, LayerError> {
        let mut skipped = 0;
        for (attr, value) in &self.0 {
            match set(attr, value) {
                Ok(()) => {}
                Err(e) if skippable(&e) => {
                    tracing::debug!(entry = name, xattr = ?attr, error = %e, "extended attribute skipped");
                    skipped += 1;
                }
                Err(e) => {
                    let e = io::Error::new(e.kind(), format!("{}: {e}", attr.to_string_lossy()));
                    return Err(io_err(name, "set extended attribute")(e));
                }
            }
        }
        Ok(skipped)
    }
}

/// Refusals that mean "not here": no privilege for the namespace, no support
/// in the filesystem (or for this kind of entry: `user.*` on a symlink), a
/// name or value larger than Linux holds (255 bytes, 64 KiB).
fn skippable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EACCES | libc::ENOTSUP | libc::E2BIG | libc::ERANGE)
    )
}
