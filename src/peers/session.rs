//! One puller's cold runs of one image: set up (the image's facts, the proxy, the
//! puller), one run at a time, removal between runs (immediately, or deferred by
//! the caller to the end of a round), and the record at the end.

use crate::registry::proxy::ProxyConfig;
use crate::registry::transport::TransportOptions;
use std::path::{Path, PathBuf};

use url::Url;

use crate::oci::record::{
    PullRecord, PullerInfo, RunRecord, SCHEMA_VERSION, Settings, Summary, ToolInfo,
};
use crate::oci::reference::Reference;
use crate::pipeline::filesystem::flush_writes;
use crate::pipeline::measure::{MeasureOptions, host_info, measure};

use super::containerd::Containerd;
use super::docker::Docker;
use super::podman::Podman;
use super::proxy::RecordingProxy;
use super::skopeo_umoci::SkopeoUmoci;
use super::{Observed, PeerError, PeerOptions, ProxiedImage, PullerKind, chain_ids, timeline};

/// How a session pulls.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// pulltime's own pull options: for the pulltime puller's runs and for learning
    /// the image's facts (their `runs`, `warmup` and `dest` are ignored).
    pub pulltime: MeasureOptions,
    /// How to reach the others.
    pub peers: PeerOptions,
}

enum Driver {
    Pulltime,
    Docker(Docker),
    Containerd(Containerd),
    Podman(Podman),
    SkopeoUmoci(SkopeoUmoci),
}

/// A puller's runs of one image.
pub struct Session {
    kind: PullerKind,
    reference: Reference,
    options: SessionOptions,
    driver: Driver,
    proxy: Option<RecordingProxy>,
    /// The image as pulltime pulled it once (layers, sizes, entry counts).
    facts: PullRecord,
    config_size: u64,
    image: ProxiedImage,
    info: PullerInfo,
    /// Where the puller stores the image (for the filesystem type).
    storage: Option<PathBuf>,
    /// Everything this session writes; removed when the session ends, so that no
    /// deletion falls inside another run.
    work: tempfile::TempDir,
    runs: Vec<RunRecord>,
    pulltime_runs: usize,
    /// The last run's image is still in the puller's store.
    pending_removal: bool,
    created: String,
}

impl Session {
    /// Prepares `kind` to pull `reference`: learns the image (one uncounted pull by
    /// pulltime), starts the proxy and checks that the puller does not hold the
    /// image already.
    pub async fn open(
        kind: PullerKind,
        reference: &Reference,
        options: &SessionOptions,
    ) -> Result<Session, PeerError> {
        let work = tempfile::Builder::new()
            .prefix(&format!("pulltime-{}-", kind.as_str()))
            .tempdir_in(&options.pulltime.tmp_dir)
            .map_err(|source| PeerError::Io {
                what: format!(
                    "creating a work directory in {}",
                    options.pulltime.tmp_dir.display()
                ),
                source,
            })?;
        let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        // The puller first: a daemon that is not there fails before any pull.
        let (driver, proxy) = match kind {
            PullerKind::Pulltime => (Driver::Pulltime, None),
            other => {
                // An insecure registry's scheme (HTTPS, else plain HTTP) is found
                // once, as pulltime's own pulls find it.
                let scheme = if options.pulltime.pull.client.http_fallback {
                    crate::pipeline::measure::settle_scheme(reference, &options.pulltime)
                        .await?
                        .pull
                        .client
                        .scheme
                } else {
                    options.pulltime.pull.client.scheme
                };
                let upstream =
                    Url::parse(&format!("{}://{}", scheme.as_str(), reference.api_host()))
                        .map_err(|e| PeerError::Proxy(format!("registry address: {e}")))?;
                let client = &options.pulltime.pull.client;
                let transport = TransportOptions {
                    timeout: options.peers.timeout,
                    tls: client.tls.clone(),
                    registry: reference.api_host().to_string(),
                    proxies: match &client.proxies {
                        Some(p) => p.clone(),
                        None => std::sync::Arc::new(
                            ProxyConfig::from_env().map_err(|e| PeerError::Proxy(e.to_string()))?,
                        ),
                    },
                };
                let proxy = RecordingProxy::start(upstream, transport).await?;
                (connect(other, &options.peers, work.path())?, Some(proxy))
            }
        };
        let facts = pulltime_once(reference, &options.pulltime, &work.path().join("facts")).await?;
        let config_size = facts.runs[0]
            .requests
            .iter()
            .filter(|r| r.kind == crate::oci::record::RequestKind::Config)
            .map(|r| r.bytes)
            .max()
            .unwrap_or(0);
        let diff_ids: Vec<String> = facts
            .image
            .layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect();
        let image = ProxiedImage {
            proxy: proxy
                .as_ref()
                .map(|p| p.addr().to_string())
                .unwrap_or_default(),
            repository: reference.repository.clone(),
            tag_or_digest: reference.manifest_reference().to_string(),
            layers: facts
                .image
                .layers
                .iter()
                .map(|l| l.digest.clone())
                .collect(),
            chain_ids: chain_ids(&diff_ids),
            config_digest: facts.image.config_digest.clone(),
        };
        let (info, storage) = describe(&driver, &facts).await?;
        let session = Session {
            kind,
            reference: reference.clone(),
            options: options.clone(),
            driver,
            proxy,
            facts,
            config_size,
            image,
            info,
            storage,
            work,
            runs: Vec::new(),
            pulltime_runs: 0,
            pending_removal: false,
            created,
        };
        session.check_absent("before the first run").await?;
        Ok(session)
    }

