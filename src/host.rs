//! Host profiles (`profiles/hosts/*.toml`): how fast this machine hashes,
//! decompresses and extracts, written by `pulltime calibrate` and read by the
//! simulator.

use serde::{Deserialize, Serialize};

use crate::registry::Compression;

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
        if [p.extract_per_file_s, p.extract_per_dir_s]
            .iter()
            .any(|c| !c.is_finite() || *c < 0.0)
        {
            return Err(err("per-entry costs must be non-negative".into()));
        }
        Ok(p)
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
