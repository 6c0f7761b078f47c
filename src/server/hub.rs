//! Docker Hub emulation: bearer challenges, a token endpoint that issues tokens per
//! repository scope, blob GETs answered with 307 to a CDN listener (signed,
//! expiring URLs, as Docker Hub's CDN uses), and pull rate-limit headers on
//! manifest GETs with 429 once the limit is spent.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

use super::AppState;
use super::api::{ApiError, json_response};
use super::blobs::{serve_blob, set_header};

/// The service name in challenges and token requests.
pub const SERVICE: &str = "registry.pulltime.test";
/// Rate-limit window, seconds (Docker Hub's is six hours).
const WINDOW_S: u64 = 21_600;
/// How long signed CDN URLs stay valid.
const CDN_URL_TTL_S: u64 = 600;

/// What a request wants to do with a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// GET/HEAD.
    Pull,
    /// Anything that writes.
    Push,
}

/// What a token allows: `(repository, action)` pairs, until an instant.
type Grant = (HashSet<(String, String)>, Instant);

/// Emulation state.
#[derive(Debug)]
pub struct Hub {
    realm: String,
    cdn_base: String,
    secret: String,
    limit: u64,
    remaining: Mutex<u64>,
    /// token -> what it grants and until when.
    tokens: Mutex<HashMap<String, Grant>>,
    issued: Mutex<u64>,
    ttl: Duration,
}

impl Hub {
    /// Emulation whose token endpoint is `realm` and CDN `cdn_base`
    /// (`http://host:port`), allowing `limit` manifest GETs per window.
    /// Tokens expire `ttl` after they are issued.
    pub fn new(realm: String, cdn_base: String, limit: u64, seed: u64, ttl: Duration) -> Self {
        Hub {
            realm,
            cdn_base,
            secret: hex::encode(Sha256::digest(format!(
                "pulltime-hub-{seed}-{}",
                std::process::id()
            ))),
            limit,
            remaining: Mutex::new(limit),
            tokens: Mutex::new(HashMap::new()),
            issued: Mutex::new(0),
            ttl,
        }
    }

