//! Staged mode: every phase completes before the next starts, so each phase's wall
//! time is exact. All blobs download first (`max_concurrent_downloads` at a time);
//! then, layer by layer in manifest order: verify the blob, decompress it to a tar
//! file, verify the tar against `rootfs.diff_ids`, extract it.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::bounded::bounded_decoder;
use super::download::{Downloaded, Sink, download};
use super::progress::Phase;
use super::readers::hash_all;
use super::{Extracted, Job, PullError, check_diff_id, pick_error};
use crate::layer::{ApplyOptions, LayerError, apply_layer_limited};
use crate::limits::Limits;
use crate::registry::{LayerDescriptor, RegistryError};

/// Runs the staged pipeline; results in manifest order.
pub(super) async fn run(job: Job<'_>) -> Result<Vec<(Downloaded, Extracted)>, PullError> {
    let Job {
        client,
        layers,
        root,
        scratch,
        max_concurrent_downloads,
        decoders: _,
        appliers: _,
        apply,
        limits,
        stage_timing,
        progress,
    } = job;
    let interrupt = client.cancel_token().clone();
    let n = layers.len();
    let blob_path = |i: usize| scratch.join(format!("layer-{i}.blob"));
    let semaphore = Arc::new(Semaphore::new(max_concurrent_downloads.max(1)));
    let cancel = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(n);
    for (i, layer) in layers.iter().enumerate() {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let (client, cancel, layer, progress, path) = (
            client.clone(),
            cancel.clone(),
            layer.clone(),
            progress[i].clone(),
            blob_path(i),
        );
        handles.push(tokio::spawn(async move {
            let sink = Sink::File(&path);
            let r = download(&client, i, &layer, sink, &cancel, &progress, stage_timing).await;
            if r.is_err() {
                cancel.store(true, Ordering::Relaxed);
            }
            drop(permit);
            r
        }));
    }
    let mut downloads: Vec<Result<Downloaded, RegistryError>> = Vec::with_capacity(n);
    for h in handles {
        downloads.push(
            h.await
                .unwrap_or_else(|e| Err(RegistryError::Cancelled(e.to_string()))),
        );
    }
    if downloads.iter().any(|d| d.is_err()) || downloads.len() < n {
        return pick_error(downloads, Ok(Vec::new()), n);
    }
    let extracted = {
        let (layers, progress, root, apply, scratch): (
            Vec<_>,
            Vec<_>,
            PathBuf,
            ApplyOptions,
            PathBuf,
        ) = (
            layers.to_vec(),
            progress.to_vec(),
            root.into(),
            apply.clone(),
            scratch.into(),
        );
        let limits = limits.clone();
        tokio::task::spawn_blocking(move || {
            layers
                .iter()
                .enumerate()
                .map(|(i, layer)| {
                    if interrupt.is_cancelled() {
                        return Err(RegistryError::Cancelled("interrupted".into()).into());
                    }
                    progress[i].phase(Phase::Extracting);
                    let r = process_layer(i, layer, &scratch, &root, (&apply, &limits));
                    progress[i].phase(Phase::Done);
                    r
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap_or_else(|e| Err(PullError::Internal(format!("extraction thread: {e}"))))
    };
    pick_error(downloads, extracted, n)
}

fn process_layer(
    i: usize,
    layer: &LayerDescriptor,
    scratch: &Path,
    root: &Path,
    (apply, limits): (&ApplyOptions, &Limits),
) -> Result<Extracted, PullError> {
    let blob = scratch.join(format!("layer-{i}.blob"));
    let tar = scratch.join(format!("layer-{i}.tar"));
    let io = |what: &str| {
        let what = format!("layer {i} {what}");
        move |source| PullError::Io { what, source }
    };
    let started = Instant::now();

    let t = Instant::now();
    let (digest, _) = hash_all(File::open(&blob).map_err(io("blob"))?).map_err(io("blob"))?;
    if digest != layer.digest {
        return Err(RegistryError::DigestMismatch {
            what: format!("layer {i} ({})", layer.digest),
            expected: layer.digest.clone(),
            actual: digest,
        }
        .into());
    }
    let mut verify = t.elapsed();

    let t = Instant::now();
    let layer_err = |source| PullError::Layer {
        index: i,
        digest: layer.digest.clone(),
        source,
    };
    {
        let dec = bounded_decoder(
            layer.compression,
            File::open(&blob).map_err(io("blob"))?,
            limits,
        )
        .map_err(|e| layer_err(LayerError::from_read(e)))?;
        let mut out = File::create(&tar).map_err(io("tar file"))?;
        io::copy(&mut BufReader::with_capacity(256 << 10, dec), &mut out)
            .map_err(|e| layer_err(LayerError::from_read(e)))?;
    }
    std::fs::remove_file(&blob).map_err(io("blob"))?;
    let decompress = t.elapsed();

    let t = Instant::now();
    let (diff_id, uncompressed) =
        hash_all(File::open(&tar).map_err(io("tar file"))?).map_err(io("tar file"))?;
    check_diff_id(i, layer, &diff_id)?;
    verify += t.elapsed();

    let t = Instant::now();
    let tar_file = File::open(&tar).map_err(io("tar file"))?;
    let stats = apply_layer_limited(
        BufReader::with_capacity(256 << 10, tar_file),
        root,
        apply,
        limits,
    )
    .map_err(layer_err)?;
    std::fs::remove_file(&tar).map_err(io("tar file"))?;
    let extract = t.elapsed();
    Ok(Extracted {
        started,
        finished: Instant::now(),
        stats,
        uncompressed_bytes: uncompressed,
        decompress,
        verify,
        extract,
        stall: Duration::ZERO,
        spooled_bytes: layer.size + uncompressed,
    })
}
