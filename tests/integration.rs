//! pulltime's behaviour against real components: the CNCF distribution registry
//! (`docker-registry`, started on a free loopback port), skopeo and umoci as
//! oracles, and the project's own embedded registry. One test binary, grouped by
//! concern; the shared harness is `common`.
//!
//! Two other binaries run alone, because they must not overlap other tests:
//! `regression` (compares the timings of two batches of pulls) and `soak` (many
//! pulls through injected faults). `architecture` checks the source's rules.

mod cli;
mod common;
mod layers;
mod model;
mod peers;
mod pull;
mod serve;
