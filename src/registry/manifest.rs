//! Manifest negotiation and resolution: tag -> (index -> platform manifest) -> config.

use oci_spec::image::{ImageIndex, ImageManifest, RootFs};

use super::client::{FetchedManifest, RegistryClient};
use super::error::RegistryError;
use crate::limits::{LimitError, Limits};
use crate::oci::digest::sha256_digest;
use crate::oci::media_type::{
    ACCEPT_MANIFESTS, Compression, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use crate::oci::platform::{self, Platform};
use crate::oci::record::RequestKind;

/// A layer to pull.
#[derive(Debug, Clone)]
pub struct LayerDescriptor {
    /// Blob digest.
    pub digest: String,
    /// Media type as the manifest states it.
    pub media_type: String,
    /// Compressed size.
    pub size: u64,
    /// How to decompress it.
    pub compression: Compression,
    /// The config's `rootfs.diff_ids` entry.
    pub diff_id: String,
}

/// Everything the resolve phase learns.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// Digest of what the tag points at.
    pub manifest_digest: String,
    /// Its media type.
    pub manifest_media_type: String,
    /// Digest of the platform manifest.
    pub platform_manifest_digest: String,
    /// The platform pulled.
    pub platform: String,
    /// Config blob digest.
    pub config_digest: String,
    /// Layers in order.
    pub layers: Vec<LayerDescriptor>,
}

/// Resolves `reference` (tag or digest) to a platform manifest, its config and layers.
/// An index is narrowed to `want`; a single-platform image is checked against `want`
/// only when `strict` (the user named a platform), as docker does.
pub async fn resolve(
    client: &RegistryClient,
    manifest_ref: &str,
    want: &Platform,
    strict: bool,
) -> Result<ResolvedImage, RegistryError> {
    resolve_limited(client, manifest_ref, want, strict, &Limits::DEFAULT).await
}

/// [`resolve`] with explicit limits: manifests, indexes and the config may be at
/// most [`Limits::max_manifest_bytes`], the image at most [`Limits::max_layers`]
/// layers (checked before the config is fetched). Exceeding either is
/// [`RegistryError::Limit`].
pub async fn resolve_limited(
    client: &RegistryClient,
    manifest_ref: &str,
    want: &Platform,
    strict: bool,
    limits: &Limits,
) -> Result<ResolvedImage, RegistryError> {
    let max = limits.max_manifest_bytes;
    let FetchedManifest {
        body,
        media_type: declared,
        digest: header_digest,
    } = client
        .get_manifest(RequestKind::Manifest, manifest_ref, ACCEPT_MANIFESTS, max)
        .await
        .map_err(named_limit)?;
    let digest = checked_digest("manifest", manifest_ref, header_digest.as_deref(), &body)?;
    let media_type = media_type_of(declared.as_deref(), &body)?;
    let (platform_digest, manifest_body, platform_name) = match media_type.as_str() {
        OCI_INDEX | DOCKER_LIST => {
            let index = parse_index(&body)?;
            let (entry_digest, name) = pick_platform(&index, want, client.repository())?;
            let FetchedManifest {
                body: mbody,
                media_type: mdeclared,
                digest: mheader,
            } = client
                .get_manifest(RequestKind::Index, &entry_digest, ACCEPT_MANIFESTS, max)
                .await
                .map_err(named_limit)?;
            checked_digest(
                "platform manifest",
                &entry_digest,
                mheader.as_deref(),
                &mbody,
            )?;
            let mt = media_type_of(mdeclared.as_deref(), &mbody)?;
            if mt != OCI_MANIFEST && mt != DOCKER_MANIFEST {
                return Err(RegistryError::UnsupportedMediaType {
                    media_type: mt,
                    what: format!(
                        "platform manifest {entry_digest} (nested indexes are not supported)"
                    ),
                });
            }
            (entry_digest, mbody, name)
        }
        OCI_MANIFEST | DOCKER_MANIFEST => (digest.clone(), body.clone(), String::new()),
        other => {
            return Err(RegistryError::UnsupportedMediaType {
                media_type: other.into(),
                what: format!(
                    "manifest of {manifest_ref} (schema 1 and artifacts cannot be pulled)"
                ),
            });
        }
    };
    let manifest = parse_manifest(&manifest_body)?;
    limits.check_layer_count(manifest.layers().len())?;
    let config_digest = manifest.config().digest().to_string();
    let config_body = fetch_config(client, &config_digest, max)
        .await
        .map_err(named_limit)?;
    let (diff_ids, config_platform) = parse_config(&config_body)?;
    if strict && platform_name.is_empty() {
        let have = Platform::parse(&config_platform).ok();
        if platform::select(want, std::slice::from_ref(&have)).is_none() {
            return Err(RegistryError::NoMatchingPlatform {
                reference: client.repository().to_string(),
                wanted: want.to_string(),
                available: config_platform,
            });
        }
    }
    let layers = layer_descriptors(&manifest, diff_ids)?;
    Ok(ResolvedImage {
        manifest_digest: digest,
        manifest_media_type: media_type,
        platform_manifest_digest: platform_digest,
        platform: if platform_name.is_empty() {
            config_platform
        } else {
            platform_name
        },
        config_digest,
        layers,
    })
}

