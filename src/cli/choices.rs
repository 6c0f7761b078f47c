//! The library's enums as command-line choices: clap stays in the CLI, so each is
//! mirrored here with the same names and help, and converted where it is used.

use pulltime::pipeline::Mode;
use pulltime::sim::Policy;

/// `pull --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Stages overlap as in a real puller; busy time per stage is attributed.
    Streaming,
    /// Each phase of a layer completes before the next; phase wall times are exact.
    Staged,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Streaming => Mode::Streaming,
            ModeArg::Staged => Mode::Staged,
        }
    }
}

/// `simulate --policy` (and `compare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// Docker: downloads in parallel, each layer extracted after its download, one
    /// layer at a time, in order.
    Docker,
    /// containerd (classic): all downloads first, then unpack layer by layer.
    Containerd,
    /// podman: downloads in parallel (6), each layer applied after its download, in
    /// order.
    Podman,
    /// skopeo copy to an OCI layout (6 downloads at once), then umoci unpack, layer
    /// by layer.
    #[value(name = "skopeo-umoci")]
    SkopeoUmoci,
    /// pulltime streaming: decompression and extraction overlap the download.
    Pulltime,
    /// pulltime --mode staged.
    Staged,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Policy {
        match p {
            PolicyArg::Docker => Policy::Docker,
            PolicyArg::Containerd => Policy::Containerd,
            PolicyArg::Podman => Policy::Podman,
            PolicyArg::SkopeoUmoci => Policy::SkopeoUmoci,
            PolicyArg::Pulltime => Policy::Pulltime,
            PolicyArg::Staged => Policy::Staged,
        }
    }
}
