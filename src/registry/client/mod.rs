//! The registry client: one per run, so every run starts with new connections and
//! new tokens. Requests go through [`RegistryClient::send`], which answers auth
//! challenges, logs timing into the run's [`RunClock`] and maps statuses to errors.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, LOCATION, RANGE, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode, Url};

use super::auth::{Challenge, Credentials, Secret, parse_challenge, repository_scope};
use tokio_util::sync::CancellationToken;

use super::error::RegistryError;
use super::retry::{Jitter, RetryPolicy, retriable_status, retry_after};
use super::transport::{RunClock, client};
use crate::oci::record::{RateLimit, RequestRecord};
use crate::oci::reference::Reference;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (loopback registries, `--plain-http`).
    Http,
    /// TLS.
    Https,
}

impl Scheme {
    /// `http` / `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// Docker's rule: plain HTTP for loopback registries, or when asked.
    pub fn for_reference(reference: &Reference, plain_http: bool) -> Scheme {
        if plain_http || reference.is_loopback() {
            Scheme::Http
        } else {
            Scheme::Https
        }
    }
}

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Credentials for Basic auth or for the token endpoint.
    pub credentials: Option<Credentials>,
    /// Connect and read timeout.
    pub timeout: Duration,
    /// Retries of failed requests and cut-off bodies.
    pub retry: RetryPolicy,
    /// The user's stop (Ctrl-C in the CLI): once cancelled, requests in flight and
    /// retry waits end with [`RegistryError::Cancelled`].
    pub cancel: CancellationToken,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            scheme: Scheme::Https,
            credentials: None,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            cancel: CancellationToken::new(),
        }
    }
}

/// What failed attempts cost one request (or one blob, over its resumptions).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Attempts after the first.
    pub retries: u32,
    /// Time spent in failed attempts and waiting before the next one.
    pub lost: Duration,
}

impl Faults {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: Faults) {
        self.retries += other.retries;
        self.lost += other.lost;
    }
}

/// A response after any retries.
pub struct Sent {
    /// The final response (any non-retriable status).
    pub response: Response,
    /// Its position in the run's request log.
    pub log_index: usize,
    /// When the final attempt started.
    pub started: Instant,
    /// When the first attempt started.
    pub first_started: Instant,
    /// What the failed attempts cost.
    pub faults: Faults,
}

/// A blob response whose body has not been read yet.
pub struct BlobResponse {
    /// The response that carries the body (after any redirect).
    pub response: Response,
    /// When the first request for this blob started (failed attempts included).
    pub started: Instant,
    /// From the start of the successful attempt to the headers of `response`.
    pub ttfb: Duration,
    /// Time of the redirect hop (the registry's 3xx), zero when there was none.
    pub redirect: Duration,
    /// Position of the body-carrying request in the run's request log.
    pub log_index: usize,
    /// What failed attempts cost before this response.
    pub faults: Faults,
}

/// The most redirects followed for one blob.
const MAX_REDIRECTS: usize = 5;

/// A client for one repository of one registry, used for one run.
pub struct RegistryClient {
    http: reqwest::Client,
    clock: RunClock,
    base: Url,
    host: String,
    repository: String,
    reference: String,
    credentials: Option<Credentials>,
    push: bool,
    challenge: std::sync::Mutex<Option<Challenge>>,
    tokens: tokio::sync::Mutex<HashMap<String, Secret>>,
    ratelimit: std::sync::Mutex<Option<RateLimit>>,
    retry: RetryPolicy,
    jitter: Jitter,
    faults: std::sync::Mutex<Faults>,
    cancel: CancellationToken,
}

impl RegistryClient {
    /// A client for `reference`'s repository; `push` asks for push scope too.
    pub fn new(
        reference: &Reference,
        options: &ClientOptions,
        clock: RunClock,
        push: bool,
    ) -> Result<Self, RegistryError> {
        let base_str = format!("{}://{}/", options.scheme.as_str(), reference.api_host());
        let base = Url::parse(&base_str).map_err(|e| RegistryError::Invalid {
            what: "registry address".into(),
            reason: format!("{base_str}: {e}"),
        })?;
        let http = client(&clock, options.timeout).map_err(|e| RegistryError::Unreachable {
            url: base_str.clone(),
            reason: format!("cannot build HTTP client: {e}"),
        })?;
        Ok(RegistryClient {
            http,
            clock,
            host: reference.api_host().to_string(),
            base,
            repository: reference.repository.clone(),
            reference: reference.to_string(),
            credentials: options.credentials.clone(),
            push,
            challenge: std::sync::Mutex::new(None),
            tokens: tokio::sync::Mutex::new(HashMap::new()),
            ratelimit: std::sync::Mutex::new(None),
            retry: options.retry.clone(),
            jitter: Jitter::default(),
            faults: std::sync::Mutex::new(Faults::default()),
            cancel: options.cancel.clone(),
        })
    }

