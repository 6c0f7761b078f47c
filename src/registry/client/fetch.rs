//! Fetching what a pull needs: whole bodies (manifests, indexes, tokens, the
//! config) read within a size limit, and blob responses whose bodies the caller
//! streams, with redirects to a CDN followed by hand so credentials stay home.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LOCATION, RANGE};
use reqwest::{Method, Response, StatusCode};

use super::RegistryClient;
use super::error_body::error_code;
use super::log::{header_str, strip_query};
use crate::oci::record::{RateLimit, RequestKind};
use crate::registry::error::RegistryError;
use crate::registry::retry::RetryCost;

/// The most redirects followed for one blob.
const MAX_REDIRECTS: usize = 5;

/// A manifest or index as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The body, byte for byte (its digest is the manifest's).
    pub body: Bytes,
    /// The media type the registry declared in `Content-Type`.
    pub media_type: Option<String>,
    /// The registry's `Docker-Content-Digest` header.
    pub digest: Option<String>,
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
    /// Positions of every answered request of this blob (the registry's, and
    /// the hop its redirect led to), for telling which opened connections.
    pub requests: Vec<usize>,
    /// What failed attempts cost before this response.
    pub retry_cost: RetryCost,
}

impl RegistryClient {
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

    /// GET a manifest by tag or digest with the given `Accept` list, at most
    /// `limit` bytes of it, fetching again when its body breaks off.
    pub async fn get_manifest(
        &self,
        kind: RequestKind,
        reference: &str,
        accept: &str,
        limit: u64,
    ) -> Result<FetchedManifest, RegistryError> {
        self.retry_body(|| self.get_manifest_once(kind, reference, accept, limit))
            .await
    }

    async fn get_manifest_once(
        &self,
        kind: RequestKind,
        reference: &str,
        accept: &str,
        limit: u64,
    ) -> Result<FetchedManifest, RegistryError> {
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
        Ok(FetchedManifest {
            body,
            media_type,
            digest,
        })
    }

    /// Starts a blob GET, following redirects (to a CDN) by hand without sending our
    /// credentials to the other host. The body is left for the caller to stream.
    pub async fn open_blob(
        &self,
        kind: RequestKind,
        digest: &str,
    ) -> Result<BlobResponse, RegistryError> {
        self.open_blob_from(kind, digest, 0).await
    }

    /// [`RegistryClient::open_blob`] from byte `offset` on (`Range: bytes=offset-`,
    /// to resume a cut-off body). The registry may ignore the range and answer 200
    /// with the whole blob: the caller checks the status.
    pub async fn open_blob_from(
        &self,
        kind: RequestKind,
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
        let mut requests = vec![index];
        let mut retry_cost = sent.retry_cost;
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
                .with_retries(RequestKind::Redirect, &Method::GET, &next, || {
                    self.raw(Method::GET, next.clone(), None, headers.clone(), None)
                })
                .await?;
            retry_cost.add(hop.retry_cost);
            if hop.retry_cost.retries > 0 {
                started = hop.started;
            }
            (resp, index) = (hop.response, hop.log_index);
            requests.push(index);
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
            requests,
            retry_cost,
        })
    }

    /// Keeps Docker Hub's `RateLimit-*` headers for the record.
    fn note_ratelimit(&self, headers: &HeaderMap) {
        let limit = header_str(headers, "ratelimit-limit");
        let remaining = header_str(headers, "ratelimit-remaining");
        if let (Some(limit), Some(remaining)) = (limit, remaining) {
            *self.ratelimit.lock().expect("ratelimit lock") = Some(RateLimit { limit, remaining });
        }
    }
}
