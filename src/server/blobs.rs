//! Serving manifests and blobs: `Content-Type`, `Content-Length`,
//! `Docker-Content-Digest`, and single `Range` requests answered with 206.

use std::io::SeekFrom;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::AppState;
use super::api::ApiError;
use super::shaping::Shaper;

/// GET/HEAD of a manifest by tag or digest.
pub fn serve_manifest(
    state: &AppState,
    repo: &str,
    reference: &str,
    head: bool,
) -> Result<Response, ApiError> {
    if !state.store.has_repo(repo) {
        return Err(ApiError::name_unknown(repo));
    }
    let (digest, media_type, path) = state
        .store
        .manifest(repo, reference)
        .ok_or_else(|| ApiError::manifest_unknown(reference))?;
    let body = std::fs::read(&path).map_err(ApiError::internal)?;
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, media_type)
        .header(header::CONTENT_LENGTH, body.len())
        .header("docker-content-digest", &digest)
        .header(header::ETAG, format!("\"{digest}\""));
    if head {
        return resp.body(Body::empty()).map_err(ApiError::internal);
    }
    resp.body(Body::from(body)).map_err(ApiError::internal)
}

/// GET/HEAD of a blob file, shaped by `shaper`, honouring one `Range`.
pub async fn serve_blob(
    shaper: &Arc<Shaper>,
    path: &Path,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(ApiError::internal)?;
    let size = file.metadata().await.map_err(ApiError::internal)?.len();
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) => Some(parse_range(r, size).ok_or_else(|| {
            ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UNKNOWN",
                format!("range {r} not satisfiable for {size} bytes"),
            )
        })?),
        None => None,
    };
    let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
    let len = if size == 0 { 0 } else { end - start + 1 };
    let mut resp = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header("docker-content-digest", digest)
        .header(header::ETAG, format!("\"{digest}\""));
    resp = if range.is_some() {
        resp.status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"))
    } else {
        resp.status(StatusCode::OK)
    };
    if head {
        return resp.body(Body::empty()).map_err(ApiError::internal);
    }
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(ApiError::internal)?;
    let reader = file.take(len);
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024);
    resp.body(Body::from_stream(shaper.shape(stream)))
        .map_err(ApiError::internal)
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against `size`; inclusive bounds.
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.saturating_sub(n), size - 1)
        }
        (a, "") => (a.parse().ok()?, size - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
}

/// Sets a header from a string that is known to be a valid value.
pub fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
