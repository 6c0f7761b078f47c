//! Host profiles (`profiles/hosts/*.toml`): how fast this machine hashes,
//! decompresses and extracts, written by `pulltime calibrate` and read by the
//! simulator.

use serde::{Deserialize, Serialize};

use crate::oci::media_type::Compression;

/// What a machine can do per second, and what a file or directory costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostProfile {
    /// Short name.
    pub name: String,
    /// What machine and filesystem it describes, and how it was measured.
    #[serde(default)]
    pub description: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// Filesystem the extraction costs were measured on.
    #[serde(default)]
    pub filesystem: String,
    /// sha256 bytes per second.
    pub sha256_bps: f64,
    /// gzip decompression, bytes of output per second.
    pub gzip_bps: f64,
    /// zstd decompression, bytes of output per second.
    pub zstd_bps: f64,
    /// Extraction: bytes of file content written per second.
    pub extract_bps: f64,
    /// Extraction: seconds per regular file, beyond its bytes.
    pub extract_per_file_s: f64,
    /// Extraction: seconds per directory.
    pub extract_per_dir_s: f64,
    /// What a pull costs on this host besides its CPU stages (absent in profiles
    /// written before they were measured: then they cost nothing).
    #[serde(default)]
    pub pull: PullOverheads,
    /// Other pullers' own unpacking costs, fitted to their pulls by `calibrate
    /// --from-records --puller NAME` (`docker`, `containerd`); the docker and
    /// containerd policies use them instead of pulltime's costs above when present.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub pullers: std::collections::BTreeMap<String, PullerCosts>,
}

/// How another puller unpacks a layer on this host: decompression and extraction
/// together (they cannot be told apart from outside), and, for containerd, making
/// each layer's snapshot (the native snapshotter copies the tree below).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullerCosts {
    /// Seconds per byte of tar stream, decompression included.
    pub unpack_per_byte_s: f64,
    /// Seconds per byte of blob (inflating costs per compressed byte as well).
    #[serde(default)]
    pub unpack_per_compressed_byte_s: f64,
    /// Seconds per regular file.
    #[serde(default)]
    pub unpack_per_file_s: f64,
    /// Seconds per directory.
    #[serde(default)]
    pub unpack_per_dir_s: f64,
    /// Seconds per layer, whatever its size.
    #[serde(default)]
    pub unpack_per_layer_s: f64,
    /// Seconds per layer above the first to make its snapshot, whatever the tree
    /// below (containerd: from the commit of the layer below to the prepare).
    #[serde(default)]
    pub snapshot_per_layer_s: f64,
    /// Seconds per entry of the layers below, copied before a layer is applied
    /// (containerd's native snapshotter; 0 for overlay filesystems).
    #[serde(default)]
    pub snapshot_copy_per_entry_s: f64,
    /// Seconds per byte of the layers below, copied likewise.
    #[serde(default)]
    pub snapshot_copy_per_byte_s: f64,
    /// Bytes per second the puller's downloads reach together from a registry on
    /// this host with no shaping (0: the profile's `pull.loopback_bps`).
    #[serde(default)]
    pub loopback_bps: f64,
    /// Seconds from the command's start to its first request (a command's own
    /// start-up: podman's, skopeo's; 0 for a daemon's API call).
    #[serde(default)]
    pub startup_s: f64,
    /// Seconds from the last layer applied to the pull's end (writing the image's
    /// manifest, config and metadata; umoci's runtime config).
    #[serde(default)]
    pub finish_s: f64,
    /// Where these costs come from.
    #[serde(default)]
    pub fitted_from: String,
}

