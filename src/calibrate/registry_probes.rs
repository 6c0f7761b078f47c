//! Probes against the embedded registry on loopback: what a real streaming pull
//! costs beyond its CPU stages, and what moving bytes over loopback costs.

use std::io;
use std::path::Path;
use std::time::Instant;

use crate::lab::{ColdPuller, LabError, start_registry, synth_and_push};
use crate::oci::digest::sha256_digest;
use crate::oci::media_type::Compression;
use crate::oci::record::RequestKind;
use crate::server::ServeOptions;

use super::median;

/// The image of the in-pull and realistic-extraction probes: a study profile that
/// is not among the images `cargo bench --bench fidelity` validates against.
pub(super) const PULL_PROBE_IMAGE: &str = "sn-text-filter-original";

/// Bytes fetched by the loopback probe.
const LOOPBACK_BYTES: usize = 64 << 20;

/// What the in-pull probe found (medians over its pulls).
#[derive(Debug, Clone)]
pub(super) struct InPull {
    /// Start of the first request: the client's set-up.
    pub startup_s: f64,
    /// Time to first byte of manifest and config requests (no round trip on
    /// loopback, so all of it is processing).
    pub request_s: f64,
    /// Process CPU seconds of one pull, the registry's serving included.
    pub cpu_s: f64,
    /// Requests one pull makes.
    pub requests: usize,
    /// The probe image as the pull saw it.
    pub image: crate::sim::SimImage,
}

/// The probe image's layers as tar streams (decompressed in memory), for timing
/// extraction of realistic files alone.
pub(super) fn realistic_layers(scale: f64) -> io::Result<Vec<Vec<u8>>> {
    use std::io::Read;
    let name = PULL_PROBE_IMAGE;
    let profile = crate::synth::ImageProfile::load(name).map_err(io::Error::other)?;
    let dir = tempfile::tempdir()?;
    let image = crate::synth::synthesize(
        &profile,
        crate::synth::SynthOptions {
            scale,
            compression: Compression::Gzip,
        },
        dir.path(),
        "probe",
    )
    .map_err(io::Error::other)?;
    let layout = crate::oci::layout::Layout::open(dir.path())?;
    image
        .layers
        .iter()
        .map(|l| {
            let blob = std::fs::File::open(layout.blob_path(&l.digest)?)?;
            let mut tar = Vec::with_capacity(l.uncompressed_bytes as usize);
            // The pull's own decoder (the gzip backend compiled in, multi-member).
            crate::pipeline::readers::decoder(Compression::Gzip, blob)?.read_to_end(&mut tar)?;
            Ok(tar)
        })
        .collect()
}

fn lab_err(what: &'static str) -> impl Fn(LabError) -> io::Error {
    move |e| io::Error::other(format!("{what}: {e}"))
}

/// Cold streaming pulls (after one warm-up) of a synthetic image from the embedded
/// registry into `dir`: what a pull costs before and around its requests, and
/// the CPU of whole pulls.
pub(super) fn pull_probe(dir: &Path, repeats: usize, scale: f64) -> io::Result<InPull> {
    let err = lab_err("in-pull probe");
    let registry = start_registry(ServeOptions::default()).map_err(&err)?;
    let name = PULL_PROBE_IMAGE;
    synth_and_push(
        name,
        crate::synth::SynthOptions {
            scale,
            compression: Compression::Gzip,
        },
        &registry,
        "probe:v1",
    )
    .map_err(&err)?;
    let puller = ColdPuller::in_dir(dir).map_err(&err)?;
    probe_pulls(&puller, &registry.reference("probe:v1"), repeats)
}

/// One warm-up pull of `reference`, then `repeats` measured ones.
fn probe_pulls(puller: &ColdPuller, reference: &str, repeats: usize) -> io::Result<InPull> {
    let err = lab_err("in-pull probe");
    puller.pull(reference).map_err(&err)?;
    let mut startup = Vec::new();
    let mut turnaround = Vec::new();
    let mut cpu = Vec::new();
    let mut last = None;
    for _ in 0..repeats.max(1) {
        let before = process_cpu_s();
        let record = puller.pull(reference).map_err(&err)?;
        cpu.push(process_cpu_s() - before);
        let run = &record.runs[0];
        startup.push(
            run.requests
                .iter()
                .map(|r| r.start_s)
                .fold(f64::INFINITY, f64::min),
        );
        turnaround.extend(
            run.requests
                .iter()
                .filter(|r| r.kind == RequestKind::Manifest || r.kind == RequestKind::Config)
                .map(|r| r.ttfb_s),
        );
        last = Some(record);
    }
    if turnaround.is_empty() {
        return Err(io::Error::other(
            "in-pull probe: the pull logged no manifest or config request",
        ));
    }
    tracing::info!(cpu_s = ?cpu, "in-pull probe: process CPU of each pull");
    let record = last.expect("at least one pull");
    Ok(InPull {
        startup_s: median(startup),
        request_s: median(turnaround),
        cpu_s: median(cpu),
        requests: record.runs[0].requests.len(),
        image: crate::sim::input::from_record(PULL_PROBE_IMAGE, &record)
            .map_err(io::Error::other)?,
    })
}

