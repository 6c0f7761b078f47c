//! Talking to OCI distribution registries: instrumented transport, auth, manifest
//! resolution, and pushing (used by tests and image synthesis).

pub mod auth;
pub mod client;
pub mod connecting;
pub mod credentials;
pub mod error;
pub mod manifest;
pub mod options;
pub mod proxy;
pub mod push;
pub mod retry;
pub mod tls;
pub mod transport;

pub use client::{BlobResponse, FetchedManifest, RegistryClient};
pub use error::RegistryError;
pub use manifest::{LayerDescriptor, ResolvedImage, resolve, resolve_limited};
pub use options::{ClientOptions, Scheme, SchemeChoice};