/// The layers of a platform manifest, paired with the config's `rootfs.diff_ids`
/// (which must be as many) and with the compression of each media type.
pub fn layer_descriptors(
    manifest: &ImageManifest,
    diff_ids: Vec<String>,
) -> Result<Vec<LayerDescriptor>, RegistryError> {
    let descriptors = manifest.layers();
    if descriptors.len() != diff_ids.len() {
        return Err(RegistryError::Invalid {
            what: "image config".into(),
            reason: format!(
                "manifest lists {} layers but rootfs.diff_ids has {}",
                descriptors.len(),
                diff_ids.len()
            ),
        });
    }
    let mut layers = Vec::with_capacity(descriptors.len());
    for (i, (d, diff_id)) in descriptors.iter().zip(diff_ids).enumerate() {
        let media_type = d.media_type().to_string();
        let compression = Compression::of_media_type(&media_type).ok_or_else(|| {
            RegistryError::UnsupportedMediaType {
                media_type: media_type.clone(),
                what: format!("layer {i} ({})", d.digest()),
            }
        })?;
        layers.push(LayerDescriptor {
            digest: d.digest().to_string(),
            media_type,
            size: d.size(),
            compression,
            diff_id,
        });
    }
    Ok(layers)
}

/// Parses an image index (OCI index or docker manifest list).
pub fn parse_index(body: &[u8]) -> Result<ImageIndex, RegistryError> {
    parse("image index", body)
}

/// Parses an image manifest (OCI or docker schema 2).
pub fn parse_manifest(body: &[u8]) -> Result<ImageManifest, RegistryError> {
    parse("image manifest", body)
}

/// The client's generic "too large" for a manifest or config, as the limit error
/// that names the flag raising it.
fn named_limit(e: RegistryError) -> RegistryError {
    match e {
        RegistryError::TooLarge { what, limit } => LimitError::ManifestSize { what, limit }.into(),
        e => e,
    }
}

async fn fetch_config(
    client: &RegistryClient,
    digest: &str,
    max: u64,
) -> Result<bytes::Bytes, RegistryError> {
    let body = client
        .retry_body(|| async {
            let blob = client.open_blob(RequestKind::Config, digest).await?;
            client
                .read_body(blob.response, blob.log_index, "image config", max)
                .await
        })
        .await?;
    let actual = sha256_digest(&body);
    if actual != digest {
        return Err(RegistryError::DigestMismatch {
            what: "image config".into(),
            expected: digest.into(),
            actual,
        });
    }
    Ok(body)
}

