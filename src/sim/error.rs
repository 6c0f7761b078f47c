//! What can stop a simulation. The event loops are bounded (each pull has a known
//! most number of events); one that runs out of its budget, or can no longer make
//! progress, has no times worth reporting, so it returns an error instead.

use std::fmt;

/// Which of the simulator's event loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimLoop {
    /// One pull's downloads (`model`).
    Download,
    /// The streaming policy's processor sharing (`cpu`).
    Cpu,
    /// A fleet burst's shared egress (`fleet`).
    Fleet,
}

impl fmt::Display for SimLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SimLoop::Download => "download",
            SimLoop::Cpu => "CPU",
            SimLoop::Fleet => "fleet",
        })
    }
}

/// A simulation that could not finish.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// An event loop took as many steps as a pull can have events and was still
    /// not done: a bug in the model, or inputs it does not handle.
    #[error(
        "the {stage} simulation used up its budget of {budget} events with {done} of {total} layers done"
    )]
    EventBudget {
        /// Which loop.
        stage: SimLoop,
        /// Steps it was allowed.
        budget: usize,
        /// Layers finished (downloaded, or extracted for the CPU; over all nodes
        /// for a fleet).
        done: usize,
        /// Layers in all.
        total: usize,
    },
    /// The CPU simulation reached a point where no stage can progress: one waits
    /// for input that never comes, or has no end (infinite work).
    #[error("the CPU simulation stalled at {at_s} s with {done} of {total} layers extracted")]
    Stalled {
        /// When, from the pull's start.
        at_s: f64,
        /// Layers extracted.
        done: usize,
        /// Layers in all.
        total: usize,
    },
}
