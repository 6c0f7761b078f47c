//! `pulltime calibrate`: measures this host with pulltime's own code paths (the
//! same hasher, decoders and layer extractor a pull uses) on realistic mixed
//! content, and writes a [`HostProfile`].

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use sha2::{Digest as _, Sha256};

use crate::host::HostProfile;
use crate::layer::{ApplyOptions, apply_layer};
use crate::pipeline::readers::decoder;
use crate::registry::Compression;
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
    /// Also time extraction inside real streaming pulls of a synthetic image from
    /// the embedded registry on loopback (the per-file cost the model uses is the
    /// larger of that and the probe alone).
    pub pull_probe: bool,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        CalibrateOptions {
            content_bytes: 128 << 20,
            small_files: 4000,
            large_bytes: 256 << 20,
            repeats: 3,
            pull_probe: true,
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
    let probe = |tar: &[u8]| -> std::io::Result<f64> {
        timed(o.repeats, || {
            let root = tempfile::Builder::new()
                .prefix("pulltime-calibrate-")
                .tempdir_in(dir)?;
            let r = apply_layer(tar, root.path(), &opts).map_err(std::io::Error::other);
            kept.borrow_mut().push(root);
            r.map(|_| ())
        })
    };
    let timings = (probe(&dirs_tar), probe(&small_tar), probe(&large_tar));
    // Last, while nothing has been deleted yet: on ext4 without a journal, files
    // created in the minutes after many were deleted cost several times more.
    let in_pull = if o.pull_probe {
        Some(pull_probe(dir, o.repeats))
    } else {
        None
    };
    drop(kept);
    let (t_dirs, t_small, t_large) = (timings.0?, timings.1?, timings.2?);
    let per_dir = t_dirs / dirs_n as f64;
    let per_small_file = ((t_small - per_dir * small_dirs as f64) / o.small_files as f64).max(0.0);
    let large_time = t_large - large_files as f64 * per_small_file;
    let extract_bps = (per * large_files) as f64 / large_time.max(1e-6);
    // Small files carry their bytes too; take them out of the per-file cost.
    let probe_per_file = (per_small_file - small_size as f64 / extract_bps).max(0.0);
    // Inside a pull, extraction shares the cores with decoding, hashing and the
    // network, and files come in many directories and sizes: it costs more per file
    // than alone. Measure that in real pulls and keep the larger figure.
    let per_file = match in_pull {
        Some(probe) => {
            let (extract_s, files, dirs, bytes) = probe?;
            let in_pull = (extract_s - bytes as f64 / extract_bps - dirs as f64 * per_dir)
                / files.max(1) as f64;
            probe_per_file.max(in_pull)
        }
        None => probe_per_file,
    };
    Ok(HostProfile {
        name: "calibrated".into(),
        description: format!(
            "measured by pulltime calibrate {} on {}: sha256 and decompression of {} MB of mixed content, extraction probes of {} directories, {} small files and {} MB in {} files",
            env!("CARGO_PKG_VERSION"),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
            o.content_bytes >> 20,
            dirs_n,
            o.small_files,
            o.large_bytes >> 20,
            large_files
        ),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        filesystem: crate::measure::filesystem_type(dir).unwrap_or_default(),
        sha256_bps: content.len() as f64 / sha,
        gzip_bps,
        zstd_bps,
        extract_bps,
        extract_per_file_s: per_file,
        extract_per_dir_s: per_dir,
    })
}

/// The image pulled by the in-pull probe: a study profile that is not among the
/// images `cargo bench --bench fidelity` validates against.
const PULL_PROBE_IMAGE: (&str, f64) = ("sn-text-filter-original", 0.02);

/// Median over `repeats` cold streaming pulls (after one warm-up) of the summed
/// extraction time, with the image's files, directories and file bytes.
fn pull_probe(dir: &Path, repeats: usize) -> std::io::Result<(f64, u64, u64, u64)> {
    use crate::lab::{ColdPuller, start_registry, synth_and_push};
    let err = |e: crate::lab::LabError| std::io::Error::other(format!("in-pull probe: {e}"));
    let registry = start_registry(crate::server::ServeOptions::default()).map_err(err)?;
    let (name, scale) = PULL_PROBE_IMAGE;
    synth_and_push(
        name,
        crate::synth::SynthOptions {
            scale,
            compression: Compression::Gzip,
        },
        &registry,
        "probe:v1",
    )
    .map_err(err)?;
    let puller = ColdPuller::in_dir(dir).map_err(err)?;
    let reference = registry.reference("probe:v1");
    puller.pull(&reference).map_err(err)?;
    let mut runs = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let record = puller.pull(&reference).map_err(err)?;
        let layers = &record.runs[0].layers;
        runs.push((
            layers.iter().map(|l| l.extract_s).sum::<f64>(),
            layers.iter().map(|l| l.files).sum::<u64>(),
            layers.iter().map(|l| l.dirs).sum::<u64>(),
            layers.iter().map(|l| l.uncompressed_bytes).sum::<u64>(),
        ));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(runs[runs.len() / 2])
}
