//! What a registry says when it refuses: the distribution spec's error envelope
//! (`{"errors":[{"code","message"}]}`), read within a small limit and turned into
//! an error the user can act on.

use futures_util::StreamExt;
use reqwest::Response;

use super::RegistryClient;
use super::log::strip_query_str;
use crate::registry::error::RegistryError;
use crate::registry::retry::{quota_spent, rate_limit_words, retry_after};

/// The largest error body read.
const MAX_ERROR_BODY: usize = 64 << 10;

impl RegistryClient {
    /// Turns an unexpected status into an error carrying the registry's message.
    /// A 429 also says, in words, what its rate-limit and `Retry-After` headers
    /// said.
    pub async fn status_error(&self, method: &str, url: &str, resp: Response) -> RegistryError {
        let status = resp.status().as_u16();
        let mut throttled = String::new();
        if status == 429 {
            if let Some(words) = rate_limit_words(resp.headers()) {
                throttled.push_str(&format!("; rate limit: {words}"));
            }
            match retry_after(resp.headers()) {
                Some(d) => throttled.push_str(&format!(
                    "; the registry asks to retry after {} s",
                    d.as_secs()
                )),
                None if quota_spent(resp.headers()) => throttled.push_str(
                    "; the quota is spent: wait for its window to pass, or log in (--user) for a higher limit",
                ),
                None => {}
            }
        }
        let mut detail = error_detail(resp).await;
        detail.push_str(&throttled);
        RegistryError::Status {
            method: method.into(),
            url: strip_query_str(url),
            status,
            detail,
        }
    }
}

/// Adds `more` to a status error's detail (other errors are left as they are).
pub(super) fn append_detail(e: &mut RegistryError, more: &str) {
    if let RegistryError::Status { detail, .. } = e {
        detail.push_str(more);
    }
}

/// The distribution-spec error envelope.
#[derive(serde::Deserialize)]
struct ErrorEnvelope {
    errors: Vec<ErrorItem>,
}

#[derive(serde::Deserialize)]
struct ErrorItem {
    code: Option<String>,
    message: Option<String>,
}

async fn first_error(resp: Response) -> Option<ErrorItem> {
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_ERROR_BODY {
            return None;
        }
    }
    let envelope: ErrorEnvelope = serde_json::from_slice(&buf).ok()?;
    envelope.errors.into_iter().next()
}

/// The first error's code (`MANIFEST_UNKNOWN`), if the body has one.
pub(super) async fn error_code(resp: Response) -> Option<String> {
    first_error(resp).await.and_then(|i| i.code)
}

/// `": CODE: message"` of the first error, or nothing.
pub(super) async fn error_detail(resp: Response) -> String {
    match first_error(resp).await {
        Some(ErrorItem { code, message }) => {
            let parts: Vec<String> = [code, message].into_iter().flatten().collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!(": {}", parts.join(": "))
            }
        }
        None => String::new(),
    }
}
