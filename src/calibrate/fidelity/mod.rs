//! How close is the simulator to measured pulls? For synthetic images and network
//! profiles, [`run`] pulls each image cold from `pulltime serve` with the profile
//! (median of several runs) and simulates the same image, network and policy with
//! this host's calibrated profile; [`FidelityReport::render`] is the table of
//! measured, simulated and the error that `benches/fidelity.rs` prints and
//! docs/model.md quotes.
//!
//! On tmpfs it calibrates (`pulltime calibrate` on the same directory) before the
//! first network and after each network's pulls, and simulates each case with the
//! two calibrations that bracket its pulls (the mean of both predictions: a shared
//! machine's speed drifts from minute to minute); on a disk it measures everything
//! first and calibrates once at the end (nothing may be deleted before the pulls:
//! on ext4 without a journal, files created in the minutes after many were deleted
//! cost several times more). The images of a network are pulled in turn, run by
//! run, so a burst of load falls on all of them, and each case keeps the share of
//! CPU time the hypervisor stole during its pulls. Fast networks pull the images
//! at five times the scale of slow ones, so that a pull lasts long enough
//! (0.2-1 s) to time on a shared machine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::lab::LabError;
use crate::oci::media_type::Compression;
use crate::oci::stats::Stats;
use crate::profiles::ProfileError;
use crate::profiles::host::HostProfile;
use crate::profiles::network::NetworkProfile;
use crate::server::ServeError;
use crate::sim::fleet::{FleetOptions, simulate_fleet};
use crate::sim::input::{InputError, from_layout};
use crate::sim::{Policy, Scenario, SimError, simulate_record};
use crate::synth::{ImageProfile, SynthError, SynthOptions, synthesize};
use pulls::{Measured, measure};

mod pulls;

/// An image the bench pulls: a built-in image profile, synthesized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FidelityImage {
    /// Image profile name.
    pub profile: &'static str,
    /// Its scale on slow networks.
    pub scale: f64,
    /// Its layers' compression.
    pub compression: Compression,
}

/// The images, pulled over every network.
pub const IMAGES: &[FidelityImage] = &[
    FidelityImage {
        profile: "sn-compose-post-original",
        scale: 0.02,
        compression: Compression::Gzip,
    },
    FidelityImage {
        profile: "sn-compose-post-multistage",
        scale: 0.02,
        compression: Compression::Gzip,
    },
    FidelityImage {
        profile: "ml-object-detection-multistage",
        scale: 0.01,
        compression: Compression::Zstd,
    },
];

/// A network the bench pulls over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FidelityNetwork {
    /// Network profile name.
    pub name: &'static str,
    /// Docker Hub emulation (token, redirects to a CDN).
    pub dockerhub: bool,
    /// How many times the images' slow-network scale it pulls.
    pub times: u32,
}

/// Every network, in the order they are measured.
pub const NETWORKS: &[FidelityNetwork] = &[
    FidelityNetwork {
        name: "dockerhub-100m",
        dockerhub: true,
        times: 1,
    },
    FidelityNetwork {
        name: "home-50m",
        dockerhub: false,
        times: 1,
    },
    FidelityNetwork {
        name: "edge-20m",
        dockerhub: false,
        times: 1,
    },
    FidelityNetwork {
        name: "lan-1g",
        dockerhub: false,
        times: 5,
    },
    FidelityNetwork {
        name: "loopback",
        dockerhub: false,
        times: 5,
    },
];

/// The networks named in `only` (every one when it names none), in [`NETWORKS`]'
/// order; the first two of those when `quick`.
pub fn select_networks(only: &[&str], quick: bool) -> Vec<FidelityNetwork> {
    NETWORKS
        .iter()
        .filter(|n| only.is_empty() || only.contains(&n.name))
        .take(if quick { 2 } else { NETWORKS.len() })
        .copied()
        .collect()
}

/// Where pulls extract unless told otherwise: tmpfs (`/dev/shm`), which keeps the
/// host's costs steady so the table measures the model, else the temporary
/// directory.
pub fn default_dest_dir() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct FidelityOptions {
    /// Where pulls extract (and calibration probes).
    pub dest_dir: PathBuf,
    /// The networks, in order (at least one).
    pub networks: Vec<FidelityNetwork>,
}

