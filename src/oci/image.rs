//! Building OCI images in memory from layer tars: the image side of pushing, used by
//! tests and by image synthesis. Digests are computed here, once.

use bytes::Bytes;
use serde_json::json;

use super::digest::sha256_digest;
use super::media_type::Compression;
use super::media_type::OCI_MANIFEST;
use super::platform::Platform;

/// A content-addressed blob.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Media type for its descriptor.
    pub media_type: String,
    /// `sha256:...` of `data`.
    pub digest: String,
    /// The bytes.
    pub data: Bytes,
}

impl Blob {
    /// Wraps bytes and computes their digest.
    pub fn new(media_type: &str, data: impl Into<Bytes>) -> Blob {
        let data = data.into();
        Blob {
            media_type: media_type.into(),
            digest: sha256_digest(&data),
            data,
        }
    }

    /// The OCI descriptor JSON of this blob.
    pub fn descriptor(&self) -> serde_json::Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.data.len()})
    }
}

/// An image ready to push: layers, config and manifest.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// Compressed layer blobs in order.
    pub layers: Vec<Blob>,
    /// The config blob.
    pub config: Blob,
    /// The manifest blob (OCI image manifest).
    pub manifest: Blob,
}

/// Compresses one uncompressed layer tar; returns the blob and its diff_id.
pub fn compress_layer(tar: &[u8], compression: Compression) -> std::io::Result<(Blob, String)> {
    use std::io::Write;
    let diff_id = sha256_digest(tar);
    let (media_type, data) = match compression {
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(tar)?;
            ("application/vnd.oci.image.layer.v1.tar+gzip", enc.finish()?)
        }
        Compression::Zstd => (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            zstd::stream::encode_all(tar, 3)?,
        ),
        Compression::None => ("application/vnd.oci.image.layer.v1.tar", tar.to_vec()),
    };
    Ok((Blob::new(media_type, data), diff_id))
}

/// Builds an OCI image from uncompressed layer tars.
pub fn build_image(
    layer_tars: &[Vec<u8>],
    compression: Compression,
    platform: &Platform,
) -> std::io::Result<BuiltImage> {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layer_tars {
        let (blob, diff_id) = compress_layer(tar, compression)?;
        layers.push(blob);
        diff_ids.push(diff_id);
    }
    let mut config = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| json!({"created_by": "pulltime"})).collect::<Vec<_>>(),
    });
    if let Some(v) = &platform.variant {
        config["variant"] = json!(v);
    }
    let config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        serde_json::to_vec(&config).expect("config serialises"),
    );
    let manifest = manifest_blob(OCI_MANIFEST, &config, &layers);
    Ok(BuiltImage {
        layers,
        config,
        manifest,
    })
}

impl BuiltImage {
    /// Rewrites the manifest (as `media_type`) after `config` or `layers` changed.
    pub fn rebuild_manifest(&mut self, media_type: &str) {
        self.manifest = manifest_blob(media_type, &self.config, &self.layers);
    }
}

/// An image manifest of `media_type` (OCI or Docker schema 2) for `config` and `layers`.
pub fn manifest_blob(media_type: &str, config: &Blob, layers: &[Blob]) -> Blob {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
    });
    Blob::new(
        media_type,
        serde_json::to_vec(&manifest).expect("manifest serialises"),
    )
}
