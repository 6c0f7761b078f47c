//! Streaming mode: bytes flow from the socket through the hasher into a spool; decoder
//! threads (one per core) tail the spools, decompress and hash the tar streams into
//! tar spools (see [`super::decode`]); one extraction thread tails those and applies
//! the layers in manifest order (or `--appliers N` threads, each layer beside the
//! layers below where their paths do not interact: [`crate::layer::ApplyOrder`]). Downloads, decoding and extraction all overlap,
//! across layers and within each; each stage's busy time is measured by the readers.

use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::batch::BatchPolicy;
use super::decode::DecodeStage;
use super::download::{Downloaded, Sink, download};
use super::progress::{LayerProgress, Phase};
use super::readers::Busy;
use super::spool::{Spool, WhenFull};
use super::{Extracted, Job, PullError, check_diff_id, pick_error};
use crate::layer::{ApplyOptions, ApplyOrder, LayerError, apply_layer_ordered};
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
        appliers,
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
        let stage = (stage_timing, interrupt.clone(), (decoders, appliers));
        let (root, scratch) = (root.to_path_buf(), scratch.to_path_buf());
        let (apply, limits): (ApplyOptions, Limits) = (apply.clone(), limits.clone());
        tokio::task::spawn_blocking(move || {
            let r = extract(
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

fn extract(
    layers: &[LayerDescriptor],
    spools: &[Spool],
    (root, scratch): (&Path, &Path),
    (apply, limits): (&ApplyOptions, &Limits),
    cancel: &AtomicBool,
    progress: &[LayerProgress],
    (stage_timing, interrupt, (decoders, appliers)): (bool, CancellationToken, (usize, usize)),
) -> Result<Vec<Extracted>, PullError> {
    let n = layers.len();
    let appliers = appliers.clamp(1, n.max(1));
    let stage = DecodeStage::new(scratch, (n, appliers), stage_timing, &interrupt);
    let order = ApplyOrder::new(root, n);
    // Indices only matter where a layer can be applied beside another.
    let indexed = (appliers > 1).then_some(&order);
    let shared = Appliers {
        layers,
        spools,
        stage: &stage,
        order: &order,
        options: (apply, limits),
        cancel,
        progress,
        stage_timing,
        failure: Mutex::new(None),
        applied: (0..n).map(|_| Mutex::new(None)).collect(),
    };
    std::thread::scope(|scope| {
        for _ in 0..decoders.clamp(1, n.max(1)) {
            scope.spawn(|| stage.work(layers, spools, limits, indexed));
        }
        let others: Vec<_> = (1..appliers)
            .map(|_| scope.spawn(|| shared.run()))
            .collect();
        shared.run();
        for other in others {
            if let Err(panic) = other.join() {
                std::panic::resume_unwind(panic)
            }
        }
    });
    if let Some((i, e)) = order.failed_finish() {
        return Err(layer_error(i, &layers[i], e));
    }
    if let Some(e) = shared.failure.into_inner().expect("failure lock") {
        return Err(e);
    }
    let mut out = Vec::with_capacity(n);
    for (i, slot) in shared.applied.into_iter().enumerate() {
        let Some(mut extracted) = slot.into_inner().expect("applied lock") else {
            return Err(PullError::Registry(RegistryError::Cancelled(
                "another layer failed".into(),
            )));
        };
        // Its directory metadata, set in layer order, may have come later.
        let finished = order
            .wait_applied(i)
            .map_err(|source| layer_error(i, &layers[i], source))?;
        extracted.finished = extracted.finished.max(finished);
        out.push(extracted);
    }
    Ok(out)
}

fn layer_error(index: usize, layer: &LayerDescriptor, source: LayerError) -> PullError {
    PullError::Layer {
        index,
        digest: layer.digest.clone(),
        source,
    }
}

/// What the applier threads of one pull share.
struct Appliers<'a> {
    layers: &'a [LayerDescriptor],
    spools: &'a [Spool],
    stage: &'a DecodeStage,
    order: &'a ApplyOrder,
    options: (&'a ApplyOptions, &'a Limits),
    cancel: &'a AtomicBool,
    progress: &'a [LayerProgress],
    stage_timing: bool,
    /// The first failure: what the others then see (stopped reads and waits) is
    /// its consequence, not reported.
    failure: Mutex<Option<PullError>>,
    /// Each layer's measurements once its entries are applied.
    applied: Vec<Mutex<Option<Extracted>>>,
}

impl Appliers<'_> {
    /// One applier thread: takes layers lowest first until none is left or one
    /// fails, and then stops everything else.
    fn run(&self) {
        let _batch = BatchPolicy::enter();
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            while let Some(i) = self.order.take_layer() {
                if self.cancel.load(Ordering::Relaxed) {
                    // A download or another layer failed: reported as such. A
                    // layer above that waits for this one must not wait on.
                    self.stop();
                    return;
                }
                match self.apply(i) {
                    Ok(extracted) => {
                        *self.applied[i].lock().expect("applied lock") = Some(extracted);
                    }
                    Err(e) => {
                        self.failure.lock().expect("failure lock").get_or_insert(e);
                        self.stop();
                        return;
                    }
                }
            }
        }));
        if let Err(panic) = applied {
            // No decoder or applier may wait for this one, or the scope would
            // never end and the panic never be reported.
            self.stop();
            std::panic::resume_unwind(panic)
        }
    }

    /// Stops the downloads (their spools then fail the decoders' reads), the
    /// decoders (so that none waits for an applier that is gone) and the
    /// appliers' waits.
    fn stop(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.stage.stop();
        self.order.stop();
    }

    fn apply(&self, i: usize) -> Result<Extracted, PullError> {
        let (layer, spools, stage) = (&self.layers[i], self.spools, self.stage);
        let (apply, limits) = self.options;
        let started = Instant::now();
        let waited = Busy::new(self.stage_timing);
        self.progress[i].phase(Phase::Extracting);
        // The spool's reader is buffered itself: the tar reader's 512-byte reads
        // are copies out of the block the decoder wrote.
        let tar_spool = stage.tar(i);
        let mut tar = tar_spool.reader(waited.clone());
        // While the layer waits for the layers below, its decoder goes on.
        let pause = |paused| tar_spool.pause_reader(paused);
        let applied = apply_layer_ordered(&mut tar, (self.order, i, &pause), apply, limits);
        drop(tar);
        tar_spool.remove();
        // A decoding failure (corrupt stream, a limit) is the cause of whatever
        // extraction then saw; otherwise extraction's own error.
        let result = match (applied, stage.outcome(i)) {
            (_, Err(e)) | (Err(e), _) => Err(layer_error(i, layer, e)),
            (Ok(o), Ok(d)) => check_diff_id(i, layer, &d.diff_id).map(|()| (o, d)),
        };
        // Bytes are applied before the whole blob is verified: a corrupt stream, an
        // entry refused or a wrong diff_id may come from a corrupt download. Let the
        // download finish so that its digest check, the root cause (and one a retry
        // can cure), is what gets reported when it fails.
        if result.is_err() {
            spools[i].wait_done();
        }
        let (ordered, d) = result?;
        self.progress[i].phase(Phase::Done);
        Ok(Extracted {
            started,
            finished: Instant::now(),
            stats: ordered.stats,
            uncompressed_bytes: d.bytes,
            decompress: d.decompress,
            verify: d.verify,
            extract: started
                .elapsed()
                .saturating_sub(waited.get() + ordered.waited),
            stall: d.stall,
            spooled_bytes: spools[i].spilled() + stage.tar(i).spilled(),
        })
    }
}
