//! Bench the cold pull of your own image with criterion, the way `benches/pull.rs`
//! benches the synthetic ones.
//!
//! Export the image to an OCI layout (e.g. `skopeo copy docker://IMAGE oci:./layout:v1`),
//! then:
//!
//! ```sh
//! cargo run --release --example bench_own_image -- ./layout v1 [NETWORK]
//! ```
//!
//! NETWORK is a profile name (`dockerhub-100m`, `lan-1g`, ...) or a TOML file;
//! default `loopback`. Criterion keeps its results under `target/criterion`, so a
//! second run reports the change.

use criterion::{Criterion, Throughput};

use pulltime::lab::{ColdPuller, start_registry};
use pulltime::profiles::network::NetworkProfile;
use pulltime::server::ServeOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (layout, tag) = match args.as_slice() {
        [l, t, ..] => (l.clone(), t.clone()),
        _ => return Err("usage: bench_own_image LAYOUT_DIR TAG [NETWORK]".into()),
    };
    let network = NetworkProfile::load(args.get(2).map_or("loopback", String::as_str))?;
    let registry = start_registry(ServeOptions {
        layouts: vec![("image".into(), layout.into())],
        network,
        ..ServeOptions::default()
    })?;
    let reference = registry.reference(&format!("image:{tag}"));
    let puller = ColdPuller::new()?;
    let first = puller.pull(&reference)?;
    let mut c = Criterion::default().sample_size(10);
    let mut group = c.benchmark_group("own-image");
    group.throughput(Throughput::Bytes(first.image.uncompressed_bytes));
    group.bench_function(&tag, |b| b.iter(|| puller.pull(&reference).expect("pull")));
    group.finish();
    c.final_summary();
    Ok(())
}