/// Bytes per second writing a 64 MiB stream through a [`Spool`] in `dir` in the
/// blocks a pull uses, and reading it back (medians over `repeats`).
pub(super) fn spool_probe(dir: &Path, content: &[u8], repeats: usize) -> io::Result<(f64, f64)> {
    use crate::pipeline::readers::Busy;
    use crate::pipeline::spool::{Spool, WhenFull};
    use std::io::Read;
    // Written before its reader starts, so every byte goes through the file: the
    // cost of a layer downloaded or decoded ahead of its turn.
    let data = bytes::Bytes::copy_from_slice(&content[..content.len().min(LOOPBACK_BYTES)]);
    let scratch = tempfile::Builder::new()
        .prefix("pulltime-calibrate-spool-")
        .tempdir_in(dir)?;
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 256 << 10];
    for i in 0..repeats.max(1) {
        let spool = Spool::new(
            scratch.path().join(format!("spool-{i}")),
            WhenFull::Spill,
            Default::default(),
        );
        crate::pipeline::filesystem::flush_writes(dir);
        let t = Instant::now();
        let mut w = spool.writer();
        for start in (0..data.len()).step_by(256 << 10) {
            w.push(data.slice(start..data.len().min(start + (256 << 10))))?;
        }
        drop(w);
        spool.finish(true);
        writes.push(data.len() as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut r = spool.reader(Busy::default());
        let mut n = 0usize;
        loop {
            let k = r.read(&mut buf)?;
            if k == 0 {
                break;
            }
            n += k;
        }
        reads.push(n as f64 / t.elapsed().as_secs_f64());
    }
    Ok((median(writes), median(reads)))
}

/// CPU seconds this process has used (all threads, the registry's included).
fn process_cpu_s() -> f64 {
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Fetches a 64 MiB blob from the embedded registry over loopback on a new
/// connection (after one warm-up): bytes per second, and CPU seconds per byte of
/// the registry and the client together.
pub(super) fn loopback_probe(content: &[u8], repeats: usize) -> io::Result<(f64, f64)> {
    let blob = content[..content.len().min(LOOPBACK_BYTES)].to_vec();
    let registry = start_registry(ServeOptions::default()).map_err(lab_err("loopback probe"))?;
    let digest = sha256_digest(&blob);
    let base = format!("http://{}/v2/probe/blobs", registry.addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = |e: reqwest::Error| io::Error::other(format!("loopback probe: {e}"));
    runtime.block_on(async {
        let upload = reqwest::Client::new()
            .post(format!("{base}/uploads/?digest={digest}"))
            .body(blob.clone())
            .send()
            .await
            .map_err(http)?;
        if upload.status() != reqwest::StatusCode::CREATED {
            return Err(io::Error::other(format!(
                "loopback probe: upload answered {}",
                upload.status()
            )));
        }
        let mut rates = Vec::new();
        let mut cpu = Vec::new();
        for i in 0..=repeats.max(1) {
            let client = reqwest::Client::new();
            let (t, c) = (Instant::now(), process_cpu_s());
            let mut response = client
                .get(format!("{base}/{digest}"))
                .send()
                .await
                .map_err(http)?
                .error_for_status()
                .map_err(http)?;
            let mut n = 0usize;
            while let Some(chunk) = response.chunk().await.map_err(http)? {
                n += chunk.len();
            }
            if n != blob.len() {
                return Err(io::Error::other(format!(
                    "loopback probe: got {n} bytes of {}",
                    blob.len()
                )));
            }
            // The first fetch warms the page cache and the registry up.
            if i > 0 {
                rates.push(n as f64 / t.elapsed().as_secs_f64());
                cpu.push((process_cpu_s() - c) / n as f64);
            }
        }
        Ok((median(rates), median(cpu)))
    })
}
