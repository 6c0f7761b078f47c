//! Network shaping for the embedded registry: a token bucket per response (one
//! connection carries one response at a time with HTTP/1.1) and one for the whole
//! listener, plus round-trip delays per request and per new connection, with
//! seeded jitter so runs are repeatable.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::profiles::network::NetworkProfile;

/// Bytes per second with a small burst; callers go into debt and sleep it off, so
/// concurrent users of one bucket share its rate.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

/// Below this much debt nobody sleeps (timer resolution; keeps fast links cheap).
const MIN_SLEEP: Duration = Duration::from_millis(1);

impl TokenBucket {
    /// A bucket of `rate` bytes/s holding 10 ms of traffic, at least 16 KiB and at
    /// most 256 KiB or 2 ms of traffic, whichever is more: enough to absorb the
    /// timer's millisecond ticks (below that, oversleeping loses rate), small
    /// enough that an idle 1 Gbit/s link does not send its first megabyte above
    /// line rate.
    pub fn new(rate: f64) -> Self {
        let most = (rate * 0.002).max(256.0 * 1024.0);
        let burst = (rate * 0.010).clamp(16.0 * 1024.0, most);
        TokenBucket {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes `n` bytes' worth of tokens, waiting if the bucket is in debt.
    pub async fn take(&self, n: usize) {
        let wait = {
            let mut s = self.state.lock().expect("bucket lock");
            let now = Instant::now();
            let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
            s.0 = (s.0 + refill).min(self.burst) - n as f64;
            s.1 = now;
            if s.0 < 0.0 {
                Duration::from_secs_f64(-s.0 / self.rate)
            } else {
                Duration::ZERO
            }
        };
        if wait >= MIN_SLEEP {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Sleeps `d` to within tens of microseconds. tokio's timer has millisecond ticks
/// and rounds up, so a LAN's 0.3 ms round trip would take 1-2 ms: delays over 4 ms
/// sleep on the timer until 2 ms are left; the rest (all of a shorter delay)
/// sleeps on a blocking thread (nanosleep).
pub async fn sleep_precisely(d: Duration) {
    const FINE: Duration = Duration::from_millis(2);
    let deadline = Instant::now() + d;
    if d > 2 * FINE {
        tokio::time::sleep(d - FINE).await;
    }
    let rest = deadline.saturating_duration_since(Instant::now());
    if !rest.is_zero() {
        // A blocking-pool thread that cannot start means the runtime is shutting
        // down; the delay no longer matters then.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

/// The shaping state of one listener.
#[derive(Debug)]
pub struct Shaper {
    profile: NetworkProfile,
    link: Option<TokenBucket>,
    seen: Mutex<HashSet<SocketAddr>>,
    rng: Mutex<crate::rng::Rng>,
}

impl Shaper {
    /// Shaping for `profile`, jitter seeded with `seed`.
    pub fn new(profile: NetworkProfile, seed: u64) -> Self {
        Shaper {
            link: profile.link_bandwidth.map(TokenBucket::new),
            profile,
            seen: Mutex::new(HashSet::new()),
            rng: Mutex::new(crate::rng::Rng::new(seed)),
        }
    }

    /// Sleeps for one round trip (plus the handshake round trips when `peer` is a
    /// connection not seen before), with jitter.
    pub async fn request_delay(&self, peer: Option<SocketAddr>) {
        let mut rtts = 1.0;
        if peer.is_some_and(|p| self.seen.lock().expect("seen lock").insert(p)) {
            rtts += self.profile.setup_rtts();
        }
        let ms = rtts * self.profile.rtt_ms + self.jitter_ms();
        if ms > 0.0 {
            sleep_precisely(Duration::from_secs_f64(ms / 1e3)).await;
        }
    }

    fn jitter_ms(&self) -> f64 {
        if self.profile.jitter_ms == 0.0 {
            return 0.0;
        }
        let u = self.rng.lock().expect("rng lock").unit();
        (u * 2.0 - 1.0) * self.profile.jitter_ms
    }

    /// Paces a response body: per-response bucket at the connection bandwidth and
    /// the listener's shared bucket at the link bandwidth.
    pub fn shape<S, E>(
        self: &std::sync::Arc<Self>,
        body: S,
    ) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
        E: Send + 'static,
    {
        let conn = self.profile.connection_bandwidth.map(TokenBucket::new);
        let shaper = self.clone();
        futures_util::stream::unfold(
            (body, conn, shaper),
            |(mut body, conn, shaper)| async move {
                let item = body.next().await?;
                if let Ok(chunk) = &item {
                    // Pace in slices so one big chunk does not burst past the rate.
                    for slice in chunk.chunks(16 * 1024) {
                        if let Some(c) = &conn {
                            c.take(slice.len()).await;
                        }
                        if let Some(l) = &shaper.link {
                            l.take(slice.len()).await;
                        }
                    }
                }
                Some((item, (body, conn, shaper)))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connection_round_trips_are_charged_once() {
        let mut p = NetworkProfile::unshaped();
        p.rtt_ms = 20.0;
        p.connect_rtts = 2.0;
        let s = Shaper::new(p, 1);
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let t = Instant::now();
        s.request_delay(Some(peer)).await;
        let first = t.elapsed();
        let t = Instant::now();
        s.request_delay(Some(peer)).await;
        let second = t.elapsed();
        // Lower bounds only: sleeping never returns early, but a busy machine can be late.
        assert!(first >= Duration::from_millis(60), "{first:?}");
        assert!(second >= Duration::from_millis(20), "{second:?}");
        assert!(first > second);
    }

    #[tokio::test]
    async fn short_round_trips_are_not_rounded_up_to_timer_ticks() {
        // tokio's timer alone turns 300 us into 1-2 ms; take the best of several
        // tries so a busy machine does not fail the test, but a millisecond-tick
        // sleep would.
        let best = (0..20)
            .map(|_| async {
                let t = Instant::now();
                sleep_precisely(Duration::from_micros(300)).await;
                t.elapsed()
            })
            .collect::<Vec<_>>();
        let mut fastest = Duration::MAX;
        for f in best {
            fastest = fastest.min(f.await);
        }
        assert!(fastest >= Duration::from_micros(300), "{fastest:?}");
        assert!(fastest < Duration::from_micros(900), "{fastest:?}");
    }

    #[test]
    fn jitter_is_bounded_and_seeded() {
        let mut p = NetworkProfile::unshaped();
        p.rtt_ms = 10.0;
        p.jitter_ms = 3.0;
        let a = Shaper::new(p.clone(), 7);
        let b = Shaper::new(p, 7);
        for _ in 0..1000 {
            let (x, y) = (a.jitter_ms(), b.jitter_ms());
            assert_eq!(x, y);
            assert!((-3.0..=3.0).contains(&x));
        }
    }
}
