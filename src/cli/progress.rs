//! Per-layer progress bars (indicatif) drawn from the pipeline's progress events;
//! the caller only asks for them when stdout is a terminal.

use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pulltime::pipeline::progress::{Phase, Progress, ProgressEvent};

/// Bars on stderr: one per layer of the current run, removed when the run ends.
pub fn bars() -> Progress {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let bars: Mutex<Vec<ProgressBar>> = Mutex::new(Vec::new());
    Progress::new(move |event| match event {
        ProgressEvent::RunStarted { label, layers } => {
            let new = layers
                .iter()
                .map(|(digest, size)| layer_bar(&multi, &label, digest, *size))
                .collect();
            *bars.lock().expect("progress lock") = new;
        }
        ProgressEvent::Phase { layer, phase } => {
            if let Some(b) = bars.lock().expect("progress lock").get(layer) {
                match phase {
                    Phase::Downloading => b.set_message("downloading"),
                    Phase::Extracting => b.set_message("extracting"),
                    Phase::Done => {
                        b.set_message("done");
                        b.finish();
                    }
                }
            }
        }
        ProgressEvent::Bytes { layer, bytes } => {
            if let Some(b) = bars.lock().expect("progress lock").get(layer) {
                b.inc(bytes);
            }
        }
        ProgressEvent::RunFinished => {
            bars.lock().expect("progress lock").clear();
            let _ = multi.clear();
        }
    })
}

fn layer_bar(multi: &MultiProgress, run_label: &str, digest: &str, size: u64) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(size));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} {msg:11} [{wide_bar}] {decimal_bytes:>9}/{decimal_total_bytes:9} {decimal_bytes_per_sec:>11}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!(
        "{run_label} {}",
        pulltime::report::short_digest(digest)
    ));
    bar.set_message("waiting");
    bar
}
