//! `pulltime serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use pulltime::profiles::faults::FaultProfile;
use pulltime::profiles::network::NetworkProfile;
use pulltime::server::{ServeOptions, start};

/// Shown at the end of `--help`.
const EXAMPLES: &str = "Examples:
  pulltime serve --layout app=./layout --network home-50m --emulate dockerhub
  pulltime serve --storage ./registry --addr 127.0.0.1:5000
  pulltime serve --layout app=./layout --faults reset";

/// Arguments of `pulltime serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ServeArgs {
    /// Listen address. Loopback with a free port unless told otherwise.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Serve the OCI image layout at DIR as repository NAME (repeatable); tags come
    /// from the index's org.opencontainers.image.ref.name annotations.
    #[arg(long = "layout", value_name = "NAME=DIR", value_parser = parse_layout)]
    pub layouts: Vec<(String, PathBuf)>,
    /// Where pushed content goes (default: a temporary directory removed on exit).
    #[arg(long)]
    pub storage: Option<PathBuf>,
    /// Network profile: a name (loopback, lan-1g, datacenter-10g, dockerhub-100m,
    /// home-50m, edge-20m, mobile-10m) or a TOML file.
    #[arg(long, default_value = "loopback")]
    pub network: String,
    /// Behave like a registry pulltime knows: `dockerhub` (bearer tokens, 307 to a
    /// CDN listener, rate-limit headers).
    #[arg(long, value_enum)]
    pub emulate: Option<Emulation>,
    /// Where the CDN listener of --emulate dockerhub listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub cdn_addr: SocketAddr,
    /// Manifest GETs allowed before 429 with --emulate dockerhub (Docker Hub: 100 per 6 h anonymous).
    #[arg(long, default_value_t = 100)]
    pub rate_limit: u64,
    /// Seconds a bearer token stays valid with --emulate dockerhub (Docker Hub: 300);
    /// later requests with it get 401 and a new challenge.
    #[arg(long, default_value_t = 300.0)]
    pub token_ttl: f64,
    /// Seed for jitter and tokens (default 1); with --faults it also replaces the
    /// fault profile's own seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Inject faults: a profile name (reset, ratelimit, server-errors, stall,
    /// truncate, corrupt, slow-token, mixed, hopeless) or a TOML file. What was
    /// injected is printed as a JSON line on exit and served at GET /pulltime/faults.
    #[arg(long, value_name = "PROFILE")]
    pub faults: Option<String>,
}

/// Registries to emulate.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Emulation {
    /// Docker Hub's pull flow.
    Dockerhub,
}

fn parse_layout(s: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = s.split_once('=').ok_or("expected NAME=DIR")?;
    if name.is_empty() || dir.is_empty() {
        return Err("expected NAME=DIR".into());
    }
    Ok((name.to_string(), PathBuf::from(dir)))
}

/// Runs `pulltime serve` until Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let network = NetworkProfile::load(&args.network)?;
    let faults = match &args.faults {
        Some(name) => {
            let mut profile = FaultProfile::load(name)?;
            if let Some(seed) = args.seed {
                profile.seed = seed;
            }
            Some(profile)
        }
        None => None,
    };
    let options = ServeOptions {
        addr: args.addr,
        cdn_addr: args.cdn_addr,
        layouts: args.layouts,
        storage: args.storage,
        network,
        emulate_dockerhub: args.emulate.is_some(),
        rate_limit: args.rate_limit,
        token_ttl: std::time::Duration::try_from_secs_f64(args.token_ttl)
            .ok()
            .filter(|d| !d.is_zero())
            .context("--token-ttl must be a positive number of seconds")?,
        seed: args.seed.unwrap_or(1),
        faults,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // Listen for Ctrl-C before saying we are up: a signal that arrives right
        // after the banner must stop us cleanly, not kill us.
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("listening for Ctrl-C")?;
        let server = start(options.clone()).await?;
        outln!("pulltime registry listening on http://{}", server.addr);
        outln!("network profile: {}", options.network.name);
        if let Some(f) = &options.faults {
            outln!("fault profile: {} (seed {}, {} rules)", f.name, f.seed, f.rules.len());
        }
        if let Some(cdn) = server.cdn_addr {
            outln!("emulating Docker Hub: token realm http://{}/token, blobs redirected to CDN http://{cdn}", server.addr);
        }
        for s in &server.served {
            outln!("serving {}", server.reference(s));
        }
        if !server.addr.ip().is_loopback() {
            eprintln!("warning: listening on {} (not loopback), reachable from other machines", server.addr.ip());
        }
        interrupt.recv().await;
        eprintln!("stopping");
        if let Some(summary) = server.faults_injected() {
            outln!("{}", serde_json::to_string(&summary)?);
        }
        drop(server);
        Ok(())
    })
}