/// Fixed and per-byte costs of a pull that are not hashing, decompression or
/// extraction; `pulltime calibrate` measures them against its embedded registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullOverheads {
    /// pulltime's own set-up before its first request (client and TLS roots,
    /// scratch space), seconds. Daemons (docker, containerd) have it done already.
    #[serde(default)]
    pub startup_s: f64,
    /// Client and registry processing per request beyond the network's round trip
    /// (HTTP on both ends, opening the blob), seconds.
    #[serde(default)]
    pub request_s: f64,
    /// A registry on this host serving over loopback: bytes per second through one
    /// connection, the ceiling of a profile with no bandwidth (0: unlimited).
    #[serde(default)]
    pub loopback_bps: f64,
    /// CPU seconds per byte served by a registry on this host (`pulltime serve`)
    /// and moved over loopback, both ends together: when the registry runs here
    /// (the lab), it shares the cores with the pull's own stages.
    #[serde(default)]
    pub serve_cpu_s_per_byte: f64,
    /// Streaming spools every blob and every decoded tar stream through a scratch
    /// file: bytes per second written to one (0: free).
    #[serde(default)]
    pub spool_write_bps: f64,
    /// ...and read back from it.
    #[serde(default)]
    pub spool_read_bps: f64,
    /// CPU a streaming pull spends per second of its stages' CPU as measured
    /// alone (hashing, decompression, extraction, spools): what running the
    /// stages as concurrent threads adds (hand-offs, wake-ups, stages evicting
    /// each other's caches). 1: nothing. `calibrate` takes it from the process CPU
    /// of real pulls, less the loopback transfer's (`serve_cpu_s_per_byte`, which
    /// holds the client's socket reads too).
    #[serde(default = "one")]
    pub stream_cpu_factor: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for PullOverheads {
    fn default() -> Self {
        PullOverheads {
            startup_s: 0.0,
            request_s: 0.0,
            loopback_bps: 0.0,
            serve_cpu_s_per_byte: 0.0,
            spool_write_bps: 0.0,
            spool_read_bps: 0.0,
            stream_cpu_factor: 1.0,
        }
    }
}

impl PullOverheads {
    /// Seconds to write `bytes` to a spool.
    pub fn spool_write_s(&self, bytes: u64) -> f64 {
        per_rate(bytes, self.spool_write_bps)
    }

    /// Seconds to read `bytes` back from a spool.
    pub fn spool_read_s(&self, bytes: u64) -> f64 {
        per_rate(bytes, self.spool_read_bps)
    }
}

fn per_rate(bytes: u64, bps: f64) -> f64 {
    if bps > 0.0 { bytes as f64 / bps } else { 0.0 }
}

/// A host profile could not be read.
#[derive(Debug, thiserror::Error)]
#[error("host profile {path}: {reason}")]
pub struct HostProfileError {
    /// File.
    pub path: String,
    /// Why.
    pub reason: String,
}

impl HostProfile {
    /// The built-in profile: the 2-core ext4 machine pulltime is developed on
    /// (profiles/hosts/xeon-2core-ext4.toml), used when no `--host` is given.
    pub fn builtin() -> HostProfile {
        toml::from_str(include_str!("../../profiles/hosts/xeon-2core-ext4.toml"))
            .expect("the built-in host profile parses (a unit test checks it)")
    }

