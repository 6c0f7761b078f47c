//! The recording proxy: a plain-HTTP registry endpoint on loopback that forwards
//! every request to the upstream registry and logs it with the same fields as
//! pulltime's own `requests[]` (kind, status, time to first byte, body time,
//! bytes), against the clock of the current run.
//!
//! Pullers are pointed at `127.0.0.1:PORT/REPO:TAG` (docker, containerd and podman
//! all treat loopback registries as plain HTTP). Two things make every byte pass
//! through it:
//! - a blob GET that upstream redirects (Docker Hub's 307 to a CDN) is followed by
//!   the proxy itself and logged as a `redirect` hop, so the CDN bytes are seen;
//! - a bearer-token realm on the upstream host is rewritten to the proxy, so token
//!   requests are seen too (a realm on another host, as Docker Hub's, is not, and
//!   the puller fetches its token there directly).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use url::Url;

use crate::oci::media_type::{DOCKER_LIST, OCI_INDEX};
use crate::oci::record::{ConnectionRecord, RequestKind, RequestRecord};
use crate::registry::transport::{RunClock, TransportOptions, client};
use crate::server::routes::{Target, parse};

use super::PeerError;

/// What the proxy saw of one blob in one run (offsets from the run start).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlobSeen {
    /// The first request for it started.
    pub start_s: f64,
    /// The response headers of the request that carried its body arrived.
    pub headers_s: f64,
    /// The last body byte went to the puller.
    pub end_s: f64,
    /// Body bytes passed to the puller (all requests for it together).
    pub bytes: u64,
    /// Time from the first request to the start of a redirect hop (0 without one).
    pub redirect_s: f64,
    /// Requests for it, redirect hops included.
    pub requests: u32,
    /// Redirect hops among them.
    pub redirects: u32,
}

/// One run's log and the upstream client it uses (new connections every run, as a
/// cold node would open).
struct ProxyRun {
    clock: RunClock,
    client: reqwest::Client,
    blobs: Mutex<HashMap<String, BlobSeen>>,
}

impl ProxyRun {
    fn new(transport: &TransportOptions) -> Result<ProxyRun, PeerError> {
        let clock = RunClock::start();
        Ok(ProxyRun {
            client: client(&clock, transport)
                .map_err(|e| PeerError::Proxy(e.to_string()))?
                .http,
            clock,
            blobs: Mutex::default(),
        })
    }

    fn blob(&self, digest: &str, f: impl FnOnce(&mut BlobSeen)) {
        let mut blobs = self.blobs.lock().expect("blob log lock");
        let fresh = !blobs.contains_key(digest);
        let seen = blobs.entry(digest.to_string()).or_default();
        if fresh {
            seen.start_s = f64::INFINITY;
        }
        f(seen);
    }
}

struct ProxyState {
    /// `scheme://host[:port]` of the upstream registry.
    upstream: Url,
    /// `http://127.0.0.1:PORT`, what a rewritten token realm points at.
    own_origin: String,
    transport: TransportOptions,
    run: Mutex<Arc<ProxyRun>>,
}

impl ProxyState {
    fn current(&self) -> Arc<ProxyRun> {
        self.run.lock().expect("proxy run lock").clone()
    }
}

/// A running recording proxy; stops when dropped.
pub struct RecordingProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RecordingProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:5000`, `https://registry-1.docker.io`)
    /// on a free loopback port, on the current tokio runtime.
    pub async fn start(
        upstream: Url,
        transport: TransportOptions,
    ) -> Result<RecordingProxy, PeerError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| PeerError::Proxy(format!("binding a loopback port: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| PeerError::Proxy(e.to_string()))?;
        let state = Arc::new(ProxyState {
            upstream,
            own_origin: format!("http://{addr}"),
            run: Mutex::new(Arc::new(ProxyRun::new(&transport)?)),
            transport,
        });
        let app = Router::new().fallback(forward).with_state(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("recording proxy stopped: {e}");
            }
        });
        Ok(RecordingProxy { addr, state, task })
    }

    /// `127.0.0.1:PORT`: the registry host pullers are given.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts a new run: a fresh log, a fresh clock from now and new upstream
    /// connections. Returns the run's clock.
    pub fn begin_run(&self) -> Result<RunClock, PeerError> {
        let run = ProxyRun::new(&self.state.transport)?;
        let clock = run.clock.clone();
        *self.state.run.lock().expect("proxy run lock") = Arc::new(run);
        Ok(clock)
    }

    /// What the current run's requests and upstream connections were, and what
    /// it saw of each blob (by digest).
    pub fn log(&self) -> ProxyLog {
        let run = self.state.current();
        ProxyLog {
            requests: run.clock.requests(),
            connections: run.clock.connections(),
            blobs: run.blobs.lock().expect("blob log lock").clone(),
        }
    }
}

