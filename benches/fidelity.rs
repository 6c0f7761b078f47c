//! How close is the simulator to measured pulls? For synthetic images and network
//! profiles, pull each image cold from `pulltime serve` with the profile (median of
//! several runs) and simulate the same image, network and policy with this host's
//! calibrated profile; print measured, simulated and the error.
//!
//! Run: `cargo bench --bench fidelity` (release build). It measures first, then
//! calibrates (`pulltime calibrate` on the temp dir), then simulates; docs/model.md
//! quotes its table.

use pulltime::calibrate::{CalibrateOptions, calibrate};
use pulltime::lab::ColdPuller;
use pulltime::network::NetworkProfile;
use pulltime::registry::Compression;
use pulltime::server::{ServeOptions, ServerThread};
use pulltime::sim::{Policy, Scenario, input::from_layout, simulate_record};
use pulltime::stats::Stats;
use pulltime::synth::{ImageProfile, SynthOptions, synthesize};

const RUNS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let images: &[(&str, f64, Compression)] = &[
        ("sn-compose-post-original", 0.02, Compression::Gzip),
        ("sn-compose-post-multistage", 0.02, Compression::Gzip),
        ("ml-object-detection-multistage", 0.01, Compression::Zstd),
    ];
    for (name, scale, c) in images {
        let p = ImageProfile::load(name).unwrap();
        synthesize(
            &p,
            SynthOptions {
                scale: *scale,
                compression: *c,
            },
            &layout,
            name,
        )
        .unwrap();
    }
    let networks: &[(&str, bool)] = &[
        ("dockerhub-100m", true),
        ("home-50m", false),
        ("edge-20m", false),
        ("lan-1g", false),
        ("loopback", false),
    ];
    // Measure everything first, then calibrate: nothing is deleted until the end,
    // because on ext4 without a journal files created in the minutes after many
    // were deleted cost several times more (the puller keeps its trees too).
    let puller = ColdPuller::new().unwrap();
    let mut measured_cases = Vec::new();
    for (network, hub) in networks.iter().take(if quick { 2 } else { networks.len() }) {
        let profile = NetworkProfile::load(network).unwrap();
        let server = ServerThread::spawn(ServeOptions {
            layouts: vec![("app".into(), layout.clone())],
            network: profile.clone(),
            emulate_dockerhub: *hub,
            rate_limit: 100_000,
            ..ServeOptions::default()
        })
        .unwrap();
        for (name, scale, _) in images {
            let reference = server.reference(&format!("app:{name}"));
            let walls: Vec<f64> = (0..RUNS)
                .map(|_| puller.pull(&reference).unwrap().runs[0].wall_s)
                .collect();
            measured_cases.push((*network, *hub, *name, *scale, Stats::of(&walls).median));
        }
    }
    let host = calibrate(&std::env::temp_dir(), CalibrateOptions::default()).expect("calibrate");
    println!("| image | network | policy | measured (median of {RUNS}) | simulated | error |");
    println!("|---|---|---|---|---|---|");
    let mut errors = Vec::new();
    for (network, hub, name, scale, measured) in measured_cases {
        let profile = NetworkProfile::load(network).unwrap();
        {
            let image = from_layout(&layout, name).unwrap();
            let scenario = Scenario {
                network: profile.clone(),
                host: host.clone(),
                policy: Policy::Pulltime,
                max_concurrent_downloads: 3,
                dockerhub_flow: hub,
                index: false,
            };
            let simulated = simulate_record(&image, &scenario, vec![]).runs[0].wall_s;
            let err = (simulated - measured) / measured;
            errors.push(err.abs());
            println!(
                "| {name} (scale {scale}) | {network} | pulltime streaming | {measured:.3} s | {simulated:.3} s | {:+.1}% |",
                100.0 * err
            );
        }
    }
    // How fast is the simulator itself?
    let image = from_layout(&layout, images[0].0).unwrap();
    let scenario = Scenario {
        network: NetworkProfile::load("dockerhub-100m").unwrap(),
        host: host.clone(),
        policy: Policy::Pulltime,
        max_concurrent_downloads: 3,
        dockerhub_flow: true,
        index: false,
    };
    let n = 10_000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(simulate_record(&image, &scenario, vec![]));
    }
    let per_sim = t.elapsed().as_secs_f64() / n as f64;
    let fleet_opts = pulltime::sim::fleet::FleetOptions {
        nodes: 10_000,
        egress_bps: 1.25e9,
        spread_s: 2.0,
        cached_fraction: 0.0,
        cached_layers: 0,
        seed: 1,
    };
    let t = std::time::Instant::now();
    let fleet = pulltime::sim::fleet::simulate_fleet(&image, &scenario, &fleet_opts);
    let fleet_s = t.elapsed().as_secs_f64();
    assert_eq!(fleet.completions.len(), 10_000);
    let within10 = errors.iter().filter(|e| **e <= 0.10).count();
    let worst = errors.iter().cloned().fold(0.0, f64::max);
    println!();
    println!(
        "{within10} of {} cases within 10%; worst {:.1}%",
        errors.len(),
        100.0 * worst
    );
    println!(
        "one simulated pull of a {}-layer image, record included: {:.1} us",
        image.layers.len(),
        per_sim * 1e6
    );
    println!(
        "a 10,000-node burst of the same image (10 Gbit/s egress, 2 s spread): {:.3} s",
        fleet_s
    );
    println!(
        "host: sha256 {:.0} MB/s, gzip {:.0} MB/s, zstd {:.0} MB/s, extract {:.0} MB/s + {:.0} us/file + {:.0} us/dir ({})",
        host.sha256_bps / 1e6,
        host.gzip_bps / 1e6,
        host.zstd_bps / 1e6,
        host.extract_bps / 1e6,
        host.extract_per_file_s * 1e6,
        host.extract_per_dir_s * 1e6,
        host.filesystem
    );
}
