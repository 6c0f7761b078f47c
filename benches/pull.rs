//! Criterion benches of whole cold pulls through the library API: synthetic images
//! (the study's profiles at a small scale, gzip and zstd) served by the embedded
//! registry on loopback. `cargo bench --bench pull -- --save-baseline main`, then
//! `cargo bench --bench pull -- --baseline main` after a change.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use pulltime::lab::{ColdPuller, start_registry, synth_and_push};
use pulltime::oci::media_type::Compression;
use pulltime::server::ServeOptions;
use pulltime::synth::SynthOptions;

const SCALE: f64 = 0.01;

fn pulls(c: &mut Criterion) {
    let registry = start_registry(ServeOptions::default()).expect("embedded registry");
    let puller = ColdPuller::new().expect("runtime");
    let mut group = c.benchmark_group("cold-pull");
    group.sample_size(10);
    for profile in [
        "sn-compose-post-original",
        "sn-compose-post-multistage",
        "ml-object-detection-multistage",
    ] {
        for (name, compression) in [("gzip", Compression::Gzip), ("zstd", Compression::Zstd)] {
            let tag = format!("{profile}:{name}");
            let image = synth_and_push(
                profile,
                SynthOptions {
                    scale: SCALE,
                    compression,
                },
                &registry,
                &tag,
            )
            .expect("image");
            let reference = registry.reference(&tag);
            group.throughput(Throughput::Bytes(image.uncompressed_bytes()));
            group.bench_function(format!("{profile}/{name}"), |b| {
                b.iter(|| puller.pull(&reference).expect("pull"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pulls);
criterion_main!(benches);