    /// Which puller.
    pub fn kind(&self) -> PullerKind {
        self.kind
    }

    /// Where [`Session::remove`] deletes files: the puller's store when known
    /// (docker's and podman's), else `fallback`.
    pub fn deletes_in<'a>(&'a self, fallback: &'a Path) -> &'a Path {
        self.storage.as_deref().unwrap_or(fallback)
    }

    /// One cold pull. The run is kept when `counted`. A previous run's image must
    /// have been removed ([`Session::remove`]) first.
    pub async fn run(&mut self, counted: bool) -> Result<f64, PeerError> {
        if self.pending_removal {
            self.remove().await?;
        }
        if self.options.pulltime.pull.client.cancel.is_cancelled() {
            return Err(PeerError::Interrupted);
        }
        let run = match &mut self.driver {
            Driver::Pulltime => {
                let dest = self.work.path().join(format!("run-{}", self.pulltime_runs));
                self.pulltime_runs += 1;
                let before = super::cpu::own_usage();
                let record = pulltime_once(&self.reference, &self.options.pulltime, &dest).await?;
                let mut run = record.runs.into_iter().next().expect("one run");
                // This process did nothing else meanwhile (the other pullers'
                // proxies idle), so its CPU is the pull's, as the others' is theirs.
                run.cpu = Some(super::cpu::since(&before, &super::cpu::own_usage()));
                run
            }
            _ => {
                if let Some(dir) = self
                    .storage
                    .clone()
                    .or_else(|| Some(self.work.path().into()))
                {
                    let _ = tokio::task::spawn_blocking(move || flush_writes(&dir)).await;
                }
                let proxy = self.proxy.as_ref().expect("other pullers have a proxy");
                let clock = proxy.begin_run()?;
                // Whatever happens now, the puller may hold (part of) the image.
                self.pending_removal = true;
                let cancel = self.options.pulltime.pull.client.cancel.clone();
                let observed = tokio::select! {
                    observed = pull(&mut self.driver, &self.image, &clock) => observed?,
                    _ = cancel.cancelled() => return Err(PeerError::Interrupted),
                };
                let log = proxy.log();
                timeline::run_record(
                    &self.facts.image,
                    self.config_size,
                    &self.facts.runs[0].layers,
                    &log,
                    &observed,
                )
            }
        };
        let wall = run.wall_s;
        if counted {
            let mut run = run;
            run.index = self.runs.len();
            self.runs.push(run);
        }
        Ok(wall)
    }

