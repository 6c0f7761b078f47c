//! Instrumented HTTP: every request and every new connection is timed and logged
//! against the start of the run. Redirects are never followed by reqwest; the registry
//! client follows them itself so the hop is visible.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::oci::record::{ConnectionRecord, RequestRecord};

/// Shared, append-only logs of one run.
#[derive(Debug, Clone)]
pub struct RunClock {
    start: Instant,
    requests: Arc<Mutex<Vec<RequestRecord>>>,
    connections: Arc<Mutex<Vec<ConnectionRecord>>>,
}

impl RunClock {
    /// A clock that starts now.
    pub fn start() -> Self {
        RunClock {
            start: Instant::now(),
            requests: Arc::default(),
            connections: Arc::default(),
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

/// Builds a reqwest client whose connector logs each connection set-up time into
/// `clock`. A new client means new connections: every cold run gets its own.
pub fn client(clock: &RunClock, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    with_env_proxies(reqwest::Client::builder())?
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .user_agent(concat!("pulltime/", env!("CARGO_PKG_VERSION")))
        .connector_layer(ConnectTimingLayer {
            clock: clock.clone(),
        })
        .build()
}

/// The environment's proxies (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, either
/// case, with `NO_PROXY`), as curl and docker read them, except that loopback is
/// never proxied (Go's rule, which docker follows): a registry on this host is
/// reached directly whatever the environment says.
fn with_env_proxies(
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::ClientBuilder, reqwest::Error> {
    let var = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
    };
    let mut bypass = String::from("localhost,127.0.0.0/8,::1");
    if let Some(list) = var(["NO_PROXY", "no_proxy"]) {
        bypass.push(',');
        bypass.push_str(&list);
    }
    let mut builder = builder.no_proxy();
    for (scheme, names) in [
        ("https", ["HTTPS_PROXY", "https_proxy"]),
        ("http", ["HTTP_PROXY", "http_proxy"]),
        ("all", ["ALL_PROXY", "all_proxy"]),
    ] {
        let Some(url) = var(names) else { continue };
        let proxy = match scheme {
            "https" => reqwest::Proxy::https(&url)?,
            "http" => reqwest::Proxy::http(&url)?,
            _ => reqwest::Proxy::all(&url)?,
        };
        builder = builder.proxy(proxy.no_proxy(reqwest::NoProxy::from_string(&bypass)));
    }
    Ok(builder)
}

#[derive(Clone)]
struct ConnectTimingLayer {
    clock: RunClock,
}

impl<S> tower_layer::Layer<S> for ConnectTimingLayer {
    type Service = ConnectTiming<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ConnectTiming {
            inner,
            clock: self.clock.clone(),
        }
    }
}

#[derive(Clone)]
struct ConnectTiming<S> {
    inner: S,
    clock: RunClock,
}

impl<S, R> tower_service::Service<R> for ConnectTiming<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
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
        let clock = self.clock.clone();
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let out = fut.await;
            if out.is_ok() {
                let rec = ConnectionRecord {
                    target,
                    start_s: clock.offset(started),
                    connect_s: started.elapsed().as_secs_f64(),
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
