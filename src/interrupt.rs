//! Ctrl-C: the first one asks every running pull to stop at its next step (a
//! chunk received, a block read by extraction, a retry wait), so the destination
//! can be cleaned up; a second one exits at once.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static NOTIFY: tokio::sync::Notify = tokio::sync::Notify::const_new();
static SIGNALS: AtomicU32 = AtomicU32::new(0);

/// Asks running pulls to stop.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
    NOTIFY.notify_waiters();
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Resolves once a stop is asked for (immediately if it already was).
pub async fn wait() {
    loop {
        let notified = NOTIFY.notified();
        if requested() {
            return;
        }
        notified.await;
    }
}

/// Installs the Ctrl-C handler on the current tokio runtime: the first signal
/// calls [`request`], the second exits with status 130.
/// The handler is registered before this returns, so a Ctrl-C right after is not
/// lost. Must be called inside the runtime.
pub fn install() {
    let Ok(mut signals) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    else {
        // Without a handler Ctrl-C keeps its default: the process ends at once.
        return;
    };
    tokio::spawn(async move {
        while signals.recv().await.is_some() {
            if SIGNALS.fetch_add(1, Ordering::SeqCst) == 0 {
                eprintln!("\ninterrupted: stopping and cleaning up (Ctrl-C again to exit now)");
                request();
            } else {
                std::process::exit(130);
            }
        }
    });
}
