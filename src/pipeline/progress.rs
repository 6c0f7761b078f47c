//! Progress of a pull as a stream of events, for whoever wants to show it: the CLI
//! draws bars from them (`cli/progress.rs`), a library user may log or ignore them.
//! The pipeline only emits; it knows nothing of terminals.

use std::fmt;
use std::sync::Arc;

/// Something that happened during a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A run resolved its image and its layers are about to be pulled.
    RunStarted {
        /// `run 2/5`, `warmup 1/1`.
        label: String,
        /// Per layer, in manifest order: blob digest and compressed size.
        layers: Vec<(String, u64)>,
    },
    /// A layer entered a phase.
    Phase {
        /// Position in the manifest.
        layer: usize,
        /// The phase it is now in.
        phase: Phase,
    },
    /// More bytes of a layer's blob arrived.
    Bytes {
        /// Position in the manifest.
        layer: usize,
        /// Bytes since the last event.
        bytes: u64,
    },
    /// The run ended (successfully or not).
    RunFinished,
}

/// What a layer is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Its blob response arrived; bytes follow.
    Downloading,
    /// Verifying, decompressing and applying it.
    Extracting,
    /// Applied to the root filesystem.
    Done,
}

type Handler = dyn Fn(ProgressEvent) + Send + Sync;

/// Where a pull's events go: a handler, or nowhere ([`Progress::none`]).
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<Handler>>);

impl Progress {
    /// Events are dropped.
    pub fn none() -> Self {
        Progress(None)
    }

    /// Every event is passed to `handler`, from whichever thread emits it.
    pub fn new(handler: impl Fn(ProgressEvent) + Send + Sync + 'static) -> Self {
        Progress(Some(Arc::new(handler)))
    }

    /// Emits `event` (built only if someone listens).
    pub fn emit(&self, event: impl FnOnce() -> ProgressEvent) {
        if let Some(h) = &self.0 {
            h(event());
        }
    }

    /// The handle for layer `layer`.
    pub fn layer(&self, layer: usize) -> LayerProgress {
        LayerProgress {
            progress: self.clone(),
            layer,
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(handler)"
        } else {
            "Progress(none)"
        })
    }
}

/// One layer's side of [`Progress`], handed to the stages that work on it.
#[derive(Debug, Clone)]
pub struct LayerProgress {
    progress: Progress,
    layer: usize,
}

impl LayerProgress {
    /// The layer entered `phase`.
    pub fn phase(&self, phase: Phase) {
        let layer = self.layer;
        self.progress.emit(|| ProgressEvent::Phase { layer, phase });
    }

    /// `bytes` more bytes of the blob arrived.
    pub fn bytes(&self, bytes: u64) {
        let layer = self.layer;
        self.progress.emit(|| ProgressEvent::Bytes { layer, bytes });
    }
}
