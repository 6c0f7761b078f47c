//! How to reach a registry: the scheme (docker's loopback rule), credentials,
//! timeouts, the retry policy and the user's stop.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::auth::Credentials;
use super::proxy::ProxyConfig;
use super::retry::RetryPolicy;
use super::tls::TlsOptions;
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

    /// The scheme for `reference` as chosen by `--scheme`, and whether HTTPS may
    /// fall back to plain HTTP. `auto` is docker's rule: HTTPS, except plain
    /// HTTP on loopback, and HTTPS falling back to HTTP for an insecure registry.
    pub fn choose(reference: &Reference, choice: SchemeChoice, tls: &TlsOptions) -> (Scheme, bool) {
        match choice {
            SchemeChoice::Http => (Scheme::Http, false),
            SchemeChoice::Https => (Scheme::Https, false),
            SchemeChoice::Auto if tls.is_insecure(reference.api_host()) => (Scheme::Https, true),
            SchemeChoice::Auto if reference.is_loopback() => (Scheme::Http, false),
            SchemeChoice::Auto => (Scheme::Https, false),
        }
    }
}

/// What the user asked for with `--scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemeChoice {
    /// docker's rule (see [`Scheme::choose`]).
    #[default]
    Auto,
    /// Always TLS.
    Https,
    /// Always plain HTTP.
    Http,
}

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// HTTPS that falls back to plain HTTP when the registry has no TLS (an
    /// insecure registry, as docker treats one).
    pub http_fallback: bool,
    /// CAs, `certs.d`, insecure registries.
    pub tls: TlsOptions,
    /// Proxies; `None` reads them from the environment.
    pub proxies: Option<Arc<ProxyConfig>>,
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
            http_fallback: false,
            tls: TlsOptions::default(),
            proxies: None,
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

    #[test]
    fn auto_scheme_falls_back_only_for_insecure_registries() {
        let tls = TlsOptions {
            insecure: vec!["127.0.0.1:5000".into(), "corp.example".into()],
            ..TlsOptions::default()
        };
        let pick = |r: &str, c| Scheme::choose(&Reference::parse(r).unwrap(), c, &tls);
        assert_eq!(
            pick("127.0.0.1:5000/a", SchemeChoice::Auto),
            (Scheme::Https, true)
        );
        assert_eq!(
            pick("127.0.0.1:5001/a", SchemeChoice::Auto),
            (Scheme::Http, false)
        );
        assert_eq!(
            pick("corp.example:8443/a", SchemeChoice::Auto),
            (Scheme::Https, true)
        );
        assert_eq!(
            pick("other.example/a", SchemeChoice::Auto),
            (Scheme::Https, false)
        );
        assert_eq!(
            pick("127.0.0.1:5001/a", SchemeChoice::Https),
            (Scheme::Https, false)
        );
        assert_eq!(
            pick("other.example/a", SchemeChoice::Http),
            (Scheme::Http, false)
        );
    }
}
