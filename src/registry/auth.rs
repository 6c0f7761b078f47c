//! Registry authentication: `WWW-Authenticate` challenges, anonymous and credentialed
//! bearer tokens per repository scope, and Basic credentials from `--user` or the
//! docker config file. Secrets live in [`Secret`], whose `Debug` and `Display` never
//! print the value, so they cannot reach logs or output by accident.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// A string that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value, for putting into a header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A user name and password (or personal access token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Login name (printed freely).
    pub username: String,
    /// Password or token (never printed).
    pub password: Secret,
}

impl Credentials {
    /// `user:password` as given to `--user`.
    pub fn from_user_arg(s: &str) -> Result<Self, AuthError> {
        let (u, p) = s.split_once(':').ok_or(AuthError::BadUserArg)?;
        if u.is_empty() {
            return Err(AuthError::BadUserArg);
        }
        Ok(Credentials {
            username: u.to_string(),
            password: Secret::new(p),
        })
    }

    /// The value of an `Authorization: Basic ...` header.
    pub fn basic_header(&self) -> Secret {
        Secret::new(format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.username, self.password.expose()))
        ))
    }
}

/// Problems with credentials or challenges.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `--user` was not `user:password`.
    #[error("--user must be USER:PASSWORD (or put the credentials in ~/.docker/config.json)")]
    BadUserArg,
    /// The docker config file exists but could not be read.
    #[error("cannot read docker config {path}: {reason}")]
    DockerConfig {
        /// Which file.
        path: PathBuf,
        /// What went wrong (never contains the secret).
        reason: String,
    },
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm=...,service=...,scope=...`.
    Bearer {
        /// Token endpoint URL.
        realm: String,
        /// `service` parameter to pass to it.
        service: Option<String>,
        /// Scope the server asked for, if it said.
        scope: Option<String>,
    },
    /// `Basic realm=...`.
    Basic,
}

/// Parses a `WWW-Authenticate` header value (RFC 7235, which allows several
/// challenges in one value, as docker's parser does). Gives the challenge pulltime
/// answers, bearer before Basic; `None` when there is none, or the value does not
/// parse.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    http_auth::parser::ChallengeParser::new(header)
        .map_while(Result::ok)
        .filter_map(|c| {
            let param = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            if c.scheme.eq_ignore_ascii_case("bearer") {
                Some(Challenge::Bearer {
                    realm: param("realm")?,
                    service: param("service"),
                    scope: param("scope"),
                })
            } else if c.scheme.eq_ignore_ascii_case("basic") {
                Some(Challenge::Basic)
            } else {
                None
            }
        })
        .min_by_key(|c| matches!(c, Challenge::Basic))
}

/// The scope string for pulling (and optionally pushing) a repository.
pub fn repository_scope(repository: &str, push: bool) -> String {
    if push {
        format!("repository:{repository}:pull,push")
    } else {
        format!("repository:{repository}:pull")
    }
}

/// The docker config file: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Looks `registry` (docker's name for it: `docker.io`, `host:port`) up in the `auths`
/// of a docker config file. A missing file is not an error; credential helpers
/// (`credsStore`, `credHelpers`) are not consulted.
pub fn docker_config_credentials(
    path: &Path,
    registry: &str,
) -> Result<Option<Credentials>, AuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(AuthError::DockerConfig {
                path: path.into(),
                reason: e.to_string(),
            });
        }
    };
    let cfg: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| AuthError::DockerConfig {
            path: path.into(),
            reason: format!("not valid JSON ({e})"),
        })?;
    let Some(auths) = cfg.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let wanted = config_keys(registry);
    for (key, entry) in auths {
        if !wanted.contains(&normalize_config_key(key)) {
            continue;
        }
        if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
            let bad = || AuthError::DockerConfig {
                path: path.into(),
                reason: format!("auths[{key:?}].auth is not base64 of user:password"),
            };
            let decoded = BASE64.decode(auth.trim()).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            return Credentials::from_user_arg(&decoded)
                .map(Some)
                .map_err(|_| bad());
        }
        if let (Some(u), Some(p)) = (
            entry.get("username").and_then(|v| v.as_str()),
            entry.get("password").and_then(|v| v.as_str()),
        ) {
            return Ok(Some(Credentials {
                username: u.to_string(),
                password: Secret::new(p),
            }));
        }
    }
    Ok(None)
}

fn config_keys(registry: &str) -> Vec<String> {
    if registry == crate::oci::reference::DOCKER_HUB_DOMAIN {
        vec![
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ]
    } else {
        vec![registry.to_string()]
    }
}

/// `https://index.docker.io/v1/` -> `index.docker.io`.
fn normalize_config_key(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    k.split('/').next().unwrap_or(k).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: None,
            }
        );
    }

    #[test]
    fn challenge_with_scope_commas_escapes_and_spacing() {
        let c = parse_challenge(
            r#"bearer realm="https://a/t\"x", scope="repository:a/b:pull,push" ,service=reg"#,
        )
        .unwrap();
        let Challenge::Bearer {
            realm,
            service,
            scope,
        } = c
        else {
            panic!("not bearer")
        };
        assert_eq!(realm, "https://a/t\"x");
        assert_eq!(service.as_deref(), Some("reg"));
        assert_eq!(scope.as_deref(), Some("repository:a/b:pull,push"));
    }

    #[test]
    fn basic_and_unknown_and_broken() {
        assert_eq!(
            parse_challenge(r#"Basic realm="r""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "realm is required"
        );
        assert_eq!(parse_challenge(""), None);
        assert_eq!(parse_challenge("Bearer realm"), None);
    }

    /// The fuzz target's round trip (fuzz/fuzz_targets/www_authenticate.rs) on
    /// seeded random values, so CI checks it too: any realm, service and scope a
    /// header can carry, quoted, in any order, scheme case and spacing.
    #[test]
    fn bearer_challenges_round_trip() {
        let mut rng = crate::rng::Rng::new(14);
        let value = |rng: &mut crate::rng::Rng| -> String {
            let len = rng.below(12) as usize;
            (0..len)
                .map(|_| match rng.below(20) {
                    0 => '"',
                    1 => '\\',
                    2 => ',',
                    3 => '\t',
                    _ => (0x20 + rng.below(0x5f) as u8) as char,
                })
                .collect()
        };
        let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
        for _ in 0..2000 {
            let realm = value(&mut rng);
            let service = (rng.below(2) == 0).then(|| value(&mut rng));
            let scope = (rng.below(2) == 0).then(|| value(&mut rng));
            let mut params = vec![("realm", realm.clone())];
            params.extend(service.clone().map(|s| ("service", s)));
            params.extend(scope.clone().map(|s| ("scope", s)));
            let n = params.len();
            params.rotate_left(rng.below(n as u64) as usize);
            let (eq, comma) = if rng.below(2) == 0 {
                ("=", ",")
            } else {
                (" = ", " , ")
            };
            let joined: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{k}{eq}{}", quote(v)))
                .collect();
            let scheme = ["Bearer", "bearer", "BEARER", "bEaReR"][rng.below(4) as usize];
            let header = format!("{scheme} {}", joined.join(comma));
            assert_eq!(
                parse_challenge(&header),
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope
                }),
                "{header:?}"
            );
        }
    }

    #[test]
    fn several_challenges_in_one_value_prefer_bearer() {
        let c = parse_challenge(
            r#"Basic realm="r", Newauth type=1, Bearer realm="https://a/token",scope="repository:x:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://a/token".into(),
                service: None,
                scope: Some("repository:x:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Newauth realm="x", Basic realm="y""#),
            Some(Challenge::Basic)
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Credentials::from_user_arg("alice:hunter2").unwrap();
        let shown = format!("{c:?} {} {:?}", c.password, c.basic_header());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains(&BASE64.encode("alice:hunter2")));
        assert_eq!(
            c.basic_header().expose(),
            format!("Basic {}", BASE64.encode("alice:hunter2"))
        );
        assert!(Credentials::from_user_arg("nocolon").is_err());
        assert!(Credentials::from_user_arg(":pw").is_err());
        // Passwords may contain colons.
        let c = Credentials::from_user_arg("bob:a:b").unwrap();
        assert_eq!(c.password.expose(), "a:b");
    }

    #[test]
    fn docker_config_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},
                    "127.0.0.1:5000":{{"username":"u","password":"p"}}}}}}"#,
                BASE64.encode("hub:secret")
            ),
        )
        .unwrap();
        let hub = docker_config_credentials(&path, "docker.io")
            .unwrap()
            .unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.expose()),
            ("hub", "secret")
        );
        let local = docker_config_credentials(&path, "127.0.0.1:5000")
            .unwrap()
            .unwrap();
        assert_eq!(local.username, "u");
        assert!(
            docker_config_credentials(&path, "ghcr.io")
                .unwrap()
                .is_none()
        );
        let missing = dir.path().join("nope.json");
        assert!(
            docker_config_credentials(&missing, "docker.io")
                .unwrap()
                .is_none()
        );
        std::fs::write(&path, r#"{"auths":{"docker.io":{"auth":"!!!"}}}"#).unwrap();
        let err = docker_config_credentials(&path, "docker.io")
            .unwrap_err()
            .to_string();
        assert!(err.contains("base64"), "{err}");
    }
}
