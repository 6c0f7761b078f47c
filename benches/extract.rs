//! Criterion benches of extraction alone: `pulltime::layer::apply_layer` of an
//! uncompressed synthetic layer (held in memory) into a fresh directory, in tar
//! bytes per second. Two shapes: many small files (metadata-bound: one create,
//! write, chmod, chown, utimes per file) and a few large files (write-bound).
//! Each iteration extracts into a fresh directory created outside the timing,
//! under `PULLTIME_BENCH_DIR` (default: the system temp dir), so
//! `PULLTIME_BENCH_DIR=/var/tmp cargo bench --bench extract` measures ext4 where
//! /tmp is a tmpfs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

use pulltime::layer::{ApplyOptions, apply_layer};
use pulltime::oci::media_type::Compression;
use pulltime::synth::{ImageProfile, SynthOptions, synthesize};

/// ~3,000 files of a few KB (a /usr tree), 24 MB.
const MANY_SMALL: &str = r#"
name = "extract-many-small"
seed = 21
[[layers]]
name = "many small files"
path = "usr"
size = "24MB"
files = 3000
depth = 5
mix = { text = 0.40, binary = 0.55, compressed = 0.05 }
symlinks = 100
"#;

/// 6 files, 96 MB.
const FEW_LARGE: &str = r#"
name = "extract-few-large"
seed = 22
[[layers]]
name = "few large files"
path = "models"
size = "96MB"
files = 6
depth = 1
size_sigma = 0.5
mix = { text = 0.0, binary = 0.5, compressed = 0.5 }
"#;

/// The layer's uncompressed tar stream.
fn layer_tar(profile: &str) -> Vec<u8> {
    let profile = ImageProfile::parse("extract-bench", profile).expect("profile");
    let dir = tempfile::tempdir().expect("tempdir");
    let image = synthesize(
        &profile,
        SynthOptions {
            scale: 1.0,
            compression: Compression::None,
        },
        dir.path(),
        "bench",
    )
    .expect("synthesize");
    let hex = image.layers[0]
        .digest
        .strip_prefix("sha256:")
        .expect("sha256 digest");
    std::fs::read(dir.path().join("blobs/sha256").join(hex)).expect("blob")
}

fn bench_dir() -> PathBuf {
    std::env::var_os("PULLTIME_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

fn fresh_root(parent: &Path) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pulltime-extract-bench")
        .tempdir_in(parent)
        .expect("bench dir")
}

fn extract(c: &mut Criterion) {
    let parent = bench_dir();
    let options = ApplyOptions::default();
    let mut group = c.benchmark_group("extract");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));

    // Many small files: every iteration's tree is kept until this bench ends. On
    // ext4 without a journal, inode allocation skips recently deleted inodes one
    // by one (`recently_deleted` in fs/ext4/ialloc.c), so deleting 3,000 files
    // before each iteration would time the filesystem's cost of the bench loop,
    // not extraction. Flat sampling keeps the number of kept trees small.
    let tar = layer_tar(MANY_SMALL);
    group.throughput(Throughput::Bytes(tar.len() as u64));
    group.sampling_mode(SamplingMode::Flat);
    let mut kept = Vec::new();
    group.bench_function("many-small-files", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let root = fresh_root(&parent);
                let started = Instant::now();
                let stats = apply_layer(&tar[..], root.path(), &options).expect("apply");
                total += started.elapsed();
                assert!(stats.files > 0);
                kept.push(root);
            }
            total
        })
    });
    drop(kept);

    // Few large files: a handful of inodes, so deleting between iterations is
    // harmless, and keeping ~100 MB per iteration would not be.
    let tar = layer_tar(FEW_LARGE);
    group.throughput(Throughput::Bytes(tar.len() as u64));
    group.sampling_mode(SamplingMode::Auto);
    group.bench_function("few-large-files", |b| {
        b.iter_batched(
            || fresh_root(&parent),
            |root| {
                let stats = apply_layer(&tar[..], root.path(), &options).expect("apply");
                assert!(stats.files > 0);
                // Returned, so the removal happens after the timing.
                root
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, extract);
criterion_main!(benches);
