//! TLS as docker sets it up for a registry: the system's roots (which honour
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`), plus every `--ca-cert` file, plus the
//! registry's own directory in docker's `certs.d` convention
//! (`/etc/docker/certs.d/HOST[:PORT]/`: `*.crt` are CAs, `NAME.cert` with
//! `NAME.key` a client certificate for mutual TLS), and `--insecure-registry`,
//! which accepts any certificate from that registry only. Other hosts of the run
//! (a CDN the registry redirects to, a token service) are verified against the
//! system's roots and `--ca-cert`.
//!
//! The session store also marks when each connection's ClientHello is built,
//! which is when TCP (and any proxy tunnel) is done and TLS starts: the transport
//! splits a connection's set-up time there.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, ResolvesClientCert, Resumption,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};

/// docker's default `certs.d` directory.
pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";

/// The user's TLS settings, for every registry of a run.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// Extra CA certificates (PEM files) trusted for every host.
    pub ca_certs: Vec<PathBuf>,
    /// docker's `certs.d` directory.
    pub certs_dir: PathBuf,
    /// Registries (`host` or `host:port`) reached without verifying their
    /// certificate, or over plain HTTP when they do not speak TLS.
    pub insecure: Vec<String>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            ca_certs: Vec::new(),
            certs_dir: PathBuf::from(DEFAULT_CERTS_DIR),
            insecure: Vec::new(),
        }
    }
}

impl TlsOptions {
    /// Whether `registry` (`host[:port]`) was named by `--insecure-registry`,
    /// with or without its port.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host = host_of(registry);
        self.insecure.iter().any(|i| i == registry || i == host)
    }

    /// The `certs.d` directory of `registry`, when it exists.
    pub fn registry_dir(&self, registry: &str) -> Option<PathBuf> {
        let dir = self.certs_dir.join(registry);
        dir.is_dir().then_some(dir)
    }
}

/// Problems with the user's certificates, named so they can be fixed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A CA or client certificate file could not be used.
    #[error("cannot use certificate file {path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A client certificate without its key, or a key without a certificate.
    #[error("{path} has no matching {missing} in {dir} (mutual TLS needs NAME.cert and NAME.key)")]
    UnpairedClientCert {
        /// The file found.
        path: PathBuf,
        /// The file missing.
        missing: String,
        /// The `certs.d` directory.
        dir: PathBuf,
    },
    /// rustls refused the configuration (a bad key, no usable roots).
    #[error("TLS setup for {registry}: {reason}")]
    Setup {
        /// The registry.
        registry: String,
        /// rustls's reason.
        reason: String,
    },
}

/// The first ClientHello of a connection, as the transport wants to hear of it.
pub type HelloHook = Arc<dyn Fn() + Send + Sync>;

/// Set when a server asked for a client certificate and none was configured for
/// it: with TLS 1.3 the refusal that follows may arrive as a bare "connection
/// closed", so this is how the error can still say what is missing.
pub type ClientCertWanted = Arc<AtomicBool>;

/// The rustls client configuration for a run against `registry` (`host[:port]`).
/// `on_hello` is called as each connection's ClientHello is built.
pub fn client_config(
    options: &TlsOptions,
    registry: &str,
    on_hello: HelloHook,
) -> Result<(rustls::ClientConfig, ClientCertWanted), TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let setup = |e: &dyn std::fmt::Display| TlsError::Setup {
        registry: registry.to_string(),
        reason: e.to_string(),
    };
    let mut everywhere = Vec::new();
    for path in &options.ca_certs {
        everywhere.extend(read_certs(path)?);
    }
    let dir = options.registry_dir(registry);
    let mut for_registry = everywhere.clone();
    let mut client_pair = None;
    if let Some(dir) = &dir {
        let (cas, pair) = read_certs_dir(dir)?;
        for_registry.extend(cas);
        client_pair = pair;
    }
    let verifier = |roots: Vec<CertificateDer<'static>>| {
        rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
            .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
            .map_err(|e| setup(&e))
    };
    let verifier = RegistryVerifier {
        registry_host: host_of(registry).to_string(),
        registry_target: with_port(registry),
        registry: verifier(for_registry)?,
        others: verifier(everywhere)?,
        insecure: options.is_insecure(registry),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let certified = match client_pair {
        Some((certs, key)) => Some(Arc::new(
            CertifiedKey::from_der(certs, key, &provider).map_err(|e| setup(&e))?,
        )),
        None => None,
    };
    let wanted = ClientCertWanted::default();
    let mut config = builder.with_client_cert_resolver(Arc::new(ClientCert {
        certified,
        wanted: wanted.clone(),
        registry_target: with_port(registry),
    }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.resumption = Resumption::store(Arc::new(MarkedSessionStore {
        inner: ClientSessionMemoryCache::new(64),
        on_hello,
    }));
    Ok((config, wanted))
}

/// The client certificate from `certs.d` (or none), offered when the registry
/// asks; other hosts of the run (a CDN, a token service) never get it.
#[derive(Debug)]
struct ClientCert {
    certified: Option<Arc<CertifiedKey>>,
    wanted: ClientCertWanted,
    registry_target: String,
}

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let to_registry = super::connecting::target().is_none_or(|t| t == self.registry_target);
        if !to_registry {
            return None;
        }
        if self.certified.is_none() {
            self.wanted.store(true, Ordering::Relaxed);
        }
        self.certified.clone()
    }

    fn has_certs(&self) -> bool {
        // Always consulted, so that a request without one is noticed.
        true
    }
}

/// `host` -> `host:443`; `host:port` stays; as the connector names targets.
fn with_port(registry: &str) -> String {
    url::Url::parse(&format!("https://{registry}/"))
        .map(|u| super::connecting::host_port(&u))
        .unwrap_or_else(|_| registry.to_string())
}

/// `host:port` -> `host`; `[::1]:5000` -> `::1`.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => registry,
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::Certificate {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

type ClientPair = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// docker's rules for a registry's `certs.d` directory: every `*.crt` is a CA;
/// `NAME.cert` and `NAME.key` are a client certificate and its key (the first
/// pair by name is used).
fn read_certs_dir(
    dir: &Path,
) -> Result<(Vec<CertificateDer<'static>>, Option<ClientPair>), TlsError> {
    let unreadable = |e: std::io::Error| TlsError::Certificate {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    names.sort();
    let ext = |p: &Path, e: &str| p.extension().is_some_and(|x| x == e);
    let mut cas = Vec::new();
    let mut pair = None;
    for path in &names {
        if ext(path, "crt") {
            cas.extend(read_certs(path)?);
        } else if ext(path, "cert") {
            let key = path.with_extension("key");
            if !key.is_file() {
                return Err(TlsError::UnpairedClientCert {
                    path: path.clone(),
                    missing: file_name(&key),
                    dir: dir.to_path_buf(),
                });
            }
            if pair.is_none() {
                let certs = read_certs(path)?;
                let key =
                    PrivateKeyDer::from_pem_file(&key).map_err(|e| TlsError::Certificate {
                        path: key.clone(),
                        reason: format!("not a PEM private key ({e})"),
                    })?;
                pair = Some((certs, key));
            }
        } else if ext(path, "key") && !path.with_extension("cert").is_file() {
            return Err(TlsError::UnpairedClientCert {
                path: path.clone(),
                missing: file_name(&path.with_extension("cert")),
                dir: dir.to_path_buf(),
            });
        }
    }
    Ok((cas, pair))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Verifies the registry against its own roots (or not at all, when insecure)
/// and every other host against the run-wide roots.
#[derive(Debug)]
struct RegistryVerifier {
    registry_host: String,
    /// `host:port` of the registry (443 when it names none).
    registry_target: String,
    registry: Arc<dyn ServerCertVerifier>,
    others: Arc<dyn ServerCertVerifier>,
    insecure: bool,
}

impl RegistryVerifier {
    /// Whether the server is the registry: by `host:port` when the connector
    /// says where it connects (so an insecure `reg:5000` does not make `reg:443`
    /// insecure), else by name.
    fn is_registry(&self, name: &ServerName<'_>) -> bool {
        match super::connecting::target() {
            Some(target) => target == self.registry_target,
            None => name.to_str() == self.registry_host,
        }
    }
}

impl ServerCertVerifier for RegistryVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.is_registry(server_name) {
            return self.others.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            );
        }
        if self.insecure {
            return Ok(ServerCertVerified::assertion());
        }
        self.registry
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.registry.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.registry.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.registry.supported_verify_schemes()
    }
}

/// rustls's in-memory session cache, which also reports each ClientHello: rustls
/// asks its store for a key-exchange hint as it builds one.
struct MarkedSessionStore {
    inner: ClientSessionMemoryCache,
    on_hello: HelloHook,
}

impl std::fmt::Debug for MarkedSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarkedSessionStore").finish_non_exhaustive()
    }
}

impl ClientSessionStore for MarkedSessionStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: rustls::NamedGroup) {
        self.inner.set_kx_hint(server_name, group)
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        (self.on_hello)();
        self.inner.kx_hint(server_name)
    }

    fn set_tls12_session(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.inner.set_tls12_session(server_name, value)
    }

    fn tls12_session(
        &self,
        server_name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        (self.on_hello)();
        self.inner.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name)
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.inner.insert_tls13_ticket(server_name, value)
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        (self.on_hello)();
        self.inner.take_tls13_ticket(server_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_matches_with_or_without_port() {
        let o = TlsOptions {
            insecure: vec!["reg.example".into(), "other:5000".into()],
            ..TlsOptions::default()
        };
        assert!(o.is_insecure("reg.example:443"));
        assert!(o.is_insecure("reg.example"));
        assert!(o.is_insecure("other:5000"));
        assert!(!o.is_insecure("other:5001"));
        assert!(!o.is_insecure("reg.example.evil"));
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("a.b:99"), "a.b");
        assert_eq!(host_of("a.b"), "a.b");
        assert_eq!(with_port("a.b"), "a.b:443");
        assert_eq!(with_port("a.b:5000"), "a.b:5000");
        assert_eq!(with_port("[::1]:5000"), "[::1]:5000");
    }

    #[test]
    fn unpaired_client_files_and_bad_pem_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("client.cert"), "x").unwrap();
        let e = read_certs_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("client.key"), "{e}");
        std::fs::remove_file(dir.path().join("client.cert")).unwrap();
        std::fs::write(dir.path().join("ca.crt"), "not pem").unwrap();
        let e = read_certs_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("ca.crt") && e.contains("no PEM"), "{e}");
    }
}
