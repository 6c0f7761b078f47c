//! Ctrl-C for the commands that pull: the first one cancels the pull's
//! [`CancellationToken`] (the library stops at its next step and cleans up the
//! destination); a second one exits at once.

use std::sync::atomic::{AtomicU32, Ordering};

use tokio_util::sync::CancellationToken;

/// The command was stopped by Ctrl-C: `main` exits with 130 (128 + SIGINT), as
/// shells report a process stopped by the signal.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {0}")]
pub struct Interrupted(pub String);

/// Installs the handler on the current tokio runtime; `stop` is cancelled by the
/// first signal. The handler is registered before this returns, so a Ctrl-C right
/// after is not lost. Must be called inside the runtime.
pub fn install(stop: CancellationToken) {
    let Ok(mut signals) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    else {
        // Without a handler Ctrl-C keeps its default: the process ends at once.
        return;
    };
    let count = AtomicU32::new(0);
    tokio::spawn(async move {
        while signals.recv().await.is_some() {
            if count.fetch_add(1, Ordering::SeqCst) == 0 {
                eprintln!("\ninterrupted: stopping and cleaning up (Ctrl-C again to exit now)");
                stop.cancel();
            } else {
                std::process::exit(130);
            }
        }
    });
}
