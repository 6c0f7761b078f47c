//! `pulltime serve`: an embedded OCI distribution registry (axum on tokio) that
//! serves OCI layouts and accepts pushes, shaped by a network profile, optionally
//! behaving like Docker Hub (bearer tokens, 307 to a CDN listener, rate limits).

pub mod api;
mod blobs;
pub mod conn;
pub mod faults;
mod hub;
mod manifests;
pub mod routes;
pub mod shaping;
pub mod store;
mod uploads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::profiles::faults::{FaultProfile, FaultSummary};
use crate::profiles::network::NetworkProfile;
use faults::Faults;
use shaping::Shaper;
use store::Store;

/// How to run the registry.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen (default `127.0.0.1:0`, a free loopback port).
    pub addr: SocketAddr,
    /// Where the CDN listener of `--emulate dockerhub` listens.
    pub cdn_addr: SocketAddr,
    /// `(repository, OCI layout directory)` pairs to serve.
    pub layouts: Vec<(String, PathBuf)>,
    /// Where pushes go; `None` = a temporary directory removed on shutdown.
    pub storage: Option<PathBuf>,
    /// Shaping.
    pub network: NetworkProfile,
    /// Behave like Docker Hub.
    pub emulate_dockerhub: bool,
    /// Manifest GETs allowed before 429 (Docker Hub emulation).
    pub rate_limit: u64,
    /// How long a bearer token stays valid (Docker Hub emulation; Docker Hub: 300 s).
    pub token_ttl: std::time::Duration,
    /// Seed for jitter and token material.
    pub seed: u64,
    /// Faults to inject (`--faults`); their draws use the profile's own seed.
    pub faults: Option<FaultProfile>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            cdn_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            layouts: Vec::new(),
            storage: None,
            network: NetworkProfile::unshaped(),
            emulate_dockerhub: false,
            rate_limit: 100,
            token_ttl: std::time::Duration::from_secs(300),
            seed: 1,
            faults: None,
        }
    }
}

/// Could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Storage or layout problems.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Bind failures.
    #[error("cannot listen on {addr}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Temp dir creation.
    #[error("creating temporary storage")]
    Temp(#[source] std::io::Error),
}

/// Shared by all handlers.
#[derive(Debug)]
pub struct AppState {
    store: Store,
    shaper: Arc<Shaper>,
    cdn_shaper: Option<Arc<Shaper>>,
    hub: Option<hub::Hub>,
    sessions: uploads::Sessions,
    faults: Option<Arc<Faults>>,
}

/// A running registry; stops when dropped.
#[derive(Debug)]
pub struct RunningServer {
    /// The registry's address.
    pub addr: SocketAddr,
    /// The CDN's address (Docker Hub emulation only).
    pub cdn_addr: Option<SocketAddr>,
    /// `repository:tag` of everything served from layouts.
    pub served: Vec<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    faults: Option<Arc<Faults>>,
    _temp: Option<tempfile::TempDir>,
}

