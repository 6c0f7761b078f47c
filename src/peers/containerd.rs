//! containerd, through `ctr`: `ctr images pull` fetches every blob and then unpacks
//! layer by layer; `ctr events` shows each unpack as a `/snapshot/prepare` (its key
//! ends with the layer's chain ID) and a `/snapshot/commit` (named by the chain ID).
//! Downloads are seen by the recording proxy (containerd publishes no content
//! events during a pull).
//!
//! Every run pulls into a namespace of its own (`NS-1`, `NS-2`, ...), so that no
//! run finds another's snapshots (containerd skips layers whose snapshot exists,
//! containerd#8973). Between runs only the layer blobs are removed (a few files;
//! content is shared between namespaces, so a blob left anywhere would not be
//! downloaded again); the snapshots, thousands of files, are removed with the
//! namespaces at the end, so that no run pays for the one before's deletions (on
//! ext4, file creation is slow for minutes after many deletions; docs/performance.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::oci::record::{CpuUsage, PullerInfo};
use crate::registry::transport::RunClock;

use super::command::{self, Background, Line};
use super::cpu::{self, TreeSample, sample_tree, socket_owner, tree_usage};
use super::{Observed, PeerError, ProxiedImage, decompressor, settings, unobserved};

/// A containerd reached with `ctr`.
pub struct Containerd {
    address: PathBuf,
    /// The prefix of the runs' namespaces.
    namespace: String,
    /// Namespaces used so far (the last one holds the last run's image).
    used: Vec<String>,
    snapshotter: String,
    pid: Option<u32>,
    /// `ctr events`, subscribed for the whole session so that no run pays for (or
    /// misses events during) the subscription.
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
        // Only the runs' namespaces (NS-1, NS-2, ...): a busy node publishes more.
        events
            .arg("--address")
            .arg(address)
            .arg("events")
            .arg(format!(
                "namespace~=\"^{}-[0-9]+$\"",
                regex_escape(namespace)
            ));
        let mut events = Background::start(&mut events, &RunClock::start())?;
        // Let the subscription settle: a missed prepare would lose a layer's window.
        std::thread::sleep(std::time::Duration::from_millis(300));
        if let Some(status) = events.exited() {
            return Err(PeerError::Command {
                what: "ctr events".into(),
                status: status.to_string(),
                output: events
                    .stop()
                    .into_iter()
                    .map(|l| l.text)
                    .collect::<Vec<_>>()
                    .join("\n"),
            });
        }
        Ok(Containerd {
            address: address.to_path_buf(),
            namespace: namespace.into(),
            used: Vec::new(),
            snapshotter: snapshotter.into(),
            pid: socket_owner(address),
            events,
        })
    }

    fn ctr(&self, namespace: &str) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(&self.address)
            .arg("--namespace")
            .arg(namespace);
        c
    }

    /// The namespace of the run in progress, or of the last one.
    fn current(&self) -> Option<&str> {
        self.used.last().map(String::as_str)
    }

    /// The daemon's version, the snapshotter and the namespace.
    pub fn info(&self) -> Result<PullerInfo, PeerError> {
        let out = command::output(self.ctr(&self.namespace).arg("version"), "ctr version")?;
        // "Server:\n  Version:  1.6.20~ds1\n ..."
        let version = out
            .split("Server:")
            .nth(1)
            .and_then(|s| s.lines().find_map(|l| l.trim().strip_prefix("Version:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_default();
        let settings = settings([
            ("snapshotter", self.snapshotter.clone()),
            ("namespace", format!("{}-N (one per run)", self.namespace)),
            ("address", self.address.display().to_string()),
            ("client", "ctr images pull".into()),
            ("max_concurrent_downloads", "unlimited (ctr default)".into()),
            ("decompressor", decompressor()),
        ]);
        Ok(PullerInfo {
            name: "containerd".into(),
            version,
            settings,
        })
    }

    /// Digests of the content the daemon holds in any namespace (content is
    /// shared between namespaces: a blob held anywhere is not downloaded again),
    /// and the snapshot names of the namespace the next run will use.
    pub fn holdings(&self) -> Result<Vec<String>, PeerError> {
        let namespaces = command::output(
            self.ctr(&self.namespace).args(["namespaces", "ls", "-q"]),
            "ctr namespaces ls",
        )?;
        let mut held = Vec::new();
        for ns in namespaces.lines().map(str::trim).filter(|n| !n.is_empty()) {
            let content =
                command::output(self.ctr(ns).args(["content", "ls", "-q"]), "ctr content ls")?;
            held.extend(content.lines().map(|l| l.trim().to_string()));
        }
        let next = self.next_namespace();
        let snapshots = command::output(
            self.ctr(&next)
                .args(["snapshots", "--snapshotter", &self.snapshotter, "ls"]),
            "ctr snapshots ls",
        )?;
        held.extend(
            snapshots
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next())
                .map(String::from),
        );
        Ok(held)
    }

    fn next_namespace(&self) -> String {
        format!("{}-{}", self.namespace, self.used.len() + 1)
    }

    fn cpu_sample(&self) -> Option<TreeSample> {
        self.pid.map(sample_tree)
    }

    /// Pulls `image` through the proxy, watching the snapshot events.
    pub fn pull(&mut self, image: &ProxiedImage, clock: &RunClock) -> Result<Observed, PeerError> {
        let namespace = self.next_namespace();
        self.used.push(namespace.clone());
        let before = self.cpu_sample();
        let finished = command::run(
            self.ctr(&namespace).args([
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
        // The last commit was published before ctr exited; only its delivery to
        // us can lag. Wait for it (bounded; a layer without one says so).
        let tag = format!(" {namespace} /snapshot/");
        if finished.status.success()
            && let Some(top) = image.chain_ids.last()
        {
            let commit = format!("\"name\":\"{top}\"");
            self.events
                .wait_for(std::time::Duration::from_secs(2), |lines| {
                    lines
                        .iter()
                        .any(|l| l.text.contains(&tag) && l.text.contains(&commit))
                });
        }
        let lines: Vec<Line> = self
            .events
            .take_since(clock)
            .into_iter()
            .filter(|l| l.text.contains(&tag))
            .collect();
        let finished = finished.check("ctr images pull")?;
        let mut cpu_used = finished.cpu.clone();
        if let (Some(b), Some(a)) = (before, after) {
            cpu::add(&mut cpu_used, &tree_usage(&b, &a));
        }
        Ok(observe(image, &lines, finished.window, Some(cpu_used)))
    }

    /// Makes the next run cold: removes the last run's layer blobs and has the
    /// garbage collector delete their files at once (by removing a second tag of
    /// the image with `--sync`). The image, its config and its snapshots stay in
    /// their namespace until [`Containerd::finish`]; the next run, in a new
    /// namespace, finds the config in the shared content store and does not fetch
    /// it again (the record's cold check says so).
    pub fn remove(&self, image: &ProxiedImage) -> Result<(), PeerError> {
        let Some(ns) = self.current() else {
            return Ok(());
        };
        let held = command::output(self.ctr(ns).args(["content", "ls", "-q"]), "ctr content ls")?;
        let layers: Vec<&str> = held
            .lines()
            .map(str::trim)
            .filter(|d| image.layers.iter().any(|l| l == d))
            .collect();
        if !layers.is_empty() {
            command::output(
                self.ctr(ns).args(["content", "rm"]).args(&layers),
                "ctr content rm",
            )?;
        }
        // A second name for the image, removed with --sync: the synchronous
        // garbage collection deletes the layer files now. (Without the image, a
        // failed pull, there is nothing to tag: its leftovers go in `finish`.)
        let reference = image.proxied_reference();
        let images = command::output(self.ctr(ns).args(["images", "ls", "-q"]), "ctr images ls")?;
        if images.lines().any(|l| l.trim() == reference) {
            let collect = "pulltime.invalid/gc:collect";
            command::output(
                self.ctr(ns)
                    .args(["images", "tag", "--force", &reference, collect]),
                "ctr images tag",
            )?;
            command::output(
                self.ctr(ns).args(["images", "rm", "--sync", collect]),
                "ctr images rm --sync",
            )?;
        }
        Ok(())
    }

    /// Removes every run's image, content and snapshots, and the namespaces.
    /// What a failed pull can leave in a namespace without an image: content and
    /// snapshots, removed directly (children before parents, bounded passes).
    fn clear_namespace(&self, ns: &str) -> Result<(), PeerError> {
        let content =
            command::output(self.ctr(ns).args(["content", "ls", "-q"]), "ctr content ls")?;
        let digests: Vec<&str> = content
            .lines()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .collect();
        if !digests.is_empty() {
            command::output(
                self.ctr(ns).args(["content", "rm"]).args(&digests),
                "ctr content rm",
            )?;
        }
        for _ in 0..64 {
            let listed = command::output(
                self.ctr(ns)
                    .args(["snapshots", "--snapshotter", &self.snapshotter, "ls"]),
                "ctr snapshots ls",
            )?;
            let rows: Vec<(&str, &str)> = listed
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let mut cols = l.split_whitespace();
                    Some((cols.next()?, cols.next().unwrap_or("")))
                })
                .collect();
            if rows.is_empty() {
                return Ok(());
            }
            // Leaves: snapshots nobody names as parent.
            for (key, _) in rows
                .iter()
                .filter(|(k, _)| !rows.iter().any(|(_, p)| p == k))
            {
                let _ = command::output(
                    self.ctr(ns)
                        .args(["snapshots", "--snapshotter", &self.snapshotter, "rm", key]),
                    "ctr snapshots rm",
                );
            }
        }
        Ok(())
    }

    /// Tries every namespace even when one fails, and reports the first failure.
    pub fn finish(&mut self, image: &ProxiedImage) -> Result<(), PeerError> {
        let mut first = None;
        for ns in std::mem::take(&mut self.used) {
            let removed = (|| {
                let images =
                    command::output(self.ctr(&ns).args(["images", "ls", "-q"]), "ctr images ls")?;
                if images
                    .lines()
                    .any(|l| l.trim() == image.proxied_reference())
                {
                    // The synchronous garbage collection takes the content and the
                    // snapshots with it.
                    command::output(
                        self.ctr(&ns)
                            .args(["images", "rm", "--sync", &image.proxied_reference()]),
                        "ctr images rm",
                    )?;
                }
                self.clear_namespace(&ns)?;
                command::output(
                    self.ctr(&ns).args(["namespaces", "rm", &ns]),
                    "ctr namespaces rm",
                )
            })();
            if let Err(e) = removed {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// `s` with the characters a regular expression gives meaning to escaped.
fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
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
            observed.event(i, "snapshot prepare", p.at_s);
            observed.event(i, "snapshot commit", c.at_s);
        }
    }
    observed.unobserved = unobserved(&[
        (
            "verify_s",
            "containerd hashes content while writing it; its time is inside download_s",
        ),
        (
            "decompress_s",
            "containerd's diff applier decompresses while applying; its time is inside extract_s",
        ),
        (
            "stall_s",
            "ctr pull unpacks only after every download completed",
        ),
    ]);
    observed
}
