//! Downloading one layer blob to a file, optionally hashing on the way (streaming
//! mode verifies while receiving; staged mode verifies in a later pass).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};

use super::spool::Spool;
use crate::registry::{LayerDescriptor, RegistryClient, RegistryError};
use crate::report::progress::LayerBar;

/// Timing of one blob download.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// Request start.
    pub started: Instant,
    /// Last byte written.
    pub finished: Instant,
    /// Start to response headers.
    pub ttfb: Duration,
    /// Redirect hop, zero without one.
    pub redirect: Duration,
    /// Bytes received.
    pub bytes: u64,
    /// Time spent hashing while receiving (zero when not hashing).
    pub hash: Duration,
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
/// arrive than the descriptor's size.
pub async fn download(
    client: &RegistryClient,
    index: usize,
    layer: &LayerDescriptor,
    sink: Sink<'_>,
    cancel: &Arc<AtomicBool>,
    bar: &LayerBar,
) -> Result<Downloaded, RegistryError> {
    let io_err = |source| RegistryError::Io {
        what: format!("layer {index} spool"),
        source,
    };
    let blob = client.open_blob("blob", &layer.digest).await?;
    bar.downloading();
    let (mut file, spool, hashing) = match sink {
        Sink::Spool(s) => (s.create().map_err(io_err)?, Some(s), true),
        Sink::File(p) => (std::fs::File::create(p).map_err(io_err)?, None, false),
    };
    let url = crate::registry::client::strip_query(blob.response.url());
    let body_started = Instant::now();
    let mut stream = blob.response.bytes_stream();
    let mut hasher = Sha256::new();
    let mut hash = Duration::ZERO;
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        if cancel.load(Ordering::Relaxed) {
            return Err(RegistryError::Cancelled(format!(
                "layer {index}: another layer failed"
            )));
        }
        let chunk = chunk.map_err(|e| RegistryError::Unreachable {
            url: url.clone(),
            reason: format!("layer {index} body cut off after {bytes} bytes: {e}"),
        })?;
        bytes += chunk.len() as u64;
        if bytes > layer.size {
            return Err(RegistryError::DigestMismatch {
                what: format!(
                    "layer {index} ({}): more bytes than the descriptor's size {}",
                    layer.digest, layer.size
                ),
                expected: layer.digest.clone(),
                actual: "(not computed: blob too long)".into(),
            });
        }
        if hashing {
            let t = Instant::now();
            hasher.update(&chunk);
            hash += t.elapsed();
        }
        file.write_all(&chunk).map_err(io_err)?;
        if let Some(s) = spool {
            s.advance(bytes);
        }
        bar.advance(chunk.len() as u64);
    }
    let finished = Instant::now();
    client
        .clock()
        .finish_body(blob.log_index, finished - body_started, bytes);
    if hashing {
        let t = Instant::now();
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        hash += t.elapsed();
        if actual != layer.digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("layer {index} ({})", layer.digest),
                expected: layer.digest.clone(),
                actual,
            });
        }
    }
    Ok(Downloaded {
        started: blob.started,
        finished,
        ttfb: blob.ttfb,
        redirect: blob.redirect,
        bytes,
        hash,
    })
}
