//! Per-layer progress bars (indicatif), drawn only when stdout is a terminal.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress display for a run; inert when disabled.
pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    /// Enabled: draws to stderr. Disabled: every call is a no-op.
    pub fn new(enabled: bool) -> Self {
        Progress {
            multi: enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// One bar per layer, labelled with the run and the short digest.
    pub fn layer_bars(&self, run_label: &str, layers: &[(String, u64)]) -> Vec<LayerBar> {
        layers
            .iter()
            .map(|(digest, size)| {
                LayerBar(self.multi.as_ref().map(|m| {
                    let bar = m.add(ProgressBar::new(*size));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix} {msg:11} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12}",
                        )
                        .expect("static template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(format!("{run_label} {}", crate::report::short_digest(digest)));
                    bar.set_message("waiting");
                    bar
                }))
            })
            .collect()
    }

    /// Removes all bars (between runs and before printing tables).
    pub fn clear(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

/// One layer's bar (or nothing).
#[derive(Clone)]
pub struct LayerBar(Option<ProgressBar>);

impl LayerBar {
    fn msg(&self, m: &'static str) {
        if let Some(b) = &self.0 {
            b.set_message(m);
        }
    }
    /// The blob response arrived.
    pub fn downloading(&self) {
        self.msg("downloading");
    }
    /// `n` more bytes arrived.
    pub fn advance(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
    /// Verifying / decompressing / extracting.
    pub fn extracting(&self) {
        self.msg("extracting");
    }
    /// Applied to the root filesystem.
    pub fn done(&self) {
        if let Some(b) = &self.0 {
            b.set_message("done");
            b.finish();
        }
    }
}
