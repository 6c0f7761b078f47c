//! Authentication as the registry asks for it: the challenge learnt from a 401,
//! Basic credentials, or bearer tokens from the token service, cached per scope
//! for the run (docker's flow). A token is fetched with a GET carrying the Basic
//! credentials (or none), or, for an identity token, with docker's OAuth2 POST
//! (`grant_type=refresh_token`). Tokens and credentials are [`Secret`]s: never
//! printed, never logged.

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};

use super::RegistryClient;
use super::error_body::error_detail;
use crate::oci::record::RequestKind;
use crate::registry::auth::{Challenge, Credentials, Secret, parse_challenge, repository_scope};
use crate::registry::error::RegistryError;

/// The OAuth2 `client_id` pulltime names itself by (docker sends `docker`).
const OAUTH_CLIENT_ID: &str = "pulltime";

/// The largest token response read.
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;

impl RegistryClient {
    /// The `Authorization` header for this repository, fetching a token if the
    /// registry asked for bearer auth.
    pub(super) async fn authorization(&self) -> Result<Option<Secret>, RegistryError> {
        let challenge = self.challenge.lock().expect("challenge lock").clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => match &self.credentials {
                None => Ok(None),
                Some(c) => c.basic_header().map(Some).ok_or_else(|| {
                    RegistryError::IdentityTokenNeedsBearer {
                        host: self.host.clone(),
                    }
                }),
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                let scope = repository_scope(&self.repository, self.push);
                let mut tokens = self.tokens.lock().await;
                if let Some(t) = tokens.get(&scope) {
                    return Ok(Some(Secret::new(format!("Bearer {}", t.expose()))));
                }
                let token = self.fetch_token(&realm, service.as_deref(), &scope).await?;
                let header = Secret::new(format!("Bearer {}", token.expose()));
                tokens.insert(scope, token);
                Ok(Some(header))
            }
        }
    }

    /// Forgets the cached token sent as `header` (the registry refused it: it
    /// expired mid-pull). A token fetched since by a concurrent request stays.
    pub(super) async fn forget_token(&self, header: Option<&Secret>) {
        let Some(header) = header else { return };
        self.tokens
            .lock()
            .await
            .retain(|_, t| format!("Bearer {}", t.expose()) != header.expose());
    }

    /// A token for `scope` from the token service at `realm`: a GET with the
    /// credentials (if any) as Basic auth, or for an identity token docker's
    /// OAuth2 refresh-token POST.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<Secret, RegistryError> {
        let mut url = Url::parse(realm).map_err(|e| RegistryError::Invalid {
            what: "token realm".into(),
            reason: format!("{realm}: {e}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RegistryError::Invalid {
                what: "token realm".into(),
                reason: format!("{realm}: not an http(s) URL"),
            });
        }
        let (method, auth, headers, body) = match &self.credentials {
            Some(Credentials::IdentityToken(refresh)) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh.expose());
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                form.append_pair("scope", scope)
                    .append_pair("client_id", OAUTH_CLIENT_ID);
                let mut headers = HeaderMap::new();
                headers.insert(
                    CONTENT_TYPE,
                    "application/x-www-form-urlencoded".parse().expect("static"),
                );
                // The body holds the refresh token: the request log keeps only
                // method, URL and status, never a body.
                (
                    Method::POST,
                    None,
                    headers,
                    Some(Bytes::from(form.finish())),
                )
            }
            basic => {
                let mut q = url.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                q.append_pair("scope", scope);
                drop(q);
                let auth = basic.as_ref().and_then(|c| c.basic_header());
                (Method::GET, auth, HeaderMap::new(), None)
            }
        };
        let sent = self
            .with_retries(RequestKind::Token, &method, &url, || {
                self.raw(
                    method.clone(),
                    url.clone(),
                    auth.clone(),
                    headers.clone(),
                    body.clone(),
                )
            })
            .await?;
        let (resp, index) = (sent.response, sent.log_index);
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::AuthRefused {
                host: match (url.host_str(), url.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (h, _) => h.unwrap_or("").to_string(),
                },
                status: status.as_u16(),
                detail: error_detail(resp).await,
            });
        }
        if !status.is_success() {
            return Err(self.status_error(method.as_str(), url.as_str(), resp).await);
        }
        let body = self
            .read_body(resp, index, "token response", MAX_TOKEN_RESPONSE)
            .await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Invalid {
                what: "token response".into(),
                reason: e.to_string(),
            })?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(|| RegistryError::Invalid {
                what: "token response".into(),
                reason: "no token or access_token field".into(),
            })
    }

    /// Keeps the challenge of a 401's `WWW-Authenticate` headers; false when there
    /// is none this client can answer (Basic without credentials).
    pub(super) fn learn_challenge(&self, headers: &HeaderMap) -> bool {
        let parsed = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            // Prefer bearer when a registry offers both.
            .min_by_key(|c| matches!(c, Challenge::Basic));
        match parsed {
            Some(Challenge::Basic) if self.credentials.is_none() => false,
            Some(c) => {
                *self.challenge.lock().expect("challenge lock") = Some(c);
                true
            }
            None => false,
        }
    }
}
