//! Streaming mode: bytes flow from the socket through the hasher into a spool, and
//! from the spool through the decompressor and the diff_id hasher into tar
//! extraction, while other layers download. Layers are applied in manifest order on
//! one extraction thread; each stage's busy time is measured by the readers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::Semaphore;

use super::download::{Downloaded, Sink, download};
use super::readers::{Busy, Hashing, Timed};
use super::spool::Spool;
use super::{Extracted, Job, PullError, check_diff_id, pick_error};
use crate::layer::{ApplyOptions, apply_layer_limited};
use crate::limits::{Limits, bounded_decoder};
use crate::registry::{LayerDescriptor, RegistryError};
use crate::report::progress::LayerBar;

/// Downloads and applies every layer; returns per-layer download and extraction
/// results in manifest order.
pub(super) async fn run(job: Job<'_>) -> Result<Vec<(Downloaded, Extracted)>, PullError> {
    let Job {
        client,
        layers,
        root,
        scratch,
        max_concurrent_downloads,
        apply,
        limits,
        bars,
    } = job;
    let n = layers.len();
    let spools: Arc<Vec<Spool>> = Arc::new(
        (0..n)
            .map(|i| Spool::new(scratch.join(format!("layer-{i}.blob"))))
            .collect(),
    );
    let cancel = Arc::new(AtomicBool::new(false));
    let extraction = {
        let (layers, spools, cancel, bars) = (
            layers.to_vec(),
            spools.clone(),
            cancel.clone(),
            bars.to_vec(),
        );
        let (root, apply, limits): (PathBuf, ApplyOptions, Limits) =
            (root.to_path_buf(), apply.clone(), limits.clone());
        tokio::task::spawn_blocking(move || {
            let r = extract_in_order(&layers, &spools, &root, (&apply, &limits), &cancel, &bars);
            if r.is_err() {
                cancel.store(true, Ordering::Relaxed);
            }
            r
        })
    };
    let semaphore = Arc::new(Semaphore::new(max_concurrent_downloads.max(1)));
    let mut handles = Vec::with_capacity(n);
    for (i, layer) in layers.iter().enumerate() {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore is never closed");
        if cancel.load(Ordering::Relaxed) || crate::interrupt::requested() {
            break;
        }
        let (client, spools, cancel, layer, bar) = (
            client.clone(),
            spools.clone(),
            cancel.clone(),
            layer.clone(),
            bars[i].clone(),
        );
        handles.push(tokio::spawn(async move {
            let r = download(&client, i, &layer, Sink::Spool(&spools[i]), &cancel, &bar).await;
            if r.is_err() {
                cancel.store(true, Ordering::Relaxed);
            }
            spools[i].finish(r.is_ok());
            drop(permit);
            r
        }));
    }
    // Layers whose download never started must not leave extraction waiting.
    for spool in spools.iter().skip(handles.len()) {
        spool.finish(false);
    }
    let mut downloads: Vec<Result<Downloaded, RegistryError>> = Vec::with_capacity(n);
    for h in handles {
        downloads.push(
            h.await
                .unwrap_or_else(|e| Err(RegistryError::Cancelled(e.to_string()))),
        );
    }
    let extracted = extraction
        .await
        .unwrap_or_else(|e| Err(PullError::Internal(format!("extraction thread: {e}"))));
    pick_error(downloads, extracted, n)
}

fn extract_in_order(
    layers: &[LayerDescriptor],
    spools: &[Spool],
    root: &Path,
    (apply, limits): (&ApplyOptions, &Limits),
    cancel: &AtomicBool,
    bars: &[LayerBar],
) -> Result<Vec<Extracted>, PullError> {
    let mut out = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(PullError::Registry(RegistryError::Cancelled(
                "another layer failed".into(),
            )));
        }
        let started = Instant::now();
        let (input, decoded, hashed, stall) = (
            Busy::default(),
            Busy::default(),
            Busy::default(),
            Busy::default(),
        );
        bars[i].extracting();
        let result = (|| {
            let source = Timed::new(spools[i].reader(stall.clone()), input.clone());
            // Decoders may read their header on construction: that wait belongs to
            // the decoder's time (and, through `input`, to the stall), not extraction.
            let t = Instant::now();
            let dec = bounded_decoder(layer.compression, source, limits);
            decoded.add(t.elapsed());
            let dec = dec.map_err(crate::layer::LayerError::from_read)?;
            let mut tar = Hashing::new(Timed::new(dec, decoded.clone()), hashed.clone());
            let stats = apply_layer_limited(&mut tar, root, apply, limits)?;
            Ok::<_, crate::layer::LayerError>((stats, tar.digest(), tar.byte_count()))
        })();
        // Bytes are applied before the whole blob is verified: a corrupt stream, an
        // entry refused or a wrong diff_id may come from a corrupt download. Let the
        // download finish so that its digest check, the root cause (and one a retry
        // can cure), is what gets reported when it fails.
        let result = result
            .map_err(|source| PullError::Layer {
                index: i,
                digest: layer.digest.clone(),
                source,
            })
            .and_then(|(stats, diff_id, uncompressed)| {
                check_diff_id(i, layer, &diff_id).map(|()| (stats, uncompressed))
            });
        if result.is_err() {
            spools[i].wait_done();
        }
        let (stats, uncompressed) = result?;
        let total = started.elapsed();
        bars[i].done();
        out.push(Extracted {
            started,
            finished: Instant::now(),
            stats,
            uncompressed_bytes: uncompressed,
            decompress: decoded.get().saturating_sub(input.get()),
            verify: hashed.get(),
            extract: total.saturating_sub(decoded.get() + hashed.get()),
            stall: stall.get(),
        });
    }
    Ok(out)
}
