//! `pulltime calibrate`: measures this host with pulltime's own code paths (the
//! same hasher, decoders and layer extractor a pull uses) on realistic mixed
//! content, and writes a [`HostProfile`].

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use sha2::{Digest as _, Sha256};

pub mod fidelity;
pub mod fitted_profile;
pub mod from_records;
mod registry_probes;
pub mod stream_factor;

use crate::layer::{ApplyOptions, apply_layer};
use crate::oci::media_type::Compression;
use crate::pipeline::readers::decoder;
use crate::profiles::host::{HostProfile, PullOverheads};
use crate::synth::content::{ContentReader, Kind, Rng, Vocabulary};

/// How much work calibration does.
#[derive(Debug, Clone, Copy)]
pub struct CalibrateOptions {
    /// Bytes of mixed content for hashing and decompression.
    pub content_bytes: usize,
    /// Files in the many-small-files extraction probe.
    pub small_files: usize,
    /// Bytes in the few-large-files extraction probe.
    pub large_bytes: usize,
    /// Repetitions; the median is kept.
    pub repeats: usize,
    /// Also probe the embedded registry on loopback: a streaming pull's start-up
    /// and per-request costs, and loopback's throughput and CPU per byte. Without
    /// it those overheads are left at zero.
    pub pull_probe: bool,
    /// Scale of the synthetic image (`sn-text-filter-original`) whose layers the
    /// realistic extraction probe applies and the in-pull probe pulls.
    pub probe_scale: f64,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        CalibrateOptions {
            content_bytes: 128 << 20,
            small_files: 4000,
            large_bytes: 256 << 20,
            repeats: 3,
            pull_probe: true,
            probe_scale: 0.05,
        }
    }
}

/// Mixed content like an image layer: 40% text, 50% binary, 10% compressed.
fn mixed_content(n: usize) -> Vec<u8> {
    let mut rng = Rng::new(42);
    let vocab = Vocabulary::new(&mut rng);
    let mut out = Vec::with_capacity(n);
    let mut i = 0u64;
    while out.len() < n {
        let kind = match i % 10 {
            0..=3 => Kind::Text,
            4..=8 => Kind::Binary,
            _ => Kind::Compressed,
        };
        let chunk = (n - out.len()).min(1 << 20) as u64;
        ContentReader::new(kind, i, chunk, &vocab)
            .read_to_end(&mut out)
            .expect("in memory");
        i += 1;
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn timed(repeats: usize, mut f: impl FnMut() -> std::io::Result<()>) -> std::io::Result<f64> {
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

/// Output bytes per second of decompressing `data` (compressed with `c`).
fn decompress_rate(c: Compression, plain: &[u8], repeats: usize) -> std::io::Result<f64> {
    let compressed = match c {
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(plain)?;
            e.finish()?
        }
        Compression::Zstd => zstd::stream::encode_all(plain, 3)?,
        Compression::None => plain.to_vec(),
    };
    let mut buf = vec![0u8; 256 << 10];
    let t = timed(repeats, || {
        let mut d = decoder(c, &compressed[..])?;
        while d.read(&mut buf)? > 0 {}
        Ok(())
    })?;
    Ok(plain.len() as f64 / t)
}

fn tar_of(entries: impl Iterator<Item = (String, Option<Vec<u8>>)>) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        match data {
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, path, &d[..])?;
            }
        }
    }
    b.into_inner()
}