    /// Removes the last run's image from the puller's store and checks that
    /// nothing of it is left (a next run would not be cold). Whether files were
    /// deleted (pulltime's and umoci's trees are kept until [`Session::close`]).
    pub async fn remove(&mut self) -> Result<bool, PeerError> {
        if !self.pending_removal {
            return Ok(false);
        }
        let image = self.image.clone();
        let deleted = match &mut self.driver {
            Driver::Pulltime => false,
            Driver::Docker(d) => {
                d.remove(&image).await?;
                true
            }
            Driver::Containerd(c) => {
                tokio::task::block_in_place(|| c.remove(&image))?;
                true
            }
            Driver::Podman(p) => {
                tokio::task::block_in_place(|| p.remove(&image))?;
                true
            }
            Driver::SkopeoUmoci(s) => {
                s.remove();
                false
            }
        };
        self.pending_removal = false;
        self.check_absent("after removing the last run's image")
            .await?;
        Ok(deleted)
    }

    async fn check_absent(&self, when: &str) -> Result<(), PeerError> {
        let image = &self.image;
        let held: Vec<String> = match &self.driver {
            Driver::Pulltime | Driver::SkopeoUmoci(_) => Vec::new(),
            Driver::Docker(d) => {
                if d.has_image(&image.config_digest).await? {
                    vec![format!("image {}", image.config_digest)]
                } else {
                    Vec::new()
                }
            }
            Driver::Containerd(c) => {
                let holdings = tokio::task::block_in_place(|| c.holdings())?;
                image
                    .layers
                    .iter()
                    .chain(&image.chain_ids)
                    .filter(|d| holdings.contains(d))
                    .cloned()
                    .collect()
            }
            Driver::Podman(p) => {
                let hex = image.config_digest.trim_start_matches("sha256:");
                if tokio::task::block_in_place(|| p.has_image(hex))? {
                    vec![format!("image {}", image.config_digest)]
                } else {
                    Vec::new()
                }
            }
        };
        if held.is_empty() {
            return Ok(());
        }
        Err(PeerError::NotCold(format!(
            "{} already holds {} of {} {when}, so a pull would not be cold; remove it (and images that share its layers) first",
            self.kind.as_str(),
            held.join(", "),
            self.reference
        )))
    }

    /// The record of the counted runs so far (`warmup`: how many were not counted).
    pub fn record(&self, warmup: usize) -> PullRecord {
        let runs = self.runs.clone();
        let mut record = PullRecord {
            schema_version: SCHEMA_VERSION,
            simulated: false,
            tool: ToolInfo::this_build(crate::pipeline::gzip::gzip_backend()),
            created: self.created.clone(),
            host: host_info(self.storage.as_deref().unwrap_or(self.work.path())),
            image: self.facts.image.clone(),
            settings: Settings {
                mode: self.kind.as_str().into(),
                max_concurrent_downloads: self.kind.max_concurrent_downloads(),
                runs: runs.len(),
                warmup,
                platform: self.facts.settings.platform.clone(),
                scheme: "http".into(),
                decoders: None,
                appliers: None,
                stopped: None,
            },
            puller: self.info.clone(),
            summary: Summary::of(&runs),
            runs,
            simulation: None,
        };
        if self.kind == PullerKind::Pulltime {
            record.settings.mode = self.facts.settings.mode.clone();
            record.settings.max_concurrent_downloads = self.facts.settings.max_concurrent_downloads;
            record.settings.scheme = self.facts.settings.scheme.clone();
            record.host = self.facts.host.clone();
        }
        record
    }

    /// Removes what is left and every file the session wrote.
    pub async fn close(mut self) -> Result<(), PeerError> {
        self.remove().await?;
        if let Driver::Containerd(c) = &mut self.driver {
            let image = self.image.clone();
            tokio::task::block_in_place(|| c.finish(&image))?;
        }
        let work = self.work;
        let path = work.path().to_path_buf();
        let removed = tokio::task::spawn_blocking(move || work.close())
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r);
        removed.map_err(|source| PeerError::Io {
            what: format!("removing the work directory {}", path.display()),
            source,
        })
    }
}

