//! Trying again: a request whose answer is transient (a 429, a 503, no answer at
//! all) and a body that breaks off are attempted again with backoff, as the run's
//! [`RetryPolicy`](crate::registry::retry::RetryPolicy) allows, and what the
//! failed attempts cost is counted once.

use std::time::{Duration, Instant};

use reqwest::{Method, Response, Url};

use super::error_body::append_detail;
use super::log::strip_query;
use super::{RegistryClient, Sent};
use crate::oci::record::RequestKind;
use crate::registry::error::RegistryError;
use crate::registry::retry::{RetryCost, quota_spent, retriable_status, retry_after};

impl RegistryClient {
    /// Retries and time lost over every request of this client so far.
    pub fn retry_cost(&self) -> RetryCost {
        *self.retry_cost.lock().expect("retry cost lock")
    }

    /// Counts a retry that happened outside [`RegistryClient::send`] (a resumed body).
    pub fn note_retry(&self, cost: RetryCost) {
        self.retry_cost.lock().expect("retry cost lock").add(cost);
    }

    /// The backoff before retry number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.retry.backoff(attempt, &self.jitter)
    }

    /// Waits `delay`, or until the user stops the run.
    async fn wait_or_stop(&self, delay: Duration) -> Result<(), RegistryError> {
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = self.cancel.cancelled() => Err(RegistryError::Cancelled("interrupted".into())),
        }
    }

    /// Runs `attempt` until it gives a response whose status is not transient,
    /// at most the policy's number of times, waiting with backoff (or as long as
    /// `Retry-After` asks) in between. Every attempt is logged; a stop request
    /// (Ctrl-C) ends the wait.
    pub(super) async fn with_retries<F, Fut>(
        &self,
        kind: RequestKind,
        method: &Method,
        url: &Url,
        mut attempt: F,
    ) -> Result<Sent, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Response, RegistryError>>,
    {
        let first_started = Instant::now();
        let mut retry_cost = RetryCost::default();
        let attempts = self.retry.attempts.max(1);
        for n in 1..=attempts {
            let started = Instant::now();
            let outcome = tokio::select! {
                r = attempt() => r,
                _ = self.cancel.cancelled() => return Err(RegistryError::Cancelled("interrupted".into())),
            };
            let (delay, why) = match outcome {
                Ok(resp) => {
                    let status = resp.status();
                    let index = self.log(url, kind, method.as_str(), started, &resp);
                    if !retriable_status(status) || quota_spent(resp.headers()) {
                        return Ok(Sent {
                            response: resp,
                            log_index: index,
                            started,
                            first_started,
                            retry_cost,
                        });
                    }
                    let asked = retry_after(resp.headers());
                    if let Some(a) = asked.filter(|a| *a > self.retry.max_retry_after) {
                        let mut e = self.status_error(method.as_str(), url.as_str(), resp).await;
                        append_detail(
                            &mut e,
                            &format!(
                                "; the registry asks to retry after {} s, longer than the {} s pulltime waits",
                                a.as_secs(),
                                self.retry.max_retry_after.as_secs()
                            ),
                        );
                        return Err(e);
                    }
                    if n == attempts {
                        let mut e = self.status_error(method.as_str(), url.as_str(), resp).await;
                        append_detail(
                            &mut e,
                            &format!(
                                " (gave up after {n} attempt{})",
                                if n == 1 { "" } else { "s" }
                            ),
                        );
                        return Err(e);
                    }
                    let backoff = self.backoff(n);
                    (
                        asked.map_or(backoff, |a| a.max(backoff)),
                        format!("HTTP {status}"),
                    )
                }
                Err(RegistryError::Unreachable { url: u, reason }) => {
                    self.log_failure(url, kind, method.as_str(), started);
                    if n == attempts {
                        let reason = if n > 1 {
                            format!("{reason} (gave up after {n} attempts)")
                        } else {
                            reason
                        };
                        return Err(RegistryError::Unreachable { url: u, reason });
                    }
                    (self.backoff(n), reason)
                }
                Err(e) => return Err(e),
            };
            tracing::info!(
                kind = kind.as_str(),
                url = %strip_query(url),
                attempt = n,
                delay_ms = delay.as_millis() as u64,
                why,
                "retrying"
            );
            self.wait_or_stop(delay).await?;
            let lost = RetryCost {
                retries: 1,
                lost: started.elapsed(),
            };
            retry_cost.add(lost);
            self.note_retry(lost);
        }
        unreachable!("the last attempt returns")
    }

    /// Runs `fetch` (a request and the reading of its whole body) again when the
    /// body breaks off, with backoff, up to the policy's attempts.
    pub async fn retry_body<T, F, Fut>(&self, mut fetch: F) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, RegistryError>>,
    {
        let attempts = self.retry.attempts.max(1);
        for n in 1.. {
            let started = Instant::now();
            // What the request's own retries already counted is not counted again.
            let counted_before = self.retry_cost().lost;
            match fetch().await {
                Err(RegistryError::Transfer { what, reason }) if n < attempts => {
                    let delay = self.backoff(n);
                    tracing::info!(what, reason, attempt = n, "body cut off; fetching again");
                    self.wait_or_stop(delay).await?;
                    let counted = self.retry_cost().lost.saturating_sub(counted_before);
                    self.note_retry(RetryCost {
                        retries: 1,
                        lost: started.elapsed().saturating_sub(counted),
                    });
                }
                Err(RegistryError::Transfer { what, reason }) => {
                    return Err(RegistryError::Transfer {
                        what,
                        reason: format!("{reason}; gave up after {n} attempts"),
                    });
                }
                r => return r,
            }
        }
        unreachable!("the loop returns")
    }
}
