//! Downloading one layer blob to a file, optionally hashing on the way (streaming
//! mode verifies while receiving; staged mode verifies in a later pass). A body cut
//! off mid-way is resumed with a `Range` request from the last byte received (or
//! re-fetched and the bytes already held skipped, when the server ignores ranges);
//! the digest is always computed over the whole blob, in order.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::CONTENT_RANGE;
use sha2::{Digest as _, Sha256};

use super::progress::{LayerProgress, Phase};
use super::spool::{Spool, SpoolWriter};
use crate::oci::record::RequestKind;
use crate::registry::client::strip_query;
use crate::registry::retry::RetryCost;
use crate::registry::{BlobResponse, LayerDescriptor, RegistryClient, RegistryError};

/// Timing of one blob download.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// Start of the first request.
    pub started: Instant,
    /// Last byte written.
    pub finished: Instant,
    /// Start of the successful first request to its response headers.
    pub ttfb: Duration,
    /// Redirect hop, zero without one.
    pub redirect: Duration,
    /// Bytes of the blob (each counted once).
    pub bytes: u64,
    /// Time spent hashing while receiving (zero when not hashing).
    pub hash: Duration,
    /// Retried requests and resumed bodies, and the time they cost.
    pub retry_cost: RetryCost,
    /// Bodies cut off and continued.
    pub resumes: u32,
    /// Bytes not fetched again thanks to `Range` resumption.
    pub resumed_bytes: u64,
    /// Bytes received twice because the server ignored `Range` (discarded).
    pub discarded_bytes: u64,
    /// Positions in the run's request log of this blob's answered requests.
    pub requests: Vec<usize>,
}

/// Where the bytes go.
pub enum Sink<'a> {
    /// A spool the extraction thread tails; bytes are hashed on the way in.
    Spool(&'a Spool),
    /// A plain file, not hashed (staged mode verifies later).
    File(&'a Path),
}

/// Downloads `layer` into `sink`. Fails with [`RegistryError::DigestMismatch`] when
/// the bytes do not hash to the descriptor's digest (streaming), or when more bytes
/// arrive than the descriptor's size; with the transport error when the body keeps
/// being cut off after the policy's number of attempts.
pub async fn download(
    client: &RegistryClient,
    index: usize,
    layer: &LayerDescriptor,
    sink: Sink<'_>,
    cancel: &Arc<AtomicBool>,
    progress: &LayerProgress,
    stage_timing: bool,
) -> Result<Downloaded, RegistryError> {
    let spool_path = match &sink {
        Sink::Spool(s) => s.path().to_path_buf(),
        Sink::File(p) => p.to_path_buf(),
    };
    let what = format!("layer {index} to {}", spool_path.display());
    let io_err = |source| RegistryError::Io {
        what: what.clone(),
        source,
    };
    let blob = client.open_blob(RequestKind::Blob, &layer.digest).await?;
    progress.phase(Phase::Downloading);
    let (out, hashing) = match sink {
        Sink::Spool(s) => (Out::Spool(s.writer()), true),
        Sink::File(p) => (Out::File(std::fs::File::create(p).map_err(io_err)?), false),
    };
    let mut body = Body {
        index,
        layer,
        what: what.clone(),
        out,
        hasher: hashing.then(Sha256::new),
        hash: Duration::ZERO,
        bytes: 0,
        last_byte: Instant::now(),
        cancel,
        progress,
        stage_timing,
    };
    let mut done = Downloaded {
        started: blob.started,
        finished: blob.started,
        ttfb: blob.ttfb,
        redirect: blob.redirect,
        bytes: 0,
        hash: Duration::ZERO,
        retry_cost: blob.retry_cost,
        resumes: 0,
        resumed_bytes: 0,
        discarded_bytes: 0,
        requests: blob.requests.clone(),
    };
    let attempts = client.retry_policy().attempts.max(1);
    let mut current = blob;
    loop {
        let skip = current_skip(&current, body.bytes)?;
        done.discarded_bytes += skip;
        let cut = match body.receive(client, current, skip).await {
            Ok(()) if body.bytes == layer.size => break,
            Ok(()) => format!("body ended after {} of {} bytes", body.bytes, layer.size),
            Err(Cut::Fatal(e)) => return Err(e),
            // Every byte is here (the connection broke after the last one): the
            // digest decides.
            Err(Cut::Transport(_)) if body.bytes == layer.size => break,
            Err(Cut::Transport(reason)) => reason,
        };
        // Another layer failed: its error is the one to report, not this one's.
        let cancelled = || RegistryError::Cancelled(format!("layer {index}: another layer failed"));
        if cancel.load(Ordering::Relaxed) {
            return Err(cancelled());
        }
        if done.resumes + 1 >= attempts {
            return Err(RegistryError::Transfer {
                what: format!("layer {index} ({})", layer.digest),
                reason: format!(
                    "body cut off after {} of {} bytes: {cut}; gave up after {attempts} attempts",
                    body.bytes, layer.size
                ),
            });
        }
        done.resumes += 1;
        let delay = client.backoff(done.resumes);
        tracing::info!(
            layer = index,
            received = body.bytes,
            delay_ms = delay.as_millis() as u64,
            why = %cut,
            "resuming blob"
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = client.cancel_token().cancelled() => return Err(RegistryError::Cancelled("interrupted".into())),
        }
        current = match client
            .open_blob_from(RequestKind::BlobResume, &layer.digest, body.bytes)
            .await
        {
            Ok(c) => c,
            Err(_) if cancel.load(Ordering::Relaxed) => return Err(cancelled()),
            Err(e) => return Err(e),
        };
        done.requests.extend(&current.requests);
        // Lost: from the last byte received to the resumed response's headers.
        let lost = RetryCost {
            retries: 1 + current.retry_cost.retries,
            lost: body.last_byte.elapsed(),
        };
        client.note_retry(RetryCost {
            retries: 1,
            lost: lost.lost - current.retry_cost.lost,
        });
        done.retry_cost.add(lost);
        // The next loss, if any, counts from here, not again from the last byte.
        body.last_byte = Instant::now();
        if current.response.status() == StatusCode::PARTIAL_CONTENT {
            done.resumed_bytes += body.bytes;
        }
    }
    done.finished = Instant::now();
    done.bytes = body.bytes;
    if let Some(h) = body.hasher.take() {
        let t = Instant::now();
        let actual = format!("sha256:{}", hex::encode(h.finalize()));
        body.hash += t.elapsed();
        if actual != layer.digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("layer {index} ({})", layer.digest),
                expected: layer.digest.clone(),
                actual,
            });
        }
    }
    done.hash = body.hash;
    Ok(done)
}

