//! Blob uploads: single-POST monolithic (`?digest=`), POST + PUT, chunked PATCH with
//! `Content-Range` order checks (416 when out of order), cross-repository mounts.
//! Bytes are hashed as they arrive; a blob whose content does not match its digest
//! is rejected and nothing is stored.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::AppState;
use super::api::ApiError;

/// One upload in progress.
#[derive(Debug)]
pub struct Session {
    repo: String,
    path: PathBuf,
    size: u64,
    hasher: Sha256,
}

/// Open upload sessions by id.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    next: Mutex<u64>,
}

impl Sessions {
    fn new_id(&self) -> String {
        let mut n = self.next.lock().expect("sessions lock");
        *n += 1;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let h = Sha256::digest(format!("{nanos}-{n}-{}", std::process::id()));
        hex::encode(&h[..16])
    }

    fn take(&self, repo: &str, id: &str) -> Result<Session, ApiError> {
        let mut map = self.map.lock().expect("sessions lock");
        match map.remove(id) {
            Some(s) if s.repo == repo => Ok(s),
            Some(s) => {
                map.insert(id.to_string(), s);
                Err(upload_unknown(id))
            }
            None => Err(upload_unknown(id)),
        }
    }

    fn put_back(&self, id: &str, s: Session) {
        self.map
            .lock()
            .expect("sessions lock")
            .insert(id.to_string(), s);
    }
}

fn upload_unknown(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
        format!("blob upload unknown: {id}"),
    )
}

/// POST /v2/<repo>/blobs/uploads/.
pub async fn start(
    state: &AppState,
    repo: &str,
    query: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if let (Some(digest), Some(from)) = (q.get("mount"), q.get("from")) {
        crate::oci::digest::validate_digest(digest).map_err(ApiError::digest_invalid)?;
        if state
            .store
            .mount_blob(from, repo, digest)
            .map_err(ApiError::internal)?
        {
            return Ok(created(repo, digest));
        }
    }
    let id = state.sessions.new_id();
    let path = state.store.uploads_dir().join(&id);
    tokio::fs::File::create(&path)
        .await
        .map_err(ApiError::internal)?;
    let mut session = Session {
        repo: repo.to_string(),
        path,
        size: 0,
        hasher: Sha256::new(),
    };
    if let Some(digest) = q.get("digest") {
        append(&mut session, body).await?;
        return complete(state, session, digest).await;
    }
    state.sessions.put_back(&id, session);
    Ok(accepted(repo, &id, 0))
}

/// PATCH /v2/<repo>/blobs/uploads/<id>: one chunk.
pub async fn patch(
    state: &AppState,
    repo: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut session = state.sessions.take(repo, id)?;
    if let Some(range) = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    {
        let start = range
            .trim_start_matches("bytes ")
            .split(['-', '/'])
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if start != Some(session.size) {
            let size = session.size;
            state.sessions.put_back(id, session);
            return Err(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                format!("chunk starts at {range:?} but {size} bytes were received"),
            ));
        }
    }
    let r = append(&mut session, body).await;
    let size = session.size;
    state.sessions.put_back(id, session);
    r?;
    Ok(accepted(repo, id, size))
}

/// PUT /v2/<repo>/blobs/uploads/<id>?digest=: last chunk (optional) and commit.
pub async fn finish(
    state: &AppState,
    repo: &str,
    id: &str,
    query: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let digest = q
        .get("digest")
        .ok_or_else(|| ApiError::digest_invalid("PUT without ?digest="))?
        .clone();
    let mut session = state.sessions.take(repo, id)?;
    append(&mut session, body).await?;
    complete(state, session, &digest).await
}

/// GET /v2/<repo>/blobs/uploads/<id>: progress.
pub fn status(state: &AppState, repo: &str, id: &str) -> Result<Response, ApiError> {
    let session = state.sessions.take(repo, id)?;
    let size = session.size;
    state.sessions.put_back(id, session);
    let mut r = accepted(repo, id, size);
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

/// DELETE /v2/<repo>/blobs/uploads/<id>.
pub fn cancel(state: &AppState, repo: &str, id: &str) -> Result<Response, ApiError> {
    let session = state.sessions.take(repo, id)?;
    let _ = std::fs::remove_file(&session.path);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn append(session: &mut Session, body: Body) -> Result<(), ApiError> {
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&session.path)
        .await
        .map_err(ApiError::internal)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                format!("reading body: {e}"),
            )
        })?;
        session.hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
        session.size += chunk.len() as u64;
    }
    file.flush().await.map_err(ApiError::internal)?;
    Ok(())
}

async fn complete(state: &AppState, session: Session, digest: &str) -> Result<Response, ApiError> {
    let actual = format!("sha256:{}", hex::encode(session.hasher.finalize()));
    if crate::oci::digest::validate_digest(digest).is_err() || actual != digest {
        let _ = tokio::fs::remove_file(&session.path).await;
        return Err(ApiError::digest_invalid(format!(
            "content digest is {actual}, not {digest}"
        )));
    }
    tokio::fs::rename(&session.path, state.store.pushed_blob(digest))
        .await
        .map_err(ApiError::internal)?;
    state
        .store
        .link_blob(&session.repo, digest)
        .map_err(ApiError::internal)?;
    Ok(created(&session.repo, digest))
}

fn created(repo: &str, digest: &str) -> Response {
    (
        StatusCode::CREATED,
        [
            (header::LOCATION, format!("/v2/{repo}/blobs/{digest}")),
            (
                header::HeaderName::from_static("docker-content-digest"),
                digest.to_string(),
            ),
        ],
    )
        .into_response()
}

fn accepted(repo: &str, id: &str, size: u64) -> Response {
    let range = if size == 0 {
        "0-0".to_string()
    } else {
        format!("0-{}", size - 1)
    };
    (
        StatusCode::ACCEPTED,
        [
            (header::LOCATION, format!("/v2/{repo}/blobs/uploads/{id}")),
            (header::RANGE, range),
            (
                header::HeaderName::from_static("docker-upload-uuid"),
                id.to_string(),
            ),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
    )
        .into_response()
}
