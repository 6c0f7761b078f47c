//! `pulltime pull` against the real CNCF distribution registry: the record and the
//! command line, credentials, manifest negotiation, independent oracles (skopeo,
//! umoci, oci-client), Ctrl-C and secrets, and limits only a pull can hit.

mod auth;
mod cli;
mod cred_sources;
mod errors;
mod hostile;
mod index;
mod oracle;
mod resilience;
mod settle;
mod tls;
mod token_auth;
