//! How to reach a registry, the same flags on every subcommand that talks to one:
//! the scheme, the CAs to trust, docker's `certs.d` directory and insecure
//! registries.

use std::path::PathBuf;

use pulltime::oci::reference::Reference;
use pulltime::registry::tls::{DEFAULT_CERTS_DIR, TlsOptions};
use pulltime::registry::{ClientOptions, Scheme, SchemeChoice};

/// `--scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemeArg {
    /// docker's rule: HTTPS, plain HTTP on loopback, and HTTPS falling back to
    /// plain HTTP for an --insecure-registry.
    Auto,
    /// Always TLS (a loopback registry with TLS).
    Https,
    /// Always plain HTTP (same as --plain-http).
    Http,
}

/// Registry connection flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Talk plain HTTP to the registry (same as --scheme http).
    #[arg(long, conflicts_with = "scheme")]
    pub plain_http: bool,
    /// How to reach the registry.
    #[arg(long, value_enum, default_value_t = SchemeArg::Auto)]
    pub scheme: SchemeArg,
    /// Trust this CA certificate (PEM) as well as the system's; repeatable.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// docker's certs.d directory: DIR/HOST[:PORT]/*.crt are CAs for that
    /// registry, NAME.cert with NAME.key a client certificate (mutual TLS).
    #[arg(long, value_name = "DIR", env = "PULLTIME_CERTS_DIR", default_value = DEFAULT_CERTS_DIR)]
    pub certs_dir: PathBuf,
    /// Reach HOST[:PORT] without verifying its certificate, or over plain HTTP
    /// when it has no TLS (dockerd's flag); repeatable. Says so on stderr.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
}

impl RegistryArgs {
    /// Sets `options`' scheme and TLS for `reference`, after checking that the
    /// certificate files are there.
    pub fn apply(&self, reference: &Reference, options: &mut ClientOptions) -> anyhow::Result<()> {
        for file in &self.ca_cert {
            if !file.is_file() {
                anyhow::bail!("--ca-cert {}: no such file", file.display());
            }
        }
        options.tls = TlsOptions {
            ca_certs: self.ca_cert.clone(),
            certs_dir: self.certs_dir.clone(),
            insecure: self.insecure_registry.clone(),
        };
        let choice = match (self.plain_http, self.scheme) {
            (true, _) | (_, SchemeArg::Http) => SchemeChoice::Http,
            (_, SchemeArg::Https) => SchemeChoice::Https,
            (_, SchemeArg::Auto) => SchemeChoice::Auto,
        };
        (options.scheme, options.http_fallback) = Scheme::choose(reference, choice, &options.tls);
        if options.tls.is_insecure(reference.api_host()) {
            eprintln!(
                "warning: {} is an insecure registry (--insecure-registry): its certificate is not verified, and plain HTTP is used if it has no TLS",
                reference.api_host()
            );
        }
        Ok(())
    }
}
