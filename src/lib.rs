//! pulltime: measure where an OCI image pull's time goes.
//!
//! - [`reference`]: image references, normalised as docker does.
//! - [`registry`]: instrumented registry client (auth, manifests, blobs, push).
//! - [`pipeline`]: download -> verify -> decompress -> extract, streaming or staged.
//! - [`layer`]: applying OCI layers safely to a root filesystem.
//! - [`measure`]: repeated cold runs into a [`record::PullRecord`].
//! - [`stats`], [`report`]: statistics, tables, JSON, progress.
#![deny(missing_docs)]

pub mod aggregate;
pub mod calibrate;
pub mod demo;
pub mod host;
pub mod image;
pub mod lab;
pub mod layer;
pub mod layout;
pub mod measure;
pub mod network;
pub mod pipeline;
pub mod platform;
pub mod profile_source;
pub mod record;
pub mod reference;
pub mod registry;
pub mod regression;
pub mod report;
pub mod rng;
pub mod server;
pub mod sim;
pub mod stats;
pub mod synth;
