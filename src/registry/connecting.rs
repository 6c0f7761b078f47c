//! Where the connector is connecting, for the TLS layer inside it: a server
//! name carries no port, so the verifier and the client-certificate resolver ask
//! here whether this connection is to the registry's `host:port`.

use std::future::Future;

use reqwest::Url;

tokio::task_local! {
    /// `host:port` of the connection being set up on this task.
    static TARGET: String;
}

/// Runs `connect` (a connector's future) with `target` as its `host:port`.
pub fn scope<F: Future>(target: String, connect: F) -> impl Future<Output = F::Output> {
    TARGET.scope(target, connect)
}

/// `host:port` of the connection being set up, when called from inside the
/// connector.
pub fn target() -> Option<String> {
    TARGET.try_with(Clone::clone).ok().filter(|t| !t.is_empty())
}

/// `host:port` of `url`, the scheme's default port filled in.
pub fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}
