//! Limits against hostile registries and images: how big a manifest or config may
//! be, how many layers an image may have, how far a layer may decompress (in size
//! and in ratio), and how many entries, how long and how deep paths a layer may
//! carry. Each exceeded limit is a [`LimitError`] naming the limit, what was seen
//! and the `pulltime pull` flag that raises it. docs/limits.md explains each default.

use std::fmt;
use std::io;
use std::str::FromStr;

/// Limits applied to one pull. [`Limits::default`] is [`Limits::DEFAULT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest manifest, index or image config body, in bytes (`--max-manifest-size`).
    pub max_manifest_bytes: u64,
    /// Most layers an image may have (`--max-layers`).
    pub max_layers: usize,
    /// Largest decompressed layer (tar stream), in bytes; also bounds the file
    /// content one layer may write, which sparse entries could inflate
    /// (`--max-layer-size`).
    pub max_layer_bytes: u64,
    /// Largest decompressed:compressed ratio of a layer (`--max-ratio`), checked
    /// once [`Limits::ratio_floor_bytes`] have been decompressed.
    pub max_ratio: u64,
    /// Decompressed bytes below which the ratio is not checked, so small or
    /// zero-heavy layers of normal size are never refused for their ratio.
    pub ratio_floor_bytes: u64,
    /// Longest entry name (and link target) in bytes (`--max-path-length`).
    pub max_path_bytes: usize,
    /// Most components in an entry name (`--max-path-depth`).
    pub max_path_depth: usize,
    /// Most tar entries in one layer, all types (`--max-entries`).
    pub max_entries: u64,
}

impl Limits {
    /// The defaults; see docs/limits.md for why each value.
    pub const DEFAULT: Limits = Limits {
        // containerd's limit for manifests and configs (`MaxManifestSize`, 4 MB).
        max_manifest_bytes: 4 << 20,
        // moby's layer store refuses chains deeper than 125 (`maxLayerDepth`, for
        // graph drivers that stop at 127); real images stay far below.
        max_layers: 128,
        // Above the largest layers of common large images (CUDA, ML frameworks).
        max_layer_bytes: 16 << 30,
        // gzip of pure zeros reaches ~1030:1, zstd far more; real layers rarely
        // pass 20:1 overall.
        max_ratio: 1000,
        // A layer must decompress this much before the ratio is judged.
        ratio_floor_bytes: 256 << 20,
        // Linux PATH_MAX.
        max_path_bytes: 4096,
        // Deep enough for any real tree (node_modules included); bounds recursion.
        max_path_depth: 256,
        // Large enough for the biggest real layers; bounds memory per layer.
        max_entries: 1_000_000,
    };

    /// Bytes the headers of one entry may take (its ustar header, GNU long name and
    /// link records, pax records, sparse maps): 1 MiB plus twice the longest path,
    /// since the tar reader holds them in memory.
    pub fn max_entry_header_bytes(&self) -> u64 {
        (1 << 20) + 2 * self.max_path_bytes as u64
    }

    /// Fails when an image has more layers than allowed.
    pub fn check_layer_count(&self, layers: usize) -> Result<(), LimitError> {
        if layers > self.max_layers {
            return Err(LimitError::Layers {
                layers,
                limit: self.max_layers,
            });
        }
        Ok(())
    }

    /// Fails when an entry name (raw bytes, `components` after cleaning) is too
    /// long or too deep.
    pub fn check_entry_path(
        &self,
        entry: &str,
        raw: &[u8],
        components: usize,
    ) -> Result<(), LimitError> {
        if raw.len() > self.max_path_bytes {
            return Err(LimitError::PathLength {
                entry: abbreviate(entry),
                what: "name",
                len: raw.len(),
                limit: self.max_path_bytes,
            });
        }
        if components > self.max_path_depth {
            return Err(LimitError::PathDepth {
                entry: abbreviate(entry),
                depth: components,
                limit: self.max_path_depth,
            });
        }
        Ok(())
    }

