//! Helpers for the fault tests (serve/faults.rs): a raw HTTP/1.1 client that tells a TCP
//! reset from a clean close, and a registry with a small image behind a fault
//! profile.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use pulltime::oci::digest::sha256_digest;
use pulltime::profiles::faults::FaultProfile;
use pulltime::server::{ServeOptions, ServerThread};

/// How a raw GET ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The connection ended with ECONNRESET rather than a clean EOF.
    pub reset: bool,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn content_length(&self) -> usize {
        self.header("content-length").unwrap().parse().unwrap()
    }
}

/// One GET on a fresh connection with `Connection: close`, read until EOF or reset.
pub fn raw_get(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> Raw {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 16384];
    let mut reset = false;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                reset = true;
                break;
            }
            Err(e) => panic!("GET {path}: {e} after {} bytes", data.len()),
        }
    }
    let split = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: no complete header in {} bytes", data.len()));
    let head = String::from_utf8_lossy(&data[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    Raw {
        status,
        headers,
        body: data[split + 4..].to_vec(),
        reset,
    }
}

/// Deterministic bytes.
pub fn content(seed: u64, n: usize) -> Vec<u8> {
    let mut rng = pulltime::rng::Rng::new(seed);
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

/// A registry with `profile` (TOML) serving repository `app` with a config blob, a
/// layer blob of `layer_len` bytes and a manifest tagged `v1`.
pub struct Lab {
    pub server: ServerThread,
    pub layer: Vec<u8>,
    pub layer_digest: String,
    pub config_digest: String,
    _storage: tempfile::TempDir,
}

pub fn profile(toml: &str) -> FaultProfile {
    FaultProfile::parse("test", toml).unwrap()
}

pub fn lab_with(
    faults: FaultProfile,
    seed_override: Option<u64>,
    hub: bool,
    layer_len: usize,
) -> Lab {
    let storage = tempfile::tempdir().unwrap();
    let mut faults = faults;
    if let Some(s) = seed_override {
        faults.seed = s;
    }
    // Push with a plain server on the same storage, then serve it with faults.
    let layer = content(7, layer_len);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    {
        let plain = ServerThread::spawn(ServeOptions {
            storage: Some(storage.path().to_path_buf()),
            ..ServeOptions::default()
        })
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://{}", plain.addr);
        rt.block_on(async {
            for data in [&layer[..], &config[..]] {
                let d = sha256_digest(data);
                let r = http
                    .post(format!("{base}/v2/app/blobs/uploads/?digest={d}"))
                    .body(data.to_vec())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
            }
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_digest(config), "size": config.len()},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256_digest(&layer), "size": layer.len()}],
            });
            let r = http
                .put(format!("{base}/v2/app/manifests/v1"))
                .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                .body(manifest.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        });
    }
    let server = ServerThread::spawn(ServeOptions {
        storage: Some(storage.path().to_path_buf()),
        emulate_dockerhub: hub,
        faults: Some(faults),
        ..ServeOptions::default()
    })
    .unwrap();
    Lab {
        server,
        layer_digest: sha256_digest(&layer),
        config_digest: sha256_digest(config),
        layer,
        _storage: storage,
    }
}

pub fn lab(toml: &str) -> Lab {
    lab_with(profile(toml), None, false, 200_000)
}

impl Lab {
    pub fn blob(&self, digest: &str, extra: &[(&str, &str)]) -> Raw {
        raw_get(self.server.addr, &format!("/v2/app/blobs/{digest}"), extra)
    }
    pub fn injected(&self) -> Vec<(String, u64)> {
        let s = self.server.faults_injected().unwrap();
        s.injected.into_iter().collect()
    }
}

pub fn error_code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

/// A child process killed if the test fails before it exits.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
