//! Applying OCI layers (tar streams) to a root filesystem: whiteouts, opaque
//! directories, hard and symbolic links, modes, mtimes and ownership, without ever
//! writing outside the root.

mod apply;
pub mod path;
mod whiteout;

pub use apply::{ApplyOptions, LayerError, LayerStats, apply_layer};
