//! podman: `podman pull` with its store in `--root`/`--runroot`. At debug level it
//! logs "Applying tar in ..." when it starts applying each layer (in order), but
//! nothing when one ends: a layer's end is the next one's start when that one was
//! waiting for it, and the last one's is "Writing manifest to image destination"
//! (`timeline`); downloads are seen by the recording proxy.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use crate::oci::record::{CpuUsage, PullerInfo};
use crate::registry::transport::RunClock;

use super::command::{self, Line};
use super::{Observed, PeerError, ProxiedImage, settings, unobserved};

/// podman with an optional store of its own.
pub struct Podman {
    root: Option<PathBuf>,
    runroot: Option<PathBuf>,
}

impl Podman {
    /// podman with `--root`/`--runroot` when given (else its defaults).
    pub fn new(root: Option<PathBuf>, runroot: Option<PathBuf>) -> Result<Podman, PeerError> {
        if command::which("podman").is_none() {
            return Err(PeerError::Unreachable {
                daemon: "podman",
                address: "PATH".into(),
                reason: "podman is not installed (apt-get install -y podman)".into(),
            });
        }
        Ok(Podman { root, runroot })
    }

    fn podman(&self) -> Command {
        let mut c = Command::new("podman");
        if let Some(r) = &self.root {
            c.arg("--root").arg(r);
        }
        if let Some(r) = &self.runroot {
            c.arg("--runroot").arg(r);
        }
        // Keep the pull from writing events to the global /run/libpod log.
        c.arg("--events-backend").arg("none");
        c
    }

    /// Version, storage driver and store.
    pub fn info(&self) -> Result<PullerInfo, PeerError> {
        let version = command::output(
            self.podman()
                .args(["version", "--format", "{{.Client.Version}}"]),
            "podman version",
        )?;
        let store = command::output(
            self.podman().args([
                "info",
                "--format",
                "{{.Store.GraphDriverName}} {{.Store.GraphRoot}}",
            ]),
            "podman info",
        )?;
        let (driver, root) = store.trim().split_once(' ').unwrap_or((store.trim(), ""));
        let settings = settings([
            ("storage_driver", driver.to_string()),
            ("root", root.to_string()),
            (
                "max_concurrent_downloads",
                "6 (containers/image default)".into(),
            ),
        ]);
        Ok(PullerInfo {
            name: "podman".into(),
            version: version.trim().into(),
            settings,
        })
    }

    /// The store's root, for the filesystem type.
    pub fn root(&self) -> Option<PathBuf> {
        self.root.clone()
    }

    /// True when the store has an image with this ID (the config digest).
    pub fn has_image(&self, config_digest: &str) -> Result<bool, PeerError> {
        let id = config_digest.trim_start_matches("sha256:");
        let status = self
            .podman()
            .args(["image", "exists", id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|source| PeerError::Spawn {
                program: "podman".into(),
                source,
            })?;
        // 0: exists, 1: does not; anything else is podman failing.
        match status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(PeerError::Command {
                what: "podman image exists".into(),
                status: status.to_string(),
                output: String::new(),
            }),
        }
    }

    /// The store's layers: storage layer ID -> compressed blob digest, from
    /// `GRAPHROOT/overlay-layers/layers.json` (how podman's "Applying tar in
    /// .../overlay/ID/diff" lines name layers).
    fn layer_digests(&self) -> HashMap<String, String> {
        let root = command::output(
            self.podman()
                .args(["info", "--format", "{{.Store.GraphRoot}}"]),
            "podman info",
        )
        .unwrap_or_default();
        let path = PathBuf::from(root.trim()).join("overlay-layers/layers.json");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let layers: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
        layers
            .iter()
            .filter_map(|l| {
                Some((
                    l["id"].as_str()?.to_string(),
                    l["compressed-diff-digest"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// Pulls `image` through the proxy.
    pub fn pull(&self, image: &ProxiedImage, clock: &RunClock) -> Result<Observed, PeerError> {
        let finished = command::run(
            self.podman().args([
                "--log-level",
                "debug",
                "pull",
                "--tls-verify=false",
                &image.proxied_reference(),
            ]),
            clock,
        )?
        .check("podman pull")?;
        let cpu = finished.cpu.clone();
        Ok(observe(
            image,
            &finished.lines,
            &self.layer_digests(),
            finished.window,
            Some(cpu),
        ))
    }

    /// Removes the image and its layers (nothing to do when a failed pull left
    /// no image).
    pub fn remove(&self, image: &ProxiedImage) -> Result<(), PeerError> {
        command::output(
            self.podman()
                .args(["rmi", "--force", "--ignore", &image.proxied_reference()]),
            "podman rmi",
        )?;
        Ok(())
    }
}

/// Each "Applying tar in .../overlay/ID/diff" line is layer ID's apply starting;
/// `layers` maps storage IDs to blob digests. A layer whose line is missing keeps
/// no start (and the run says so).
pub fn observe(
    image: &ProxiedImage,
    lines: &[Line],
    layers: &HashMap<String, String>,
    window: (f64, f64),
    cpu: Option<CpuUsage>,
) -> Observed {
    let mut observed = Observed::new(image.layers.len(), window);
    observed.cpu = cpu;
    observed.applies_in_order = true;
    for line in lines {
        // containers/image writes the manifest once every layer is committed.
        if line.text.contains("Writing manifest to image destination") {
            observed.all_applied_at.get_or_insert(line.at_s);
            continue;
        }
        let Some(path) = line.text.split("Applying tar in ").nth(1) else {
            continue;
        };
        let id = path
            .trim_end_matches(['"', ' '])
            .trim_end_matches("/diff")
            .rsplit('/')
            .next()
            .unwrap_or("");
        let Some(i) = layers
            .get(id)
            .and_then(|digest| image.layers.iter().position(|l| l == digest))
        else {
            continue;
        };
        if observed.extract_started[i].is_none() {
            observed.extract_started[i] = Some(line.at_s);
            observed.event(i, "applying tar", line.at_s);
        }
    }
    observed.unobserved = unobserved(&[
        ("verify_s", "podman hashes each blob while downloading it"),
        ("decompress_s", "podman decompresses while applying a layer"),
        (
            "stall_s",
            "podman applies a layer only after its download completed",
        ),
    ]);
    observed
}