/// Why the measurement stopped.
#[derive(Debug, thiserror::Error)]
pub enum FidelityError {
    /// No network to measure.
    #[error("no networks to measure")]
    NoNetworks,
    /// The scratch directory for the images.
    #[error("scratch directory")]
    Scratch(#[source] std::io::Error),
    /// An image or network profile.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// Synthesizing an image.
    #[error(transparent)]
    Synth(#[from] SynthError),
    /// Calibrating this host.
    #[error("calibrating")]
    Calibrate(#[source] std::io::Error),
    /// Starting the registry.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A pull.
    #[error(transparent)]
    Pull(#[from] LabError),
    /// Reading a synthesized image back for the simulator.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The simulator.
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// One image over one network: measured against simulated.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// Image profile.
    pub image: &'static str,
    /// Scale it was synthesized at.
    pub scale: f64,
    /// Network.
    pub network: FidelityNetwork,
    /// Cold pulls timed.
    pub runs: usize,
    /// Their median wall time, seconds.
    pub measured_s: f64,
    /// The mean of the predictions with the two calibrations that bracket the
    /// pulls (indices into [`FidelityReport::calibrations`]).
    pub simulated_s: f64,
    /// Those calibrations: before and after the pulls (the same one on a disk).
    pub calibrations: (usize, usize),
    /// Share of the CPU time during its pulls that the hypervisor gave to others.
    pub steal: f64,
}

impl CaseResult {
    /// Signed relative error of the simulation: (simulated - measured) / measured.
    pub fn error(&self) -> f64 {
        (self.simulated_s - self.measured_s) / self.measured_s
    }
}

/// How fast the simulator itself is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulatorSpeed {
    /// Layers of the image simulated.
    pub layers: usize,
    /// Seconds per simulated pull, record included.
    pub per_pull_s: f64,
    /// Seconds to simulate a 10,000-node burst of the same image.
    pub fleet_s: f64,
}

/// Everything [`run`] measured.
#[derive(Debug, Clone)]
pub struct FidelityReport {
    /// Cases in the order they were pulled.
    pub cases: Vec<CaseResult>,
    /// The simulator's own speed.
    pub speed: SimulatorSpeed,
    /// The host's calibrations, in the order they were taken.
    pub calibrations: Vec<HostProfile>,
}

impl FidelityReport {
    /// Absolute errors of the cases, in order.
    pub fn errors(&self) -> Vec<f64> {
        self.cases.iter().map(|c| c.error().abs()).collect()
    }

    /// Cases whose absolute error is at most `bound` (0.10: 10%).
    pub fn within(&self, bound: f64) -> usize {
        self.errors().iter().filter(|e| **e <= bound).count()
    }

    /// The Markdown table, the summary, the simulator's speed and the
    /// calibrations: what the bench prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out += "| image | network | policy | measured (median of runs) | simulated | error | CPU stolen |\n";
        out += "|---|---|---|---|---|---|---|\n";
        for c in &self.cases {
            let _ = writeln!(
                out,
                "| {} (scale {}) | {} | pulltime streaming | {:.3} s ({} runs) | {:.3} s | {:+.1}% | {:.1}% |",
                c.image,
                c.scale,
                c.network.name,
                c.measured_s,
                c.runs,
                c.simulated_s,
                100.0 * c.error(),
                100.0 * c.steal
            );
        }
        let errors = self.errors();
        let worst = errors.iter().cloned().fold(0.0, f64::max);
        out += "\n";
        let _ = writeln!(
            out,
            "{} of {} cases within 10%; median error {:.1}%, worst {:.1}%",
            self.within(0.10),
            errors.len(),
            100.0 * Stats::of(&errors).median,
            100.0 * worst
        );
        let _ = writeln!(
            out,
            "one simulated pull of a {}-layer image, record included: {:.1} us",
            self.speed.layers,
            self.speed.per_pull_s * 1e6
        );
        let _ = writeln!(
            out,
            "a 10,000-node burst of the same image (10 Gbit/s egress, 2 s spread): {:.3} s",
            self.speed.fleet_s
        );
        for host in &self.calibrations {
            let _ = writeln!(out, "calibration: {}", host.summary());
        }
        out
    }
}

/// Synthesizes the images, pulls and calibrates, simulates: the whole
/// measurement. Takes minutes.
pub fn run(options: &FidelityOptions) -> Result<FidelityReport, FidelityError> {
    if options.networks.is_empty() {
        return Err(FidelityError::NoNetworks);
    }
    let on_tmpfs =
        crate::pipeline::filesystem::filesystem_type(&options.dest_dir).as_deref() == Some("tmpfs");
    let work = tempfile::tempdir().map_err(FidelityError::Scratch)?;
    let layout = work.path().join("layout");
    let mut multipliers: Vec<u32> = options.networks.iter().map(|n| n.times).collect();
    multipliers.sort();
    multipliers.dedup();
    for times in &multipliers {
        for image in IMAGES {
            let p = ImageProfile::load(image.profile)?;
            let synth = SynthOptions {
                scale: image.scale * f64::from(*times),
                compression: image.compression,
            };
            synthesize(&p, synth, &layout, &tag(image.profile, *times))?;
        }
    }
    let (measured, calibrations) = measure(options, &layout, on_tmpfs)?;
    let cases = measured
        .into_iter()
        .map(|m| simulate_case(m, &layout, &calibrations))
        .collect::<Result<Vec<_>, _>>()?;
    let speed = simulator_speed(
        &layout,
        &tag(IMAGES[0].profile, multipliers[0]),
        &calibrations[0],
    )?;
    Ok(FidelityReport {
        cases,
        speed,
        calibrations,
    })
}

/// The layout tag of `profile` at `times` its slow-network scale.
fn tag(profile: &str, times: u32) -> String {
    format!("{profile}-x{times}")
}

/// Simulates a measured case with the calibrations that bracket it.
fn simulate_case(
    m: Measured,
    layout: &Path,
    hosts: &[HostProfile],
) -> Result<CaseResult, FidelityError> {
    let image = from_layout(layout, &m.tag)?;
    let simulate_with = |host: &HostProfile| -> Result<f64, FidelityError> {
        let scenario = Scenario {
            network: NetworkProfile::load(m.network.name)?,
            host: host.clone(),
            policy: Policy::Pulltime,
            max_concurrent_downloads: 3,
            dockerhub_flow: m.network.dockerhub,
            index: false,
            // `pulltime serve` runs on this host.
            registry_on_host: true,
        };
        Ok(simulate_record(&image, &scenario, vec![])?.runs[0].wall_s)
    };
    let (before, after) = m.calibrations;
    let simulated_s = (simulate_with(&hosts[before])? + simulate_with(&hosts[after])?) / 2.0;
    Ok(CaseResult {
        image: m.image,
        scale: m.scale,
        network: m.network,
        runs: m.runs,
        measured_s: m.measured_s,
        simulated_s,
        calibrations: m.calibrations,
        steal: m.steal,
    })
}

/// Times the simulator on the image tagged `tag`: 10,000 single pulls over Docker
/// Hub, and one 10,000-node burst.
fn simulator_speed(
    layout: &Path,
    tag: &str,
    host: &HostProfile,
) -> Result<SimulatorSpeed, FidelityError> {
    let image = from_layout(layout, tag)?;
    let scenario = Scenario {
        network: NetworkProfile::load("dockerhub-100m")?,
        host: host.clone(),
        policy: Policy::Pulltime,
        max_concurrent_downloads: 3,
        dockerhub_flow: true,
        index: false,
        registry_on_host: false,
    };
    let n = 10_000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(simulate_record(&image, &scenario, vec![])?);
    }
    let per_pull_s = t.elapsed().as_secs_f64() / n as f64;
    let fleet = FleetOptions {
        nodes: 10_000,
        egress_bps: 1.25e9,
        spread_s: 2.0,
        cached_fraction: 0.0,
        cached_layers: 0,
        seed: 1,
    };
    let t = std::time::Instant::now();
    std::hint::black_box(simulate_fleet(&image, &scenario, &fleet)?);
    Ok(SimulatorSpeed {
        layers: image.layers.len(),
        per_pull_s,
        fleet_s: t.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests;
