//! Image references, normalised exactly as docker normalises them.
//!
//! `python` becomes `docker.io/library/python:latest`; `host:port/ns/name@sha256:...`
//! keeps its registry; a reference may carry both a tag and a digest, in which case
//! the digest decides what is pulled and the tag is kept for display.

use std::fmt;

use super::digest::validate_digest;

/// The registry host docker uses for the short name `docker.io`.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// Where Docker Hub's registry API actually lives.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// A reference could not be parsed; the message says which part is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    /// What the user typed.
    pub input: String,
    /// Why it was refused.
    pub reason: String,
}

/// A fully qualified image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry domain as docker names it (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path inside the registry (`library/python`).
    pub repository: String,
    /// Tag, if any. A reference with neither tag nor digest gets `latest`.
    pub tag: Option<String>,
    /// Digest (`sha256:...`), if any.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and normalises a reference the way `docker pull` does.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let fail = |reason: &str| ReferenceError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(fail("empty reference"));
        }
        if input.len() > 4096 {
            return Err(fail("longer than 4096 characters"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                validate_digest(d).map_err(|e| fail(&e))?;
                (r, Some(d.to_string()))
            }
            None => (input, None),
        };
        // A tag is a ':' after the last '/', so `host:5000/name` has no tag.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                validate_tag(t).map_err(|e| fail(&e))?;
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(fail("missing repository name"));
        }
        let (mut registry, mut repository) = split_domain(name);
        if registry == "index.docker.io" {
            registry = DOCKER_HUB_DOMAIN.to_string();
        }
        if registry == DOCKER_HUB_DOMAIN && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        validate_registry(&registry).map_err(|e| fail(&e))?;
        validate_repository(&repository).map_err(|e| fail(&e))?;
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest if there is one, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The host (and port) that serves the registry API for this reference.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB_DOMAIN {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// True when the registry is on this machine (`localhost`, `127.0.0.0/8`, `::1`);
    /// docker talks plain HTTP to those without being told.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// True for `localhost`, `127.x.y.z` and `[::1]`, with or without a port.
pub fn is_loopback_host(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host == "localhost" {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

fn split_domain(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB_DOMAIN.to_string(), name.to_string()),
    }
}

fn validate_registry(registry: &str) -> Result<(), String> {
    let ok = !registry.is_empty()
        && registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("registry {registry:?} is not a valid host[:port]"))
    }
}

/// Checks a repository path against the distribution grammar (lower-case
/// components of `[a-z0-9._-]` separated by `/`, no empty or `..` components).
pub fn validate_repository(repo: &str) -> Result<(), String> {
    if repo.len() > 255 {
        return Err("repository name is longer than 255 characters".into());
    }
    for component in repo.split('/') {
        if component.is_empty() {
            return Err(format!("repository {repo:?} has an empty path component"));
        }
        if component.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "repository {repo:?} must be lowercase (docker refuses upper case)"
            ));
        }
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let first_last_ok = component.starts_with(alnum) && component.ends_with(alnum);
        let chars_ok = component
            .chars()
            .all(|c| alnum(c) || c == '.' || c == '_' || c == '-');
        if !first_last_ok || !chars_ok {
            return Err(format!(
                "repository component {component:?} may only contain a-z, 0-9, '.', '_', '-' and must start and end with a letter or digit"
            ));
        }
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1-128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0";

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn short_names_go_to_docker_hub_library() {
        let r = p("python");
        assert_eq!(r.to_string(), "docker.io/library/python:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(
            p("python:3.9-slim").to_string(),
            "docker.io/library/python:3.9-slim"
        );
        assert_eq!(p("user/app").to_string(), "docker.io/user/app:latest");
        assert_eq!(
            p("index.docker.io/library/x").to_string(),
            "docker.io/library/x:latest"
        );
        assert_eq!(
            p("docker.io/python").to_string(),
            "docker.io/library/python:latest"
        );
    }

    #[test]
    fn registries_with_ports_and_digests() {
        let r = p(&format!("127.0.0.1:5000/ns/name@{D}"));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "ns/name");
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), D);
        assert!(r.is_loopback());
        let r = p("localhost:5000/app");
        assert_eq!(
            (r.registry.as_str(), r.tag.as_deref()),
            ("localhost:5000", Some("latest"))
        );
        let r = p("localhost/app:v1");
        assert_eq!(r.registry, "localhost");
        assert!(!p("ghcr.io/o/r:1").is_loopback());
    }

    #[test]
    fn tag_and_digest_together_pull_by_digest() {
        let r = p(&format!("python:3.9@{D}"));
        assert_eq!(r.tag.as_deref(), Some("3.9"));
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/python:3.9@{D}"));
    }

    #[test]
    fn bad_references_are_refused_with_reasons() {
        for bad in [
            "",
            "Python",
            "python:",
            "python@sha256:abc",
            "python:-bad",
            "a//b",
            "python@md5:0123",
            "-x/y",
        ] {
            let err = Reference::parse(bad).unwrap_err();
            assert_eq!(err.input, bad);
            assert!(!err.reason.is_empty());
        }
    }

    #[test]
    fn uppercase_first_component_is_a_domain_like_docker() {
        // docker treats an upper-case first component as a registry host.
        let r = p("Registry/app");
        assert_eq!(r.registry, "Registry");
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.1:5000"));
        assert!(is_loopback_host("127.3.4.5"));
        assert!(is_loopback_host("[::1]:5000"));
        assert!(is_loopback_host("localhost:80"));
        assert!(!is_loopback_host("10.0.0.1:5000"));
        assert!(!is_loopback_host("example.com"));
    }
}