/// One pull by pulltime into `dest` (kept until the session ends).
async fn pulltime_once(
    reference: &Reference,
    options: &MeasureOptions,
    dest: &Path,
) -> Result<PullRecord, PeerError> {
    let once = MeasureOptions {
        runs: 1,
        warmup: 0,
        dest: Some(dest.to_path_buf()),
        ..options.clone()
    };
    Ok(measure(reference, &once).await?)
}

fn connect(kind: PullerKind, o: &PeerOptions, work: &Path) -> Result<Driver, PeerError> {
    Ok(match kind {
        PullerKind::Pulltime => Driver::Pulltime,
        PullerKind::Docker => Driver::Docker(Docker::connect(&o.docker_host)?),
        PullerKind::Containerd => Driver::Containerd(Containerd::connect(
            &o.containerd_address,
            &o.containerd_namespace,
            &o.snapshotter,
        )?),
        PullerKind::Podman => Driver::Podman(Podman::new(
            o.podman_root.clone(),
            o.podman_runroot.clone(),
        )?),
        PullerKind::SkopeoUmoci => {
            Driver::SkopeoUmoci(SkopeoUmoci::new(&work.join("skopeo-umoci"))?)
        }
    })
}

async fn describe(
    driver: &Driver,
    facts: &PullRecord,
) -> Result<(PullerInfo, Option<PathBuf>), PeerError> {
    Ok(match driver {
        Driver::Pulltime => (facts.puller.clone(), None),
        Driver::Docker(d) => d.info().await?,
        Driver::Containerd(c) => (tokio::task::block_in_place(|| c.info())?, None),
        Driver::Podman(p) => (tokio::task::block_in_place(|| p.info())?, p.root()),
        Driver::SkopeoUmoci(s) => (tokio::task::block_in_place(|| s.info())?, None),
    })
}

async fn pull(
    driver: &mut Driver,
    image: &ProxiedImage,
    clock: &crate::registry::transport::RunClock,
) -> Result<Observed, PeerError> {
    match driver {
        Driver::Pulltime => unreachable!("pulltime pulls through measure"),
        Driver::Docker(d) => d.pull(image, clock).await,
        Driver::Containerd(c) => tokio::task::block_in_place(|| c.pull(image, clock)),
        Driver::Podman(p) => tokio::task::block_in_place(|| p.pull(image, clock)),
        Driver::SkopeoUmoci(s) => tokio::task::block_in_place(|| s.pull(image, clock)),
    }
}

/// `warmup` uncounted and `runs` counted cold pulls by `kind`, the image removed
/// after each; `on_run(label, wall_s)` after each one. The puller's store is left
/// without the image, also when a run fails.
pub async fn measure_puller(
    kind: PullerKind,
    reference: &Reference,
    options: &SessionOptions,
    runs: usize,
    warmup: usize,
    on_run: impl Fn(&str, f64),
) -> Result<PullRecord, PeerError> {
    let mut session = Session::open(kind, reference, options).await?;
    let mut outcome = Ok(());
    for k in 0..warmup + runs {
        let label = if k < warmup {
            format!("warmup {}/{warmup}", k + 1)
        } else {
            format!("run {}/{runs}", k - warmup + 1)
        };
        match session.run(k >= warmup).await {
            Ok(wall) => on_run(&label, wall),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
        match session.remove().await {
            // The next run waits out the deletion where it would slow it
            // (ext4 without a journal; `pipeline::filesystem`).
            Ok(true) if k + 1 < warmup + runs => {
                let path = session.deletes_in(&options.pulltime.tmp_dir).to_path_buf();
                let (window, stop) = (
                    options.pulltime.settle,
                    &options.pulltime.pull.client.cancel,
                );
                let now = std::time::Instant::now();
                let say = |m: &str| tracing::warn!("{m}");
                crate::pipeline::filesystem::wait_out(&path, now, window, stop, say).await;
            }
            Ok(_) => {}
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let record = session.record(warmup);
    let closed = session.close().await;
    outcome?;
    closed?;
    Ok(record)
}
