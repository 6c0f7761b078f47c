//! pulltime: measure where an OCI image pull's time goes, and predict it.
//!
//! The modules, from the leaf up (`docs/architecture.md` draws the flow):
//! - [`oci`]: the vocabulary: references, digests, media types, platforms, image
//!   layouts, and the [`oci::record::PullRecord`] shared by measurement and simulation.
//! - [`rng`]: the seeded generator behind everything that must repeat.
//! - [`limits`]: limits against hostile registries and images.
//! - [`profiles`]: network, host, image and fault profiles, and their lookup.
//! - [`registry`]: the instrumented registry client (auth, retries, manifests, push).
//! - [`layer`]: applying OCI layers safely to a root filesystem.
//! - [`pipeline`]: download -> verify -> decompress -> extract, streaming or staged,
//!   and repeated cold runs into a record ([`pipeline::measure`]).
//! - [`server`]: the embedded lab registry (shaping, Docker Hub behaviour, faults).
//! - [`synth`]: deterministic synthetic images.
//! - [`lab`]: the lab as a library (registry + images + cold puller) and the demo.
//! - [`sim`], [`calibrate`]: the pull model and the host measurements it runs on.
//! - [`report`]: tables, JSON, CSV, SVG, regressions and aggregates over records.
#![deny(missing_docs)]

pub mod calibrate;
pub mod lab;
pub mod layer;
pub mod limits;
pub mod oci;
pub mod peers;
pub mod pipeline;
pub mod profiles;
pub mod registry;
pub mod report;
pub mod rng;
pub mod server;
pub mod sim;
pub mod synth;