    /// `None` when the request carries a token good for `access` to `repo`;
    /// otherwise the 401 challenge to send.
    pub fn check(
        &self,
        headers: &HeaderMap,
        repo: Option<&str>,
        access: Access,
    ) -> Option<Response> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let granted = token.and_then(|t| {
            let tokens = self.tokens.lock().expect("tokens lock");
            // An expired token is as good as none: 401 with a fresh challenge.
            tokens
                .get(t)
                .filter(|(_, expires)| Instant::now() < *expires)
                .map(|(g, _)| g.clone())
        });
        let ok = match (&granted, repo) {
            (Some(_), None) => true,
            (Some(g), Some(r)) => {
                let action = if access == Access::Pull {
                    "pull"
                } else {
                    "push"
                };
                g.contains(&(r.to_string(), action.to_string()))
            }
            (None, _) => false,
        };
        if ok {
            return None;
        }
        let mut challenge = format!("Bearer realm=\"{}\",service=\"{SERVICE}\"", self.realm);
        if let Some(r) = repo {
            let actions = if access == Access::Pull {
                "pull"
            } else {
                "pull,push"
            };
            challenge.push_str(&format!(",scope=\"repository:{r}:{actions}\""));
        }
        let mut resp = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        )
        .into_response();
        set_header(resp.headers_mut(), "www-authenticate", &challenge);
        Some(resp)
    }

    /// Counts a manifest GET against the rate limit and adds the headers; 429 when spent.
    pub fn count_manifest_get(&self, headers: &mut HeaderMap) -> Result<(), ApiError> {
        let mut remaining = self.remaining.lock().expect("ratelimit lock");
        if *remaining == 0 {
            // Docker Hub's 429 carries the spent quota (and no Retry-After).
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                "You have reached your pull rate limit (pulltime serve --rate-limit raises it).",
            )
            .with_header("ratelimit-limit", &format!("{};w={WINDOW_S}", self.limit))
            .with_header("ratelimit-remaining", &format!("0;w={WINDOW_S}")));
        }
        *remaining -= 1;
        set_header(
            headers,
            "ratelimit-limit",
            &format!("{};w={WINDOW_S}", self.limit),
        );
        set_header(
            headers,
            "ratelimit-remaining",
            &format!("{};w={WINDOW_S}", *remaining),
        );
        Ok(())
    }

    /// A blob GET: 307 to a signed CDN URL.
    pub fn redirect_blob(
        &self,
        state: &AppState,
        repo: &str,
        digest: &str,
    ) -> Result<Response, ApiError> {
        crate::oci::digest::validate_digest(digest).map_err(ApiError::digest_invalid)?;
        if state.store.blob_path(repo, digest).is_none() {
            return Err(ApiError::blob_unknown(digest));
        }
        let expires = now_s() + CDN_URL_TTL_S;
        let sig = self.sign(digest, expires);
        let location = format!("{}/cdn/{digest}?expires={expires}&sig={sig}", self.cdn_base);
        let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
        set_header(resp.headers_mut(), "location", &location);
        Ok(resp)
    }

    fn sign(&self, digest: &str, expires: u64) -> String {
        hex::encode(&Sha256::digest(format!("{}|{digest}|{expires}", self.secret))[..16])
    }

    fn grant(&self, scopes: &[String]) -> String {
        let mut n = self.issued.lock().expect("issued lock");
        *n += 1;
        let token = hex::encode(Sha256::digest(format!("{}|token|{}", self.secret, *n)));
        let mut granted = HashSet::new();
        for scope in scopes {
            // repository:<name>:<actions>; anonymous users may pull and push in the lab.
            let mut parts = scope.splitn(3, ':');
            if let (Some("repository"), Some(name), Some(actions)) =
                (parts.next(), parts.next(), parts.next())
            {
                for a in actions.split(',') {
                    if a == "pull" || a == "push" {
                        granted.insert((name.to_string(), a.to_string()));
                    }
                }
            }
        }
        let mut tokens = self.tokens.lock().expect("tokens lock");
        let now = Instant::now();
        tokens.retain(|_, (_, expires)| *expires > now);
        tokens.insert(token.clone(), (granted, expiry(self.ttl)));
        token
    }

    /// Seconds a token stays valid, as the token response's `expires_in`.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs().max(1)
    }
}

/// GET /token?service=...&scope=...: anonymous tokens, one per request.
pub async fn token(
    State(state): State<std::sync::Arc<AppState>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Some(hub) = &state.hub else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some((_, s)) = query.iter().find(|(k, v)| k == "service" && v != SERVICE) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            format!("unknown service {s:?}"),
        )
        .into_response();
    }
    let scopes: Vec<String> = query
        .into_iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v)
        .collect();
    let token = hub.grant(&scopes);
    let issued_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let body = serde_json::json!({"token": token, "access_token": token, "expires_in": hub.ttl_secs(), "issued_at": issued_at});
    json_response(StatusCode::OK, &body.to_string())
}

/// The CDN listener: GET/HEAD /cdn/<digest>?expires=&sig=.
pub async fn cdn_blob(
    State(state): State<std::sync::Arc<AppState>>,
    axum::extract::Path(digest): axum::extract::Path<String>,
    Query(q): Query<HashMap<String, String>>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    let Some(hub) = &state.hub else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let expires: u64 = q.get("expires").and_then(|e| e.parse().ok()).unwrap_or(0);
    let valid = crate::oci::digest::validate_digest(&digest).is_ok()
        && q.get("sig")
            .is_some_and(|s| *s == hub.sign(&digest, expires))
        && expires >= now_s();
    if !valid {
        return (StatusCode::FORBIDDEN, "signature invalid or expired").into_response();
    }
    let Some(path) = state.store.any_blob_path(&digest) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let shaper = state.cdn_shaper.as_ref().unwrap_or(&state.shaper);
    match serve_blob(
        shaper,
        &path,
        &digest,
        &headers,
        method == axum::http::Method::HEAD,
    )
    .await
    {
        Ok(mut r) => {
            r.headers_mut()
                .insert("server", HeaderValue::from_static("pulltime-cdn"));
            r
        }
        Err(e) => e.into_response(),
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// When a token issued now expires; a TTL too large for the clock never expires.
fn expiry(ttl: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(ttl)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}
