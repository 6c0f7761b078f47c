//! Proxies from the environment, as curl and docker read them: `HTTPS_PROXY`
//! for https URLs, `HTTP_PROXY` for http ones, `ALL_PROXY` for both (upper or
//! lower case), and `NO_PROXY` (`*`, host names matching themselves and their
//! subdomains, with or without a leading dot, IP addresses, CIDR ranges, an
//! optional `:port`). Loopback is never proxied (Go's rule, which docker
//! follows): a registry on this host is reached directly whatever the
//! environment says. One decision serves the connector and the record.

use std::net::IpAddr;

use reqwest::Url;

/// The environment's proxy settings. Its `Debug` shows proxies without their
/// credentials.
#[derive(Clone, Default)]
pub struct ProxyConfig {
    https: Option<Url>,
    http: Option<Url>,
    all: Option<Url>,
    no_proxy: Vec<String>,
}

/// A proxy variable that is not a URL.
#[derive(Debug, thiserror::Error)]
#[error("{variable} is not a proxy URL ({reason}); set it to http://HOST:PORT or unset it")]
pub struct ProxyError {
    /// Which variable.
    pub variable: String,
    /// The parse error (the value is not repeated: it may hold a password).
    pub reason: String,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |u: &Option<Url>| u.as_ref().map(display_proxy);
        f.debug_struct("ProxyConfig")
            .field("https", &show(&self.https))
            .field("http", &show(&self.http))
            .field("all", &show(&self.all))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl ProxyConfig {
    /// Reads the environment.
    pub fn from_env() -> Result<Self, ProxyError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get` (the environment, or a test's table).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ProxyError> {
        let var = |upper: &str| {
            [upper.to_string(), upper.to_lowercase()]
                .into_iter()
                .find_map(|n| get(&n).filter(|v| !v.trim().is_empty()).map(|v| (n, v)))
        };
        let url = |upper: &str| -> Result<Option<Url>, ProxyError> {
            let Some((name, value)) = var(upper) else {
                return Ok(None);
            };
            let value = value.trim();
            // curl's rule: a proxy without a scheme is an HTTP proxy.
            let with_scheme = if value.contains("://") {
                value.to_string()
            } else {
                format!("http://{value}")
            };
            let url = Url::parse(&with_scheme).map_err(|e| ProxyError {
                variable: name.clone(),
                reason: e.to_string(),
            })?;
            // reqwest is built without SOCKS: such a proxy would be sent HTTP.
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ProxyError {
                    variable: name,
                    reason: format!(
                        "{} proxies are not supported, only http and https",
                        url.scheme()
                    ),
                });
            }
            Ok(Some(url))
        };
        Ok(ProxyConfig {
            https: url("HTTPS_PROXY")?,
            http: url("HTTP_PROXY")?,
            all: url("ALL_PROXY")?,
            no_proxy: var("NO_PROXY")
                .map(|(_, v)| {
                    v.split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// The proxy a request to `url` goes through, if any.
    pub fn for_url(&self, url: &Url) -> Option<&Url> {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref().or(self.all.as_ref()),
            "http" => self.http.as_ref().or(self.all.as_ref()),
            _ => None,
        }?;
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        if is_loopback(host) || self.bypassed(host, url.port_or_known_default()) {
            return None;
        }
        Some(proxy)
    }

    fn bypassed(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        self.no_proxy.iter().any(|rule| {
            if rule == "*" {
                return true;
            }
            let (pattern, rule_port) = split_port(rule);
            if rule_port.is_some() && rule_port != port {
                return false;
            }
            if let (Ok(ip), Some((net, bits))) = (host.parse::<IpAddr>(), parse_cidr(pattern)) {
                return in_cidr(ip, net, bits);
            }
            let pattern = pattern.trim_start_matches("*.").trim_start_matches('.');
            host == pattern || host.ends_with(&format!(".{pattern}"))
        })
    }
}

/// A proxy URL as it may be shown: no user name or password.
pub fn display_proxy(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", url.scheme()),
        (Some(h), None) => format!("{}://{h}", url.scheme()),
        _ => url.scheme().to_string(),
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host:port` -> (`host`, port); IPv6 rules keep their colons.
fn split_port(rule: &str) -> (&str, Option<u16>) {
    if let Some((h, tail)) = rule.strip_prefix('[').and_then(|r| r.split_once(']')) {
        return (h, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match rule.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(p) => (h, Some(p)),
            Err(_) => (rule, None),
        },
        _ => (rule, None),
    }
}

/// `10.0.0.0/8` or a bare address (a /32 or /128).
fn parse_cidr(pattern: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match pattern.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (pattern, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((ip, bits))
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> ProxyConfig {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyConfig::from_lookup(|n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
            .unwrap()
    }

    fn via(c: &ProxyConfig, url: &str) -> Option<String> {
        c.for_url(&Url::parse(url).unwrap()).map(display_proxy)
    }

    #[test]
    fn scheme_picks_the_variable_and_loopback_is_direct() {
        let c = config(&[
            ("HTTPS_PROXY", "http://user:pw@proxy:3128"),
            ("http_proxy", "plain:8080"),
        ]);
        assert_eq!(
            via(&c, "https://reg.example/v2/").as_deref(),
            Some("http://proxy:3128")
        );
        assert_eq!(
            via(&c, "http://reg.example/v2/").as_deref(),
            Some("http://plain:8080")
        );
        for direct in [
            "https://127.0.0.1:5000/v2/",
            "https://127.9.9.9/v2/",
            "https://localhost:5000/v2/",
            "https://[::1]:5000/v2/",
        ] {
            assert_eq!(via(&c, direct), None, "{direct}");
        }
        let all = config(&[("ALL_PROXY", "http://p:1")]);
        assert!(via(&all, "https://x/").is_some() && via(&all, "http://x/").is_some());
        assert_eq!(via(&ProxyConfig::default(), "https://x/"), None);
    }

    #[test]
    fn no_proxy_rules_as_curl_reads_them() {
        let c = config(&[
            ("HTTPS_PROXY", "http://p:1"),
            (
                "NO_PROXY",
                "corp.example, .svc.local,10.0.0.0/8,192.168.1.7,only.port:5000",
            ),
        ]);
        for direct in [
            "https://corp.example/",
            "https://reg.corp.example/",
            "https://a.svc.local/",
            "https://10.2.3.4/",
            "https://192.168.1.7:443/",
            "https://only.port:5000/",
        ] {
            assert_eq!(via(&c, direct), None, "{direct}");
        }
        for proxied in [
            "https://notcorp.example/",
            "https://11.0.0.1/",
            "https://192.168.1.8/",
            "https://only.port:5001/",
        ] {
            assert!(via(&c, proxied).is_some(), "{proxied}");
        }
        let star = config(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")]);
        assert_eq!(via(&star, "https://anything/"), None);
    }

    #[test]
    fn a_bad_proxy_names_the_variable_not_the_value() {
        let e = ProxyConfig::from_lookup(|n| {
            (n == "HTTPS_PROXY").then(|| "http://user:secret@[bad".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("HTTPS_PROXY") && !e.contains("secret"), "{e}");
        let socks = ProxyConfig::from_lookup(|n| (n == "ALL_PROXY").then(|| "socks5://p:1".into()))
            .unwrap_err()
            .to_string();
        assert!(
            socks.contains("socks5 proxies are not supported"),
            "{socks}"
        );
        let c = config(&[("HTTPS_PROXY", "http://user:hunter2@p:1")]);
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
