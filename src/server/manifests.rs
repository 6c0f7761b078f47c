//! Manifest PUT and DELETE: size limit, JSON validation, every referenced blob or
//! child manifest must already be in the repository, digest references must match.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::AppState;
use super::api::ApiError;
use super::store::media_type_of;
use crate::limits::Limits;
use crate::oci::digest::sha256_digest;
use crate::oci::media_type::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

/// PUT /v2/<repo>/manifests/<reference>.
pub async fn put(
    state: &AppState,
    repo: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut bytes = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::manifest_invalid(format!("reading body: {e}")))?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > Limits::DEFAULT.max_manifest_bytes {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!(
                    "manifest larger than {} bytes",
                    Limits::DEFAULT.max_manifest_bytes
                ),
            ));
        }
    }
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::manifest_invalid(format!("not JSON: {e}")))?;
    if doc["schemaVersion"].as_u64() != Some(2) {
        return Err(ApiError::manifest_invalid("schemaVersion must be 2"));
    }
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string())
        .filter(|s| !s.is_empty() && s != "application/json" && s != "application/octet-stream");
    let media_type = declared.unwrap_or_else(|| media_type_of(&doc));
    if let Some(field) = doc["mediaType"].as_str().filter(|f| *f != media_type) {
        return Err(ApiError::manifest_invalid(format!(
            "mediaType {field:?} does not match Content-Type {media_type:?}"
        )));
    }
    match media_type.as_str() {
        OCI_INDEX | DOCKER_LIST => {
            let children = doc["manifests"]
                .as_array()
                .ok_or_else(|| ApiError::manifest_invalid("index without a manifests array"))?;
            for c in children {
                let d = descriptor_digest(c)?;
                if !state.store.has_manifest(repo, d) {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "MANIFEST_BLOB_UNKNOWN",
                        format!("index refers to unknown manifest {d}"),
                    ));
                }
            }
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let layers = doc["layers"]
                .as_array()
                .ok_or_else(|| ApiError::manifest_invalid("manifest without a layers array"))?;
            for d in std::iter::once(&doc["config"]).chain(layers) {
                let digest = descriptor_digest(d)?;
                if state.store.blob_path(repo, digest).is_none() {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "MANIFEST_BLOB_UNKNOWN",
                        format!("blob unknown to registry: {digest}"),
                    ));
                }
            }
        }
        other => {
            return Err(ApiError::manifest_invalid(format!(
                "unsupported manifest media type {other:?}"
            )));
        }
    }
    let digest = sha256_digest(&bytes);
    let tag = if reference.contains(':') {
        if reference != digest {
            return Err(ApiError::digest_invalid(format!(
                "manifest digest is {digest}, not {reference}"
            )));
        }
        None
    } else {
        crate::oci::reference::Reference::parse(&format!("x:{reference}"))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", e.reason))?;
        Some(reference)
    };
    state
        .store
        .put_manifest(repo, tag, &digest, &media_type, &bytes)
        .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, format!("/v2/{repo}/manifests/{digest}")),
            (
                header::HeaderName::from_static("docker-content-digest"),
                digest,
            ),
        ],
    )
        .into_response())
}

/// DELETE /v2/<repo>/manifests/<digest>.
pub fn delete(state: &AppState, repo: &str, reference: &str) -> Result<Response, ApiError> {
    if !reference.starts_with("sha256:") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            "delete manifests by digest",
        ));
    }
    if !state
        .store
        .delete_manifest(repo, reference)
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::manifest_unknown(reference));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

fn descriptor_digest(d: &serde_json::Value) -> Result<&str, ApiError> {
    let digest = d["digest"]
        .as_str()
        .ok_or_else(|| ApiError::manifest_invalid("descriptor without a digest"))?;
    crate::oci::digest::validate_digest(digest).map_err(ApiError::manifest_invalid)?;
    Ok(digest)
}