    /// The stop this client obeys ([`ClientOptions::cancel`]).
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The run clock requests are logged on.
    pub fn clock(&self) -> &RunClock {
        &self.clock
    }

    /// Repository this client talks to.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Retries and time lost over every request of this client so far.
    pub fn faults(&self) -> Faults {
        *self.faults.lock().expect("faults lock")
    }

    /// Counts a retry that happened outside [`RegistryClient::send`] (a resumed body).
    pub fn note_fault(&self, f: Faults) {
        self.faults.lock().expect("faults lock").add(f);
    }

    /// The backoff before retry number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.retry.backoff(attempt, &self.jitter)
    }

    /// The last rate-limit headers seen.
    pub fn ratelimit(&self) -> Option<RateLimit> {
        self.ratelimit.lock().expect("ratelimit lock").clone()
    }

    /// `GET /v2/`: checks the registry speaks the API and learns its auth challenge.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let url = self.url("v2/")?;
        let sent = self
            .with_retries("ping", &Method::GET, &url, || {
                self.raw(Method::GET, url.clone(), None, HeaderMap::new(), None)
            })
            .await?;
        let resp = sent.response;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            self.learn_challenge(resp.headers());
            return Ok(());
        }
        if status.is_success() {
            return Ok(());
        }
        Err(self.status_error("GET", url.as_str(), resp).await)
    }

    /// `base + path`, with the repository name filled in by the caller.
    pub fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base.join(path).map_err(|e| RegistryError::Invalid {
            what: "URL".into(),
            reason: format!("{path}: {e}"),
        })
    }

    /// URL of `/v2/<repo>/<rest>`.
    pub fn repo_url(&self, rest: &str) -> Result<Url, RegistryError> {
        self.url(&format!("v2/{}/{}", self.repository, rest))
    }

    /// Sends an authorised request to the registry, retrying transient failures
    /// and answering one 401 challenge (which re-runs the token flow once).
    /// Returns the final response with any status but a transient one.
    pub async fn send(
        &self,
        kind: &str,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Sent, RegistryError> {
        let mut retried = false;
        let mut faults = Faults::default();
        let first_started = Instant::now();
        // Credentials and tokens go to the registry only, never to another host a
        // Location header names (upload sessions on other hosts, redirects).
        let same_origin = url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default();
        loop {
            let auth = if same_origin {
                self.authorization().await?
            } else {
                None
            };
            let sent = self
                .with_retries(kind, &method, &url, || {
                    self.raw(
                        method.clone(),
                        url.clone(),
                        auth.clone(),
                        headers.clone(),
                        body.clone(),
                    )
                })
                .await?;
            faults.add(sent.faults);
            let resp = sent.response;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !retried {
                let learnt = self.learn_challenge(resp.headers());
                if learnt {
                    // The token cache may hold a token that no longer works (it
                    // expired mid-pull): fetch a new one, once.
                    self.tokens.lock().await.clear();
                    retried = true;
                    continue;
                }
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let detail = error_detail(resp).await;
                return Err(RegistryError::AuthRefused {
                    host: self.host.clone(),
                    status: status.as_u16(),
                    detail,
                });
            }
            return Ok(Sent {
                response: resp,
                log_index: sent.log_index,
                started: sent.started,
                first_started,
                faults,
            });
        }
    }

    /// Runs `attempt` until it gives a response whose status is not transient,
    /// at most the policy's number of times, waiting with backoff (or as long as
    /// `Retry-After` asks) in between. Every attempt is logged; a stop request
    /// (Ctrl-C) ends the wait.
    async fn with_retries<F, Fut>(
        &self,
        kind: &str,
        method: &Method,
        url: &Url,
        mut attempt: F,
    ) -> Result<Sent, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Response, RegistryError>>,
    {
        let first_started = Instant::now();
        let mut faults = Faults::default();
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
                    let index = self.log(url, kind, method.as_str(), status.as_u16(), started);
                    if !retriable_status(status) {
                        return Ok(Sent {
                            response: resp,
                            log_index: index,
                            started,
                            first_started,
                            faults,
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
                        append_detail(&mut e, &format!(" (gave up after {n} attempts)"));
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
                kind,
                url = %strip_query(url),
                attempt = n,
                delay_ms = delay.as_millis() as u64,
                why,
                "retrying"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.cancel.cancelled() => return Err(RegistryError::Cancelled("interrupted".into())),
            }
            let lost = Faults {
                retries: 1,
                lost: started.elapsed(),
            };
            faults.add(lost);
            self.note_fault(lost);
        }
        unreachable!("the last attempt returns")
    }

    /// Reads a whole body, up to `limit` bytes, timing it into the request log.
    pub async fn read_body(
        &self,
        resp: Response,
        index: usize,
        what: &str,
        limit: u64,
    ) -> Result<Bytes, RegistryError> {
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(RegistryError::TooLarge {
                what: what.into(),
                limit,
            });
        }
        let t = Instant::now();
        let url = strip_query(resp.url());
        let mut stream = resp.bytes_stream();
        let mut buf = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Transfer {
                what: format!("{what} from {url}"),
                reason: format!("body cut off: {e}"),
            })?;
            if buf.len() as u64 + chunk.len() as u64 > limit {
                return Err(RegistryError::TooLarge {
                    what: what.into(),
                    limit,
                });
            }
            buf.extend_from_slice(&chunk);
        }
        self.clock.finish_body(index, t.elapsed(), buf.len() as u64);
        Ok(Bytes::from(buf))
    }

    /// GET a manifest by tag or digest with the given `Accept` list. Returns the
    /// body, the media type the registry declared, and the `Docker-Content-Digest`.
    pub async fn get_manifest(
        &self,
        kind: &str,
        reference: &str,
        accept: &str,
        limit: u64,
    ) -> Result<(Bytes, Option<String>, Option<String>), RegistryError> {
        self.retry_body(|| self.get_manifest_once(kind, reference, accept, limit))
            .await
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
            let counted_before = self.faults().lost;
            match fetch().await {
                Err(RegistryError::Transfer { what, reason }) if n < attempts => {
                    let delay = self.backoff(n);
                    tracing::info!(what, reason, attempt = n, "body cut off; fetching again");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.cancel.cancelled() => return Err(RegistryError::Cancelled("interrupted".into())),
                    }
                    let counted = self.faults().lost.saturating_sub(counted_before);
                    self.note_fault(Faults {
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

    async fn get_manifest_once(
        &self,
        kind: &str,
        reference: &str,
        accept: &str,
        limit: u64,
    ) -> Result<(Bytes, Option<String>, Option<String>), RegistryError> {
        let url = self.repo_url(&format!("manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, accept.parse().expect("static accept header"));
        let sent = self
            .send(kind, Method::GET, url.clone(), headers, None)
            .await?;
        let (resp, index) = (sent.response, sent.log_index);
        self.note_ratelimit(resp.headers());
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            let code = error_code(resp).await.unwrap_or_else(|| "404".into());
            return Err(RegistryError::ManifestUnknown {
                reference: self.reference.clone(),
                manifest: reference.into(),
                code,
            });
        }
        if !status.is_success() {
            return Err(self.status_error("GET", url.as_str(), resp).await);
        }
        let media_type = header_str(resp.headers(), CONTENT_TYPE.as_str());
        let digest = header_str(resp.headers(), "docker-content-digest");
        let body = self.read_body(resp, index, "manifest", limit).await?;
        Ok((body, media_type, digest))
    }

    /// Starts a blob GET, following redirects (to a CDN) by hand without sending our
    /// credentials to the other host. The body is left for the caller to stream.
    pub async fn open_blob(&self, kind: &str, digest: &str) -> Result<BlobResponse, RegistryError> {
        self.open_blob_from(kind, digest, 0).await
    }

    /// [`RegistryClient::open_blob`] from byte `offset` on (`Range: bytes=offset-`,
    /// to resume a cut-off body). The registry may ignore the range and answer 200
    /// with the whole blob: the caller checks the status.
    pub async fn open_blob_from(
        &self,
        kind: &str,
        digest: &str,
        offset: u64,
    ) -> Result<BlobResponse, RegistryError> {
        let url = self.repo_url(&format!("blobs/{digest}"))?;
        let mut headers = HeaderMap::new();
        if offset > 0 {
            headers.insert(
                RANGE,
                format!("bytes={offset}-").parse().expect("range header"),
            );
        }
        let sent = self
            .send(kind, Method::GET, url.clone(), headers.clone(), None)
            .await?;
        let (mut resp, mut index, mut started) = (sent.response, sent.log_index, sent.started);
        let mut faults = sent.faults;
        let mut redirect = Duration::ZERO;
        for _ in 0..MAX_REDIRECTS {
            if !resp.status().is_redirection() {
                break;
            }
            if redirect.is_zero() {
                redirect = started.elapsed();
            }
            let location = header_str(resp.headers(), LOCATION.as_str()).ok_or_else(|| {
                RegistryError::Invalid {
                    what: format!("redirect for blob {digest}"),
                    reason: "no Location header".into(),
                }
            })?;
            let next = resp
                .url()
                .join(&location)
                .map_err(|e| RegistryError::Invalid {
                    what: format!("redirect for blob {digest}"),
                    reason: format!("bad Location: {e}"),
                })?;
            let hop = self
                .with_retries("redirect", &Method::GET, &next, || {
                    self.raw(Method::GET, next.clone(), None, headers.clone(), None)
                })
                .await?;
            faults.add(hop.faults);
            if hop.faults.retries > 0 {
                started = hop.started;
            }
            (resp, index) = (hop.response, hop.log_index);
        }
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Err(RegistryError::BlobUnknown {
                repository: self.repository.clone(),
                digest: digest.into(),
            });
        }
        if !status.is_success() {
            return Err(self
                .status_error("GET", resp.url().clone().as_ref(), resp)
                .await);
        }
        Ok(BlobResponse {
            ttfb: started.elapsed(),
            response: resp,
            started: sent.first_started,
            redirect,
            log_index: index,
            faults,
        })
    }

    /// The `Authorization` header for this repository, fetching a token if the
    /// registry asked for bearer auth.
    async fn authorization(&self) -> Result<Option<Secret>, RegistryError> {
        let challenge = self.challenge.lock().expect("challenge lock").clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials.as_ref().map(|c| c.basic_header())),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let scope = repository_scope(&self.repository, self.push);
                let mut tokens = self.tokens.lock().await;
                if let Some(t) = tokens.get(&scope) {
                    return Ok(Some(Secret::new(format!("Bearer {}", t.expose()))));
                }
                let token = self.fetch_token(&realm, service.as_deref(), &scope).await?;
                let header = Secret::new(format!("Bearer {}", token.expose()));
                tokens.insert(scope, token);
                Ok(Some(header))
            }
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<Secret, RegistryError> {
        let mut url = Url::parse(realm).map_err(|e| RegistryError::Invalid {
            what: "token realm".into(),
            reason: format!("{realm}: {e}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RegistryError::Invalid {
                what: "token realm".into(),
                reason: format!("{realm}: not an http(s) URL"),
            });
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            q.append_pair("scope", scope);
        }
        let auth = self.credentials.as_ref().map(|c| c.basic_header());
        let sent = self
            .with_retries("token", &Method::GET, &url, || {
                self.raw(
                    Method::GET,
                    url.clone(),
                    auth.clone(),
                    HeaderMap::new(),
                    None,
                )
            })
            .await?;
        let (resp, index) = (sent.response, sent.log_index);
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::AuthRefused {
                host: url.host_str().unwrap_or("").to_string(),
                status: status.as_u16(),
                detail: error_detail(resp).await,
            });
        }
        if !status.is_success() {
            return Err(self.status_error("GET", url.as_str(), resp).await);
        }
        let body = self
            .read_body(resp, index, "token response", 1 << 20)
            .await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Invalid {
                what: "token response".into(),
                reason: e.to_string(),
            })?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(|| RegistryError::Invalid {
                what: "token response".into(),
                reason: "no token or access_token field".into(),
            })
    }

    fn learn_challenge(&self, headers: &HeaderMap) -> bool {
        let parsed = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            // Prefer bearer when a registry offers both.
            .min_by_key(|c| matches!(c, Challenge::Basic));
        match parsed {
            Some(Challenge::Basic) if self.credentials.is_none() => false,
            Some(c) => {
                *self.challenge.lock().expect("challenge lock") = Some(c);
                true
            }
            None => false,
        }
    }

    fn note_ratelimit(&self, headers: &HeaderMap) {
        let limit = header_str(headers, "ratelimit-limit");
        let remaining = header_str(headers, "ratelimit-remaining");
        if let (Some(limit), Some(remaining)) = (limit, remaining) {
            *self.ratelimit.lock().expect("ratelimit lock") = Some(RateLimit { limit, remaining });
        }
    }

    async fn raw(
        &self,
        method: Method,
        url: Url,
        auth: Option<Secret>,
        mut headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, RegistryError> {
        if let Some(a) = auth {
            let mut v: reqwest::header::HeaderValue =
                a.expose().parse().map_err(|_| RegistryError::Invalid {
                    what: "credentials".into(),
                    reason: "contain characters not allowed in an HTTP header".into(),
                })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let mut req = self.http.request(method, url.clone()).headers(headers);
        if let Some(b) = body {
            req = req.body(b);
        }
        req.send().await.map_err(|e| RegistryError::Unreachable {
            url: strip_query(&url),
            reason: error_chain(&e),
        })
    }

    fn log(&self, url: &Url, kind: &str, method: &str, status: u16, started: Instant) -> usize {
        // Never log headers: they carry tokens and credentials.
        tracing::debug!(
            kind,
            method,
            url = %strip_query(url),
            status,
            ttfb_ms = started.elapsed().as_secs_f64() * 1e3,
            "request"
        );
        self.clock.log_request(RequestRecord {
            kind: kind.into(),
            method: method.into(),
            host: host_port(url),
            path: url.path().into(),
            status,
            start_s: self.clock.offset(started),
            ttfb_s: started.elapsed().as_secs_f64(),
            body_s: 0.0,
            bytes: 0,
        })
    }

    /// Logs an attempt that got no response (status 0).
    fn log_failure(&self, url: &Url, kind: &str, method: &str, started: Instant) {
        self.log(url, kind, method, 0, started);
    }

    /// Turns an unexpected status into an error carrying the registry's message.
    pub async fn status_error(&self, method: &str, url: &str, resp: Response) -> RegistryError {
        let status = resp.status().as_u16();
        RegistryError::Status {
            method: method.into(),
            url: strip_query_str(url),
            status,
            detail: error_detail(resp).await,
        }
    }
}

fn append_detail(e: &mut RegistryError, more: &str) {
    if let RegistryError::Status { detail, .. } = e {
        detail.push_str(more);
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn host_port(url: &Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_string(),
    }
}

/// The URL without its query (CDN URLs carry signatures; never print them).
pub fn strip_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

fn strip_query_str(url: &str) -> String {
    Url::parse(url)
        .map(|u| strip_query(&u))
        .unwrap_or_else(|_| url.split('?').next().unwrap_or(url).to_string())
}

fn error_chain(e: &reqwest::Error) -> String {
    // reqwest's message includes the URL; print it without the query instead.
    let mut out = match e.url() {
        Some(u) => e.to_string().replace(u.as_str(), &strip_query(u)),
        None => e.to_string(),
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// The distribution-spec error envelope.
#[derive(serde::Deserialize)]
struct ErrorEnvelope {
    errors: Vec<ErrorItem>,
}

#[derive(serde::Deserialize)]
struct ErrorItem {
    code: Option<String>,
    message: Option<String>,
}

async fn error_envelope(resp: Response) -> Option<ErrorEnvelope> {
    // Error bodies are small; never read more than 64 KiB of one.
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        buf.extend_from_slice(&chunk);
        if buf.len() > 64 << 10 {
            return None;
        }
    }
    serde_json::from_slice(&buf).ok()
}

async fn error_code(resp: Response) -> Option<String> {
    error_envelope(resp)
        .await
        .and_then(|e| e.errors.into_iter().next())
        .and_then(|i| i.code)
}

async fn error_detail(resp: Response) -> String {
    match error_envelope(resp)
        .await
        .and_then(|e| e.errors.into_iter().next())
    {
        Some(ErrorItem { code, message }) => {
            let parts: Vec<String> = [code, message].into_iter().flatten().collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!(": {}", parts.join(": "))
            }
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_userinfo_are_stripped() {
        let u = Url::parse("https://u:p@cdn.example/blob/x?sig=SECRET&e=1").unwrap();
        assert_eq!(strip_query(&u), "https://cdn.example/blob/x");
        assert_eq!(strip_query_str("not a url?sig=1"), "not a url");
    }

    #[test]
    fn scheme_rule_follows_docker() {
        let r = Reference::parse("127.0.0.1:5000/a").unwrap();
        assert_eq!(Scheme::for_reference(&r, false), Scheme::Http);
        let r = Reference::parse("registry.example:5000/a").unwrap();
        assert_eq!(Scheme::for_reference(&r, false), Scheme::Https);
        assert_eq!(Scheme::for_reference(&r, true), Scheme::Http);
    }
}
