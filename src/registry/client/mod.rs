//! The registry client: one per run, so every run starts with new connections and
//! new tokens. Requests go through [`RegistryClient::send`], which answers auth
//! challenges (`tokens`), retries transient failures (`retries`), logs timing into
//! the run's [`RunClock`] (`log`) and leaves statuses to the caller, who turns
//! unexpected ones into errors with the registry's message (`error_body`).
//! Manifests and blobs are fetched in `fetch`.

mod error_body;
mod fetch;
mod log;
mod retries;
mod tokens;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use reqwest::{Method, Response, StatusCode, Url};
use tokio_util::sync::CancellationToken;

use super::auth::{Challenge, Credentials, Secret};
use super::error::RegistryError;
use super::options::ClientOptions;
use super::options::Scheme;
use super::proxy::{ProxyConfig, display_proxy};
use super::retry::{Jitter, RetryCost, RetryPolicy};
use super::tls::ClientCertWanted;
use super::transport::{RunClock, TransportOptions, client, tracking_connection};
use crate::oci::record::{RateLimit, RequestKind};
use crate::oci::reference::Reference;

pub use fetch::{BlobResponse, FetchedManifest};
pub use log::strip_query;

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
    pub retry_cost: RetryCost,
}

/// Put on a response whose request opened a new connection: that connection's id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenedConnection(pub usize);