/// One run as the proxy saw it.
#[derive(Debug, Clone, Default)]
pub struct ProxyLog {
    /// Every request, in the order they started.
    pub requests: Vec<RequestRecord>,
    /// The proxy's connections to the upstream registry.
    pub connections: Vec<ConnectionRecord>,
    /// Per blob digest, its requests taken together.
    pub blobs: HashMap<String, BlobSeen>,
}

/// Headers that belong to one connection and are not forwarded (RFC 9110 7.6.1),
/// plus `host`, which names the proxy.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    )
}

/// What a request is for, from its method and path (manifests are told from
/// indexes by the response's media type, blobs from configs later by the caller).
fn kind_of(path: &str) -> RequestKind {
    match parse(path) {
        Some(Target::Base) => RequestKind::Ping,
        Some(Target::Manifest(..)) => RequestKind::Manifest,
        Some(Target::Blob(..)) => RequestKind::Blob,
        Some(Target::Upload(..)) => RequestKind::PushStart,
        Some(Target::Tags(..)) | None => RequestKind::Token,
    }
}

async fn forward(State(state): State<Arc<ProxyState>>, req: Request) -> Response {
    match forward_inner(&state, req).await {
        Ok(r) => r,
        Err(message) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(format!("pulltime proxy: {message}\n")))
            .expect("static response"),
    }
}

async fn forward_inner(state: &ProxyState, req: Request) -> Result<Response, String> {
    let run = state.current();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let mut url = state.upstream.clone();
    url.set_path(&path);
    url.set_query(parts.uri.query());
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        if !hop_by_hop(k) {
            headers.append(k.clone(), v.clone());
        }
    }
    let kind = kind_of(&path);
    let digest = match parse(&path) {
        Some(Target::Blob(_, d)) if parts.method == "GET" => Some(d.to_string()),
        _ => None,
    };
    let started = Instant::now();
    if let Some(d) = &digest {
        let at = run.clock.offset(started);
        run.blob(d, |b| {
            b.start_s = b.start_s.min(at);
            b.requests += 1;
        });
    }
    let mut request = run
        .client
        .request(parts.method.clone(), url.clone())
        .headers(headers);
    if !matches!(parts.method.as_str(), "GET" | "HEAD") {
        request = request.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let mut upstream = request.send().await.map_err(|e| describe(&url, e))?;
    let mut log_index = None;
    // Follow a blob redirect here, so the puller's bytes pass through the proxy.
    if kind == RequestKind::Blob
        && upstream.status().is_redirection()
        && parts.method == "GET"
        && let Some(location) = upstream.headers().get(header::LOCATION)
    {
        let target = location
            .to_str()
            .ok()
            .and_then(|l| url.join(l).ok())
            .ok_or_else(|| format!("unusable redirect from {}", redact(&url)))?;
        log(
            &run.clock,
            kind,
            "GET",
            &url,
            upstream.status().as_u16(),
            started,
        );
        let hop = Instant::now();
        if let Some(d) = &digest {
            let at = run.clock.offset(hop);
            run.blob(d, |b| {
                b.redirect_s = at - b.start_s;
                b.requests += 1;
                b.redirects += 1;
            });
        }
        // The puller's headers go along (Range, Accept), but credentials are never
        // sent to another host (docker and curl drop them too).
        let mut hop_headers = HeaderMap::new();
        for (k, v) in &parts.headers {
            if !hop_by_hop(k) && k != header::AUTHORIZATION && k != header::COOKIE {
                hop_headers.append(k.clone(), v.clone());
            }
        }
        upstream = run
            .client
            .get(target.clone())
            .headers(hop_headers)
            .send()
            .await
            .map_err(|e| describe(&target, e))?;
        log_index = Some(log(
            &run.clock,
            RequestKind::Redirect,
            "GET",
            &target,
            upstream.status().as_u16(),
            hop,
        ));
    }
    let kind = if kind == RequestKind::Manifest
        && upstream
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with(OCI_INDEX) || t.starts_with(DOCKER_LIST))
    {
        RequestKind::Index
    } else {
        kind
    };
    let index = log_index.unwrap_or_else(|| {
        log(
            &run.clock,
            kind,
            parts.method.as_str(),
            &url,
            upstream.status().as_u16(),
            started,
        )
    });
    let mut response = Response::builder().status(upstream.status().as_u16());
    for (k, v) in upstream.headers() {
        if hop_by_hop(k) {
            continue;
        }
        if k == header::WWW_AUTHENTICATE {
            response = response.header(k, rewrite_realm(v, &state.upstream, &state.own_origin));
        } else {
            response = response.header(k, v);
        }
    }
    let headers_at = Instant::now();
    let success = upstream.status().is_success();
    if let Some(d) = &digest
        && success
    {
        let at = run.clock.offset(headers_at);
        run.blob(d, |b| b.headers_s = at);
    }
    let body = CountingBody {
        inner: Box::pin(upstream.bytes_stream()),
        run: run.clone(),
        digest: digest.filter(|_| success),
        index,
        headers_at,
        bytes: 0,
        finished: false,
    };
    response
        .body(Body::from_stream(body))
        .map_err(|e| e.to_string())
}

