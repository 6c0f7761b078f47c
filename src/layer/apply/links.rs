//! A hard link entry's target: resolved in the root, afresh, and refused when
//! it is missing, a directory or the root itself.

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use super::Applier;
use crate::layer::LayerError;
use crate::layer::path::{clean, resolve_in_root};

impl Applier<'_> {
    pub(super) fn hardlink_target<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        name: &str,
    ) -> Result<PathBuf, LayerError> {
        let refuse = |reason: String| LayerError::Unsafe {
            entry: name.to_string(),
            reason,
        };
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| refuse("hard link without a target".into()))?
            .into_owned();
        self.limits.check_link_target(name, &raw)?;
        let comps = clean(&raw).map_err(|e| {
            refuse(format!(
                "hard link target {:?}: {e}",
                String::from_utf8_lossy(&raw)
            ))
        })?;
        let (last, parents) = comps
            .split_last()
            .ok_or_else(|| refuse("hard link to the root directory".into()))?;
        let target = resolve_in_root(self.root, parents)
            .map_err(|e| refuse(format!("hard link target: {e}")))?
            .join(last);
        match fs::symlink_metadata(self.root.join(&target)) {
            Ok(m) if m.is_dir() => Err(refuse("hard link to a directory".into())),
            Ok(_) => Ok(target),
            Err(_) => Err(refuse(format!(
                "hard link target {:?} does not exist in the root filesystem",
                String::from_utf8_lossy(&raw)
            ))),
        }
    }
}
