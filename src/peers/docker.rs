//! docker: the Engine API over its unix socket. A pull is `POST /images/create`,
//! whose streamed progress messages ("Pulling fs layer", "Downloading",
//! "Verifying Checksum", "Download complete", "Extracting", "Pull complete") are
//! stamped as they arrive; each message's `id` is the first 12 hex digits of a
//! layer blob's digest.

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use crate::oci::record::{CpuUsage, PullerInfo};
use crate::registry::transport::RunClock;

use super::cpu::{TreeSample, sample_tree, socket_owner, tree_usage};
use super::{Observed, PeerError, ProxiedImage, decompressor, settings, unobserved};

/// The Engine API version asked for (docker 20.10 speaks 1.41).
const API: &str = "v1.41";

/// A docker daemon reached through its socket.
pub struct Docker {
    socket: PathBuf,
    /// The daemon's process, when this process may see it (for its CPU).
    pid: Option<u32>,
}

/// The statuses docker sends for a layer, in the order they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Downloading,
    DownloadComplete,
    Extracting,
    PullComplete,
    AlreadyExists,
    Other,
}

fn status_of(s: &str) -> Status {
    match s {
        "Downloading" => Status::Downloading,
        "Download complete" => Status::DownloadComplete,
        "Extracting" => Status::Extracting,
        "Pull complete" => Status::PullComplete,
        "Already exists" => Status::AlreadyExists,
        _ => Status::Other,
    }
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// One progress message of one layer, when it came (seconds since the run start).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerMessage {
    /// The message's `id`: 12 hex digits of the layer's blob digest.
    pub id: String,
    /// Its `status`.
    pub status: String,
    /// Arrival.
    pub at_s: f64,
}

