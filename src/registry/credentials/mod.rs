//! Where credentials come from, in docker's order: `--user`, then the docker
//! config file (`credHelpers[host]`, then `credsStore`, then `auths`), then, when
//! docker's config yields nothing, podman's auth file. The first source that has
//! credentials for the registry wins; a helper that has none falls through to the
//! next source. [`Found::source`] says which source it was, never the secret.

mod config_file;
mod helper;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub use config_file::{ConfigFile, config_keys};
pub use helper::helper_get;

use super::auth::{AuthError, Credentials};
use crate::oci::reference::DOCKER_HUB_DOMAIN;

/// How long a credential helper may take before it is killed.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Credentials and where they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The credentials.
    pub credentials: Credentials,
    /// Where they came from (`--user`, `credHelpers[host] via docker-credential-x`,
    /// `auths[host] in /path/config.json`, ...): printable, never the secret.
    pub source: String,
}

/// The places looked in, from the environment or given (tests).
#[derive(Debug, Clone)]
pub struct Sources {
    /// docker's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// podman's auth file: `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`.
    pub podman_auth: Option<PathBuf>,
    /// Where credential helpers are looked for (`$PATH`).
    pub helper_path: Option<OsString>,
    /// How long a credential helper may run.
    pub helper_timeout: Duration,
}

impl Sources {
    /// The places docker and podman would look, from the environment.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let docker_config = match var("DOCKER_CONFIG") {
            Some(dir) => Some(PathBuf::from(dir).join("config.json")),
            None => var("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json")),
        };
        let podman_auth = match var("REGISTRY_AUTH_FILE") {
            Some(f) => Some(PathBuf::from(f)),
            None => var("XDG_RUNTIME_DIR")
                .map(|d| PathBuf::from(d).join("containers").join("auth.json")),
        };
        Sources {
            docker_config,
            podman_auth,
            helper_path: std::env::var_os("PATH"),
            helper_timeout: HELPER_TIMEOUT,
        }
    }
}

/// The credentials for `registry` (docker's name for it: `docker.io`,
/// `host:port`): `user` (`--user USER:PASSWORD`) if given, else the first that the
/// docker config or podman auth file in the environment has. `None`: anonymous.
/// Says at `-v` where they came from (never what they are).
pub fn lookup(user: Option<&str>, registry: &str) -> Result<Option<Found>, AuthError> {
    let found = lookup_in(&Sources::from_env(), user, registry)?;
    match &found {
        Some(f) => tracing::info!("credentials for {registry}: {}", f.source),
        None => tracing::info!("no credentials for {registry}: anonymous"),
    }
    Ok(found)
}

/// [`lookup`] in the given places.
pub fn lookup_in(
    sources: &Sources,
    user: Option<&str>,
    registry: &str,
) -> Result<Option<Found>, AuthError> {
    if let Some(u) = user {
        return Ok(Some(Found {
            credentials: Credentials::from_user_arg(u)?,
            source: "--user".into(),
        }));
    }
    if let Some(path) = &sources.docker_config
        && let Some(cfg) = ConfigFile::read(path)?
    {
        let server = helper_server_name(registry);
        let helper_path = sources.helper_path.as_deref();
        if let Some((key, helper)) = cfg.cred_helper(registry)
            && let Some(c) = helper_get(helper, &server, helper_path, sources.helper_timeout)?
        {
            return Ok(Some(Found {
                credentials: c,
                source: format!("credHelpers[{key}] via docker-credential-{helper}"),
            }));
        }
        if let Some(store) = &cfg.creds_store
            && let Some(c) = helper_get(store, &server, helper_path, sources.helper_timeout)?
        {
            return Ok(Some(Found {
                credentials: c,
                source: format!("credsStore via docker-credential-{store}"),
            }));
        }
        if let Some((key, c)) = cfg.auths_entry(registry)? {
            return Ok(Some(Found {
                credentials: c,
                source: format!("auths[{key}] in {}", path.display()),
            }));
        }
    }
    if let Some(path) = &sources.podman_auth
        && let Some(file) = ConfigFile::read(path)?
        && let Some((key, c)) = file.auths_entry(registry)?
    {
        return Ok(Some(Found {
            credentials: c,
            source: format!("auths[{key}] in podman's {}", path.display()),
        }));
    }
    Ok(None)
}

/// The server name docker gives a credential helper: the registry's host, or
/// `https://index.docker.io/v1/` for Docker Hub.
pub fn helper_server_name(registry: &str) -> String {
    if registry == DOCKER_HUB_DOMAIN {
        "https://index.docker.io/v1/".into()
    } else {
        registry.into()
    }
}

#[cfg(test)]
mod tests;
