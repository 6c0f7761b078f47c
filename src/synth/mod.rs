//! `pulltime synth`: deterministic images from image layout profiles. The same
//! profile, seed, scale and compression always give the same digests.

pub mod content;
mod layer;

use std::path::Path;

use serde_json::json;

use crate::oci::image::Blob;
use crate::oci::layout::Layout;
use crate::oci::media_type::Compression;
use crate::oci::media_type::OCI_MANIFEST;
use crate::oci::platform::Platform;
pub use crate::profiles::image::{ImageProfile, LayerProfile, Mix};
pub use layer::write_layer;

/// How to synthesise.
#[derive(Debug, Clone, Copy)]
pub struct SynthOptions {
    /// Multiplies every size and count (tests use small scales).
    pub scale: f64,
    /// Layer compression.
    pub compression: Compression,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            scale: 1.0,
            compression: Compression::Gzip,
        }
    }
}

/// What one synthesised layer turned out to be.
#[derive(Debug, Clone)]
pub struct SynthLayer {
    /// Blob digest.
    pub digest: String,
    /// Uncompressed tar digest.
    pub diff_id: String,
    /// Blob size.
    pub compressed_bytes: u64,
    /// Tar stream size.
    pub uncompressed_bytes: u64,
    /// Regular files in the layer.
    pub files: u64,
}

/// A synthesised image in a layout.
#[derive(Debug, Clone)]
pub struct SynthImage {
    /// Tag in the layout.
    pub tag: String,
    /// The manifest blob.
    pub manifest: Blob,
    /// Layers, bottom first.
    pub layers: Vec<SynthLayer>,
}

impl SynthImage {
    /// Sum of compressed layer sizes.
    pub fn compressed_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.compressed_bytes).sum()
    }
    /// Sum of tar stream sizes.
    pub fn uncompressed_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.uncompressed_bytes).sum()
    }
    /// Regular files over all layers.
    pub fn files(&self) -> u64 {
        self.layers.iter().map(|l| l.files).sum()
    }
}

/// Errors while synthesising.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Bad scale.
    #[error("--scale must be a positive number, got {0}")]
    Scale(f64),
    /// Writing the layout.
    #[error("writing the OCI layout at {path}")]
    Io {
        /// Layout directory.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Synthesises `profile` into the layout at `dir` under `tag`.
pub fn synthesize(
    profile: &ImageProfile,
    options: SynthOptions,
    dir: &Path,
    tag: &str,
) -> Result<SynthImage, SynthError> {
    if !(options.scale > 0.0 && options.scale.is_finite()) {
        return Err(SynthError::Scale(options.scale));
    }
    let io = |source| SynthError::Io {
        path: dir.display().to_string(),
        source,
    };
    let layout = Layout::create(dir).map_err(io)?;
    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    for (i, lp) in profile.layers.iter().enumerate() {
        let seed = profile.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let (blob_descriptor, l) = write_layer(&layout, lp, i, seed, options).map_err(io)?;
        descriptors.push(blob_descriptor);
        layers.push(l);
    }
    let platform = Platform::host();
    let config = json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Labels": {"org.pulltime.profile": profile.name}},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": profile.layers.iter().map(|l| json!({"created": "1970-01-01T00:00:00Z", "created_by": l.name})).collect::<Vec<_>>(),
    });
    let config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        serde_json::to_vec(&config).expect("json"),
    );
    layout.put_blob(&config).map_err(io)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": descriptors,
        "annotations": {"org.pulltime.profile": profile.name, "org.pulltime.scale": options.scale.to_string()},
    });
    let manifest = Blob::new(OCI_MANIFEST, serde_json::to_vec(&manifest).expect("json"));
    layout.tag(&manifest, tag).map_err(io)?;
    Ok(SynthImage {
        tag: tag.to_string(),
        manifest,
        layers,
    })
}
