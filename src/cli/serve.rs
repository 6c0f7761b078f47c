//! `pulltime serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use pulltime::network::NetworkProfile;
use pulltime::server::{ServeOptions, start};

/// Arguments of `pulltime serve`.
#[derive(Debug, clap::Args)]
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
    /// Seed for jitter and tokens.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
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
    let options = ServeOptions {
        addr: args.addr,
        cdn_addr: args.cdn_addr,
        layouts: args.layouts,
        storage: args.storage,
        network,
        emulate_dockerhub: args.emulate.is_some(),
        rate_limit: args.rate_limit,
        seed: args.seed,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let server = start(options.clone()).await?;
        println!("pulltime registry listening on http://{}", server.addr);
        println!("network profile: {}", options.network.name);
        if let Some(cdn) = server.cdn_addr {
            println!("emulating Docker Hub: token realm http://{}/token, blobs redirected to CDN http://{cdn}", server.addr);
        }
        for s in &server.served {
            println!("serving {}", server.reference(s));
        }
        if !server.addr.ip().is_loopback() {
            eprintln!("warning: listening on {} (not loopback), reachable from other machines", server.addr.ip());
        }
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        eprintln!("stopping");
        drop(server);
        Ok(())
    })
}
