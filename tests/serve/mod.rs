//! The lab: the embedded registry's HTTP API, its injected faults seen on the wire,
//! and `serve`/`synth` checked against the real registry, skopeo, umoci and
//! oci-client.

mod api;
mod faults;
mod lab;
mod raw;