/// A client for one repository of one registry, used for one run.
pub struct RegistryClient {
    http: reqwest::Client,
    clock: RunClock,
    /// `scheme://host/`: the scheme changes once, when an insecure registry
    /// turns out to have no TLS.
    base: std::sync::Mutex<Url>,
    http_fallback: bool,
    proxies: Arc<ProxyConfig>,
    client_cert_wanted: ClientCertWanted,
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
    retry_cost: std::sync::Mutex<RetryCost>,
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
        let proxies = match &options.proxies {
            Some(p) => p.clone(),
            None => Arc::new(ProxyConfig::from_env().map_err(|e| RegistryError::Invalid {
                what: "proxy settings".into(),
                reason: e.to_string(),
            })?),
        };
        let transport = TransportOptions {
            timeout: options.timeout,
            tls: options.tls.clone(),
            registry: reference.api_host().to_string(),
            proxies: proxies.clone(),
        };
        let transport = client(&clock, &transport)?;
        Ok(RegistryClient {
            http: transport.http,
            client_cert_wanted: transport.client_cert_wanted,
            clock,
            host: reference.api_host().to_string(),
            base: std::sync::Mutex::new(base),
            http_fallback: options.http_fallback && options.scheme == Scheme::Https,
            proxies,
            repository: reference.repository.clone(),
            reference: reference.to_string(),
            credentials: options.credentials.clone(),
            push,
            challenge: std::sync::Mutex::new(None),
            tokens: tokio::sync::Mutex::new(HashMap::new()),
            ratelimit: std::sync::Mutex::new(None),
            retry: options.retry.clone(),
            jitter: Jitter::default(),
            retry_cost: std::sync::Mutex::new(RetryCost::default()),
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

    /// The last rate-limit headers seen.
    pub fn ratelimit(&self) -> Option<RateLimit> {
        self.ratelimit.lock().expect("ratelimit lock").clone()
    }

    /// The scheme requests go out with (after any fallback to HTTP).
    pub fn scheme(&self) -> Scheme {
        if self.base.lock().expect("base lock").scheme() == "http" {
            Scheme::Http
        } else {
            Scheme::Https
        }
    }

    /// `GET /v2/`: checks the registry speaks the API and learns its auth challenge.
    /// For an insecure registry, HTTPS is tried once first and plain HTTP used
    /// when it fails to connect, as docker does.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let url = self.url("v2/")?;
        if self.http_fallback && self.scheme() == Scheme::Https {
            let started = Instant::now();
            match self
                .raw(Method::GET, url.clone(), None, HeaderMap::new(), None)
                .await
            {
                Ok(resp) => {
                    self.log(&url, RequestKind::Ping, "GET", started, &resp);
                    return self.answer_ping(&url, resp).await;
                }
                Err(RegistryError::Unreachable { reason, .. }) => {
                    self.log_failure(&url, RequestKind::Ping, "GET", started);
                    tracing::warn!(host = %self.host, reason, "no TLS; trying plain HTTP");
                    eprintln!(
                        "warning: insecure registry {} did not answer over HTTPS; using plain HTTP",
                        self.host
                    );
                    let _ = self.base.lock().expect("base lock").set_scheme("http");
                }
                Err(e) => return Err(e),
            }
        }
        let url = self.url("v2/")?;
        let sent = self
            .with_retries(RequestKind::Ping, &Method::GET, &url, || {
                self.raw(Method::GET, url.clone(), None, HeaderMap::new(), None)
            })
            .await?;
        self.answer_ping(&url, sent.response).await
    }

    async fn answer_ping(&self, url: &Url, resp: Response) -> Result<(), RegistryError> {
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
        let base = self.base.lock().expect("base lock").clone();
        base.join(path).map_err(|e| RegistryError::Invalid {
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
        kind: RequestKind,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Sent, RegistryError> {
        let mut retried = false;
        let mut retry_cost = RetryCost::default();
        let first_started = Instant::now();
        // Credentials and tokens go to the registry only, never to another host a
        // Location header names (upload sessions on other hosts, redirects).
        let base = self.base.lock().expect("base lock").clone();
        let same_origin = url.scheme() == base.scheme()
            && url.host_str() == base.host_str()
            && url.port_or_known_default() == base.port_or_known_default();
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
            retry_cost.add(sent.retry_cost);
            let resp = sent.response;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !retried {
                let learnt = self.learn_challenge(resp.headers());
                if learnt {
                    // The token sent may no longer work (it expired mid-pull):
                    // forget it and fetch a new one, once.
                    self.forget_token(auth.as_ref()).await;
                    retried = true;
                    continue;
                }
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let bearer = matches!(
                    *self.challenge.lock().expect("challenge lock"),
                    Some(Challenge::Bearer { .. })
                );
                let detail = error_body::error_detail(resp).await;
                // A fresh token from the token service, still refused: it grants
                // nothing on this repository.
                if bearer && auth.is_some() {
                    return Err(RegistryError::AccessDenied {
                        repository: self.repository.clone(),
                        host: self.host.clone(),
                        status: status.as_u16(),
                        detail,
                    });
                }
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
                retry_cost,
            });
        }
    }

    /// One attempt: the request as given, with `auth` as its `Authorization`
    /// header (marked sensitive so no debug output shows it).
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
        let (sent, opened) = tracking_connection(req.send()).await;
        let mut resp = sent.map_err(|e| {
            let mut reason = log::error_chain(&e);
            // Only a failure that can be the refusal of a missing certificate
            // (TLS 1.3 may report it as a bare "connection closed", or, when the
            // request was written after the server's close, as a reset or EPIPE).
            let tls_like = [
                "closed",
                "alert",
                "certificate",
                "handshake",
                "reset",
                "broken pipe",
            ]
            .iter()
            .any(|w| reason.to_ascii_lowercase().contains(w));
            if tls_like
                && self
                    .client_cert_wanted
                    .load(std::sync::atomic::Ordering::Relaxed)
            {
                reason.push_str(
                    "; the server asked for a client certificate and none is configured for it",
                );
            }
            if let Some(p) = self.proxies.for_url(&url) {
                reason.push_str(&format!(" (through proxy {})", display_proxy(p)));
            }
            RegistryError::Unreachable {
                url: strip_query(&url),
                reason,
            }
        })?;
        if let Some(id) = opened.filter(|&id| self.clock.carried(id, &resp)) {
            resp.extensions_mut().insert(OpenedConnection(id));
        }
        Ok(resp)
    }
}
