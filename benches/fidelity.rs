//! How close is the simulator to measured pulls? For synthetic images and network
//! profiles, pull each image cold from `pulltime serve` with the profile (median of
//! several runs) and simulate the same image, network and policy with this host's
//! calibrated profile; print measured, simulated and the error.
//!
//! Run: `cargo bench --bench fidelity` (release build; `-- lan-1g loopback` for
//! some networks only, `-- --dest-dir DIR` to extract elsewhere). On tmpfs it
//! calibrates (`pulltime calibrate` on the same directory) right before each
//! network's pulls, so a calibration and the pulls it predicts are seconds apart;
//! on a disk it measures everything first and calibrates once at the end (nothing
//! may be deleted before the pulls). Then it simulates; docs/model.md quotes its
//! table.
//!
//! Pulls extract to tmpfs (`/dev/shm`) unless told otherwise: on this project's
//! ext4 without a journal, what a file costs to create depends on what was deleted
//! in the minutes before (and writeback of earlier pulls), which no calibration
//! taken at another moment can know; tmpfs keeps the host's costs steady so the
//! table measures the model. Fast networks pull the images at five times the scale
//! of slow ones, so that a pull lasts long enough (0.2-1 s) to time on a shared
//! machine.

use std::path::PathBuf;

use pulltime::calibrate::{CalibrateOptions, calibrate};
use pulltime::lab::ColdPuller;
use pulltime::network::NetworkProfile;
use pulltime::registry::Compression;
use pulltime::server::{ServeOptions, ServerThread};
use pulltime::sim::{Policy, Scenario, input::from_layout, simulate_record};
use pulltime::stats::Stats;
use pulltime::synth::{ImageProfile, SynthOptions, synthesize};

/// Cold pulls per case: enough for about this many seconds of pulling...
const MEASURE_S: f64 = 4.0;
/// ...but at least this many (a median needs a few) and at most this many.
const MIN_RUNS: usize = 5;
const MAX_RUNS: usize = 15;

/// Images and their scale on slow networks.
const IMAGES: &[(&str, f64, Compression)] = &[
    ("sn-compose-post-original", 0.02, Compression::Gzip),
    ("sn-compose-post-multistage", 0.02, Compression::Gzip),
    ("ml-object-detection-multistage", 0.01, Compression::Zstd),
];

/// Networks: Docker Hub emulation, and how many times the images' slow-network
/// scale they pull.
const NETWORKS: &[(&str, bool, u32)] = &[
    ("dockerhub-100m", true, 1),
    ("home-50m", false, 1),
    ("edge-20m", false, 1),
    ("lan-1g", false, 5),
    ("loopback", false, 5),
];

