//! Streaming mode's decode stage: worker threads decompress each layer's
//! compressed spool and hash its tar stream (the diff_id), writing the tar stream
//! into a second spool that in-order extraction tails. Workers take layers in
//! manifest order, so the layer being applied is always being decoded first, and
//! later layers decode ahead on the other cores instead of waiting for their turn.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use super::batch::BatchPolicy;
use super::bounded::bounded_decoder;
use super::readers::{Busy, Timed};
use super::spool::{Spool, WhenFull};
use crate::layer::{ApplyOrder, LayerError, LayerIndex};
use crate::limits::Limits;
use crate::registry::LayerDescriptor;

/// What decoding one layer measured.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Busy time in the decompressor, writing the tar spool included.
    pub decompress: Duration,
    /// Busy time hashing the tar stream.
    pub verify: Duration,
    /// Time waiting for compressed bytes from the network.
    pub stall: Duration,
    /// `sha256:` of the whole tar stream.
    pub diff_id: String,
    /// Size of the tar stream.
    pub bytes: u64,
}

/// The decode stage of one pull: a tar spool and an outcome slot per layer.
pub struct DecodeStage {
    tars: Vec<Spool>,
    outcomes: Mutex<Vec<Option<Result<Decoded, LayerError>>>>,
    next: AtomicUsize,
    stop: AtomicBool,
    timed: bool,
}

/// Size of the blocks moved from the decoder to the tar spool.
const BLOCK: usize = 256 << 10;

impl DecodeStage {
    /// A stage for `n` layers whose tar spools live in `scratch`; `timed`: measure
    /// each stage's busy time; `interrupt`: the user's stop.
    /// `appliers`: threads applying layers, each of which starts on one of the
    /// first layers.
    pub fn new(
        scratch: &Path,
        (n, appliers): (usize, usize),
        timed: bool,
        interrupt: &CancellationToken,
    ) -> Self {
        DecodeStage {
            tars: (0..n)
                .map(|i| {
                    let path = scratch.join(format!("layer-{i}.tar"));
                    let spool = Spool::new(path, WhenFull::Wait, interrupt.clone());
                    if i < appliers.max(1) {
                        // An applier starts here.
                        spool.expect_reader();
                    }
                    spool
                })
                .collect(),
            outcomes: Mutex::new((0..n).map(|_| None).collect()),
            next: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            timed,
        }
    }

    /// Layer `i`'s tar stream, readable while it is being decoded.
    pub fn tar(&self, i: usize) -> &Spool {
        &self.tars[i]
    }

    /// Tells the workers to stop after their current block. The tar spools are
    /// removed, so no worker waits for an applier that will not come.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for tar in &self.tars {
            tar.remove();
        }
    }

    /// Layer `i`'s outcome, once its tar spool is done (blocks until then).
    pub fn outcome(&self, i: usize) -> Result<Decoded, LayerError> {
        self.tars[i].wait_done();
        self.outcomes.lock().expect("outcomes lock")[i]
            .take()
            .unwrap_or_else(|| {
                Err(LayerError::Read(io::Error::other(
                    "decoding stopped before this layer",
                )))
            })
    }

    /// A worker: decodes layers in manifest order until none is left or the stage
    /// is stopped. Layers it never reaches are finished as failed, so no reader waits.
    /// With `order`, each layer's [`LayerIndex`] is read from its tar stream and
    /// handed to it, so that layers above can be applied beside it.
    pub fn work(
        &self,
        layers: &[LayerDescriptor],
        blobs: &[Spool],
        limits: &Limits,
        order: Option<&ApplyOrder>,
    ) {
        let _batch = BatchPolicy::enter();
        loop {
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            if i >= layers.len() {
                return;
            }
            let guard = self.tars[i].guard();
            let mut outcome = if self.stop.load(Ordering::SeqCst) {
                Err(LayerError::Read(io::Error::other("stopped")))
            } else {
                // No layer above the top one consults its index.
                let index = order.is_some() && i + 1 < layers.len();
                self.decode(&layers[i], &blobs[i], &self.tars[i], (limits, index))
            };
            if let Some(order) = order {
                let index = match &mut outcome {
                    Ok((_, index)) => index.take(),
                    Err(_) => None,
                };
                let index = index.unwrap_or_else(LayerIndex::unusable);
                order.set_index(i, index);
            }
            let outcome = outcome.map(|(decoded, _)| decoded);
            if outcome.is_ok() {
                // The compressed bytes are verified and consumed: free the space.
                blobs[i].remove();
            }
            let ok = outcome.is_ok();
            self.outcomes.lock().expect("outcomes lock")[i] = Some(outcome);
            guard.finish(ok);
        }
    }

    fn decode(
        &self,
        layer: &LayerDescriptor,
        blob: &Spool,
        tar: &Spool,
        (limits, index): (&Limits, bool),
    ) -> Result<(Decoded, Option<LayerIndex>), LayerError> {
        let (input, decoded, stall) = (
            Busy::new(self.timed),
            Busy::new(self.timed),
            Busy::new(self.timed),
        );
        let source = Timed::new(
            Stoppable {
                inner: blob.reader(stall.clone()),
                stop: &self.stop,
            },
            input.clone(),
        );
        // Decoders may read their header on construction: decoder time.
        let t = Instant::now();
        let dec = bounded_decoder(layer.compression, source, limits);
        decoded.add(t.elapsed());
        let mut stream = Timed::new(dec.map_err(LayerError::from_read)?, decoded.clone());
        let write_err = |e: io::Error| {
            LayerError::Read(io::Error::new(e.kind(), format!("scratch tar spool: {e}")))
        };
        let mut out = tar.writer();
        // The diff_id is hashed on a thread of its own, from the same blocks: on
        // one thread, inflating and hashing the largest layer was the longest
        // chain of a pull on a fast disk (docs/performance.md, "Spools").
        let (blocks, hashing) = std::sync::mpsc::sync_channel::<Bytes>(HASH_QUEUE);
        let timed = self.timed;
        std::thread::scope(|scope| {
            let hasher = scope.spawn(move || {
                let _batch = BatchPolicy::enter();
                hash_blocks(hashing, timed, index.then_some(limits))
            });
            let decoding = (|| {
                loop {
                    // A fresh block each time, filled before it is handed on:
                    // the spool keeps it, in memory, until the applier has taken
                    // it, and counts its window in bytes, so a block must not
                    // hold 256 KiB for the few bytes of one short read.
                    let mut block = vec![0u8; BLOCK];
                    let mut filled = 0;
                    while filled < BLOCK {
                        let n = stream
                            .read(&mut block[filled..])
                            .map_err(LayerError::from_read)?;
                        if n == 0 {
                            break;
                        }
                        filled += n;
                    }
                    if filled == 0 {
                        return Ok(());
                    }
                    block.truncate(filled);
                    let block = Bytes::from(block);
                    blocks
                        .send(block.clone())
                        .expect("the hasher ends only when the decoder does");
                    if decoded.is_on() {
                        let t = Instant::now();
                        let waited = out.push(block).map_err(write_err)?;
                        decoded.add(t.elapsed().saturating_sub(waited));
                    } else {
                        out.push(block).map_err(write_err)?;
                    }
                }
            })();
            drop(blocks);
            let hashed = hasher.join().expect("the hasher does not panic");
            decoding.map(|()| {
                let decoded = Decoded {
                    decompress: decoded.get().saturating_sub(input.get()),
                    verify: hashed.busy,
                    stall: stall.get(),
                    diff_id: hashed.diff_id,
                    bytes: hashed.bytes,
                };
                (decoded, hashed.index)
            })
        })
    }
}

