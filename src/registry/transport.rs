//! Instrumented HTTP: every request and every new connection is timed and logged
//! against the start of the run, each connection split into DNS, TCP and TLS,
//! with its protocol, its peer, its proxy and the request that opened it. Redirects are never followed by reqwest; the registry
//! client follows them itself so the hop is visible.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use reqwest::Url;

use super::connecting;
use super::proxy::{ProxyConfig, display_proxy};
use super::tls::{self, ClientCertWanted, HelloHook, TlsError, TlsOptions};
use crate::oci::record::{ConnectionRecord, RequestRecord};

/// Shared, append-only logs of one run.
#[derive(Debug, Clone)]
pub struct RunClock {
    start: Instant,
    requests: Arc<Mutex<Vec<RequestRecord>>>,
    connections: Arc<Mutex<Vec<ConnectionRecord>>>,
    next_connection: Arc<AtomicUsize>,
    /// Each connection's local address, which tells the connections apart.
    locals: Arc<Mutex<std::collections::HashMap<usize, SocketAddr>>>,
}

impl RunClock {
    /// A clock that starts now.
    pub fn start() -> Self {
        RunClock {
            start: Instant::now(),
            requests: Arc::default(),
            connections: Arc::default(),
            next_connection: Arc::default(),
            locals: Arc::default(),
        }
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// Seconds from the run start to `t`.
    pub fn offset(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.start).as_secs_f64()
    }

    /// Appends a finished request; returns its position in the log.
    pub fn log_request(&self, r: RequestRecord) -> usize {
        let mut v = self.requests.lock().expect("request log lock");
        v.push(r);
        v.len() - 1
    }

    /// Records the body time and size of a request logged earlier.
    pub fn finish_body(&self, index: usize, body: Duration, bytes: u64) {
        let mut v = self.requests.lock().expect("request log lock");
        if let Some(r) = v.get_mut(index) {
            r.body_s = body.as_secs_f64();
            r.bytes = bytes;
        }
    }

    /// Whether `response` came over connection `id`: the connector may open a
    /// connection for a request that then goes out over a pooled one (hyper
    /// races the two), and only the one it used is the request's.
    pub fn carried(&self, id: usize, response: &reqwest::Response) -> bool {
        let local = response
            .extensions()
            .get::<HttpInfo>()
            .map(HttpInfo::local_addr);
        let locals = self.locals.lock().expect("locals lock");
        local.is_some() && locals.get(&id).copied() == local
    }

    /// The connection the request at `index` (as [`RunClock::log_request`]
    /// returned it) opened, if it opened one.
    pub fn connection_opened_by(&self, index: usize) -> Option<usize> {
        let v = self.requests.lock().expect("request log lock");
        v.get(index).and_then(|r| r.connection)
    }

    /// Requests logged so far, ordered by start time.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let mut v = self.requests.lock().expect("request log lock").clone();
        v.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
        v
    }

    /// Connections logged so far, ordered by start time.
    pub fn connections(&self) -> Vec<ConnectionRecord> {
        let mut v = self
            .connections
            .lock()
            .expect("connection log lock")
            .clone();
        v.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
        v
    }
}

/// What a run's HTTP client needs to know besides its clock.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Connect and read timeout.
    pub timeout: Duration,
    /// CAs, `certs.d`, insecure registries.
    pub tls: TlsOptions,
    /// The registry (`host[:port]`) whose `certs.d` entry and insecurity apply.
    pub registry: String,
    /// The environment's proxies.
    pub proxies: Arc<ProxyConfig>,
}

/// Builds a reqwest client whose connector logs each connection's set-up (DNS,
/// TCP, TLS, protocol, peer, proxy) into `clock`. A new client means new
/// connections and no TLS sessions to resume: every cold run gets its own.
pub fn client(clock: &RunClock, options: &TransportOptions) -> Result<Transport, BuildError> {
    let hello_hook: HelloHook = Arc::new(|| {
        let _ = PROBE.try_with(|p| {
            p.lock()
                .expect("probe lock")
                .hello
                .get_or_insert_with(Instant::now);
        });
    });
    let (tls, client_cert_wanted) =
        tls::client_config(&options.tls, &options.registry, hello_hook)?;
    let proxies = options.proxies.clone();
    let chooser = proxies.clone();
    let http = reqwest::Client::builder()
        .no_proxy()
        .proxy(reqwest::Proxy::custom(move |url| {
            chooser.for_url(url).cloned()
        }))
        .tls_backend_preconfigured(tls)
        .dns_resolver(Arc::new(TimedResolver))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(options.timeout)
        .read_timeout(options.timeout)
        .user_agent(concat!("pulltime/", env!("CARGO_PKG_VERSION")))
        .connector_layer(ConnectTimingLayer {
            clock: clock.clone(),
            proxies,
        })
        .build()?;
    Ok(Transport {
        http,
        client_cert_wanted,
    })
}

/// A run's HTTP client, and what its TLS layer noticed.
#[derive(Debug, Clone)]
pub struct Transport {
    /// The client.
    pub http: reqwest::Client,
    /// A server asked for a client certificate that was not configured.
    pub client_cert_wanted: ClientCertWanted,
}

/// Why a run's HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The user's certificates.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// reqwest's own refusal.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

