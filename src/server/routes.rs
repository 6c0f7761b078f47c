//! Request routing for `/v2/...`: repository names contain slashes, so the path is
//! split on its last `/manifests/`, `/blobs/uploads/`, `/blobs/` or `/tags/list`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api::{ApiError, json_response};
use super::blobs::{serve_blob, serve_manifest};
use super::hub::Access;
use super::{AppState, manifests, uploads};

/// What a `/v2/` path addresses.
#[derive(Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/v2/`.
    Base,
    /// `/v2/<repo>/tags/list`.
    Tags(&'a str),
    /// `/v2/<repo>/manifests/<reference>`.
    Manifest(&'a str, &'a str),
    /// `/v2/<repo>/blobs/uploads/[<id>]`.
    Upload(&'a str, &'a str),
    /// `/v2/<repo>/blobs/<digest>`.
    Blob(&'a str, &'a str),
}

/// Parses the path after `/v2/`; `None` for paths that are no API endpoint.
pub fn parse(path: &str) -> Option<Target<'_>> {
    let rest = path.strip_prefix("/v2/")?;
    if rest.is_empty() {
        return Some(Target::Base);
    }
    if let Some(repo) = rest.strip_suffix("/tags/list") {
        return Some(Target::Tags(repo));
    }
    if let Some(i) = rest.rfind("/manifests/") {
        return Some(Target::Manifest(&rest[..i], &rest[i + 11..]));
    }
    if let Some(i) = rest.rfind("/blobs/uploads/") {
        return Some(Target::Upload(&rest[..i], &rest[i + 15..]));
    }
    if let Some(repo) = rest.strip_suffix("/blobs/uploads") {
        return Some(Target::Upload(repo, ""));
    }
    if let Some(i) = rest.rfind("/blobs/") {
        return Some(Target::Blob(&rest[..i], &rest[i + 7..]));
    }
    None
}

/// Adds the profile's round trip (and handshake round trips for new connections)
/// before every request is handled.
pub async fn delay(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<super::conn::Peer>,
    req: Request,
    next: Next,
) -> Response {
    state.shaper.request_delay(Some(peer.addr)).await;
    next.run(req).await
}

/// The one handler for `/v2/...`.
pub async fn dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let result = handle(&state, &parts.method, &path, &query, &parts.headers, body).await;
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

async fn handle(
    state: &Arc<AppState>,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let target = parse(path).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            format!("no such endpoint: {path}"),
        )
    })?;
    let repo = match &target {
        Target::Base => None,
        Target::Tags(r) | Target::Manifest(r, _) | Target::Upload(r, _) | Target::Blob(r, _) => {
            Some(*r)
        }
    };
    if let Some(r) = repo {
        crate::oci::reference::validate_repository(r)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "NAME_INVALID", e))?;
    }
    if let Some(hub) = &state.hub {
        let access = match *method {
            Method::GET | Method::HEAD => Access::Pull,
            _ => Access::Push,
        };
        if let Some(challenge) = hub.check(headers, repo, access) {
            return Ok(challenge);
        }
    }
    match (target, method.clone()) {
        (Target::Base, Method::GET | Method::HEAD) => Ok(json_response(StatusCode::OK, "{}")),
        (Target::Tags(repo), Method::GET) => tags(state, repo, query),
        (Target::Manifest(repo, reference), Method::GET | Method::HEAD) => {
            let mut resp = serve_manifest(state, repo, reference, method == Method::HEAD)?;
            if let (Some(hub), &Method::GET) = (&state.hub, method) {
                hub.count_manifest_get(resp.headers_mut())?;
            }
            Ok(resp)
        }
        (Target::Manifest(repo, reference), Method::PUT) => {
            manifests::put(state, repo, reference, headers, body).await
        }
        (Target::Manifest(repo, reference), Method::DELETE) => {
            manifests::delete(state, repo, reference)
        }
        (Target::Blob(repo, digest), Method::GET) if state.hub.is_some() => state
            .hub
            .as_ref()
            .expect("checked")
            .redirect_blob(state, repo, digest),
        (Target::Blob(repo, digest), Method::GET | Method::HEAD) => {
            let path = state
                .store
                .blob_path(repo, digest)
                .ok_or_else(|| ApiError::blob_unknown(digest))?;
            serve_blob(
                &state.shaper,
                &path,
                digest,
                headers,
                method == Method::HEAD,
            )
            .await
        }
        (Target::Blob(repo, digest), Method::DELETE) => {
            state
                .store
                .unlink_blob(repo, digest)
                .map_err(ApiError::internal)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Target::Upload(repo, ""), Method::POST) => uploads::start(state, repo, query, body).await,
        (Target::Upload(repo, id), Method::PATCH) => {
            uploads::patch(state, repo, id, headers, body).await
        }
        (Target::Upload(repo, id), Method::PUT) => {
            uploads::finish(state, repo, id, query, body).await
        }
        (Target::Upload(repo, id), Method::GET) => uploads::status(state, repo, id),
        (Target::Upload(repo, id), Method::DELETE) => uploads::cancel(state, repo, id),
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{method} is not supported on {path}"),
        )),
    }
}

fn tags(state: &AppState, repo: &str, query: &str) -> Result<Response, ApiError> {
    let mut tags = state
        .store
        .tags(repo)
        .ok_or_else(|| ApiError::name_unknown(repo))?;
    let mut n = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "last" => tags.retain(|t| t.as_str() > v.as_ref()),
            "n" => n = v.parse::<usize>().ok(),
            _ => {}
        }
    }
    if let Some(n) = n {
        tags.truncate(n);
    }
    let body = serde_json::json!({"name": repo, "tags": tags});
    Ok(json_response(StatusCode::OK, &body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse("/v2/"), Some(Target::Base));
        assert_eq!(parse("/v2/a/b/tags/list"), Some(Target::Tags("a/b")));
        assert_eq!(
            parse("/v2/a/b/manifests/v1"),
            Some(Target::Manifest("a/b", "v1"))
        );
        assert_eq!(parse("/v2/a/blobs/uploads/"), Some(Target::Upload("a", "")));
        assert_eq!(
            parse("/v2/a/blobs/uploads/xyz"),
            Some(Target::Upload("a", "xyz"))
        );
        assert_eq!(
            parse("/v2/a/blobs/sha256:00"),
            Some(Target::Blob("a", "sha256:00"))
        );
        // A repository may itself contain "manifests" or "blobs" as a component.
        assert_eq!(
            parse("/v2/blobs/manifests/manifests/t"),
            Some(Target::Manifest("blobs/manifests", "t"))
        );
        assert_eq!(parse("/v1/x"), None);
        assert_eq!(parse("/v2/a/other"), None);
    }
}
