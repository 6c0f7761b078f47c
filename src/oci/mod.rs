//! The OCI vocabulary every other module speaks: image references, digests, media
//! types, platforms, image layouts and in-memory images, and the pull record that
//! measurement and simulation both produce.
//!
//! This module is the crate's leaf: it imports nothing else from the crate (a test,
//! `tests/architecture.rs`, fails if it does), so anything may depend on it.

pub mod digest;
pub mod image;
pub mod layout;
pub mod media_type;
pub mod platform;
pub mod rate_limit;
pub mod record;
pub mod reference;
pub mod stats;
