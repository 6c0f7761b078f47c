//! How to reach a registry, the same flags on every subcommand that talks to one:
//! the scheme, the CAs to trust, docker's `certs.d` directory, insecure
//! registries, and credentials (from the command line, stdin, an auth file, or
//! docker's and podman's files).

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use pulltime::registry::auth::Credentials;
use pulltime::registry::credentials::{self, Sources};

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
#[command(next_help_heading = "Registry")]
pub struct RegistryArgs {
    /// Credentials as USER:PASSWORD, or USER with --password-stdin. Otherwise
    /// docker's config.json (credHelpers, credsStore, auths), then podman's auth
    /// file, else anonymous (see README).
    #[arg(long, env = "PULLTIME_USER", hide_env_values = true)]
    pub user: Option<String>,
    /// Read the password (or token) for --user USER from stdin, as `docker login
    /// --password-stdin` does: it never shows in the process list.
    #[arg(long, requires = "user")]
    pub password_stdin: bool,
    /// Take credentials from this auth file only (`{"auths": {...}}`, as
    /// skopeo's and podman's --authfile).
    #[arg(long, value_name = "FILE", conflicts_with = "user")]
    pub authfile: Option<PathBuf>,
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
    /// The credentials for `registry`: --user (with the password from stdin when
    /// asked), or --authfile, or the files docker and podman use.
    pub fn credentials(&self, registry: &str) -> anyhow::Result<Option<Credentials>> {
        if let Some(user) = self.user.as_ref().filter(|_| self.password_stdin) {
            if user.contains(':') {
                super::exit::usage!("with --password-stdin, --user takes the user name only");
            }
            return Ok(Some(Credentials::basic(user.clone(), stdin_password()?)));
        }
        if let Some(file) = &self.authfile {
            if !file.is_file() {
                super::exit::usage!("--authfile {}: no such file", file.display());
            }
            let sources = Sources {
                docker_config: None,
                podman_auth: Some(file.clone()),
                ..Sources::from_env()
            };
            return Ok(credentials::lookup_in(&sources, None, registry)?.map(|f| f.credentials));
        }
        Ok(credentials::lookup(self.user.as_deref(), registry)?.map(|f| f.credentials))
    }

    /// Sets `options`' scheme, TLS and credentials for `reference`, after
    /// checking that the certificate files are there.
    pub fn apply(&self, reference: &Reference, options: &mut ClientOptions) -> anyhow::Result<()> {
        options.credentials = self.credentials(&reference.registry)?;
        for file in &self.ca_cert {
            if !file.is_file() {
                super::exit::usage!("--ca-cert {}: no such file", file.display());
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

/// The password on stdin, read once (a command may reach several registries),
/// without its final newline.
fn stdin_password() -> anyhow::Result<String> {
    static PASSWORD: OnceLock<Result<String, String>> = OnceLock::new();
    let read = PASSWORD.get_or_init(|| {
        let mut s = String::new();
        std::io::stdin()
            .take(1 << 16)
            .read_to_string(&mut s)
            .map_err(|e| format!("--password-stdin: cannot read stdin: {e}"))?;
        let p = s.trim_end_matches(['\n', '\r']).to_string();
        if p.is_empty() {
            return Err("--password-stdin: stdin was empty".into());
        }
        Ok(p)
    });
    read.clone().map_err(|e| super::exit::Usage(e).into())
}
