//! Applying OCI layers (tar streams) to a root filesystem: whiteouts, opaque
//! directories, hard and symbolic links, modes, mtimes and ownership, without ever
//! writing outside the root.

mod apply;
mod error;
mod header;
mod meter;
pub mod path;
mod tree;
mod whiteout;

pub use apply::{ApplyOptions, LayerStats, apply_layer, apply_layer_limited};
pub use error::LayerError;
