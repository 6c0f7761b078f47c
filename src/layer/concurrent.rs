//! Applying several layers at once: each with [`apply_layer_ordered`] on a
//! thread of its own, their order kept by an [`ApplyOrder`].

use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use super::apply::apply_entries;
use super::error::LayerError;
use super::index::LayerIndex;
use super::options::{ApplyOptions, LayerStats};
use super::order::{ApplyOrder, stopped};
use crate::limits::Limits;

/// What [`apply_layer_ordered`] did.
#[derive(Debug, Clone)]
pub struct Ordered {
    /// The layer's counts.
    pub stats: LayerStats,
    /// Time its entries waited for the layers below (indices, or their end).
    pub waited: Duration,
    /// Whether some of its entries were applied before the layers below were.
    pub ahead: bool,
}

/// Applies layer `layer` of `order` onto its root, beside the layers below it where
/// their paths do not interact ([`ApplyOrder`]). The directory metadata is set in
/// layer order, perhaps later by another thread: [`ApplyOrder::wait_applied`]
/// tells when, and how it went. `pause(true)` is called before the layer waits,
/// `pause(false)` after. On an error the caller stops `order` (after noting the
/// error: what the other layers then see is its consequence).
pub fn apply_layer_ordered<R: Read>(
    reader: R,
    (order, layer, pause): (&ApplyOrder, usize, &dyn Fn(bool)),
    options: &ApplyOptions,
    limits: &Limits,
) -> Result<Ordered, LayerError> {
    let gate = order.gate(layer, pause);
    let applied = apply_entries(reader, order.root(), options, limits, Some(gate));
    let (stats, (finish, waited)) = applied?;
    let ahead = finish.ahead;
    order.entries_done(layer, finish);
    Ok(Ordered {
        stats,
        waited,
        ahead,
    })
}

/// Applies `layers` (tar streams, lowest first) onto `root` with `threads` threads
/// at once, as [`apply_layer_ordered`] does (all indices are read first). The
/// result is that of applying them one after another; the error is the first
/// to happen (the others are its consequences).
pub fn apply_layers(
    layers: &[&[u8]],
    root: &Path,
    options: &ApplyOptions,
    limits: &Limits,
    threads: usize,
) -> Result<Vec<Ordered>, (usize, LayerError)> {
    let order = ApplyOrder::new(root, layers.len());
    for (i, layer) in layers.iter().enumerate() {
        order.set_index(i, LayerIndex::read(std::io::Cursor::new(layer), limits));
    }
    let results: Vec<Mutex<Option<Ordered>>> = layers.iter().map(|_| Mutex::new(None)).collect();
    // The first failure; the others are its consequences.
    let failure = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                while let Some(i) = order.take_layer() {
                    match apply_layer_ordered(layers[i], (&order, i, &|_| {}), options, limits) {
                        Ok(o) => *results[i].lock().expect("result lock") = Some(o),
                        Err(e) => {
                            failure.lock().expect("failure lock").get_or_insert((i, e));
                            order.stop();
                        }
                    }
                }
            });
        }
    });
    if let Some(failed) = order.failed_finish() {
        return Err(failed);
    }
    if let Some(failed) = failure.into_inner().expect("failure lock") {
        return Err(failed);
    }
    let mut out = Vec::with_capacity(layers.len());
    for (i, r) in results.into_iter().enumerate() {
        let applied = r.into_inner().expect("result lock").ok_or_else(stopped);
        let applied = applied.and_then(|o| order.wait_applied(i).map(|_| o));
        out.push(applied.map_err(|e| (i, e))?);
    }
    Ok(out)
}