    /// Fails when a link target is longer than an entry name may be.
    pub fn check_link_target(&self, entry: &str, target: &[u8]) -> Result<(), LimitError> {
        if target.len() > self.max_path_bytes {
            return Err(LimitError::PathLength {
                entry: abbreviate(entry),
                what: "link target",
                len: target.len(),
                limit: self.max_path_bytes,
            });
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A limit was exceeded. Messages name the limit, the value seen and the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A manifest, index or config body is too large.
    #[error("{what} is larger than {} (--max-manifest-size)", ByteSize(*limit))]
    ManifestSize {
        /// Which document.
        what: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The image has too many layers.
    #[error("the image has {layers} layers, more than {limit} (--max-layers)")]
    Layers {
        /// Layers in the manifest.
        layers: usize,
        /// The limit.
        limit: usize,
    },
    /// A layer decompresses to more than allowed.
    #[error("decompresses to more than {} (--max-layer-size)", ByteSize(*limit))]
    LayerSize {
        /// The limit in bytes.
        limit: u64,
    },
    /// Entries of a layer write more file content than allowed (sparse files).
    #[error(
        "entry {entry:?} would bring the file content written by this layer to {total} bytes, more than {} (--max-layer-size)",
        ByteSize(*limit)
    )]
    FileBytes {
        /// The entry that crossed the limit.
        entry: String,
        /// Bytes the layer would have written with it.
        total: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A layer expands more than the allowed ratio (a decompression bomb).
    #[error(
        "expands more than {limit}:1 ({compressed} compressed bytes gave {decompressed} bytes) (--max-ratio)"
    )]
    Ratio {
        /// Compressed bytes consumed so far.
        compressed: u64,
        /// Decompressed bytes produced so far.
        decompressed: u64,
        /// The limit.
        limit: u64,
    },
    /// A name or link target is too long.
    #[error("entry {entry:?}: {what} is {len} bytes long, more than {limit} (--max-path-length)")]
    PathLength {
        /// The entry (abbreviated).
        entry: String,
        /// `name` or `link target`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A name has too many components.
    #[error("entry {entry:?} is {depth} directories deep, more than {limit} (--max-path-depth)")]
    PathDepth {
        /// The entry (abbreviated).
        entry: String,
        /// Its depth.
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// One entry's headers (GNU long names, pax records, sparse maps) are too large.
    #[error(
        "has an entry whose headers (GNU long names, pax records) take more than {} (raised with --max-path-length)",
        ByteSize(*limit)
    )]
    EntryHeaders {
        /// The limit in bytes.
        limit: u64,
    },
    /// A layer has too many entries.
    #[error("has more than {limit} entries (--max-entries)")]
    Entries {
        /// The limit.
        limit: u64,
    },
}

impl LimitError {
    /// The `LimitError` inside an I/O error (as the bounded reader reports it),
    /// looking through wrapped sources.
    pub fn find_in(e: &io::Error) -> Option<&LimitError> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|e| e as _);
        while let Some(err) = cur {
            if let Some(l) = err.downcast_ref::<LimitError>() {
                return Some(l);
            }
            if let Some(io) = err.downcast_ref::<io::Error>() {
                cur = io.get_ref().map(|e| e as _);
            } else {
                cur = err.source();
            }
        }
        None
    }
}

/// Names in messages are cut to this many bytes (they can be megabytes long).
const SHOWN_NAME: usize = 200;

fn abbreviate(name: &str) -> String {
    if name.len() <= SHOWN_NAME {
        return name.to_string();
    }
    let mut end = SHOWN_NAME;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &name[..end], name.len())
}

/// A byte count that parses and prints with binary units: `4MiB`, `10GiB`, `512`.
/// Decimal units (`kB`, `MB`, `GB`, `TB`) parse too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut unit = 0;
        let mut v = self.0;
        while unit < UNITS.len() - 1 && v >= 1024 && v.is_multiple_of(1024) {
            v /= 1024;
            unit += 1;
        }
        if unit > 0 || self.0 < 1024 {
            return write!(f, "{v}{}", UNITS[unit]);
        }
        // Not a whole number of KiB: show the nearest unit with a decimal.
        let mut x = self.0 as f64;
        let mut unit = 0;
        while unit < UNITS.len() - 1 && x >= 1024.0 {
            x /= 1024.0;
            unit += 1;
        }
        write!(f, "{x:.1}{} ({} bytes)", UNITS[unit], self.0)
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let bad = || format!("{s:?} is not a size: use bytes or a unit, e.g. 4MiB, 10GiB, 500MB");
        let value: f64 = num.parse().map_err(|_| bad())?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "K" | "k" => 1 << 10,
            "MiB" | "M" => 1 << 20,
            "GiB" | "G" => 1 << 30,
            "TiB" | "T" => 1 << 40,
            "kB" | "KB" => 1000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            _ => return Err(bad()),
        };
        let bytes = value * mult as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
            return Err(bad());
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        for (s, n) in [
            ("512", 512),
            ("4MiB", 4 << 20),
            ("10GiB", 10 << 30),
            ("1.5KiB", 1536),
            ("500MB", 500_000_000),
            ("2G", 2 << 30),
        ] {
            assert_eq!(s.parse::<ByteSize>(), Ok(ByteSize(n)), "{s}");
        }
        for bad in ["", "MiB", "4 parsecs", "-1", "1e400"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
        assert_eq!(ByteSize(4 << 20).to_string(), "4MiB");
        assert_eq!(ByteSize(16 << 30).to_string(), "16GiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
        assert_eq!(ByteSize(1500).to_string(), "1.5KiB (1500 bytes)");
        for n in [0, 1, 4 << 20, 16 << 30, 3 << 40] {
            let b = ByteSize(n);
            assert_eq!(b.to_string().parse::<ByteSize>(), Ok(b));
        }
    }

    #[test]
    fn messages_name_the_flag_and_the_value() {
        let e = Limits::DEFAULT.check_layer_count(129).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the image has 129 layers, more than 128 (--max-layers)"
        );
        let long = "a/".repeat(3000);
        let e = Limits::DEFAULT
            .check_entry_path(&long, long.as_bytes(), 3000)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("6000 bytes long, more than 4096 (--max-path-length)")
        );
        assert!(e.to_string().len() < 400);
        let e = LimitError::LayerSize { limit: 10 << 30 };
        assert_eq!(
            e.to_string(),
            "decompresses to more than 10GiB (--max-layer-size)"
        );
    }
}
