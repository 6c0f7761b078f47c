//! Applying OCI layers (tar streams) to a root filesystem: whiteouts, opaque
//! directories, hard and symbolic links, modes, mtimes and ownership, without ever
//! writing outside the root.

mod apply;
mod aside;
mod concurrent;
mod dirs;
mod error;
mod header;
pub mod index;
mod meter;
mod options;
mod order;
pub mod path;
mod tree;
mod whiteout;
mod xattrs;

pub use apply::{apply_layer, apply_layer_limited};
pub use concurrent::{Ordered, apply_layer_ordered, apply_layers};
pub use error::LayerError;
pub use index::LayerIndex;
pub use options::{ApplyOptions, LayerStats};
pub use order::{ApplyOrder, Gate};
