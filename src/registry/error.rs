//! What can go wrong talking to a registry, phrased so the user knows what to do.

/// Registry client errors.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No TCP/TLS connection or no response.
    #[error("registry unreachable at {url}: {reason} ({})", unreachable_hint(.url, .reason))]
    Unreachable {
        /// What was requested (no query string).
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The response started but its body kept breaking off (resets, truncation,
    /// stalls past the read timeout) until the attempts ran out.
    #[error(
        "transfer of {what} failed: {reason} (the connection kept breaking; try again later, or raise --retries or --timeout)"
    )]
    Transfer {
        /// What was being received.
        what: String,
        /// The last transport error.
        reason: String,
    },
    /// 404 for a manifest.
    #[error(
        "image not found: {reference} (the registry answered {code} for manifest {manifest}; check the repository name and tag)"
    )]
    ManifestUnknown {
        /// The normalised reference.
        reference: String,
        /// Tag or digest asked for.
        manifest: String,
        /// Registry error code, e.g. MANIFEST_UNKNOWN or NAME_UNKNOWN.
        code: String,
    },
    /// 404 for a blob.
    #[error(
        "blob {digest} not found in {repository} (the registry lists it in the manifest but does not serve it)"
    )]
    BlobUnknown {
        /// Repository.
        repository: String,
        /// Blob digest.
        digest: String,
    },
    /// Credentials or token refused.
    #[error(
        "authentication refused by {host} ({status}{detail}); log in with --user USER:PASSWORD or ~/.docker/config.json, or check that the repository exists and is public"
    )]
    AuthRefused {
        /// Host that refused.
        host: String,
        /// HTTP status.
        status: u16,
        /// Registry's explanation, if any (never contains secrets we sent).
        detail: String,
    },
    /// The registry refused a bearer token it had asked for: the token service
    /// granted no access to the repository for these credentials (or none).
    #[error(
        "access to repository {repository} on {host} denied ({status}{detail}); the token for it does not allow pulling: check the repository name, and log in (--user, docker's or podman's credentials) as someone allowed to pull it"
    )]
    AccessDenied {
        /// Repository asked for.
        repository: String,
        /// Registry host.
        host: String,
        /// HTTP status.
        status: u16,
        /// Registry's explanation, if any.
        detail: String,
    },
    /// The registry asks for Basic auth, but the credentials are an identity token.
    #[error(
        "{host} asks for Basic auth (user name and password), but the credentials found are an identity token (docker's `identitytoken`), which only a bearer token service accepts; give --user USER:PASSWORD"
    )]
    IdentityTokenNeedsBearer {
        /// Registry host.
        host: String,
    },
    /// Any other unexpected status.
    #[error("{method} {url} failed with HTTP {status}{detail}")]
    Status {
        /// HTTP method.
        method: String,
        /// URL without query.
        url: String,
        /// Status code.
        status: u16,
        /// Registry error code and message, if any.
        detail: String,
    },
    /// Content did not hash to its digest.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Which object (e.g. `layer 2 (sha256:...)`, `manifest`).
        what: String,
        /// Digest the descriptor names.
        expected: String,
        /// Digest of what arrived.
        actual: String,
    },
    /// A layer's uncompressed stream did not hash to the config's `rootfs.diff_ids`
    /// entry, although the compressed blob matched its digest: the image itself is
    /// inconsistent, and pulling again will not help.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DiffIdMismatch {
        /// Which layer.
        what: String,
        /// The config's diff_id.
        expected: String,
        /// Digest of the uncompressed stream.
        actual: String,
    },
    /// A manifest or layer type pulltime does not handle.
    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType {
        /// The media type.
        media_type: String,
        /// What carried it.
        what: String,
    },
    /// Index has no entry for the wanted platform.
    #[error(
        "no manifest for platform {wanted} in {reference}; available: {available} (choose one with --platform)"
    )]
    NoMatchingPlatform {
        /// Reference.
        reference: String,
        /// Wanted platform.
        wanted: String,
        /// Platforms the index lists.
        available: String,
    },
    /// Manifest, index or config JSON is malformed.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which document.
        what: String,
        /// Parse error.
        reason: String,
    },
    /// A response body was larger than allowed.
    #[error("{what} is larger than the {limit} byte limit")]
    TooLarge {
        /// Which document.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// Local I/O while receiving a blob.
    #[error("writing {what}")]
    Io {
        /// What was being written.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A limit against hostile registries was exceeded (manifest size, layers).
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
    /// The user's certificates could not be used, or the client not built.
    #[error(transparent)]
    Client(#[from] crate::registry::transport::BuildError),
    /// Stopped because another part of the pull failed first.
    #[error("cancelled: {0}")]
    Cancelled(String),
}

/// What to do about a connection that failed, judged from the transport's
/// reason: the hint fits the failure (no `--plain-http` for a DNS failure).
fn unreachable_hint(url: &str, reason: &str) -> String {
    let parsed = url::Url::parse(url).ok();
    let name = parsed
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let host = match parsed.as_ref().and_then(|u| u.port()) {
        Some(p) => format!("{name}:{p}"),
        None => name.clone(),
    };
    let r = reason.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| r.contains(n));
    if has(&["unknownissuer", "unknown issuer", "unknown ca"]) {
        format!(
            "certificate signed by unknown authority; pass --ca-cert FILE or put the CA in /etc/docker/certs.d/{host}/ (or name the directory with --certs-dir), or skip verification with --insecure-registry {host}"
        )
    } else if has(&["notvalidforname", "not valid for name"]) {
        format!(
            "the registry's certificate is not valid for the name {name}; use the name it was issued for"
        )
    } else if has(&["expired", "notvalidyet"]) {
        "the registry's certificate is expired or not yet valid (or this machine's clock is wrong)"
            .into()
    } else if has(&[
        "certificaterequired",
        "certificate required",
        "badcertificate",
        "client certificate",
    ]) {
        format!(
            "the registry wants a client certificate it trusts (mutual TLS): put client.cert and client.key in /etc/docker/certs.d/{host}/ (or --certs-dir)"
        )
    } else if has(&[
        "corrupt message",
        "invalidcontenttype",
        "wrong version number",
        "invalid content type",
    ]) {
        format!(
            "{host} does not speak TLS: use --scheme http (or --plain-http) for a registry without TLS"
        )
    } else if has(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no address associated",
    ]) {
        format!("cannot resolve {name}: check the registry's name, or this machine's DNS")
    } else if has(&["through proxy"]) {
        "check the proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)".into()
    } else if has(&["connection refused"]) {
        format!("nothing listens at {host}: is the registry running, and the port right?")
    } else if has(&["timed out", "timeout"]) {
        format!(
            "no answer from {host} within --timeout: is it reachable from here (firewall, proxy)?"
        )
    } else {
        "is the address right and the registry running?".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_fit_the_failure() {
        let url = "https://reg.example:5000/v2/";
        let hint = |reason: &str| unreachable_hint(url, reason);
        assert!(hint("invalid peer certificate: UnknownIssuer").contains("--ca-cert"));
        assert!(
            hint("invalid peer certificate: UnknownIssuer").contains("certs.d/reg.example:5000/")
        );
        assert!(
            hint("dns error: failed to lookup address information")
                .contains("cannot resolve reg.example")
        );
        assert!(!hint("dns error: failed to lookup address information").contains("--plain-http"));
        assert!(
            hint("tcp connect error: Connection refused (os error 111)")
                .contains("nothing listens")
        );
        assert!(
            hint("received corrupt message of type InvalidContentType").contains("--scheme http")
        );
        assert!(hint("received fatal alert: CertificateRequired").contains("client.cert"));
        assert!(hint("x (through proxy http://p:3128)").contains("HTTPS_PROXY"));
        assert!(hint("something else").contains("registry running"));
    }
}
