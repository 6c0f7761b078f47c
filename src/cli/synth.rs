//! `pulltime synth`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use pulltime::oci::media_type::Compression;
use pulltime::oci::reference::Reference;
use pulltime::registry::transport::RunClock;
use pulltime::registry::{ClientOptions, RegistryClient};
use pulltime::report::{human_bytes, short_digest, table};
use pulltime::synth::{ImageProfile, SynthOptions, synthesize};

/// Shown at the end of `--help`.
const EXAMPLES: &str = "Examples:
  pulltime synth --list
  pulltime synth sn-text-filter-original --scale 0.1 --to oci:./layout
  pulltime synth many-small-files --push 127.0.0.1:5000/small:v1";

/// Arguments of `pulltime synth`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct SynthArgs {
    /// An image profile: a built-in name (see --list) or a TOML file.
    #[arg(required_unless_present = "list")]
    pub profile: Option<String>,
    /// Write to an OCI layout: `oci:DIR` (the tag is the profile name unless --tag).
    #[arg(long)]
    pub to: Option<String>,
    /// Push to a registry reference with pulltime's push code.
    #[arg(long)]
    pub push: Option<String>,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
    /// Multiply every size and file count. The default, 1, is the profile's
    /// full size (--list shows each); 0.01 makes a quick test image.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Tag in the layout (default: the profile name).
    #[arg(long)]
    pub tag: Option<String>,
    /// How to reach the registry: scheme, CAs, certs.d, insecure registries.
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
    /// List the built-in profiles and exit.
    #[arg(long)]
    pub list: bool,
}

/// `--compression`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompressionArg {
    /// tar+gzip.
    Gzip,
    /// tar+zstd.
    Zstd,
    /// plain tar.
    None,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::None => Compression::None,
        }
    }
}

/// Runs `pulltime synth`.
pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    if args.list {
        outln!("built-in image profiles, sizes at --scale 1 (the default), uncompressed:");
        for name in pulltime::profiles::image::builtin_names() {
            let p = ImageProfile::load(name)?;
            outln!(
                "{name:32} {:>9} {:>7} files",
                human_bytes(p.total_size()),
                p.total_files(),
            );
            out!("{}", table::paragraph("    ", "    ", &p.description));
        }
        return Ok(());
    }
    let name = args.profile.as_deref().expect("clap requires it");
    let profile = ImageProfile::load(name)?;
    if args.to.is_none() && args.push.is_none() {
        bail!("say where the image goes: --to oci:DIR and/or --push REGISTRY/REPO:TAG");
    }
    let push_ref = args.push.as_deref().map(Reference::parse).transpose()?;
    let layout_dir = match &args.to {
        Some(t) => Some(PathBuf::from(
            t.strip_prefix("oci:")
                .context("--to must look like oci:DIR")?,
        )),
        None => None,
    };
    let tmp = tempfile::tempdir().context("creating a temporary layout")?;
    let dir = layout_dir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let tag = args.tag.clone().unwrap_or_else(|| profile.name.clone());
    let options = SynthOptions {
        scale: args.scale,
        compression: args.compression.into(),
    };
    let image = synthesize(&profile, options, &dir, &tag)?;
    let rows: Vec<Vec<String>> = profile
        .layers
        .iter()
        .zip(&image.layers)
        .map(|(p, l)| {
            vec![
                short_digest(&l.digest).to_string(),
                p.name.clone(),
                human_bytes(l.compressed_bytes),
                human_bytes(l.uncompressed_bytes),
                l.files.to_string(),
            ]
        })
        .collect();
    out!(
        "{}",
        table::render(
            &["layer", "what", "compressed", "uncompressed", "files"],
            &rows,
            2
        )
    );
    outln!(
        "{} at scale {}{}: {} compressed, {} uncompressed, {}, manifest {}",
        profile.name,
        args.scale,
        if args.scale == 1.0 {
            " (the default: the profile's full size)"
        } else {
            ""
        },
        human_bytes(image.compressed_bytes()),
        human_bytes(image.uncompressed_bytes()),
        pulltime::report::plural(image.files(), "file"),
        image.manifest.digest
    );
    if let Some(d) = &layout_dir {
        outln!("wrote oci:{}:{tag}", d.display());
    }
    if let Some(reference) = push_ref {
        let mut options = ClientOptions {
            timeout: Duration::from_secs(60),
            ..ClientOptions::default()
        };
        args.registry.apply(&reference, &mut options)?;
        let layout = pulltime::oci::layout::Layout::open(&dir)?;
        let dest_tag = reference.manifest_reference().to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime
            .block_on(async {
                let client = RegistryClient::new(&reference, &options, RunClock::start(), true)?;
                client.ping().await?;
                pulltime::registry::push::push_layout(&client, &layout, &tag, &dest_tag).await
            })
            .with_context(|| format!("pushing to {reference}"))?;
        outln!("pushed {reference}");
    }
    Ok(())
}
