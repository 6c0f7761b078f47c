//! Criterion benches of the per-byte stages of a pull, in bytes per second:
//! sha256 verification (per compressed byte), gzip decompression with every gzip
//! backend compiled in (`pipeline::gzip::GzipBackend::compiled_in`: ISA-L's igzip
//! with the feature `gzip-isal`, and flate2 with the backend its features select)
//! and zstd decompression (per uncompressed byte, the unit of
//! `benches/extract.rs`). The input is one synthetic layer (text, binary and
//! compressed content as in the study's profiles), so the ratios match what a
//! real layer costs; docs/performance.md, "gzip backends", has the same on real
//! layers (`benches/inflate_backends.sh`).
//!
//! ```text
//! cargo bench --bench codecs                                        # defaults
//! cargo bench --bench codecs --features gzip-isal                   # isal and zlib-rs
//! cargo bench --bench codecs --no-default-features --features gzip-zlib-rs
//! cargo bench --bench codecs --no-default-features --features gzip-miniz
//! cargo bench --bench codecs --no-default-features --features gzip-zlib-ng  # needs cmake
//! ```

use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest as _, Sha256};

use pulltime::oci::media_type::Compression;
use pulltime::pipeline::gzip::GzipBackend;
use pulltime::synth::{ImageProfile, SynthOptions, synthesize};

/// One layer of ~32 MB of mixed content, a few hundred files.
const PROFILE: &str = r#"
name = "codec-bench"
seed = 11
[[layers]]
name = "mixed content"
path = "usr/lib"
size = "32MB"
files = 400
depth = 3
mix = { text = 0.40, binary = 0.50, compressed = 0.10 }
"#;

/// The one layer's blob, compressed as asked.
fn layer_blob(compression: Compression) -> Vec<u8> {
    let profile = ImageProfile::parse("codec-bench", PROFILE).expect("profile");
    let dir = tempfile::tempdir().expect("tempdir");
    let image = synthesize(
        &profile,
        SynthOptions {
            scale: 1.0,
            compression,
        },
        dir.path(),
        "bench",
    )
    .expect("synthesize");
    read_blob(dir.path(), &image.layers[0].digest)
}

fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    std::fs::read(layout.join("blobs/sha256").join(hex)).expect("blob")
}

/// Reads `reader` to its end through a 256 KiB buffer (the copy buffer of the
/// extractor); returns the bytes read.
fn drain(mut reader: impl Read) -> u64 {
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return n,
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("decompress: {e}"),
        }
    }
}

fn codecs(c: &mut Criterion) {
    let tar = layer_blob(Compression::None);
    let gzip = layer_blob(Compression::Gzip);
    let zstd = layer_blob(Compression::Zstd);

    let mut group = c.benchmark_group("codecs");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));

    // Verification hashes the compressed blob as it arrives.
    group.throughput(Throughput::Bytes(gzip.len() as u64));
    group.bench_function("sha256-verify", |b| {
        b.iter(|| {
            let mut hasher = Sha256::new();
            for chunk in gzip.chunks(64 << 10) {
                hasher.update(chunk);
            }
            hasher.finalize()
        })
    });

    // Decompression throughput in uncompressed (tar) bytes per second, the unit
    // of the extraction benches, so the two stages compare directly.
    group.throughput(Throughput::Bytes(tar.len() as u64));
    for &backend in GzipBackend::compiled_in() {
        group.bench_function(format!("gzip-decompress/{}", backend.name()), |b| {
            b.iter(|| {
                let out = drain(backend.decoder(&gzip[..]).expect("gzip decoder"));
                assert_eq!(out, tar.len() as u64);
            })
        });
    }

    group.throughput(Throughput::Bytes(tar.len() as u64));
    group.bench_function("zstd-decompress", |b| {
        b.iter(|| {
            let out = drain(zstd::stream::read::Decoder::new(&zstd[..]).expect("zstd"));
            assert_eq!(out, tar.len() as u64);
        })
    });
    group.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