/// `rootfs.diff_ids` and `os/arch[/variant]` of an image config.
pub fn parse_config(body: &[u8]) -> Result<(Vec<String>, String), RegistryError> {
    let invalid = |reason: String| RegistryError::Invalid {
        what: "image config".into(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    let rootfs: RootFs = serde_json::from_value(value.get("rootfs").cloned().unwrap_or_default())
        .map_err(|e| invalid(format!("rootfs: {e}")))?;
    let field = |k: &str| {
        value
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let mut platform = format!("{}/{}", field("os"), field("architecture"));
    if !field("variant").is_empty() {
        platform = format!("{platform}/{}", field("variant"));
    }
    Ok((rootfs.diff_ids().clone(), platform))
}

/// The index entry for `want`: its digest and platform name. `repository` only
/// names the image in the error when no entry matches.
pub fn pick_platform(
    index: &ImageIndex,
    want: &Platform,
    repository: &str,
) -> Result<(String, String), RegistryError> {
    let entries: Vec<Option<Platform>> = index
        .manifests()
        .iter()
        .map(|m| {
            m.platform().as_ref().map(|p| Platform {
                os: p.os().to_string(),
                architecture: p.architecture().to_string(),
                variant: p.variant().clone(),
            })
        })
        .collect();
    match platform::select(want, &entries) {
        Some(i) => {
            let name = entries[i]
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            Ok((index.manifests()[i].digest().to_string(), name))
        }
        None => Err(RegistryError::NoMatchingPlatform {
            reference: repository.to_string(),
            wanted: want.to_string(),
            available: entries
                .iter()
                .flatten()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|e| RegistryError::Invalid {
        what: what.into(),
        reason: e.to_string(),
    })
}

/// The media type: the `Content-Type` the registry sent, else the document's own
/// `mediaType` field.
pub fn media_type_of(declared: Option<&str>, body: &[u8]) -> Result<String, RegistryError> {
    let declared = declared
        .map(|d| d.split(';').next().unwrap_or(d).trim().to_string())
        .filter(|d| !d.is_empty() && d != "application/json" && d != "text/plain");
    if let Some(d) = declared {
        return Ok(d);
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = parse("manifest", body)?;
    Ok(probe.media_type.unwrap_or_else(|| {
        if probe.manifests.is_some() {
            OCI_INDEX.into()
        } else {
            OCI_MANIFEST.into()
        }
    }))
}

/// The digest of a fetched manifest, checked against what was asked for (when it was
/// a digest) and against the registry's `Docker-Content-Digest` header.
fn checked_digest(
    what: &str,
    asked: &str,
    header: Option<&str>,
    body: &[u8],
) -> Result<String, RegistryError> {
    let actual = sha256_digest(body);
    if asked.starts_with("sha256:") && asked != actual {
        return Err(RegistryError::DigestMismatch {
            what: what.into(),
            expected: asked.into(),
            actual,
        });
    }
    if let Some(h) = header.filter(|h| h.starts_with("sha256:") && *h != actual) {
        return Err(RegistryError::DigestMismatch {
            what: format!("{what} (Docker-Content-Digest header)"),
            expected: h.into(),
            actual,
        });
    }
    Ok(actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_media_types() {
        assert_eq!(
            Compression::of_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::of_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::of_media_type("application/vnd.oci.image.layer.v1.tar"),
            Some(Compression::None)
        );
        assert_eq!(
            Compression::of_media_type("application/vnd.in-toto+json"),
            None
        );
    }

    #[test]
    fn media_type_from_header_or_body() {
        assert_eq!(
            media_type_of(
                Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
                b"{}"
            )
            .unwrap(),
            OCI_INDEX
        );
        assert_eq!(
            media_type_of(Some("application/json"), br#"{"mediaType":"x"}"#).unwrap(),
            "x"
        );
        assert_eq!(
            media_type_of(None, br#"{"manifests":[]}"#).unwrap(),
            OCI_INDEX
        );
        assert_eq!(
            media_type_of(None, br#"{"layers":[]}"#).unwrap(),
            OCI_MANIFEST
        );
    }

    #[test]
    fn manifest_digests_are_checked() {
        let body = b"{}";
        let d = sha256_digest(body);
        assert_eq!(checked_digest("m", "latest", None, body).unwrap(), d);
        assert_eq!(checked_digest("m", &d, Some(&d), body).unwrap(), d);
        let other = sha256_digest(b"x");
        assert!(matches!(
            checked_digest("m", &other, None, body),
            Err(RegistryError::DigestMismatch { .. })
        ));
        assert!(checked_digest("m", "latest", Some(&other), body).is_err());
    }

    #[test]
    fn config_diff_ids_and_platform() {
        let (ids, p) = parse_config(
            br#"{"architecture":"arm","os":"linux","variant":"v7","rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#,
        )
        .unwrap();
        assert_eq!(ids, vec!["sha256:aa".to_string()]);
        assert_eq!(p, "linux/arm/v7");
        assert!(parse_config(b"{}").is_err());
    }
}
