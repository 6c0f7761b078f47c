//! Flags for the limits against hostile registries and images (docs/limits.md).

use clap::builder::TypedValueParser as _;
use pulltime::limits::{ByteSize, Limits};

/// Limits against hostile registries and images, flattened into commands that pull.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Largest manifest, index or image config accepted (bytes, or units: 4MiB, 500kB).
    #[arg(long, value_name = "SIZE", default_value_t = ByteSize(Limits::DEFAULT.max_manifest_bytes))]
    pub max_manifest_size: ByteSize,
    /// Most layers an image may have.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_layers,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub max_layers: usize,
    /// Largest decompressed size of one layer, and most file content it may write (bytes, or units: 16GiB).
    #[arg(long, value_name = "SIZE", default_value_t = ByteSize(Limits::DEFAULT.max_layer_bytes))]
    pub max_layer_size: ByteSize,
    /// Largest decompressed:compressed ratio of a layer, judged once 256MiB are decompressed.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_ratio,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_ratio: u64,
    /// Longest entry name or link target in a layer, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT.max_path_bytes,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub max_path_length: usize,
    /// Most path components in an entry name.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_path_depth,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub max_path_depth: usize,
    /// Most tar entries in one layer.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_entries,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_entries: u64,
}

impl LimitArgs {
    /// The limits these flags describe.
    pub fn limits(&self) -> Limits {
        Limits {
            max_manifest_bytes: self.max_manifest_size.0,
            max_layers: self.max_layers,
            max_layer_bytes: self.max_layer_size.0,
            max_ratio: self.max_ratio,
            max_path_bytes: self.max_path_length,
            max_path_depth: self.max_path_depth,
            max_entries: self.max_entries,
            ..Limits::DEFAULT
        }
    }
}
