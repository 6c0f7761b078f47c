//! When and how long to wait before trying a request again: exponential backoff
//! with jitter, `Retry-After`, and which failures are worth another attempt.

use crate::oci::record::RateLimit;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::rng::Rng;

/// How hard to try.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (docker: 5). 1 means no retries.
    pub attempts: u32,
    /// Delay before the second attempt; doubles with each further one.
    pub base_delay: Duration,
    /// Cap of the exponential delay.
    pub max_delay: Duration,
    /// The longest `Retry-After` pulltime waits; a registry that asks for more
    /// (a rate limit measured in hours) fails the request instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay after failed attempt `attempt` (1-based): "equal jitter", half the
    /// exponential delay fixed and half random, so clients that failed together do
    /// not retry together, yet the delay still grows.
    pub fn backoff(&self, attempt: u32, jitter: &Jitter) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay);
        let half = exp / 2;
        half + half.mul_f64(jitter.unit())
    }
}

/// What failed attempts cost one request, one blob over its resumptions, or a
/// whole run: the record's `retries` and `fault_s`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RetryCost {
    /// Attempts after the first.
    pub retries: u32,
    /// Time spent in failed attempts and waiting before the next one.
    pub lost: Duration,
}

impl RetryCost {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: RetryCost) {
        self.retries += other.retries;
        self.lost += other.lost;
    }
}

/// Statuses a registry or CDN returns for trouble that may pass.
pub fn retriable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// The `Retry-After` header as a delay: delta-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The rate-limit headers (Docker Hub's `ratelimit-limit` and
/// `ratelimit-remaining`) in words: `0 of 100 pulls left per 6 h`.
pub fn rate_limit_words(headers: &HeaderMap) -> Option<String> {
    let get = |name: &str| headers.get(name)?.to_str().ok();
    RateLimit::words_of(get("ratelimit-limit"), get("ratelimit-remaining")?)
}

/// A 429 whose quota is spent (`ratelimit-remaining: 0`): waiting a few
/// seconds will not help, so it is not retried.
pub fn quota_spent(headers: &HeaderMap) -> bool {
    headers
        .get("ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::oci::rate_limit::quota)
        .is_some_and(|(n, _)| n == 0)
}

/// A shared source of jitter (seeded from the clock: retries need not repeat).
#[derive(Debug)]
pub struct Jitter(Mutex<Rng>);

impl Default for Jitter {
    fn default() -> Self {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Jitter(Mutex::new(Rng::new(seed)))
    }
}

impl Jitter {
    /// A generator with a fixed seed (tests).
    pub fn seeded(seed: u64) -> Self {
        Jitter(Mutex::new(Rng::new(seed)))
    }

    /// Uniform in [0, 1).
    pub fn unit(&self) -> f64 {
        self.0.lock().expect("jitter lock").unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_band_and_is_capped() {
        let p = RetryPolicy::default();
        let j = Jitter::seeded(7);
        for attempt in 1..=12u32 {
            let full = (p.base_delay * 2u32.pow(attempt - 1)).min(p.max_delay);
            for _ in 0..50 {
                let d = p.backoff(attempt, &j);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} vs {full:?}"
                );
            }
        }
        // Jitter actually varies.
        let a: Vec<_> = (0..10).map(|_| p.backoff(3, &j)).collect();
        assert!(a.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn rate_limits_in_words() {
        let mut h = HeaderMap::new();
        assert_eq!(rate_limit_words(&h), None);
        h.insert("ratelimit-remaining", "0;w=21600".parse().unwrap());
        assert!(quota_spent(&h));
        assert_eq!(rate_limit_words(&h).unwrap(), "0 pulls left");
        h.insert("ratelimit-limit", "100;w=21600".parse().unwrap());
        assert_eq!(rate_limit_words(&h).unwrap(), "0 of 100 pulls left per 6 h");
        h.insert("ratelimit-remaining", "97;w=21600".parse().unwrap());
        assert!(!quota_spent(&h));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(100);
        h.insert(RETRY_AFTER, httpdate::fmt_http_date(later).parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(95) && d <= Duration::from_secs(100),
            "{d:?}"
        );
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retriable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 206, 307, 400, 401, 403, 404, 416, 501] {
            assert!(!retriable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
