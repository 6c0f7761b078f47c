//! Profiles: the TOML files under `profiles/` (built into the binary) or on disk
//! that describe a network, a host, an image layout or a fault schedule, and the
//! one lookup that finds them by name or path.

pub mod faults;
pub mod host;
pub mod image;
pub mod network;
pub mod source;

pub use source::ProfileError;