tokio::task_local! {
    /// The connection being set up, for the resolver and the TLS session store.
    static PROBE: Arc<Mutex<Probe>>;
    /// The request being sent, so its new connection can be tied to it.
    static OPENER: Arc<Mutex<Option<usize>>>;
}

/// What the layers inside the connector saw of one connection.
#[derive(Debug, Default)]
struct Probe {
    /// The DNS lookup's start and end (none for an IP address).
    dns: Option<(Instant, Instant)>,
    /// When the TLS ClientHello was built: TCP (and any proxy tunnel) was done.
    hello: Option<Instant>,
}

/// Runs `send` (a request's future) so that a connection it opens is tied to it:
/// gives the id of that connection in the record's `connections[]`, or `None`
/// when the request went over a connection that was already open.
pub async fn tracking_connection<F: Future>(send: F) -> (F::Output, Option<usize>) {
    let slot = Arc::new(Mutex::new(None));
    let out = OPENER.scope(slot.clone(), send).await;
    let id = *slot.lock().expect("opener lock");
    (out, id)
}

/// The system resolver, timed into the connection's probe.
struct TimedResolver;

impl reqwest::dns::Resolve for TimedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let probe = PROBE.try_with(Arc::clone).ok();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let started = Instant::now();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(p) = probe {
                p.lock().expect("probe lock").dns = Some((started, Instant::now()));
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[derive(Clone)]
struct ConnectTimingLayer {
    clock: RunClock,
    proxies: Arc<ProxyConfig>,
}

impl<S> tower_layer::Layer<S> for ConnectTimingLayer {
    type Service = ConnectTiming<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ConnectTiming {
            inner,
            clock: self.clock.clone(),
            proxies: self.proxies.clone(),
        }
    }
}

#[derive(Clone)]
struct ConnectTiming<S> {
    inner: S,
    clock: RunClock,
    proxies: Arc<ProxyConfig>,
}

impl<S, R> tower_service::Service<R> for ConnectTiming<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
    S::Response: Connection,
    R: std::fmt::Debug,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        // reqwest's connector request type is unnameable outside the crate; its Debug
        // form carries the target URI, which is all we need for the label.
        let target = connect_target(&format!("{req:?}"));
        let proxy = Url::parse(&target)
            .ok()
            .and_then(|u| self.proxies.for_url(&u).map(display_proxy));
        let clock = self.clock.clone();
        let id = clock.next_connection.fetch_add(1, Ordering::Relaxed);
        // The request whose send made this connection (hyper connects inside the
        // request's own task; a connection set up in the background has none).
        let _ = OPENER.try_with(|o| {
            o.lock().expect("opener lock").get_or_insert(id);
        });
        let probe = Arc::new(Mutex::new(Probe::default()));
        let host_port = Url::parse(&target)
            .map(|u| connecting::host_port(&u))
            .unwrap_or_default();
        let started = Instant::now();
        let fut = PROBE.scope(
            probe.clone(),
            connecting::scope(host_port, self.inner.call(req)),
        );
        Box::pin(async move {
            let out = fut.await;
            if let Ok(conn) = &out {
                let done = Instant::now();
                let probe = probe.lock().expect("probe lock");
                let connected = conn.connected();
                let mut extras = http::Extensions::new();
                connected.get_extras(&mut extras);
                let info = extras.get::<HttpInfo>();
                let peer = info.map(|i| i.remote_addr().to_string());
                if let Some(i) = info {
                    clock
                        .locals
                        .lock()
                        .expect("locals lock")
                        .insert(id, i.local_addr());
                }
                let tls = target.starts_with("https://");
                let dns_end = probe.dns.map_or(started, |(_, end)| end);
                let tcp_end = if tls {
                    probe.hello.unwrap_or(done)
                } else {
                    done
                };
                let rec = ConnectionRecord {
                    id,
                    host: target
                        .split_once("://")
                        .map_or(target.as_str(), |(_, h)| h)
                        .to_string(),
                    target,
                    start_s: clock.offset(started),
                    connect_s: done.duration_since(started).as_secs_f64(),
                    dns_s: probe.dns.map(|(s, e)| e.duration_since(s).as_secs_f64()),
                    tcp_s: tcp_end.saturating_duration_since(dns_end).as_secs_f64(),
                    tls_s: tls.then(|| {
                        done.saturating_duration_since(probe.hello.unwrap_or(done))
                            .as_secs_f64()
                    }),
                    protocol: if connected.is_negotiated_h2() {
                        "h2"
                    } else {
                        "http/1.1"
                    }
                    .into(),
                    peer,
                    proxy,
                };
                clock
                    .connections
                    .lock()
                    .expect("connection log lock")
                    .push(rec);
            }
            out
        })
    }
}

/// `Unnameable(http://127.0.0.1:5000/)` -> `http://127.0.0.1:5000`.
fn connect_target(debug: &str) -> String {
    let inner = debug
        .split_once('(')
        .map(|(_, r)| r.trim_end_matches(')'))
        .unwrap_or(debug);
    inner.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn connect_target_label() {
        assert_eq!(
            super::connect_target("Unnameable(https://registry-1.docker.io/)"),
            "https://registry-1.docker.io"
        );
        assert_eq!(super::connect_target("x"), "x");
    }
}
