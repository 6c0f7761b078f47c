//! What `simulate` and `compare` model: the network, host and policy
//! (`ModelArgs`), and the image, loaded from any of the forms they accept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use pulltime::oci::media_type::Compression;
use pulltime::oci::platform::Platform;
use pulltime::oci::reference::Reference;
use pulltime::profiles::host::HostProfile;
use pulltime::profiles::network::{NetworkProfile, TlsVersion};
use pulltime::registry::ClientOptions;
use pulltime::sim::{Policy, Scenario, SimImage, input};
use pulltime::synth::ImageProfile;

use super::choices::PolicyArg;
use super::inputs::ImageInput;
use super::registry_args::RegistryArgs;
use super::synth::CompressionArg;

/// What the model runs on: shared by `simulate` and `compare`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Model")]
pub struct ModelArgs {
    /// Network profile (name or TOML file).
    #[arg(long, default_value = "dockerhub-100m")]
    pub network: String,
    /// Host profile from `pulltime calibrate` (default: the 2-core ext4 machine
    /// pulltime is developed on, profiles/hosts/xeon-2core-ext4.toml).
    #[arg(long)]
    pub host: Option<PathBuf>,
    /// How the puller schedules its stages.
    #[arg(long, value_enum, default_value_t = PolicyArg::Pulltime)]
    pub policy: PolicyArg,
    /// Downloads in flight at once (default: the policy's puller's own: 3 for
    /// docker, containerd and pulltime, 6 for podman and skopeo).
    #[arg(long)]
    pub max_concurrent_downloads: Option<usize>,
    /// Docker Hub's flow (token, blobs via a CDN): `auto` uses it when the network
    /// profile has a [cdn] section.
    #[arg(long, value_enum, default_value_t = Flow::Auto)]
    pub flow: Flow,
    /// The registry runs on this host (`pulltime serve`, as when checking the model
    /// against the lab): its serving CPU shares the pull's cores. Implied by an
    /// unshaped network (loopback)
    #[arg(long)]
    pub registry_on_host: bool,
    /// Scale for image profiles (default 1: the profile's own sizes).
    #[arg(long)]
    pub scale: Option<f64>,
    /// Compression for image profiles (default gzip).
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    /// TLS on every new connection, overriding the network profile's `tls`:
    /// 1.3 adds one round trip, 1.2 two, none zero.
    #[arg(long, value_enum)]
    pub tls: Option<TlsArg>,
}

/// `--tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsArg {
    /// TLS 1.2 (two round trips).
    #[value(name = "1.2")]
    Tls12,
    /// TLS 1.3 (one round trip).
    #[value(name = "1.3")]
    Tls13,
    /// Plain HTTP.
    None,
}

impl ModelArgs {
    /// Loads the network and host profiles into a scenario.
    pub fn scenario(&self) -> anyhow::Result<Scenario> {
        let scale = self.scale.unwrap_or(1.0);
        if !(scale > 0.0 && scale.is_finite()) {
            super::exit::usage!("--scale must be positive");
        }
        let mut network = NetworkProfile::load(&self.network)?;
        if let Some(tls) = self.tls {
            network = network.with_tls(match tls {
                TlsArg::Tls12 => Some(TlsVersion::Tls12),
                TlsArg::Tls13 => Some(TlsVersion::Tls13),
                TlsArg::None => None,
            });
        }
        let host = load_host(self.host.as_deref())?;
        let dockerhub_flow = match self.flow {
            Flow::Auto => network.cdn.is_some(),
            Flow::Dockerhub => true,
            Flow::Plain => false,
        };
        Ok(Scenario {
            network,
            host,
            policy: self.policy.into(),
            max_concurrent_downloads: self
                .max_concurrent_downloads
                .unwrap_or_else(|| Policy::from(self.policy).default_downloads())
                .max(1),
            dockerhub_flow,
            index: false,
            registry_on_host: self.registry_on_host,
        })
    }

    /// Loads an image the way `simulate` accepts it.
    pub fn image(
        &self,
        spec: &str,
        platform: Option<&str>,
        registry: &RegistryArgs,
    ) -> anyhow::Result<SimImage> {
        load_image(
            spec,
            self.scale.unwrap_or(1.0),
            self.compression.unwrap_or(CompressionArg::Gzip).into(),
            platform,
            registry,
        )
    }
}

/// Docker Hub flow selection.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Flow {
    /// When the network profile has a CDN.
    Auto,
    /// Token and redirects.
    Dockerhub,
    /// A plain registry.
    Plain,
}

/// Loads the image to simulate from any of the accepted forms.
pub fn load_image(
    spec: &str,
    scale: f64,
    compression: Compression,
    platform: Option<&str>,
    registry: &RegistryArgs,
) -> anyhow::Result<SimImage> {
    let spec = match ImageInput::classify(spec)? {
        ImageInput::Layout { dir, tag } => return Ok(input::from_layout(&dir, &tag)?),
        ImageInput::Record(path) => {
            let r = pulltime::report::json::read_record(&path)?;
            return Ok(input::from_record(&path.display().to_string(), &r)?);
        }
        ImageInput::Profile(name) => {
            let p = ImageProfile::load(&name)?;
            return Ok(input::from_profile(&p, scale, compression));
        }
        ImageInput::Registry(r) => r,
    };
    let reference = Reference::parse(&spec).context(
        "not a layout (oci:DIR), a record (.json), an image profile (.toml or a built-in name) or a valid image reference",
    )?;
    let platform = match platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let mut options = ClientOptions {
        timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    };
    registry.apply(&reference, &mut options)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(input::from_registry(&reference, &options, &platform))?)
}

/// Loads a host profile (or the built-in default).
pub fn load_host(path: Option<&Path>) -> anyhow::Result<HostProfile> {
    Ok(match path {
        Some(p) => HostProfile::load(p)?,
        None => HostProfile::builtin(),
    })
}
