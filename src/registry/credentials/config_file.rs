//! docker's `config.json` and podman's `auth.json` (the same `auths` shape):
//! `auths[host]` entries (`auth` = base64 of `user:password`, or `username` and
//! `password`, or `identitytoken`), and docker's `credHelpers` and `credsStore`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::oci::reference::DOCKER_HUB_DOMAIN;
use crate::registry::auth::{AuthError, Credentials, Secret};

/// A docker config or podman auth file, as far as credentials go.
#[derive(serde::Deserialize, Default)]
pub struct ConfigFile {
    #[serde(skip)]
    path: PathBuf,
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    /// Helper name per registry host (`credHelpers`).
    #[serde(default, rename = "credHelpers")]
    pub cred_helpers: BTreeMap<String, String>,
    /// The default helper (`credsStore`).
    #[serde(default, rename = "credsStore")]
    pub creds_store: Option<String>,
}

/// One `auths` entry. No `Debug`: it holds secrets as plain strings.
#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl ConfigFile {
    /// Reads `path`; a missing file is `None`, not an error.
    pub fn read(path: &Path) -> Result<Option<Self>, AuthError> {
        let bad = |reason: String| AuthError::DockerConfig {
            path: path.into(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        Self::parse(path, &text).map(Some)
    }

    /// Parses the text of the file at `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, AuthError> {
        // serde's message may quote a value it did not expect: not shown.
        let mut cfg: ConfigFile =
            serde_json::from_str(text).map_err(|e| AuthError::DockerConfig {
                path: path.into(),
                reason: format!(
                    "not valid JSON of a docker config (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        cfg.path = path.into();
        cfg.creds_store = cfg.creds_store.filter(|s| !s.is_empty());
        Ok(cfg)
    }

    /// The `credHelpers` entry for `registry`: (its key, the helper name).
    pub fn cred_helper(&self, registry: &str) -> Option<(&str, &str)> {
        let wanted = config_keys(registry);
        self.cred_helpers
            .iter()
            .find(|(k, v)| !v.is_empty() && wanted.contains(&normalize_key(k)))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The credentials of the `auths` entry for `registry`: (its key, them). An
    /// entry without any (docker writes `{}` when a helper keeps the secret) is none.
    pub fn auths_entry(&self, registry: &str) -> Result<Option<(&str, Credentials)>, AuthError> {
        let wanted = config_keys(registry);
        for (key, entry) in &self.auths {
            if !wanted.contains(&normalize_key(key)) {
                continue;
            }
            if let Some(c) = self.entry_credentials(key, entry)? {
                return Ok(Some((key.as_str(), c)));
            }
        }
        Ok(None)
    }

    fn entry_credentials(
        &self,
        key: &str,
        entry: &AuthEntry,
    ) -> Result<Option<Credentials>, AuthError> {
        let set = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
        // docker's client prefers the identity token when an entry has both.
        if let Some(t) = set(&entry.identitytoken) {
            return Ok(Some(Credentials::IdentityToken(Secret::new(t))));
        }
        if let Some(auth) = set(&entry.auth) {
            let bad = || AuthError::DockerConfig {
                path: self.path.clone(),
                reason: format!("auths[{key:?}].auth is not base64 of user:password"),
            };
            let decoded = BASE64.decode(auth.trim()).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            return Credentials::from_user_arg(&decoded)
                .map(Some)
                .map_err(|_| bad());
        }
        if let (Some(u), Some(p)) = (set(&entry.username), set(&entry.password)) {
            return Ok(Some(Credentials::basic(u, p)));
        }
        Ok(None)
    }
}

/// The keys a config file may use for `registry` (Docker Hub has several).
pub fn config_keys(registry: &str) -> Vec<String> {
    if registry == DOCKER_HUB_DOMAIN {
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
fn normalize_key(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    k.split('/').next().unwrap_or(k).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("/x/config.json"), text).unwrap()
    }

    #[test]
    fn auths_in_every_shape() {
        let cfg = parse(&format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},
                "127.0.0.1:5000":{{"username":"u","password":"p"}},
                "ghcr.io":{{"auth":"{}","identitytoken":"rt-1"}},
                "quay.io":{{}}}}}}"#,
            BASE64.encode("hub:secret"),
            BASE64.encode("x:y")
        ));
        let (key, hub) = cfg.auths_entry("docker.io").unwrap().unwrap();
        assert_eq!(key, "https://index.docker.io/v1/");
        assert_eq!(hub, Credentials::basic("hub", "secret"));
        let (_, local) = cfg.auths_entry("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(local, Credentials::basic("u", "p"));
        let (_, gh) = cfg.auths_entry("ghcr.io").unwrap().unwrap();
        assert_eq!(gh, Credentials::IdentityToken(Secret::new("rt-1")));
        assert!(cfg.auths_entry("quay.io").unwrap().is_none(), "empty entry");
        assert!(cfg.auths_entry("example.com").unwrap().is_none());
    }

    #[test]
    fn helpers_and_errors_never_quote_secrets() {
        let cfg = parse(
            r#"{"credHelpers":{"127.0.0.1:5000":"pttest","x.io":""},"credsStore":"desktop"}"#,
        );
        assert_eq!(
            cfg.cred_helper("127.0.0.1:5000"),
            Some(("127.0.0.1:5000", "pttest"))
        );
        assert_eq!(cfg.cred_helper("x.io"), None, "an empty name is no helper");
        assert_eq!(cfg.creds_store.as_deref(), Some("desktop"));
        let err = ConfigFile::parse(Path::new("/c"), r#"{"auths":{"a":{"auth":"!!!"}}}"#)
            .unwrap()
            .auths_entry("a")
            .unwrap_err()
            .to_string();
        assert!(err.contains("base64"), "{err}");
        let err = ConfigFile::parse(
            Path::new("/c"),
            r#"{"auths":{"a":{"auth":7}},"x":"hunter2"}"#,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("/c") && !err.contains("hunter2"), "{err}");
        let err = ConfigFile::parse(Path::new("/c"), r#"{"credsStore":"hunter2-as-name"#)
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            ConfigFile::read(&dir.path().join("nope.json"))
                .unwrap()
                .is_none()
        );
    }
}
