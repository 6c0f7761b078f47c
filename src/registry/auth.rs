//! Registry authentication: `WWW-Authenticate` challenges, the scope of a
//! repository, and the kinds of [`Credentials`] (where they are found is
//! [`super::credentials`]). Secrets live in [`Secret`], whose `Debug` and
//! `Display` never print the value, so they cannot reach logs or output by accident.

use std::fmt;
use std::path::PathBuf;

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

/// What to authenticate with: docker's two kinds of stored credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or personal access token): Basic auth, and
    /// Basic auth on the token service's GET.
    Basic {
        /// Login name (printed freely).
        username: String,
        /// Password or token (never printed).
        password: Secret,
    },
    /// An OAuth2 refresh token (docker's `identitytoken`, or a credential helper's
    /// answer with user name `<token>`): exchanged for access tokens by a POST to
    /// the token service (`grant_type=refresh_token`); no Basic auth possible.
    IdentityToken(Secret),
}

impl Credentials {
    /// Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Basic {
            username: username.into(),
            password: Secret::new(password),
        }
    }

    /// `user:password` as given to `--user`.
    pub fn from_user_arg(s: &str) -> Result<Self, AuthError> {
        let (u, p) = s.split_once(':').ok_or(AuthError::BadUserArg)?;
        if u.is_empty() {
            return Err(AuthError::BadUserArg);
        }
        Ok(Credentials::basic(u, p))
    }

    /// The value of an `Authorization: Basic ...` header; `None` for an identity
    /// token, which cannot be sent as Basic auth.
    pub fn basic_header(&self) -> Option<Secret> {
        match self {
            Credentials::Basic { username, password } => Some(Secret::new(format!(
                "Basic {}",
                BASE64.encode(format!("{username}:{}", password.expose()))
            ))),
            Credentials::IdentityToken(_) => None,
        }
    }

    /// The login name, when there is one (identity tokens have none).
    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Basic { username, .. } => Some(username),
            Credentials::IdentityToken(_) => None,
        }
    }
}

/// Problems with credentials or where they are kept. No variant carries a secret,
/// nor what a credential helper printed (it may be one).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `--user` was not `user:password`.
    #[error(
        "--user must be USER:PASSWORD, or USER with --password-stdin (or put the credentials in ~/.docker/config.json)"
    )]
    BadUserArg,
    /// A docker config or podman auth file exists but could not be read.
    #[error("cannot read credentials file {path}: {reason}")]
    DockerConfig {
        /// Which file.
        path: PathBuf,
        /// What went wrong (never contains the secret).
        reason: String,
    },
    /// A credential helper failed (its output is never shown: it may hold secrets).
    #[error("credential helper docker-credential-{helper} failed for {server}: {reason}")]
    Helper {
        /// The helper's name (after `docker-credential-`).
        helper: String,
        /// The server name it was asked about.
        server: String,
        /// What went wrong.
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
        let shown = format!("{c:?} {:?}", c.basic_header());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains(&BASE64.encode("alice:hunter2")));
        assert_eq!(
            c.basic_header().unwrap().expose(),
            format!("Basic {}", BASE64.encode("alice:hunter2"))
        );
        assert!(Credentials::from_user_arg("nocolon").is_err());
        assert!(Credentials::from_user_arg(":pw").is_err());
        // Passwords may contain colons.
        let c = Credentials::from_user_arg("bob:a:b").unwrap();
        assert_eq!(c, Credentials::basic("bob", "a:b"));
        let t = Credentials::IdentityToken(Secret::new("refresh-me"));
        assert!(!format!("{t:?}").contains("refresh-me"));
        assert_eq!(t.basic_header(), None);
        assert_eq!(t.username(), None);
    }
}
