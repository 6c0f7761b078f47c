//! containerd, through `ctr`: `ctr images pull` fetches every blob and then unpacks
//! layer by layer; `ctr events` shows each unpack as a `/snapshot/prepare` (its key
//! ends with the layer's chain ID) and a `/snapshot/commit` (named by the chain ID).
//! Downloads are seen by the recording proxy (containerd publishes no content
//! events during a pull).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::oci::record::{CpuUsage, PullerInfo, Unobserved};
use crate::registry::transport::RunClock;

use super::command::{self, Background, Line};
use super::cpu::{self, TreeSample, sample_tree, socket_owner, tree_usage};
use super::{Observed, PeerError, ProxiedImage};

/// A containerd reached with `ctr`.
pub struct Containerd {
    address: PathBuf,
    namespace: String,
    snapshotter: String,
    pid: Option<u32>,
    /// `ctr events` for the namespace, subscribed for the whole session so that no
    /// run pays for (or misses events during) the subscription.
    events: Background,
}

impl Containerd {
    /// Checks that `ctr` can talk to the daemon at `address`.
    pub fn connect(
        address: &Path,
        namespace: &str,
        snapshotter: &str,
    ) -> Result<Containerd, PeerError> {
        if !address.exists() {
            return Err(PeerError::Unreachable {
                daemon: "containerd",
                address: address.display().to_string(),
                reason: "no such socket; start containerd or pass --containerd-address".into(),
            });
        }
        let mut events = Command::new("ctr");
        events
            .arg("--address")
            .arg(address)
            .arg("events")
            .arg(format!("namespace=={namespace}"));
        let events = Background::start(&mut events, &RunClock::start())?;
        // Let the subscription settle: a missed prepare would lose a layer's window.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(Containerd {
            address: address.to_path_buf(),
            namespace: namespace.into(),
            snapshotter: snapshotter.into(),
            pid: socket_owner(address),
            events,
        })
    }

    fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(&self.address)
            .arg("--namespace")
            .arg(&self.namespace);
        c
    }

    /// The daemon's version, the snapshotter and the namespace.
    pub fn info(&self) -> Result<PullerInfo, PeerError> {
        let out = command::output(self.ctr().arg("version"), "ctr version")?;
        // "Server:\n  Version:  1.6.20~ds1\n ..."
        let version = out
            .split("Server:")
            .nth(1)
            .and_then(|s| s.lines().find_map(|l| l.trim().strip_prefix("Version:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_default();
        let unpigz = super::docker::which("unpigz").is_some();
        let settings = [
            ("snapshotter", self.snapshotter.clone()),
            ("namespace", self.namespace.clone()),
            ("address", self.address.display().to_string()),
            ("client", "ctr images pull".into()),
            ("max_concurrent_downloads", "unlimited (ctr default)".into()),
            (
                "decompressor",
                if unpigz {
                    "unpigz"
                } else {
                    "go gzip (no unpigz installed)"
                }
                .into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(PullerInfo {
            name: "containerd".into(),
            version,
            settings,
        })
    }

    /// Digests of content the daemon holds, and snapshot keys of the snapshotter.
    pub fn holdings(&self) -> Result<Vec<String>, PeerError> {
        let content = command::output(self.ctr().args(["content", "ls", "-q"]), "ctr content ls")?;
        let snapshots = command::output(
            self.ctr()
                .args(["snapshots", "--snapshotter", &self.snapshotter, "ls"]),
            "ctr snapshots ls",
        )?;
        Ok(content
            .lines()
            .chain(snapshots.lines().skip(1))
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect())
    }

    fn cpu_sample(&self) -> Option<TreeSample> {
        self.pid.map(sample_tree)
    }

    /// Pulls `image` through the proxy, watching the snapshot events.
    pub fn pull(&self, image: &ProxiedImage, clock: &RunClock) -> Result<Observed, PeerError> {
        let before = self.cpu_sample();
        let finished = command::run(
            self.ctr().args([
                "images",
                "pull",
                "--plain-http",
                "--snapshotter",
                &self.snapshotter,
                &image.proxied_reference(),
            ]),
            clock,
        )?;
        let after = self.cpu_sample();
        // The last commit may still be in the pipe (it was published before ctr
        // exited; only its delivery to us can lag).
        std::thread::sleep(std::time::Duration::from_millis(100));
        let lines = self.events.lines_since(clock);
        let finished = finished.check("ctr images pull")?;
        let mut cpu_used = finished.cpu.clone();
        if let (Some(b), Some(a)) = (before, after) {
            cpu::add(&mut cpu_used, &tree_usage(&b, &a));
        }
        Ok(observe(image, &lines, finished.window, Some(cpu_used)))
    }

    /// Removes the image and lets the garbage collector take its content and
    /// snapshots at once (`ctr images rm --sync`).
    pub fn remove(&self, image: &ProxiedImage) -> Result<(), PeerError> {
        command::output(
            self.ctr()
                .args(["images", "rm", "--sync", &image.proxied_reference()]),
            "ctr images rm",
        )?;
        Ok(())
    }
}

/// Per layer, the unpack window: from the `/snapshot/prepare` whose key ends with
/// its chain ID to the `/snapshot/commit` named by it.
pub fn observe(
    image: &ProxiedImage,
    lines: &[Line],
    window: (f64, f64),
    cpu: Option<CpuUsage>,
) -> Observed {
    let n = image.layers.len();
    let mut observed = Observed::new(n, window);
    observed.cpu = cpu;
    for (i, chain) in image.chain_ids.iter().enumerate() {
        let prepare = lines.iter().find(|l| {
            l.text.contains("/snapshot/prepare") && l.text.contains(&format!(" {chain}\""))
        });
        let commit = lines.iter().find(|l| {
            l.text.contains("/snapshot/commit") && l.text.contains(&format!("\"name\":\"{chain}\""))
        });
        if let (Some(p), Some(c)) = (prepare, commit) {
            observed.extract[i] = Some((p.at_s, c.at_s));
            observed.events.push((i, "snapshot prepare".into(), p.at_s));
            observed.events.push((i, "snapshot commit".into(), c.at_s));
        }
    }
    observed.unobserved = vec![
        Unobserved {
            phase: "verify_s".into(),
            reason: "containerd hashes content while writing it; its time is inside download_s".into(),
        },
        Unobserved {
            phase: "decompress_s".into(),
            reason: "containerd's diff applier decompresses while applying; its time is inside extract_s".into(),
        },
        Unobserved {
            phase: "stall_s".into(),
            reason: "ctr pull unpacks only after every download completed".into(),
        },
    ];
    observed
}