struct Case {
    /// Index into the calibrations.
    host: usize,
    network: &'static str,
    hub: bool,
    image: String,
    scale: f64,
    runs: usize,
    measured: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let dest_dir = args
        .iter()
        .position(|a| a == "--dest-dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let shm = PathBuf::from("/dev/shm");
            if shm.is_dir() {
                shm
            } else {
                std::env::temp_dir()
            }
        });
    let on_tmpfs = pulltime::measure::filesystem_type(&dest_dir).as_deref() == Some("tmpfs");
    // `cargo bench --bench fidelity -- lan-1g loopback` measures only those.
    let only: Vec<&str> = NETWORKS
        .iter()
        .map(|(n, _, _)| *n)
        .filter(|n| args.iter().any(|a| a == n))
        .collect();
    let chosen: Vec<_> = NETWORKS
        .iter()
        .filter(|(n, _, _)| only.is_empty() || only.contains(n))
        .take(if quick { 2 } else { NETWORKS.len() })
        .collect();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let tag = |name: &str, times: u32| format!("{name}-x{times}");
    let mut multipliers: Vec<u32> = chosen.iter().map(|(_, _, m)| *m).collect();
    multipliers.sort();
    multipliers.dedup();
    for times in &multipliers {
        for (name, scale, c) in IMAGES {
            let p = ImageProfile::load(name).unwrap();
            let options = SynthOptions {
                scale: scale * f64::from(*times),
                compression: *c,
            };
            synthesize(&p, options, &layout, &tag(name, *times)).unwrap();
        }
    }
    // Measure everything first, then calibrate. On a disk, nothing is deleted until
    // the end (on ext4 without a journal, files created in the minutes after many
    // were deleted cost several times more); tmpfs has no such memory, so each
    // case's trees go as soon as it is done.
    let mut kept = Vec::new();
    let mut cases = Vec::new();
    let mut hosts = Vec::new();
    for (network, hub, times) in chosen {
        if on_tmpfs {
            hosts.push(calibrate(&dest_dir, CalibrateOptions::default()).expect("calibrate"));
        }
        let profile = NetworkProfile::load(network).unwrap();
        let server = ServerThread::spawn(ServeOptions {
            layouts: vec![("app".into(), layout.clone())],
            network: profile.clone(),
            emulate_dockerhub: *hub,
            rate_limit: 100_000,
            ..ServeOptions::default()
        })
        .unwrap();
        for (name, scale, _) in IMAGES {
            let image = tag(name, *times);
            let puller = ColdPuller::in_dir(&dest_dir).unwrap();
            let reference = server.reference(&format!("app:{image}"));
            // One pull first (discarded) warms the registry's page cache and sets
            // the number of runs.
            let first = puller.pull(&reference).unwrap().runs[0].wall_s;
            let runs = ((MEASURE_S / first).ceil() as usize).clamp(MIN_RUNS, MAX_RUNS);
            let walls: Vec<f64> = (0..runs)
                .map(|_| puller.pull(&reference).unwrap().runs[0].wall_s)
                .collect();
            cases.push(Case {
                host: hosts.len().saturating_sub(1),
                network,
                hub: *hub,
                image,
                scale: scale * f64::from(*times),
                runs,
                measured: Stats::of(&walls).median,
            });
            if !on_tmpfs {
                kept.push(puller);
            }
        }
    }
    if !on_tmpfs {
        hosts.push(calibrate(&dest_dir, CalibrateOptions::default()).expect("calibrate"));
    }
    drop(kept);
    println!("| image | network | policy | measured (median of runs) | simulated | error |");
    println!("|---|---|---|---|---|---|");
    let mut errors = Vec::new();
    for case in &cases {
        let image = from_layout(&layout, &case.image).unwrap();
        let scenario = Scenario {
            network: NetworkProfile::load(case.network).unwrap(),
            host: hosts[case.host].clone(),
            policy: Policy::Pulltime,
            max_concurrent_downloads: 3,
            dockerhub_flow: case.hub,
            index: false,
            // `pulltime serve` runs on this host.
            registry_on_host: true,
        };
        let measured = case.measured;
        let simulated = simulate_record(&image, &scenario, vec![]).runs[0].wall_s;
        let err = (simulated - measured) / measured;
        errors.push(err.abs());
        let name = case
            .image
            .rsplit_once("-x")
            .map_or(&*case.image, |(n, _)| n);
        println!(
            "| {name} (scale {}) | {} | pulltime streaming | {measured:.3} s ({} runs) | {simulated:.3} s | {:+.1}% |",
            case.scale,
            case.network,
            case.runs,
            100.0 * err
        );
    }
    // How fast is the simulator itself?
    let image = from_layout(&layout, &tag(IMAGES[0].0, multipliers[0])).unwrap();
    let scenario = Scenario {
        network: NetworkProfile::load("dockerhub-100m").unwrap(),
        host: hosts[0].clone(),
        policy: Policy::Pulltime,
        max_concurrent_downloads: 3,
        dockerhub_flow: true,
        index: false,
        registry_on_host: false,
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
        "{within10} of {} cases within 10%; median error {:.1}%, worst {:.1}%",
        errors.len(),
        100.0 * Stats::of(&errors).median,
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
    for host in &hosts {
        println!(
            "calibration: sha256 {:.0} MB/s, gzip {:.0} MB/s, zstd {:.0} MB/s, extract {:.0} MB/s + {:.0} us/file + {:.0} us/dir ({}); start-up {:.1} ms, {:.2} ms per request, loopback {:.0} MB/s, serving {:.2} ns of CPU per byte, spool write {:.0} MB/s, read {:.0} MB/s",
            host.sha256_bps / 1e6,
            host.gzip_bps / 1e6,
            host.zstd_bps / 1e6,
            host.extract_bps / 1e6,
            host.extract_per_file_s * 1e6,
            host.extract_per_dir_s * 1e6,
            host.filesystem,
            host.pull.startup_s * 1e3,
            host.pull.request_s * 1e3,
            host.pull.loopback_bps / 1e6,
            host.pull.serve_cpu_s_per_byte * 1e9,
            host.pull.spool_write_bps / 1e6,
            host.pull.spool_read_bps / 1e6
        );
    }
}
