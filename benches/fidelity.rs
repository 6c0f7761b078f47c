//! How close is the simulator to measured pulls? For synthetic images and network
//! profiles, pull each image cold from `pulltime serve` with the profile (median of
//! several runs) and simulate the same image, network and policy with this host's
//! calibrated profile; print measured, simulated and the error.
//!
//! Run: `cargo bench --bench fidelity` (release build; `-- lan-1g loopback` for
//! some networks only, `-- --dest-dir DIR` to extract elsewhere). On tmpfs it
//! calibrates (`pulltime calibrate` on the same directory) before the first
//! network and after each network's pulls, and simulates each case with the two
//! calibrations that bracket its pulls (the mean of both predictions: this shared
//! machine's speed drifts from minute to minute); on a disk it measures
//! everything first and calibrates once at the end (nothing may be deleted before
//! the pulls). The images of a network are pulled in turn, run by run, so a burst
//! of load falls on all of them, and the table shows the share of CPU time the
//! hypervisor stole during each case's pulls. docs/model.md quotes its table.
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
    /// Indices of the calibrations taken before and after its pulls.
    calibrations: (usize, usize),
    network: &'static str,
    hub: bool,
    image: String,
    scale: f64,
    runs: usize,
    measured: f64,
    /// Share of the CPU time during its pulls that the hypervisor gave to others.
    steal: f64,
}

/// CPU time of this (virtual) machine from `/proc/stat`, in clock ticks: all of
/// it, and what the hypervisor stole (zeros where there is no `/proc/stat`).
#[derive(Debug, Default, Clone, Copy)]
struct CpuTicks {
    total: u64,
    steal: u64,
}

impl CpuTicks {
    fn now() -> CpuTicks {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        // cpu user nice system idle iowait irq softirq steal ...
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|f| f.parse().ok())
            .collect();
        CpuTicks {
            total: fields.iter().sum(),
            steal: fields.get(7).copied().unwrap_or(0),
        }
    }

    /// Adds the ticks between `before` and `after`.
    fn add(&mut self, before: &CpuTicks, after: &CpuTicks) {
        self.total += after.total.saturating_sub(before.total);
        self.steal += after.steal.saturating_sub(before.steal);
    }

    fn steal_fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.steal as f64 / self.total as f64
        }
    }
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
    // On a disk, measure everything first, then calibrate, and delete nothing until
    // the end (on ext4 without a journal, files created in the minutes after many
    // were deleted cost several times more); tmpfs has no such memory, so each
    // network's trees go as soon as its pulls are done, before the calibration
    // that follows them.
    let mut kept = Vec::new();
    let mut cases = Vec::new();
    let mut hosts = Vec::new();
    let calibrate_here = || calibrate(&dest_dir, CalibrateOptions::default()).expect("calibrate");
    for (network, hub, times) in chosen {
        if on_tmpfs && hosts.is_empty() {
            hosts.push(calibrate_here());
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
        // One pull of each image first (discarded) warms the registry's page cache
        // and sets its number of runs.
        let mut pulling: Vec<_> = IMAGES
            .iter()
            .map(|(name, scale, _)| {
                let image = tag(name, *times);
                let puller = ColdPuller::in_dir(&dest_dir).unwrap();
                let reference = server.reference(&format!("app:{image}"));
                let first = puller.pull(&reference).unwrap().runs[0].wall_s;
                let runs = ((MEASURE_S / first).ceil() as usize).clamp(MIN_RUNS, MAX_RUNS);
                let case = Case {
                    calibrations: (0, 0),
                    network,
                    hub: *hub,
                    image,
                    scale: scale * f64::from(*times),
                    runs,
                    measured: 0.0,
                    steal: 0.0,
                };
                (case, puller, reference, Vec::new(), CpuTicks::default())
            })
            .collect();
        // Round robin over the images, so that a burst of load on this shared
        // machine falls on all of them rather than on one case.
        for round in 0..MAX_RUNS {
            for (case, puller, reference, walls, ticks) in &mut pulling {
                if round < case.runs {
                    let before = CpuTicks::now();
                    walls.push(puller.pull(reference).unwrap().runs[0].wall_s);
                    ticks.add(&before, &CpuTicks::now());
                }
            }
        }
        let first_case = cases.len();
        for (mut case, puller, _, walls, ticks) in pulling {
            case.measured = Stats::of(&walls).median;
            case.steal = ticks.steal_fraction();
            cases.push(case);
            if !on_tmpfs {
                kept.push(puller);
            }
        }
        drop(server);
        // On tmpfs, the calibrations taken right before and right after bracket
        // the pulls (the machine's speed drifts from minute to minute).
        if on_tmpfs {
            hosts.push(calibrate_here());
        }
        let bracket = (hosts.len().saturating_sub(2), hosts.len().saturating_sub(1));
        for case in &mut cases[first_case..] {
            case.calibrations = bracket;
        }
    }
    if !on_tmpfs {
        hosts.push(calibrate_here());
    }
    drop(kept);
    println!(
        "| image | network | policy | measured (median of runs) | simulated | error | CPU stolen |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut errors = Vec::new();
    for case in &cases {
        let image = from_layout(&layout, &case.image).unwrap();
        let simulate_with = |host: usize| {
            let scenario = Scenario {
                network: NetworkProfile::load(case.network).unwrap(),
                host: hosts[host].clone(),
                policy: Policy::Pulltime,
                max_concurrent_downloads: 3,
                dockerhub_flow: case.hub,
                index: false,
                // `pulltime serve` runs on this host.
                registry_on_host: true,
            };
            simulate_record(&image, &scenario, vec![]).unwrap().runs[0].wall_s
        };
        let measured = case.measured;
        let (before, after) = case.calibrations;
        let simulated = (simulate_with(before) + simulate_with(after)) / 2.0;
        let err = (simulated - measured) / measured;
        errors.push(err.abs());
        let name = case
            .image
            .rsplit_once("-x")
            .map_or(&*case.image, |(n, _)| n);
        println!(
            "| {name} (scale {}) | {} | pulltime streaming | {measured:.3} s ({} runs) | {simulated:.3} s | {:+.1}% | {:.1}% |",
            case.scale,
            case.network,
            case.runs,
            100.0 * err,
            100.0 * case.steal
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
        std::hint::black_box(simulate_record(&image, &scenario, vec![]).unwrap());
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
    let fleet = pulltime::sim::fleet::simulate_fleet(&image, &scenario, &fleet_opts).unwrap();
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
        println!("calibration: {}", host.summary());
    }
}
