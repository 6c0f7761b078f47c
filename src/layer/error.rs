//! What can go wrong applying a layer.

use std::io;

use crate::limits::LimitError;

/// Why a layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The entry would write outside the root or is otherwise refused.
    #[error("unsafe tar entry {entry:?}: {reason}")]
    Unsafe {
        /// Entry name as in the tar.
        entry: String,
        /// Why.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("tar entry {entry:?}: {op} failed")]
    Io {
        /// Entry name.
        entry: String,
        /// What was attempted.
        op: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The tar stream itself could not be read (corrupt, truncated, or the bytes
    /// under it failed: download error, bad compression).
    #[error("reading the layer's tar stream")]
    Read(#[source] io::Error),
    /// A limit was exceeded: too many entries, a path too long or deep, or a
    /// decompression bomb.
    #[error(transparent)]
    Limit(#[from] LimitError),
}

impl LayerError {
    /// A failed read of the layer stream: [`LayerError::Limit`] when the bounded
    /// decompressor stopped it, [`LayerError::Read`] otherwise.
    pub fn from_read(e: io::Error) -> LayerError {
        match LimitError::find_in(&e) {
            Some(limit) => LayerError::Limit(limit.clone()),
            None => LayerError::Read(e),
        }
    }
}

/// Maps an I/O error of `op` on `entry` to [`LayerError::Io`].
pub(super) fn io_err<'a>(
    entry: &'a str,
    op: &'static str,
) -> impl FnOnce(io::Error) -> LayerError + 'a {
    move |source| LayerError::Io {
        entry: entry.to_string(),
        op,
        source,
    }
}
