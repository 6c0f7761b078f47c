//! The request log: every attempt goes into the run's clock (what the record's
//! `requests[]` shows) and to tracing, with URLs stripped of queries and user
//! info, and headers never logged: they carry tokens and credentials.

use std::time::Instant;

use reqwest::header::HeaderMap;
use reqwest::{Response, Url};

use super::RegistryClient;
use crate::oci::record::{RequestKind, RequestRecord};

impl RegistryClient {
    /// Logs an answered attempt (its status and the connection it opened, from
    /// `response`); returns its position in the run's request log.
    pub(super) fn log(
        &self,
        url: &Url,
        kind: RequestKind,
        method: &str,
        started: Instant,
        response: &Response,
    ) -> usize {
        let status = response.status().as_u16();
        self.log_entry(url, kind, method, status, started, opened_by(response))
    }

    fn log_entry(
        &self,
        url: &Url,
        kind: RequestKind,
        method: &str,
        status: u16,
        started: Instant,
        connection: Option<usize>,
    ) -> usize {
        tracing::debug!(
            kind = kind.as_str(),
            method,
            url = %strip_query(url),
            status,
            ttfb_ms = started.elapsed().as_secs_f64() * 1e3,
            "request"
        );
        self.clock.log_request(RequestRecord {
            kind: kind.as_str().into(),
            method: method.into(),
            host: host_port(url),
            path: url.path().into(),
            status,
            start_s: self.clock.offset(started),
            ttfb_s: started.elapsed().as_secs_f64(),
            body_s: 0.0,
            bytes: 0,
            connection,
        })
    }

    /// Logs an attempt that got no response (status 0).
    pub(super) fn log_failure(&self, url: &Url, kind: RequestKind, method: &str, started: Instant) {
        self.log_entry(url, kind, method, 0, started, None);
    }
}

/// The connection a response's request opened, if it opened one.
fn opened_by(response: &Response) -> Option<usize> {
    response
        .extensions()
        .get::<super::OpenedConnection>()
        .map(|o| o.0)
}

/// A header's value, when it is text.
pub(super) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn host_port(url: &Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_string(),
    }
}

/// The URL without its query (CDN URLs carry signatures; never print them).
pub fn strip_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// [`strip_query`] of a URL given as text; a string that does not parse loses
/// everything from its first `?`.
pub(super) fn strip_query_str(url: &str) -> String {
    Url::parse(url)
        .map(|u| strip_query(&u))
        .unwrap_or_else(|_| url.split('?').next().unwrap_or(url).to_string())
}

/// A transport error with its causes, the URL in it stripped of its query.
pub(super) fn error_chain(e: &reqwest::Error) -> String {
    let mut out = match e.url() {
        Some(u) => e.to_string().replace(u.as_str(), &strip_query(u)),
        None => e.to_string(),
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_userinfo_are_stripped() {
        let u = Url::parse("https://u:p@cdn.example/blob/x?sig=SECRET&e=1").unwrap();
        assert_eq!(strip_query(&u), "https://cdn.example/blob/x");
        assert_eq!(strip_query_str("not a url?sig=1"), "not a url");
    }
}