impl Docker {
    /// `unix:///path/docker.sock` or a plain path.
    pub fn connect(host: &str) -> Result<Docker, PeerError> {
        let socket = match host.strip_prefix("unix://") {
            Some(p) => PathBuf::from(p),
            None if host.starts_with('/') => PathBuf::from(host),
            None => {
                return Err(PeerError::Unreachable {
                    daemon: "dockerd",
                    address: host.into(),
                    reason: "only unix sockets are supported (unix:///path/to/docker.sock)".into(),
                });
            }
        };
        if !socket.exists() {
            return Err(PeerError::Unreachable {
                daemon: "dockerd",
                address: socket.display().to_string(),
                reason: "no such socket; start dockerd or pass --docker-host".into(),
            });
        }
        let pid = socket_owner(&socket);
        Ok(Docker { socket, pid })
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
    ) -> Result<(u16, hyper::body::Incoming), PeerError> {
        let unreachable = |reason: String| PeerError::Unreachable {
            daemon: "dockerd",
            address: self.socket.display().to_string(),
            reason,
        };
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(format!("/{API}{path}"))
            .header("host", "docker")
            .body(Empty::<Bytes>::new())
            .map_err(|e| unreachable(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok((resp.status().as_u16(), resp.into_body()))
    }

    async fn get_json(&self, path: &str) -> Result<serde_json::Value, PeerError> {
        let (status, body) = self.request("GET", path).await?;
        let bytes = body
            .collect()
            .await
            .map_err(|e| self.failed(format!("GET {path}: {e}")))?
            .to_bytes();
        if status != 200 {
            return Err(self.failed(format!(
                "GET {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes).trim()
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| self.failed(format!("GET {path}: {e}")))
    }

    fn failed(&self, message: String) -> PeerError {
        PeerError::Puller {
            puller: "docker",
            message,
        }
    }

    /// Version, storage driver and data root, as the daemon reports them.
    pub async fn info(&self) -> Result<(PullerInfo, Option<PathBuf>), PeerError> {
        let version = self.get_json("/version").await?;
        let info = self.get_json("/info").await?;
        let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_string();
        let root = text(&info, "DockerRootDir");
        let settings = settings([
            ("storage_driver", text(&info, "Driver")),
            ("data_root", root.clone()),
            // The daemon's --max-concurrent-downloads is not in the API; 3 is its default.
            (
                "max_concurrent_downloads",
                "3 (dockerd default; not reported by the API)".into(),
            ),
            ("decompressor", decompressor()),
            ("socket", self.socket.display().to_string()),
        ]);
        Ok((
            PullerInfo {
                name: "docker".into(),
                version: text(&version, "Version"),
                settings,
            },
            (!root.is_empty()).then(|| PathBuf::from(root)),
        ))
    }

    /// True when the daemon has an image with this ID (the config digest).
    pub async fn has_image(&self, config_digest: &str) -> Result<bool, PeerError> {
        let (status, body) = self
            .request("GET", &format!("/images/{config_digest}/json"))
            .await?;
        let _ = body.collect().await;
        Ok(status == 200)
    }

    fn cpu_sample(&self) -> Option<TreeSample> {
        self.pid.map(sample_tree)
    }

    /// Pulls `image` through the proxy and returns what the progress stream showed.
    pub async fn pull(
        &self,
        image: &ProxiedImage,
        clock: &RunClock,
    ) -> Result<Observed, PeerError> {
        let before = self.cpu_sample();
        let started = clock.offset(std::time::Instant::now());
        let query = format!(
            "/images/create?fromImage={}&tag={}",
            url_encode(&format!("{}/{}", image.proxy, image.repository)),
            url_encode(&image.tag_or_digest)
        );
        let (status, mut body) = self.request("POST", &query).await?;
        let mut messages = Vec::new();
        let mut pending = Vec::new();
        let mut error = None;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| self.failed(format!("reading the pull's progress: {e}")))?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            let at_s = clock.offset(std::time::Instant::now());
            pending.extend_from_slice(data);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                if let Ok(m) = serde_json::from_slice::<Message>(&line) {
                    if let Some(e) = m.error {
                        error = Some(e);
                    }
                    if let (Some(status), Some(id)) = (m.status, m.id) {
                        messages.push(LayerMessage { id, status, at_s });
                    }
                } else if status != 200 {
                    error = Some(String::from_utf8_lossy(&line).trim().to_string());
                }
            }
        }
        let ended = clock.offset(std::time::Instant::now());
        if status != 200 || error.is_some() {
            return Err(self.failed(format!(
                "pull of {}: {}",
                image.proxied_reference(),
                error.unwrap_or_else(|| format!("HTTP {status}"))
            )));
        }
        let cpu = match (before, self.cpu_sample()) {
            (Some(b), Some(a)) => Some(tree_usage(&b, &a)),
            _ => None,
        };
        Ok(observe(image, &messages, (started, ended), cpu))
    }

    /// Removes the image (`DELETE /images/NAME?force=1`): its tag and, when no
    /// other image shares them, its layers.
    pub async fn remove(&self, image: &ProxiedImage) -> Result<(), PeerError> {
        let name = image.proxied_reference();
        let (status, body) = self
            .request("DELETE", &format!("/images/{}?force=1", url_encode(&name)))
            .await?;
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status != 200 && status != 404 {
            return Err(self.failed(format!(
                "removing {name}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes).trim()
            )));
        }
        Ok(())
    }
}

/// Turns the progress messages into per-layer windows: download ends at "Download
/// complete", extraction runs from the first "Extracting" to "Pull complete".
pub fn observe(
    image: &ProxiedImage,
    messages: &[LayerMessage],
    window: (f64, f64),
    cpu: Option<CpuUsage>,
) -> Observed {
    let n = image.layers.len();
    let mut observed = Observed::new(n, window);
    observed.cpu = cpu;
    for (i, digest) in image.layers.iter().enumerate() {
        let id = short_id(digest);
        let id = &id;
        let of = |s: Status| {
            messages
                .iter()
                .filter(move |m| &m.id == id && status_of(&m.status) == s)
        };
        observed.download_done[i] = of(Status::DownloadComplete).map(|m| m.at_s).next();
        let first_extract = of(Status::Extracting).map(|m| m.at_s).next();
        let complete = of(Status::PullComplete).map(|m| m.at_s).next();
        // A layer with no "Extracting" message (docker sends none for a layer it
        // applies at once) has no window: it is not assumed to have taken 0 s.
        observed.extract[i] = first_extract.zip(complete);
        // Every status once ("Downloading" and "Extracting" repeat with progress).
        let mut seen: Vec<&str> = Vec::new();
        for m in messages.iter().filter(|m| &m.id == id) {
            let repeats = matches!(
                status_of(&m.status),
                Status::Downloading | Status::Extracting
            );
            if !repeats || !seen.contains(&m.status.as_str()) {
                seen.push(&m.status);
                observed.event(i, &m.status, m.at_s);
            }
        }
    }
    observed.events.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    observed.unobserved = unobserved(&[
        (
            "verify_s",
            "docker hashes each blob while downloading it; its time is inside download_s",
        ),
        (
            "decompress_s",
            "docker decompresses while extracting (unpigz or Go gzip piped into the untar); its time is inside extract_s",
        ),
        (
            "stall_s",
            "docker extracts a layer only after its download completed",
        ),
    ]);
    observed
}

/// docker's layer id: `sha256:abcdef...` -> the first 12 hex digits.
pub fn short_id(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