/// Measures this host; extraction probes run in a temporary directory under `dir`
/// (so they measure the filesystem a pull would extract to) and are removed.
pub fn calibrate(dir: &Path, o: CalibrateOptions) -> std::io::Result<HostProfile> {
    let content = mixed_content(o.content_bytes);
    let sha = timed(o.repeats, || {
        std::hint::black_box(Sha256::digest(&content));
        Ok(())
    })?;
    let gzip_bps = decompress_rate(Compression::Gzip, &content, o.repeats)?;
    let zstd_bps = decompress_rate(Compression::Zstd, &content, o.repeats)?;

    // Three probes whose costs solve for per-directory, per-file and per-byte costs.
    let dirs_n = o.small_files / 2;
    let dirs_tar = tar_of((0..dirs_n).map(|i| (format!("d{i}"), None)))?;
    let small_size = 512usize;
    let small_dirs = (o.small_files / 100).max(1);
    let small_tar = tar_of((0..small_dirs).map(|d| (format!("s{d}"), None)).chain(
        (0..o.small_files).map(|i| {
            (
                format!("s{}/f{i}", i % small_dirs),
                Some(content[i * 7..i * 7 + small_size].to_vec()),
            )
        }),
    ))?;
    let large_files = 8usize;
    let per = o.large_bytes / large_files;
    let large_tar = tar_of((0..large_files).map(|i| {
        (
            format!("big{i}"),
            Some(content[(i * per) % (content.len() - per)..][..per].to_vec()),
        )
    }))?;
    let opts = ApplyOptions::default();
    // Removal is not part of a pull: probe trees are kept until all are timed.
    let kept = std::cell::RefCell::new(Vec::new());
    // Each probe starts with the filesystem written back, as a pull does. They are
    // short and a busy filesystem is noisy (the per-file cost moved 4x between
    // medians of three here): take the median of three times as many.
    let extraction_repeats = 3 * o.repeats.max(1);
    // Applies `layers` in order into a new root, `extraction_repeats` times: the
    // median time, and the files, directories and file bytes written.
    let probe_layers = |layers: &[&[u8]]| -> std::io::Result<(f64, (u64, u64, u64))> {
        let mut times = Vec::with_capacity(extraction_repeats);
        let mut counts = (0, 0, 0);
        for _ in 0..extraction_repeats {
            let root = tempfile::Builder::new()
                .prefix("pulltime-calibrate-")
                .tempdir_in(dir)?;
            crate::pipeline::filesystem::flush_writes(dir);
            let t = Instant::now();
            counts = (0, 0, 0);
            let applied = layers.iter().try_for_each(|tar| {
                let s = apply_layer(*tar, root.path(), &opts).map_err(std::io::Error::other)?;
                counts.0 += s.files;
                counts.1 += s.dirs;
                counts.2 += s.file_bytes;
                Ok::<_, std::io::Error>(())
            });
            times.push(t.elapsed().as_secs_f64());
            kept.borrow_mut().push(root);
            applied?;
        }
        Ok((median(times), counts))
    };
    let probe = |tar: &[u8]| probe_layers(&[tar]).map(|(t, _)| t);
    let timings = (probe(&dirs_tar), probe(&small_tar), probe(&large_tar));
    // Files of realistic sizes in many directories cost more each than thousands
    // of 512-byte files in a few: time a synthetic image's layers alone too.
    let realistic = registry_probes::realistic_layers(o.probe_scale).and_then(|layers| {
        let layers: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
        probe_layers(&layers)
    });
    // Last, while nothing has been deleted yet: on ext4 without a journal, files
    // created in the minutes after many were deleted cost several times more.
    let in_pull = if o.pull_probe {
        // Its CPU sets the streaming factor: as many pulls as extraction probes.
        Some(registry_probes::pull_probe(
            dir,
            extraction_repeats,
            o.probe_scale,
        ))
    } else {
        None
    };
    let loopback = if o.pull_probe {
        Some(registry_probes::loopback_probe(&content, o.repeats)?)
    } else {
        None
    };
    let (spool_write_bps, spool_read_bps) = registry_probes::spool_probe(dir, &content, o.repeats)?;
    drop(kept);
    let (t_dirs, t_small, t_large) = (timings.0?, timings.1?, timings.2?);
    let per_dir = t_dirs / dirs_n as f64;
    let per_small_file = ((t_small - per_dir * small_dirs as f64) / o.small_files as f64).max(0.0);
    let large_time = t_large - large_files as f64 * per_small_file;
    let extract_bps = (per * large_files) as f64 / large_time.max(1e-6);
    // Small files carry their bytes too; take them out of the per-file cost.
    let probe_per_file = (per_small_file - small_size as f64 / extract_bps).max(0.0);
    // The realistic image's per-file cost, its bytes and directories taken out; the
    // larger of the two probes.
    let (t_real, (files, dirs, bytes)) = realistic?;
    let real_per_file =
        (t_real - bytes as f64 / extract_bps - dirs as f64 * per_dir) / files.max(1) as f64;
    let per_file = probe_per_file.max(real_per_file);
    let in_pull = in_pull.transpose()?;
    let mut pull = PullOverheads {
        spool_write_bps,
        spool_read_bps,
        ..PullOverheads::default()
    };
    if let Some(p) = &in_pull {
        pull.startup_s = p.startup_s;
        pull.request_s = p.request_s;
    }
    if let Some((bps, cpu)) = loopback {
        pull.loopback_bps = bps;
        pull.serve_cpu_s_per_byte = cpu;
    }
    let mut host = HostProfile {
        name: "calibrated".into(),
        description: format!(
            "measured by pulltime calibrate {} (gzip backend {}) on {}: sha256 and decompression of {} MB of mixed content, extraction probes of {} directories, {} small files, {} MB in {} files and the layers of {} (scale {})",
            env!("CARGO_PKG_VERSION"),
            crate::pipeline::gzip::gzip_backend(),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
            o.content_bytes >> 20,
            dirs_n,
            o.small_files,
            o.large_bytes >> 20,
            large_files,
            registry_probes::PULL_PROBE_IMAGE,
            o.probe_scale
        ),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        filesystem: crate::pipeline::filesystem::filesystem_type(dir).unwrap_or_default(),
        sha256_bps: content.len() as f64 / sha,
        gzip_bps,
        zstd_bps,
        extract_bps,
        extract_per_file_s: per_file,
        extract_per_dir_s: per_dir,
        pull,
        pullers: Default::default(),
    };
    if let Some(p) = &in_pull {
        host.pull.stream_cpu_factor = stream_cpu_factor(p, &host);
    }
    Ok(host)
}

/// What a real streaming pull's CPU comes to per second of its stages' CPU as
/// measured alone: the probe pull's process CPU, less its start-up, requests and
/// the registry's serving, over the model's stage work for the same image on
/// `host`. Bounded to 0.5-4: outside that the probe measured noise.
fn stream_cpu_factor(p: &registry_probes::InPull, host: &HostProfile) -> f64 {
    let (mut work, mut bytes) = (0.0, 0u64);
    for (i, l) in p.image.layers.iter().enumerate() {
        work += crate::sim::model::stream_work(l, host, i == 0).total();
        bytes += l.compressed;
    }
    let overheads = host.pull.startup_s
        + p.requests as f64 * host.pull.request_s
        + bytes as f64 * host.pull.serve_cpu_s_per_byte;
    if work <= 0.0 {
        return 1.0;
    }
    let factor = (p.cpu_s - overheads) / work;
    tracing::info!(
        cpu_s = p.cpu_s,
        overheads_s = overheads,
        stage_work_s = work,
        factor,
        "streaming CPU factor: median pull CPU less overheads, over the stages' work"
    );
    let bounded = factor.clamp(0.5, 4.0);
    if bounded != factor {
        tracing::warn!(
            measured = factor,
            kept = bounded,
            "the streaming CPU factor came out of bounds (a busy machine?); calibrate again"
        );
    }
    bounded
}
