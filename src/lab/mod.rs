//! The lab as a library: everything a benchmark of image pulls needs, so a
//! criterion bench (see `benches/pull.rs` and `examples/bench_own_image.rs`) can
//! track pull time the way it tracks a function.
//!
//! ```no_run
//! use pulltime::lab::{ColdPuller, start_registry, synth_and_push};
//! use pulltime::server::ServeOptions;
//! use pulltime::synth::SynthOptions;
//!
//! let registry = start_registry(ServeOptions::default())?;
//! let image = synth_and_push("sn-compose-post-multistage", SynthOptions { scale: 0.01, ..Default::default() }, &registry, "app:v1")?;
//! let puller = ColdPuller::new()?;
//! let record = puller.pull(&registry.reference("app:v1"))?;
//! println!("{} bytes in {:.3} s", image.compressed_bytes(), record.runs[0].wall_s);
//! # Ok::<(), pulltime::lab::LabError>(())
//! ```

pub mod demo;

use crate::oci::layout::Layout;
use crate::oci::record::PullRecord;
use crate::oci::reference::Reference;
use crate::pipeline::PullOptions;
use crate::pipeline::measure::{MeasureOptions, measure};
use crate::registry::transport::RunClock;
use crate::registry::{ClientOptions, RegistryClient, Scheme};
use crate::server::{ServeOptions, ServerThread};
use crate::synth::{ImageProfile, SynthImage, SynthOptions, synthesize};

/// Anything that can go wrong in the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Starting the registry.
    #[error(transparent)]
    Serve(#[from] crate::server::ServeError),
    /// Loading a profile.
    #[error(transparent)]
    Profile(#[from] crate::profiles::ProfileError),
    /// Synthesising.
    #[error(transparent)]
    Synth(#[from] crate::synth::SynthError),
    /// Pushing.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// Pulling.
    #[error(transparent)]
    Pull(#[from] crate::pipeline::PullError),
    /// A reference.
    #[error(transparent)]
    Reference(#[from] crate::oci::reference::ReferenceError),
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Starts an embedded registry on its own thread (loopback, a free port); it
/// stops when the returned handle is dropped.
pub fn start_registry(options: ServeOptions) -> Result<ServerThread, LabError> {
    Ok(ServerThread::spawn(options)?)
}

/// Synthesises the image profile `profile` (a built-in name or a TOML file) and
/// pushes it to `registry` as `repo_tag` with pulltime's push code.
pub fn synth_and_push(
    profile: &str,
    options: SynthOptions,
    registry: &ServerThread,
    repo_tag: &str,
) -> Result<SynthImage, LabError> {
    let profile = ImageProfile::load(profile)?;
    let dir = tempfile::tempdir()?;
    let image = synthesize(&profile, options, dir.path(), "image")?;
    let reference = Reference::parse(&registry.reference(repo_tag))?;
    let layout = Layout::open(dir.path())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let opts = ClientOptions {
            scheme: Scheme::Http,
            ..ClientOptions::default()
        };
        let client = RegistryClient::new(&reference, &opts, RunClock::start(), true)?;
        client.ping().await?;
        crate::registry::push::push_layout(
            &client,
            &layout,
            "image",
            reference.manifest_reference(),
        )
        .await
    })?;
    Ok(image)
}

/// Runs cold pulls (fresh destination, connections and tokens every time) from
/// synchronous code.
///
/// Every pull gets a new root filesystem directory, and they are all deleted only
/// when the puller is dropped: on ext4 without a journal, files created right after
/// thousands were deleted cost several times more (inode allocation skips recently
/// deleted inodes), which would charge one pull for the clean-up of the last.
pub struct ColdPuller {
    runtime: tokio::runtime::Runtime,
    roots: tempfile::TempDir,
    pulls: std::cell::Cell<usize>,
    /// How each pull is done; defaults to pulltime's streaming mode, 3 downloads.
    pub options: PullOptions,
}

impl ColdPuller {
    /// A puller with default options (streaming, 3 concurrent downloads, host platform).
    pub fn new() -> Result<Self, LabError> {
        Self::in_dir(&std::env::temp_dir())
    }

    /// [`ColdPuller::new`], with root filesystems and scratch space under `dir`.
    pub fn in_dir(dir: &std::path::Path) -> Result<Self, LabError> {
        Ok(ColdPuller {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?,
            roots: tempfile::Builder::new()
                .prefix("pulltime-cold-")
                .tempdir_in(dir)?,
            pulls: std::cell::Cell::new(0),
            options: PullOptions::lab_defaults(),
        })
    }

    /// One cold pull of `reference` into a new root filesystem (removed with the
    /// puller); the record holds its single run.
    pub fn pull(&self, reference: &str) -> Result<PullRecord, LabError> {
        let reference = Reference::parse(reference)?;
        let n = self.pulls.get();
        self.pulls.set(n + 1);
        let options = MeasureOptions {
            runs: 1,
            warmup: 0,
            dest: Some(self.roots.path().join(format!("pull-{n}"))),
            tmp_dir: self.roots.path().to_path_buf(),
            pull: self.options.clone(),
            progress: crate::pipeline::progress::Progress::none(),
            settle: std::time::Duration::ZERO,
            deleted_at: None,
        };
        Ok(self.runtime.block_on(measure(&reference, &options))?)
    }
}