    /// Reads a TOML file.
    pub fn load(path: &std::path::Path) -> Result<Self, HostProfileError> {
        let err = |reason: String| HostProfileError {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(format!(
                "{e} (write one with `pulltime calibrate --out FILE`)"
            ))
        })?;
        let p: HostProfile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let rates = [p.sha256_bps, p.gzip_bps, p.zstd_bps, p.extract_bps];
        if rates.iter().any(|r| !r.is_finite() || *r <= 0.0) {
            return Err(err("rates must be positive".into()));
        }
        if [
            p.extract_per_file_s,
            p.extract_per_dir_s,
            p.pull.startup_s,
            p.pull.request_s,
            p.pull.loopback_bps,
            p.pull.serve_cpu_s_per_byte,
            p.pull.spool_write_bps,
            p.pull.spool_read_bps,
        ]
        .iter()
        .any(|c| !c.is_finite() || *c < 0.0)
        {
            return Err(err("costs must be non-negative".into()));
        }
        for (name, c) in &p.pullers {
            let costs = [
                c.unpack_per_byte_s,
                c.unpack_per_compressed_byte_s,
                c.loopback_bps,
                c.startup_s,
                c.finish_s,
                c.unpack_per_file_s,
                c.unpack_per_dir_s,
                c.unpack_per_layer_s,
                c.snapshot_per_layer_s,
                c.snapshot_copy_per_entry_s,
                c.snapshot_copy_per_byte_s,
            ];
            if costs.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(err(format!("pullers.{name}: costs must be non-negative")));
            }
        }
        let factor = p.pull.stream_cpu_factor;
        if !(factor.is_finite() && factor > 0.0) {
            return Err(err("pull.stream_cpu_factor must be positive".into()));
        }
        Ok(p)
    }

    /// The same host with a CPU `factor` times as fast: hashing, decompression,
    /// extraction and the pull's own overheads scale; network round trips do not.
    pub fn with_cpu_speed(&self, factor: f64) -> HostProfile {
        let mut h = self.clone();
        h.sha256_bps *= factor;
        h.gzip_bps *= factor;
        h.zstd_bps *= factor;
        h.extract_bps *= factor;
        h.extract_per_file_s /= factor;
        h.extract_per_dir_s /= factor;
        h.pull.startup_s /= factor;
        h.pull.request_s /= factor;
        h.pull.loopback_bps *= factor;
        h.pull.serve_cpu_s_per_byte /= factor;
        h.pull.spool_write_bps *= factor;
        h.pull.spool_read_bps *= factor;
        for c in h.pullers.values_mut() {
            c.unpack_per_byte_s /= factor;
            c.unpack_per_compressed_byte_s /= factor;
            c.loopback_bps *= factor;
            c.startup_s /= factor;
            c.finish_s /= factor;
            c.unpack_per_file_s /= factor;
            c.unpack_per_dir_s /= factor;
            c.unpack_per_layer_s /= factor;
            c.snapshot_per_layer_s /= factor;
            c.snapshot_copy_per_entry_s /= factor;
            c.snapshot_copy_per_byte_s /= factor;
        }
        h
    }

    /// One line a person reads: the rates and costs (the pull's only if measured).
    pub fn summary(&self) -> String {
        let fs = if self.filesystem.is_empty() {
            "?"
        } else {
            &self.filesystem
        };
        let mut line = format!(
            "sha256 {:.0} MB/s, gzip {:.0} MB/s, zstd {:.0} MB/s (output), extraction {:.0} MB/s + {:.0} us/file + {:.0} us/dir on {fs}",
            self.sha256_bps / 1e6,
            self.gzip_bps / 1e6,
            self.zstd_bps / 1e6,
            self.extract_bps / 1e6,
            self.extract_per_file_s * 1e6,
            self.extract_per_dir_s * 1e6,
        );
        let o = &self.pull;
        if *o != PullOverheads::default() {
            line.push_str(&format!(
                "; pull start-up {:.1} ms, {:.2} ms per request, loopback {:.0} MB/s, serving on this host {:.2} ns of CPU per byte, spool write {:.0} MB/s, read {:.0} MB/s, streaming CPU x{:.2} its stages alone",
                o.startup_s * 1e3,
                o.request_s * 1e3,
                o.loopback_bps / 1e6,
                o.serve_cpu_s_per_byte * 1e9,
                o.spool_write_bps / 1e6,
                o.spool_read_bps / 1e6,
                o.stream_cpu_factor
            ));
        }
        line
    }

    /// TOML text of the profile.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("host profiles serialise")
    }

    /// Decompression rate for a compression (uncompressed layers cost nothing).
    pub fn decompress_bps(&self, c: Compression) -> Option<f64> {
        match c {
            Compression::Gzip => Some(self.gzip_bps),
            Compression::Zstd => Some(self.zstd_bps),
            Compression::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_profile_parses_and_describes_this_project_s_machine() {
        let h = HostProfile::builtin();
        assert_eq!(h.name, "xeon-2core-ext4");
        assert_eq!(h.cpus, 2);
        assert!(h.sha256_bps > 0.0 && h.gzip_bps > 0.0 && h.extract_per_file_s > 0.0);
    }

    #[test]
    fn every_shipped_profile_loads_with_every_other_puller_s_costs() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/hosts"));
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let h = HostProfile::load(&path).unwrap();
            for puller in ["docker", "containerd", "podman", "skopeo-umoci"] {
                let c = h
                    .pullers
                    .get(puller)
                    .unwrap_or_else(|| panic!("{path:?}: {puller}"));
                assert!(
                    c.unpack_per_byte_s + c.unpack_per_compressed_byte_s > 0.0,
                    "{path:?}: {puller}"
                );
                assert!(!c.fitted_from.is_empty(), "{path:?}: {puller}");
            }
            seen += 1;
        }
        assert!(seen >= 2, "{dir:?}");
    }
}
