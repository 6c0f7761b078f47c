//! Streaming mode: bytes flow from the socket through the hasher into a spool; decoder
//! threads (one per core) tail the spools, decompress and hash the tar streams into
//! tar spools (see [`super::decode`]); one extraction thread tails those and applies
//! the layers in manifest order. Downloads, decoding and extraction all overlap,
//! across layers and within each; each stage's busy time is measured by the readers.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::Semaphore;

use super::decode::DecodeStage;
use super::download::{Downloaded, Sink, download};
use super::progress::{LayerProgress, Phase};
use super::readers::Busy;
use super::spool::{Spool, WhenFull};
use super::{Extracted, Job, PullError, check_diff_id, pick_error};
use crate::layer::{ApplyOptions, apply_layer_limited};
use crate::limits::Limits;
use crate::registry::{LayerDescriptor, RegistryError};

/// Downloads and applies every layer; returns per-layer download and extraction
/// results in manifest order.
pub(super) async fn run(job: Job<'_>) -> Result<Vec<(Downloaded, Extracted)>, PullError> {
    let Job {
        client,
        layers,
        root,
        scratch,
        max_concurrent_downloads,
        decoders,
        apply,
        limits,
        stage_timing,
        progress,
    } = job;
    let n = layers.len();
    let interrupt = client.cancel_token().clone();
    let spools: Arc<Vec<Spool>> = Arc::new(
        (0..n)
            .map(|i| {
                let path = scratch.join(format!("layer-{i}.blob"));
                let spool = Spool::new(path, WhenFull::Spill, interrupt.clone());
                if i < decoders.min(n) {
                    // A decoder takes this layer first.
                    spool.expect_reader();
                }
                spool
            })
            .collect(),
    );
    let cancel = Arc::new(AtomicBool::new(false));
    let extraction = {
        let (layers, spools, cancel, progress) = (
            layers.to_vec(),
            spools.clone(),
            cancel.clone(),
            progress.to_vec(),
        );
        let stage = (stage_timing, interrupt.clone(), decoders);
        let (root, scratch) = (root.to_path_buf(), scratch.to_path_buf());
        let (apply, limits): (ApplyOptions, Limits) = (apply.clone(), limits.clone());
        tokio::task::spawn_blocking(move || {
            let r = extract_in_order(
                &layers,
                &spools,
                (&root, &scratch),
                (&apply, &limits),
                &cancel,
                &progress,
                stage,
            );
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
        if cancel.load(Ordering::Relaxed) || interrupt.is_cancelled() {
            break;
        }
        let (client, spools, cancel, layer, progress) = (
            client.clone(),
            spools.clone(),
            cancel.clone(),
            layer.clone(),
            progress[i].clone(),
        );
        handles.push(tokio::spawn(async move {
            let guard = spools[i].guard();
            let sink = Sink::Spool(&spools[i]);
            let r = download(&client, i, &layer, sink, &cancel, &progress, stage_timing).await;
            if r.is_err() {
                cancel.store(true, Ordering::Relaxed);
            }
            guard.finish(r.is_ok());
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
    (root, scratch): (&Path, &Path),
    (apply, limits): (&ApplyOptions, &Limits),
    cancel: &AtomicBool,
    progress: &[LayerProgress],
    (stage_timing, interrupt, decoders): (bool, tokio_util::sync::CancellationToken, usize),
) -> Result<Vec<Extracted>, PullError> {
    let stage = DecodeStage::new(scratch, layers.len(), stage_timing, &interrupt);
    std::thread::scope(|scope| {
        for _ in 0..decoders.clamp(1, layers.len().max(1)) {
            scope.spawn(|| stage.work(layers, spools, limits));
        }
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply_in_order(
                layers,
                spools,
                &stage,
                root,
                (apply, limits),
                cancel,
                (progress, stage_timing),
            )
        }));
        let r = applied.unwrap_or_else(|panic| {
            // The decoders must not wait for an applier that is gone, or the
            // scope would never end and the panic never be reported.
            cancel.store(true, Ordering::Relaxed);
            stage.stop();
            std::panic::resume_unwind(panic)
        });
        if r.is_err() {
            // Stop the downloads (their spools then fail the decoders' reads) and
            // the decoders, so the scope can end.
            cancel.store(true, Ordering::Relaxed);
            stage.stop();
        }
        r
    })
}

fn apply_in_order(
    layers: &[LayerDescriptor],
    spools: &[Spool],
    stage: &DecodeStage,
    root: &Path,
    (apply, limits): (&ApplyOptions, &Limits),
    cancel: &AtomicBool,
    (progress, stage_timing): (&[LayerProgress], bool),
) -> Result<Vec<Extracted>, PullError> {
    let mut out = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(PullError::Registry(RegistryError::Cancelled(
                "another layer failed".into(),
            )));
        }
        let started = Instant::now();
        let waited = Busy::new(stage_timing);
        progress[i].phase(Phase::Extracting);
        // The spool's reader is buffered itself: the tar reader's 512-byte reads
        // are copies out of the block the decoder wrote.
        let mut tar = stage.tar(i).reader(waited.clone());
        let applied = apply_layer_limited(&mut tar, root, apply, limits);
        drop(tar);
        stage.tar(i).remove();
        // A decoding failure (corrupt stream, a limit) is the cause of whatever
        // extraction then saw; otherwise extraction's own error.
        let layer_err = |source| PullError::Layer {
            index: i,
            digest: layer.digest.clone(),
            source,
        };
        let result = match (applied, stage.outcome(i)) {
            (_, Err(e)) => Err(layer_err(e)),
            (Err(e), _) => Err(layer_err(e)),
            (Ok(stats), Ok(d)) => check_diff_id(i, layer, &d.diff_id).map(|()| (stats, d)),
        };
        // Bytes are applied before the whole blob is verified: a corrupt stream, an
        // entry refused or a wrong diff_id may come from a corrupt download. Let the
        // download finish so that its digest check, the root cause (and one a retry
        // can cure), is what gets reported when it fails.
        if result.is_err() {
            spools[i].wait_done();
        }
        let (stats, d) = result?;
        progress[i].phase(Phase::Done);
        out.push(Extracted {
            started,
            finished: Instant::now(),
            stats,
            uncompressed_bytes: d.bytes,
            decompress: d.decompress,
            verify: d.verify,
            extract: started.elapsed().saturating_sub(waited.get()),
            stall: d.stall,
            spooled_bytes: spools[i].spilled() + stage.tar(i).spilled(),
        });
    }
    Ok(out)
}