impl RunningServer {
    /// `127.0.0.1:PORT/repo:tag`.
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.addr)
    }

    /// What fault injection has done so far; `None` without a fault profile.
    pub fn faults_injected(&self) -> Option<FaultSummary> {
        self.faults.as_ref().map(|f| f.summary())
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the registry (and the CDN listener when emulating Docker Hub) on the
/// current tokio runtime.
pub async fn start(options: ServeOptions) -> Result<RunningServer, ServeError> {
    let (storage, temp) = match &options.storage {
        Some(p) => (p.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("pulltime-registry-")
                .tempdir()
                .map_err(ServeError::Temp)?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let store = Store::open(&storage)?;
    let mut served = Vec::new();
    for (name, dir) in &options.layouts {
        for tag in store.add_layout(name, dir)? {
            served.push(format!("{name}:{tag}"));
        }
    }
    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })
    };
    let listener = bind(options.addr).await?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: options.addr,
        source,
    })?;
    let cdn_listener = if options.emulate_dockerhub {
        Some(bind(options.cdn_addr).await?)
    } else {
        None
    };
    let cdn_addr = match &cdn_listener {
        Some(l) => Some(l.local_addr().map_err(|source| ServeError::Bind {
            addr: options.cdn_addr,
            source,
        })?),
        None => None,
    };
    let hub = cdn_addr.map(|c| {
        hub::Hub::new(
            format!("http://{addr}/token"),
            format!("http://{c}"),
            options.rate_limit,
            options.seed,
            options.token_ttl,
        )
    });
    let state = Arc::new(AppState {
        store,
        shaper: Arc::new(Shaper::new(options.network.clone(), options.seed)),
        cdn_shaper: cdn_addr.map(|_| {
            Arc::new(Shaper::new(
                options.network.cdn_profile(),
                options.seed ^ 0x9e37,
            ))
        }),
        hub,
        sessions: uploads::Sessions::default(),
        faults: options.faults.clone().map(|p| Arc::new(Faults::new(p))),
    });
    let mut registry = Router::new()
        .route("/token", get(hub::token))
        .route("/pulltime/faults", get(faults_summary))
        .fallback(routes::dispatch);
    // Faults act after the network's round trip, as a misbehaving server would.
    if let Some(f) = &state.faults {
        registry = registry.layer(axum::middleware::from_fn_with_state(
            f.clone(),
            faults::inject,
        ));
    }
    let registry = registry
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::delay,
        ))
        .with_state(state.clone());
    let mut tasks = vec![spawn_server(listener, registry)];
    if let Some(l) = cdn_listener {
        let cdn_state = state.clone();
        let mut cdn = Router::new().route("/cdn/{digest}", get(hub::cdn_blob).head(hub::cdn_blob));
        if let Some(f) = &state.faults {
            cdn = cdn.layer(axum::middleware::from_fn_with_state(
                f.clone(),
                faults::inject_cdn,
            ));
        }
        let cdn = cdn
            .layer(axum::middleware::from_fn_with_state(
                cdn_state.clone(),
                cdn_delay,
            ))
            .with_state(cdn_state);
        tasks.push(spawn_server(l, cdn));
    }
    tracing::info!(%addr, ?cdn_addr, "registry listening");
    Ok(RunningServer {
        addr,
        cdn_addr,
        served,
        tasks,
        faults: state.faults.clone(),
        _temp: temp,
    })
}

/// `GET /pulltime/faults`: the [`FaultSummary`] as JSON; 404 without `--faults`.
async fn faults_summary(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match &state.faults {
        Some(f) => api::json_response(
            axum::http::StatusCode::OK,
            &serde_json::to_string(&f.summary()).unwrap_or_default(),
        ),
        None => (
            axum::http::StatusCode::NOT_FOUND,
            "no fault profile (pulltime serve --faults PROFILE)",
        )
            .into_response(),
    }
}

async fn cdn_delay(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<conn::Peer>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(s) = &state.cdn_shaper {
        s.request_delay(Some(peer.addr)).await;
    }
    next.run(req).await
}

fn spawn_server(listener: tokio::net::TcpListener, app: Router) -> tokio::task::JoinHandle<()> {
    let listener = conn::Listener(listener);
    tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<conn::Peer>();
        if let Err(e) = axum::serve(listener, service).await {
            tracing::error!("registry stopped: {e}");
        }
    })
}

/// A registry running on its own runtime thread, for synchronous callers (tests,
/// benches, examples). Stops when dropped.
pub struct ServerThread {
    /// The running server's addresses.
    pub addr: SocketAddr,
    /// The CDN's address, when emulating Docker Hub.
    pub cdn_addr: Option<SocketAddr>,
    /// What the layouts serve.
    pub served: Vec<String>,
    faults: Option<Arc<Faults>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    /// Starts `options` on a new thread with a two-worker runtime.
    pub fn spawn(options: ServeOptions) -> Result<ServerThread, ServeError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                match start(options).await {
                    Ok(server) => {
                        let _ = ready_tx.send(Ok((
                            server.addr,
                            server.cdn_addr,
                            server.served.clone(),
                            server.faults.clone(),
                        )));
                        let _ = stop_rx.await;
                        drop(server);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        });
        let (addr, cdn_addr, served, faults) = ready_rx.recv().unwrap_or_else(|_| {
            Err(ServeError::Temp(std::io::Error::other(
                "server thread died",
            )))
        })?;
        Ok(ServerThread {
            addr,
            cdn_addr,
            served,
            faults,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `127.0.0.1:PORT/repo:tag`.
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.addr)
    }

    /// What fault injection has done so far; `None` without a fault profile.
    pub fn faults_injected(&self) -> Option<FaultSummary> {
        self.faults.as_ref().map(|f| f.summary())
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
