//! Where a simulated image comes from: a pull record (exact), an OCI layout (exact:
//! its tars are read), an image profile (sizes and counts from the profile,
//! compressed sizes estimated from its mix), or a registry reference (compressed
//! sizes exact, the rest estimated).

use std::io::Read;
use std::path::Path;

use super::{SimImage, SimLayer};
use crate::oci::media_type::Compression;
use crate::oci::record::{PullRecord, RequestKind};
use crate::pipeline::readers::decoder;
use crate::synth::{ImageProfile, Mix};

/// Could not build the image to simulate.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A layout problem.
    #[error("OCI layout {0}: {1}")]
    Layout(String, String),
    /// A record without runs or layers.
    #[error("record {0}: {1}")]
    Record(String, String),
}

/// The compression a layer media type implies (gzip when unknown).
fn compression_of(media_type: &str) -> Compression {
    crate::oci::media_type::Compression::of_media_type(media_type).unwrap_or(Compression::Gzip)
}

/// Bytes of tar headers and padding per entry, roughly (512-byte header, half a block of padding).
const TAR_OVERHEAD_PER_ENTRY: u64 = 768;

/// From a pull record: sizes and counts exactly as the pull saw them.
pub fn from_record(name: &str, r: &PullRecord) -> Result<SimImage, InputError> {
    if let Some(sim) = &r.simulation {
        let sim: super::SimulationInfo = serde_json::from_value(sim.clone())
            .map_err(|e| InputError::Record(name.into(), format!("simulation inputs: {e}")))?;
        return Ok(sim.image);
    }
    let run = r
        .runs
        .last()
        .ok_or_else(|| InputError::Record(name.into(), "no runs".into()))?;
    let layers = r
        .image
        .layers
        .iter()
        .zip(&run.layers)
        .map(|(info, l)| {
            let entries = l.files + l.dirs + l.symlinks + l.hardlinks + l.whiteouts;
            SimLayer {
                digest: info.digest.clone(),
                media_type: info.media_type.clone(),
                compressed: info.compressed_bytes,
                uncompressed: l.uncompressed_bytes,
                file_bytes: l
                    .uncompressed_bytes
                    .saturating_sub(entries * TAR_OVERHEAD_PER_ENTRY),
                files: l.files,
                dirs: l.dirs,
                compression: compression_of(&info.media_type),
                cached: false,
            }
        })
        .collect();
    Ok(SimImage {
        name: r.image.reference.clone(),
        layers,
        manifest_bytes: run
            .requests
            .iter()
            .find(|q| q.kind == RequestKind::Manifest)
            .map_or(1500, |q| q.bytes),
        config_bytes: run
            .requests
            .iter()
            .find(|q| q.kind == RequestKind::Config || q.kind == RequestKind::Redirect)
            .map_or(2000, |q| q.bytes.max(1)),
        estimated: Vec::new(),
    })
}

/// From an OCI layout: reads each layer's tar to count files, directories and bytes.
pub fn from_layout(dir: &Path, tag: &str) -> Result<SimImage, InputError> {
    let bad = |e: String| InputError::Layout(dir.display().to_string(), e);
    let layout = crate::oci::layout::Layout::open(dir).map_err(|e| bad(e.to_string()))?;
    let manifest = layout.manifest_for(tag).map_err(|e| bad(e.to_string()))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&manifest.data).map_err(|e| bad(e.to_string()))?;
    let mut layers = Vec::new();
    for d in doc["layers"].as_array().into_iter().flatten() {
        let digest = d["digest"].as_str().unwrap_or_default().to_string();
        let media_type = d["mediaType"].as_str().unwrap_or_default().to_string();
        let compression = compression_of(&media_type);
        let path = layout.blob_path(&digest).map_err(|e| bad(e.to_string()))?;
        let file =
            std::fs::File::open(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        let compressed = file.metadata().map_err(|e| bad(e.to_string()))?.len();
        let mut counting = Counting {
            inner: decoder(compression, file).map_err(|e| bad(e.to_string()))?,
            n: 0,
        };
        let (mut files, mut dirs, mut file_bytes) = (0u64, 0u64, 0u64);
        {
            let mut archive = tar::Archive::new(&mut counting);
            for e in archive.entries().map_err(|e| bad(e.to_string()))? {
                let e = e.map_err(|e| bad(format!("layer {digest}: {e}")))?;
                match e.header().entry_type() {
                    tar::EntryType::Directory => dirs += 1,
                    tar::EntryType::Regular | tar::EntryType::Continuous => {
                        files += 1;
                        file_bytes += e.size();
                    }
                    _ => {}
                }
            }
        }
        std::io::copy(&mut counting, &mut std::io::sink()).map_err(|e| bad(e.to_string()))?;
        layers.push(SimLayer {
            digest,
            media_type,
            compressed,
            uncompressed: counting.n,
            file_bytes,
            files,
            dirs,
            compression,
            cached: false,
        });
    }
    let config_bytes = doc["config"]["size"].as_u64().unwrap_or(2000);
    Ok(SimImage {
        name: format!("oci:{}:{tag}", dir.display()),
        layers,
        manifest_bytes: manifest.data.len() as u64,
        config_bytes,
        estimated: Vec::new(),
    })
}

struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Compression ratios by content kind, measured on pulltime's synthetic content
/// (see `synth::content` tests): text 2.75x, binary 2.2x with gzip; zstd level 3
/// is assumed to compress 5% better.
fn ratio(mix: &Mix, c: Compression) -> f64 {
    let total = mix.text + mix.binary + mix.compressed;
    let inv = (mix.text / 2.75 + mix.binary / 2.2 + mix.compressed) / total;
    match c {
        Compression::Gzip => 1.0 / inv,
        Compression::Zstd => 1.05 / inv,
        Compression::None => 1.0,
    }
}

/// From an image profile at `scale`: counts and sizes from the profile, compressed
/// sizes estimated from each layer's content mix.
pub fn from_profile(p: &ImageProfile, scale: f64, compression: Compression) -> SimImage {
    let media_type = match compression {
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
    };
    let layers = p
        .layers
        .iter()
        .map(|l| {
            let scaled = |n: u64| {
                if n == 0 {
                    0
                } else {
                    ((n as f64 * scale).round() as u64).max(1)
                }
            };
            let files = scaled(l.files);
            let file_bytes = ((l.size as f64 * scale).round() as u64).max(files);
            let dirs =
                files.div_ceil(30) + l.path.split('/').filter(|c| !c.is_empty()).count() as u64;
            let uncompressed =
                file_bytes + (files + dirs + scaled(l.symlinks)) * TAR_OVERHEAD_PER_ENTRY;
            SimLayer {
                digest: l.name.clone(),
                media_type: media_type.into(),
                compressed: (uncompressed as f64 / ratio(&l.mix, compression)) as u64,
                uncompressed,
                file_bytes,
                files,
                dirs,
                compression,
                cached: false,
            }
        })
        .collect();
    SimImage {
        name: format!("profile:{} (scale {scale})", p.name),
        layers,
        manifest_bytes: 1500,
        config_bytes: 2000,
        estimated: vec!["compressed sizes (from the profile's content mix)".into()],
    }
}

/// gzip ratio assumed for layers only known by their compressed size.
const ASSUMED_RATIO: f64 = 2.5;
/// Average file size assumed for layers only known by their size (bytes).
const ASSUMED_FILE_BYTES: u64 = 24 * 1024;

/// From a registry: resolves the reference (manifest and config only, nothing is
/// pulled) for exact compressed sizes; uncompressed sizes and file counts are
/// estimated (2.5x, 24 KB per file, 30 files per directory).
pub async fn from_registry(
    reference: &crate::oci::reference::Reference,
    options: &crate::registry::ClientOptions,
    platform: &crate::oci::platform::Platform,
) -> Result<SimImage, crate::registry::RegistryError> {
    let client = crate::registry::RegistryClient::new(
        reference,
        options,
        crate::registry::transport::RunClock::start(),
        false,
    )?;
    client.ping().await?;
    let resolved =
        crate::registry::resolve(&client, reference.manifest_reference(), platform, false).await?;
    let layers = resolved
        .layers
        .iter()
        .map(|l| {
            let ratio = match l.compression {
                Compression::None => 1.0,
                _ => ASSUMED_RATIO,
            };
            let uncompressed = (l.size as f64 * ratio) as u64;
            let files = (uncompressed / ASSUMED_FILE_BYTES).max(1);
            SimLayer {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                compressed: l.size,
                uncompressed,
                file_bytes: uncompressed,
                files,
                dirs: files.div_ceil(30),
                compression: l.compression,
                cached: false,
            }
        })
        .collect();
    Ok(SimImage {
        name: reference.to_string(),
        layers,
        manifest_bytes: 1500,
        config_bytes: 2000,
        estimated: vec!["uncompressed sizes (2.5x compressed) and file counts (24 KB per file): pull once with --json for exact inputs".into()],
    })
}
