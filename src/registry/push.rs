//! Pushing an image: monolithic blob uploads (POST, then PUT with the digest) and a
//! manifest PUT. Blobs the registry already has are skipped after a HEAD.

use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};

use super::client::RegistryClient;
use super::error::RegistryError;
use crate::oci::image::{Blob, BuiltImage};
use crate::oci::record::RequestKind;

/// Pushes `image` under `tag` (or a digest) and returns the manifest digest.
pub async fn push_image(
    client: &RegistryClient,
    image: &BuiltImage,
    tag: &str,
) -> Result<String, RegistryError> {
    for blob in image.layers.iter().chain(std::iter::once(&image.config)) {
        push_blob(client, blob).await?;
    }
    push_manifest(client, &image.manifest, tag).await
}

/// PUTs a manifest or index under `tag` (or its digest); returns its digest. The
/// blobs it refers to must already be in the repository.
pub async fn push_manifest(
    client: &RegistryClient,
    manifest: &Blob,
    tag: &str,
) -> Result<String, RegistryError> {
    let url = client.repo_url(&format!("manifests/{tag}"))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        manifest
            .media_type
            .parse()
            .map_err(|_| RegistryError::Invalid {
                what: "manifest media type".into(),
                reason: manifest.media_type.clone(),
            })?,
    );
    let resp = client
        .send(
            RequestKind::PushManifest,
            Method::PUT,
            url.clone(),
            headers,
            Some(manifest.data.clone()),
        )
        .await?
        .response;
    if !resp.status().is_success() {
        return Err(client.status_error("PUT", url.as_str(), resp).await);
    }
    Ok(manifest.digest.clone())
}

/// Uploads one blob unless the registry already has it.
pub async fn push_blob(client: &RegistryClient, blob: &Blob) -> Result<(), RegistryError> {
    let head = client.repo_url(&format!("blobs/{}", blob.digest))?;
    let resp = client
        .send(
            RequestKind::PushHead,
            Method::HEAD,
            head,
            HeaderMap::new(),
            None,
        )
        .await?
        .response;
    if resp.status().is_success() {
        return Ok(());
    }
    let start = client.repo_url("blobs/uploads/")?;
    let resp = client
        .send(
            RequestKind::PushStart,
            Method::POST,
            start.clone(),
            HeaderMap::new(),
            None,
        )
        .await?
        .response;
    if resp.status() != StatusCode::ACCEPTED {
        return Err(client.status_error("POST", start.as_str(), resp).await);
    }
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Invalid {
            what: "upload session".into(),
            reason: "202 without a Location header".into(),
        })?;
    let mut url = resp
        .url()
        .join(location)
        .map_err(|e| RegistryError::Invalid {
            what: "upload session".into(),
            reason: format!("bad Location: {e}"),
        })?;
    url.query_pairs_mut().append_pair("digest", &blob.digest);
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        "application/octet-stream".parse().expect("static"),
    );
    let resp = client
        .send(
            RequestKind::PushBlob,
            Method::PUT,
            url.clone(),
            headers,
            Some(blob.data.clone()),
        )
        .await?
        .response;
    if resp.status() != StatusCode::CREATED {
        return Err(client.status_error("PUT", url.as_str(), resp).await);
    }
    Ok(())
}

/// Pushes the image tagged `tag` in an OCI layout (config, layers, then manifest)
/// under `dest_tag`. Blobs are read one at a time.
pub async fn push_layout(
    client: &RegistryClient,
    layout: &crate::oci::layout::Layout,
    tag: &str,
    dest_tag: &str,
) -> Result<String, RegistryError> {
    let io = |what: String| move |source| RegistryError::Io { what, source };
    let manifest = layout
        .manifest_for(tag)
        .map_err(io(format!("reading tag {tag} from the layout")))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&manifest.data).map_err(|e| RegistryError::Invalid {
            what: "layout manifest".into(),
            reason: e.to_string(),
        })?;
    let descriptors =
        std::iter::once(&doc["config"]).chain(doc["layers"].as_array().into_iter().flatten());
    for d in descriptors {
        let digest = d["digest"].as_str().unwrap_or_default();
        let media_type = d["mediaType"]
            .as_str()
            .unwrap_or("application/octet-stream");
        let path = layout
            .blob_path(digest)
            .map_err(io(format!("blob {digest}")))?;
        let data = tokio::fs::read(&path)
            .await
            .map_err(io(format!("reading {}", path.display())))?;
        let blob = Blob::new(media_type, data);
        if blob.digest != digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("layout blob {}", path.display()),
                expected: digest.into(),
                actual: blob.digest,
            });
        }
        push_blob(client, &blob).await?;
    }
    push_manifest(client, &manifest, dest_tag).await
}