fn log(
    clock: &RunClock,
    kind: RequestKind,
    method: &str,
    url: &Url,
    status: u16,
    started: Instant,
) -> usize {
    clock.log_request(RequestRecord {
        kind: kind.as_str().into(),
        method: method.into(),
        host: url
            .host_str()
            .map(|h| match url.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
            .unwrap_or_default(),
        path: url.path().into(),
        status,
        start_s: clock.offset(started),
        ttfb_s: started.elapsed().as_secs_f64(),
        body_s: 0.0,
        bytes: 0,
        connection: None,
    })
}

/// A URL for messages: no query (CDN URLs carry signatures).
fn redact(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

/// The error without its URL (reqwest's message would repeat it, query and all).
fn describe(url: &Url, e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = format!("{}: {e}", redact(url));
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

/// Points a bearer realm on the upstream host at the proxy, so the token request
/// passes through it; realms elsewhere are left alone.
fn rewrite_realm(value: &HeaderValue, upstream: &Url, own_origin: &str) -> HeaderValue {
    let Ok(text) = value.to_str() else {
        return value.clone();
    };
    let origin = upstream.origin().ascii_serialization();
    // The origin exactly: followed by the path or the closing quote, so that
    // `:5000` does not match `:50001` nor `host` match `host.other`.
    let mut rewritten = text.to_string();
    for end in ['/', '"'] {
        rewritten = rewritten.replace(
            &format!("realm=\"{origin}{end}"),
            &format!("realm=\"{own_origin}{end}"),
        );
    }
    HeaderValue::from_str(&rewritten).unwrap_or_else(|_| value.clone())
}

/// The upstream body on its way to the puller, counted; when it ends (or the
/// puller hangs up), the request's body time and bytes go into the log.
struct CountingBody {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    run: Arc<ProxyRun>,
    /// The blob this body is, when it is one.
    digest: Option<String>,
    index: usize,
    headers_at: Instant,
    bytes: u64,
    finished: bool,
}

impl CountingBody {
    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.run
                .clock
                .finish_body(self.index, self.headers_at.elapsed(), self.bytes);
            if let Some(d) = &self.digest {
                let at = self.run.clock.offset(Instant::now());
                let bytes = self.bytes;
                self.run.blob(d, |b| {
                    b.end_s = b.end_s.max(at);
                    b.bytes += bytes;
                });
            }
        }
    }
}

impl Stream for CountingBody {
    type Item = reqwest::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.inner.poll_next_unpin(cx);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => self.bytes += chunk.len() as u64,
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.finish(),
            Poll::Pending => {}
        }
        next
    }
}

impl Drop for CountingBody {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realms_on_the_upstream_host_are_rewritten_and_others_kept() {
        let up = Url::parse("http://127.0.0.1:5000").unwrap();
        let own = "http://127.0.0.1:6000";
        let same = HeaderValue::from_static(
            r#"Bearer realm="http://127.0.0.1:5000/token",service="registry""#,
        );
        assert_eq!(
            rewrite_realm(&same, &up, own).to_str().unwrap(),
            r#"Bearer realm="http://127.0.0.1:6000/token",service="registry""#
        );
        let hub = HeaderValue::from_static(r#"Bearer realm="https://auth.docker.io/token""#);
        assert_eq!(rewrite_realm(&hub, &up, own), hub);
        let other_port = HeaderValue::from_static(r#"Bearer realm="http://127.0.0.1:50001/token""#);
        assert_eq!(rewrite_realm(&other_port, &up, own), other_port);
    }

    #[test]
    fn requests_are_classified_by_path() {
        assert_eq!(kind_of("/v2/"), RequestKind::Ping);
        assert_eq!(kind_of("/v2/a/b/manifests/v1"), RequestKind::Manifest);
        assert_eq!(kind_of("/v2/a/blobs/sha256:00"), RequestKind::Blob);
        assert_eq!(kind_of("/token"), RequestKind::Token);
    }
}
