//! The pipeline's CPU-bound threads (decoders, hashers, appliers) run under
//! Linux's `SCHED_BATCH` policy while they work.
//!
//! A streaming pull has more busy threads than this machine has cores, handing
//! blocks to each other: every block a decoder hands on wakes a hasher or an
//! applier. Under the default policy a woken thread preempts the one running,
//! so the decoder of the largest layer (the longest chain of the pull) was
//! switched out thousands of times a second. `SCHED_BATCH` keeps the time
//! slices and the fair share, but a woken batch thread waits for the next tick
//! instead of preempting. Measured with `benches/ab.sh` (docs/performance.md,
//! "Batch scheduling"): 2-6 % less wall time, up to 3 % less CPU.
//!
//! Downloads stay on tokio's threads under the default policy: the network
//! never waits for the CPU. Any user may select the policy for their own
//! threads; where it is refused (a seccomp filter), the thread goes on as it
//! was.

use std::marker::PhantomData;

/// While alive, the calling thread runs under `SCHED_BATCH`; dropped, it gets
/// its previous policy back (a thread of tokio's blocking pool is reused). Not
/// `Send`: it must be dropped on the thread it changed.
pub struct BatchPolicy {
    previous: Option<libc::c_int>,
    _this_thread: PhantomData<*const ()>,
}

impl BatchPolicy {
    /// Puts the calling thread under `SCHED_BATCH` (if it is under the default
    /// policy: a real-time thread is left alone).
    pub fn enter() -> Self {
        // SAFETY: both calls take this thread (pid 0) and a valid parameter.
        let previous = unsafe { libc::sched_getscheduler(0) };
        if previous != libc::SCHED_OTHER {
            return BatchPolicy {
                previous: None,
                _this_thread: PhantomData,
            };
        }
        let param = libc::sched_param { sched_priority: 0 };
        let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } == 0;
        if !set {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "SCHED_BATCH refused; the pipeline thread keeps the default policy"
            );
        }
        BatchPolicy {
            previous: set.then_some(previous),
            _this_thread: PhantomData,
        }
    }
}

impl Drop for BatchPolicy {
    fn drop(&mut self) {
        if let Some(previous) = self.previous {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: as in `enter`.
            unsafe { libc::sched_setscheduler(0, previous, &param) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> libc::c_int {
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn a_thread_is_batch_while_entered_and_gets_its_policy_back() {
        std::thread::spawn(|| {
            let start = policy();
            if start != libc::SCHED_OTHER {
                // Started under another policy (a test run under `chrt`): left alone.
                drop(BatchPolicy::enter());
                assert_eq!(policy(), start);
                return;
            }
            {
                let _batch = BatchPolicy::enter();
                assert_eq!(policy(), libc::SCHED_BATCH);
                // Nested: already batch, so left alone and not restored.
                drop(BatchPolicy::enter());
                assert_eq!(policy(), libc::SCHED_BATCH);
            }
            assert_eq!(policy(), libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }
}
