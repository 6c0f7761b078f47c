//! A certificate authority made for one test run with the `openssl` command:
//! a CA, a server certificate for 127.0.0.1, `localhost` and `registry.pttest`,
//! and a client certificate from a second CA, for mutual TLS.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of a test PKI, in a temporary directory removed on drop.
pub struct Pki {
    /// CA that signed the server certificate.
    pub ca: PathBuf,
    /// Server certificate and key (PEM).
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// CA that signed the client certificate.
    pub client_ca: PathBuf,
    /// Client certificate and key (PEM).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    dir: tempfile::TempDir,
}

/// The DNS names the server certificate is valid for (and 127.0.0.1).
pub const SERVER_NAMES: [&str; 2] = ["localhost", "registry.pttest"];

impl Pki {
    /// Generates the keys and certificates (P-256, valid for two days).
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p = |name: &str| d.join(name);
        make_ca(d, "ca", "pulltime test CA");
        make_ca(d, "client-ca", "pulltime test client CA");
        let san = format!(
            "subjectAltName=IP:127.0.0.1,{}",
            SERVER_NAMES.map(|n| format!("DNS:{n}")).join(",")
        );
        make_leaf(d, "server", "ca", &san);
        make_leaf(d, "client", "client-ca", "extendedKeyUsage=clientAuth");
        Pki {
            ca: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
            client_ca: p("client-ca.pem"),
            client_cert: p("client.pem"),
            client_key: p("client.key"),
            dir,
        }
    }

    /// The `http:` YAML of a registry serving this PKI's server certificate,
    /// asking for a client certificate from the client CA when `mutual`.
    pub fn registry_tls_yaml(&self, mutual: bool) -> String {
        let mut y = format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            self.server_cert.display(),
            self.server_key.display()
        );
        if mutual {
            y.push_str(&format!(
                "    clientcas:\n      - {}\n",
                self.client_ca.display()
            ));
        }
        y
    }

    /// A docker `certs.d` tree of its own with one registry in it: `HOST/ca.crt`,
    /// and `HOST/client.cert` + `client.key` when `client`. Returns its root.
    pub fn certs_d(&self, host: &str, client: bool) -> PathBuf {
        let root = self.dir.path().join(format!(
            "certs.d-{}-{}",
            host.replace(':', "_"),
            client as u8
        ));
        let dir = root.join(host);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&self.ca, dir.join("ca.crt")).unwrap();
        if client {
            std::fs::copy(&self.client_cert, dir.join("client.cert")).unwrap();
            std::fs::copy(&self.client_key, dir.join("client.key")).unwrap();
        }
        root
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl not found: install the Debian package (apt-get install -y openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_ca(dir: &Path, name: &str, cn: &str) {
    let (key, cert, subj) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={cn}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            &subj,
        ],
    );
}

fn make_leaf(dir: &Path, name: &str, ca: &str, ext: &str) {
    let (key, csr, cert) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let subj = format!("/CN=pulltime test {name}");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subj,
            "-addext",
            ext,
        ],
    );
    let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-copy_extensions",
            "copy",
        ],
    );
}
