//! How to reach a registry: the scheme (docker's loopback rule), credentials,
//! timeouts, the retry policy and the user's stop.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::auth::Credentials;
use super::retry::RetryPolicy;
use crate::oci::reference::Reference;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (loopback registries, `--plain-http`).
    Http,
    /// TLS.
    Https,
}

impl Scheme {
    /// `http` / `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// Docker's rule: plain HTTP for loopback registries, or when asked.
    pub fn for_reference(reference: &Reference, plain_http: bool) -> Scheme {
        if plain_http || reference.is_loopback() {
            Scheme::Http
        } else {
            Scheme::Https
        }
    }
}

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Credentials for Basic auth or for the token endpoint.
    pub credentials: Option<Credentials>,
    /// Connect and read timeout.
    pub timeout: Duration,
    /// Retries of failed requests and cut-off bodies.
    pub retry: RetryPolicy,
    /// The user's stop (Ctrl-C in the CLI): once cancelled, requests in flight and
    /// retry waits end with [`super::RegistryError::Cancelled`].
    pub cancel: CancellationToken,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            scheme: Scheme::Https,
            credentials: None,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            cancel: CancellationToken::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_rule_follows_docker() {
        let r = Reference::parse("127.0.0.1:5000/a").unwrap();
        assert_eq!(Scheme::for_reference(&r, false), Scheme::Http);
        let r = Reference::parse("registry.example:5000/a").unwrap();
        assert_eq!(Scheme::for_reference(&r, false), Scheme::Https);
        assert_eq!(Scheme::for_reference(&r, true), Scheme::Http);
    }
}
