//! The `--puller` flag and how to reach each puller's daemon (shared by `pull` and
//! `compare`).

use std::path::PathBuf;
use std::time::Duration;

use pulltime::peers::{PeerOptions, PullerKind};

/// Which program pulls, and where its daemon is.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Other pullers' daemons")]
pub struct DaemonArgs {
    /// dockerd's socket (`unix:///path`). Default: $DOCKER_HOST, else /var/run/docker.sock.
    #[arg(
        long,
        env = "DOCKER_HOST",
        default_value = "unix:///var/run/docker.sock"
    )]
    pub docker_host: String,
    /// containerd's socket.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_address: PathBuf,
    /// containerd namespace to pull into.
    #[arg(long, default_value = "pulltime")]
    pub containerd_namespace: String,
    /// containerd snapshotter (`overlayfs`, `native`, ...).
    #[arg(long, default_value = "overlayfs")]
    pub snapshotter: String,
    /// podman `--root` (its image store). Default: podman's own.
    #[arg(long)]
    pub podman_root: Option<PathBuf>,
    /// podman `--runroot`. Default: podman's own.
    #[arg(long)]
    pub podman_runroot: Option<PathBuf>,
}

impl DaemonArgs {
    /// The library's options, with the proxy's timeout towards the registry.
    pub fn options(&self, timeout: Duration) -> PeerOptions {
        PeerOptions {
            docker_host: self.docker_host.clone(),
            containerd_address: self.containerd_address.clone(),
            containerd_namespace: self.containerd_namespace.clone(),
            snapshotter: self.snapshotter.clone(),
            podman_root: self.podman_root.clone(),
            podman_runroot: self.podman_runroot.clone(),
            timeout,
        }
    }
}

/// Parses one puller name.
pub fn parse_puller(s: &str) -> Result<PullerKind, String> {
    PullerKind::parse(s).ok_or_else(|| {
        format!(
            "unknown puller {s:?}; use {}",
            PullerKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}
