//! An applier beside the layers below it: each entry goes now, is set aside until
//! they are applied, or waits for them ([`crate::layer::ApplyOrder`]).

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;

use super::Applier;
use crate::layer::LayerError;
use crate::layer::index::Touch;
use crate::layer::order::{EntryTouch, Verdict};
use crate::layer::path::{clean, resolve_in_root};
use crate::layer::xattrs::Xattrs;

/// What [`Applier::before_entry`] decided.
pub(super) enum Step {
    Go,
    SetAside,
    InOrder,
}

impl Applier<'_> {
    /// Before an entry, while the layers below are still being applied: whether it
    /// goes now, is set aside (it interacts with them, or with an entry set aside
    /// before it), or goes in order after all (it could not be set aside, or the
    /// layers below are done; what was set aside is applied first).
    pub(super) fn before_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        comps: &[OsString],
        parent: &Path,
    ) -> Result<Step, LayerError> {
        if self.gate.as_ref().is_none_or(|g| g.in_order()) {
            return Ok(Step::Go);
        }
        // Extended attributes go in order: set aside, an entry keeps only its
        // path and link; beside a layer below that describes the same
        // directory, the last to set them would win (a few entries of an image
        // carry any).
        if Xattrs::any(entry) {
            self.in_order_now()?;
            return Ok(Step::InOrder);
        }
        let Some(gate) = self.gate.as_mut() else {
            return Ok(Step::Go);
        };
        let kind = entry.header().entry_type();
        let Some(own) = EntryTouch::of_entry(comps, parent, kind) else {
            return Ok(Step::Go);
        };
        let mut touches = vec![own];
        if kind == tar::EntryType::Link {
            let target = entry.link_name_bytes().and_then(|l| clean(&l).ok());
            let touch = target.as_deref().and_then(|target| {
                let (last, parents) = target.split_last()?;
                let resolved = resolve_in_root(self.root, parents).ok()?;
                Some(EntryTouch {
                    named: target.iter().collect(),
                    resolved: resolved.join(last),
                    touch: Touch::Other,
                })
            });
            match touch {
                Some(touch) => touches.push(touch),
                // A target that does not resolve now (a symlink loop a layer
                // below may undo): in order, where the applier judges it.
                None => {
                    self.in_order_now()?;
                    return Ok(Step::InOrder);
                }
            }
        }
        let verdict = gate.verdict(&touches)?;
        if gate.in_order() {
            self.in_order_now()?;
            return Ok(Step::InOrder);
        }
        match verdict {
            Verdict::InOrder => {
                self.in_order_now()?;
                return Ok(Step::InOrder);
            }
            Verdict::Go if !self.aside.interacts(&touches) => return Ok(Step::Go),
            Verdict::Go | Verdict::SetAside => {}
        }
        let name = entry.path_bytes().into_owned();
        if self
            .aside
            .add(entry, &name, &touches)
            .map_err(LayerError::from_read)?
        {
            return Ok(Step::SetAside);
        }
        self.in_order_now()?;
        Ok(Step::InOrder)
    }

    /// Waits until the layers below are applied, then applies what was set aside,
    /// in its order; the rest of the layer goes in order.
    pub(super) fn in_order_now(&mut self) -> Result<(), LayerError> {
        if let Some(gate) = self.gate.as_mut() {
            gate.wait_lower()?;
        }
        self.forget();
        if self.aside.is_empty() {
            return Ok(());
        }
        let (entries, bytes) = self.aside.size();
        tracing::debug!(entries, bytes, "applies the entries set aside, in order");
        let stream = self.aside.take().map_err(LayerError::from_read)?;
        let mut archive = tar::Archive::new(&stream[..]);
        for entry in archive.entries().map_err(LayerError::from_read)? {
            self.entry(&mut entry.map_err(LayerError::from_read)?)?;
        }
        Ok(())
    }
}