/// Bytes of `resp`'s body to drop because they are already held: all `held` for a
/// 200 (the server ignored the range), none for a 206 that starts where asked.
fn current_skip(resp: &BlobResponse, held: u64) -> Result<u64, RegistryError> {
    match resp.response.status() {
        StatusCode::PARTIAL_CONTENT => {
            let start = resp
                .response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if start != Some(held) {
                return Err(RegistryError::Invalid {
                    what: format!("resumed blob {}", strip_query(resp.response.url())),
                    reason: format!(
                        "asked for bytes {held}- but the Content-Range starts at {start:?}"
                    ),
                });
            }
            Ok(0)
        }
        _ => Ok(held),
    }
}

/// Why a body stopped early.
enum Cut {
    /// The connection broke or stalled: worth resuming.
    Transport(String),
    /// Anything else (digest, I/O, cancellation): the download fails.
    Fatal(RegistryError),
}

/// Where a body's bytes go.
enum Out<'a> {
    File(std::fs::File),
    Spool(SpoolWriter<'a>),
}

/// The state of one blob's body across resumptions.
struct Body<'a> {
    index: usize,
    layer: &'a LayerDescriptor,
    /// What writing the body is, for errors: the layer and its file.
    what: String,
    out: Out<'a>,
    hasher: Option<Sha256>,
    hash: Duration,
    bytes: u64,
    last_byte: Instant,
    cancel: &'a AtomicBool,
    progress: &'a LayerProgress,
    stage_timing: bool,
}

impl Body<'_> {
    /// Appends `resp`'s body, after dropping its first `skip` bytes.
    async fn receive(
        &mut self,
        client: &RegistryClient,
        resp: BlobResponse,
        mut skip: u64,
    ) -> Result<(), Cut> {
        let index = self.index;
        let url = strip_query(resp.response.url());
        let body_started = Instant::now();
        let before = self.bytes;
        let mut stream = resp.response.bytes_stream();
        loop {
            let next = tokio::select! {
                n = stream.next() => n,
                _ = client.cancel_token().cancelled() => {
                    return Err(Cut::Fatal(RegistryError::Cancelled("interrupted".into())));
                }
            };
            let Some(chunk) = next else { break };
            if self.cancel.load(Ordering::Relaxed) {
                return Err(Cut::Fatal(RegistryError::Cancelled(format!(
                    "layer {index}: another layer failed"
                ))));
            }
            let mut chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    client.clock().finish_body(
                        resp.log_index,
                        body_started.elapsed(),
                        self.bytes - before,
                    );
                    return Err(Cut::Transport(format!("{url}: {e}")));
                }
            };
            if skip > 0 {
                let drop = skip.min(chunk.len() as u64);
                skip -= drop;
                chunk = chunk.slice(drop as usize..);
                if chunk.is_empty() {
                    continue;
                }
            }
            self.append(chunk)?;
            self.last_byte = Instant::now();
        }
        client
            .clock()
            .finish_body(resp.log_index, body_started.elapsed(), self.bytes - before);
        Ok(())
    }

    fn append(&mut self, chunk: Bytes) -> Result<(), Cut> {
        let index = self.index;
        self.bytes += chunk.len() as u64;
        if self.bytes > self.layer.size {
            return Err(Cut::Fatal(RegistryError::DigestMismatch {
                what: format!(
                    "layer {index} ({}): more bytes than the descriptor's size {}",
                    self.layer.digest, self.layer.size
                ),
                expected: self.layer.digest.clone(),
                actual: "(not computed: blob too long)".into(),
            }));
        }
        if let Some(h) = self.hasher.as_mut() {
            if self.stage_timing {
                let t = Instant::now();
                h.update(&chunk);
                self.hash += t.elapsed();
            } else {
                h.update(&chunk);
            }
        }
        let len = chunk.len() as u64;
        let written = match &mut self.out {
            Out::File(f) => f.write_all(&chunk),
            // A spool of compressed bytes spills rather than waits.
            Out::Spool(w) => w.push(chunk).map(drop),
        };
        written.map_err(|source| {
            Cut::Fatal(RegistryError::Io {
                what: self.what.clone(),
                source,
            })
        })?;
        self.progress.bytes(len);
        Ok(())
    }
}