/// Blocks decoded and not yet hashed, at most (256 KiB each).
const HASH_QUEUE: usize = 4;

/// What the hasher thread found in a layer's tar stream.
struct Hashed {
    diff_id: String,
    bytes: u64,
    /// Time spent hashing (zero unless timed).
    busy: Duration,
    index: Option<LayerIndex>,
}

/// Hashes the blocks received (timing it when `timed`); with `index`, also reads
/// the tar headers as they pass into a [`LayerIndex`] (content is skipped, not
/// copied).
fn hash_blocks(blocks: Receiver<Bytes>, timed: bool, index: Option<&Limits>) -> Hashed {
    let mut reader = HashingBlocks {
        blocks,
        block: Bytes::new(),
        hasher: Sha256::new(),
        bytes: 0,
        busy: Duration::ZERO,
        timed,
    };
    let index = index.map(|limits| LayerIndex::read(&mut reader, limits));
    // The rest: after the end-of-archive blocks, or after a header the index
    // could not read (the applier reports that).
    while reader.next_block() {
        reader.block.clear();
    }
    Hashed {
        diff_id: format!("sha256:{}", hex::encode(reader.hasher.finalize())),
        bytes: reader.bytes,
        busy: reader.busy,
        index,
    }
}

/// The decoded blocks as one stream, each hashed as it arrives.
struct HashingBlocks {
    blocks: Receiver<Bytes>,
    /// What is left of the current block.
    block: Bytes,
    hasher: Sha256,
    bytes: u64,
    busy: Duration,
    timed: bool,
}

impl HashingBlocks {
    /// Takes and hashes the next block; false at the end.
    fn next_block(&mut self) -> bool {
        let Ok(block) = self.blocks.recv() else {
            return false;
        };
        let t = self.timed.then(Instant::now);
        self.hasher.update(&block);
        if let Some(t) = t {
            self.busy += t.elapsed();
        }
        self.bytes += block.len() as u64;
        self.block = block;
        true
    }
}

impl Read for HashingBlocks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.block.is_empty() && !self.next_block() {
            return Ok(0);
        }
        let n = buf.len().min(self.block.len());
        buf[..n].copy_from_slice(&self.block[..n]);
        self.block.advance(n);
        Ok(n)
    }
}

impl Seek for HashingBlocks {
    /// Forward from the current position only (skipping an entry's content).
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let SeekFrom::Current(mut ahead) = pos else {
            return Err(io::Error::other("only skips forward"));
        };
        if ahead < 0 {
            return Err(io::Error::other("only skips forward"));
        }
        while ahead > 0 {
            if self.block.is_empty() && !self.next_block() {
                break;
            }
            let n = (ahead as u64).min(self.block.len() as u64) as usize;
            self.block.advance(n);
            ahead -= n as i64;
        }
        // The tar reader keeps what this returns as its position.
        Ok(self.bytes - self.block.len() as u64)
    }
}

/// Fails reads once the stage is stopped (another layer failed).
struct Stoppable<'a, R> {
    inner: R,
    stop: &'a AtomicBool,
}

impl<R: Read> Read for Stoppable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("stopped: another layer failed"));
        }
        self.inner.read(buf)
    }
}
