//! The measuring half of the fidelity bench: cold pulls from `pulltime serve`,
//! round robin over the images of each network, with the CPU time the hypervisor
//! stole, and the calibrations that bracket them.

use std::path::Path;

use super::{FidelityError, FidelityNetwork, FidelityOptions, IMAGES, tag};
use crate::calibrate::{CalibrateOptions, calibrate};
use crate::lab::ColdPuller;
use crate::oci::stats::Stats;
use crate::profiles::host::HostProfile;
use crate::profiles::network::NetworkProfile;
use crate::server::{ServeOptions, ServerThread};

/// Cold pulls per case: enough for about this many seconds of pulling...
const MEASURE_S: f64 = 4.0;
/// ...but at least this many (a median needs a few) and at most this many.
const MIN_RUNS: usize = 5;
const MAX_RUNS: usize = 15;

/// A case measured, not yet simulated.
pub(super) struct Measured {
    /// Image profile.
    pub(super) image: &'static str,
    /// Its tag in the layout.
    pub(super) tag: String,
    /// Scale it was synthesized at.
    pub(super) scale: f64,
    /// Network.
    pub(super) network: FidelityNetwork,
    /// Cold pulls timed.
    pub(super) runs: usize,
    /// Their median wall time.
    pub(super) measured_s: f64,
    /// Share of CPU time stolen during them.
    pub(super) steal: f64,
    /// Calibrations before and after them.
    pub(super) calibrations: (usize, usize),
}

/// Pulls every image over every network; returns the cases and the calibrations,
/// in the order they were taken.
pub(super) fn measure(
    options: &FidelityOptions,
    layout: &Path,
    on_tmpfs: bool,
) -> Result<(Vec<Measured>, Vec<HostProfile>), FidelityError> {
    let calibrate_here = || {
        calibrate(&options.dest_dir, CalibrateOptions::default()).map_err(FidelityError::Calibrate)
    };
    // On a disk, delete nothing until the end; tmpfs has no such memory, so each
    // network's trees go as soon as its pulls are done, before the calibration
    // that follows them.
    let mut kept = Vec::new();
    let mut cases = Vec::new();
    let mut hosts = Vec::new();
    for network in &options.networks {
        if on_tmpfs && hosts.is_empty() {
            hosts.push(calibrate_here()?);
        }
        let first_case = cases.len();
        let keep = (!on_tmpfs).then_some(&mut kept);
        cases.extend(measure_network(network, layout, &options.dest_dir, keep)?);
        // On tmpfs, the calibrations taken right before and right after bracket
        // the pulls (the machine's speed drifts from minute to minute).
        if on_tmpfs {
            hosts.push(calibrate_here()?);
        }
        let bracket = (hosts.len().saturating_sub(2), hosts.len().saturating_sub(1));
        for case in &mut cases[first_case..] {
            case.calibrations = bracket;
        }
    }
    if !on_tmpfs {
        hosts.push(calibrate_here()?);
    }
    drop(kept);
    Ok((cases, hosts))
}

/// One image being pulled over a network.
struct Pulling {
    case: Measured,
    puller: ColdPuller,
    reference: String,
    walls: Vec<f64>,
    ticks: CpuTicks,
}

/// Pulls every image over `network`, round robin. The pullers (and their trees)
/// go to `keep` when given, else as soon as their case is measured.
fn measure_network(
    network: &FidelityNetwork,
    layout: &Path,
    dest_dir: &Path,
    mut keep: Option<&mut Vec<ColdPuller>>,
) -> Result<Vec<Measured>, FidelityError> {
    let server = ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.to_path_buf())],
        network: NetworkProfile::load(network.name)?,
        emulate_dockerhub: network.dockerhub,
        rate_limit: 100_000,
        ..ServeOptions::default()
    })?;
    // One pull of each image first (discarded) warms the registry's page cache
    // and sets its number of runs.
    let mut pulling = Vec::new();
    for image in IMAGES {
        let tag = tag(image.profile, network.times);
        let puller = ColdPuller::in_dir(dest_dir)?;
        let reference = server.reference(&format!("app:{tag}"));
        let first = puller.pull(&reference)?.runs[0].wall_s;
        let runs = ((MEASURE_S / first).ceil() as usize).clamp(MIN_RUNS, MAX_RUNS);
        pulling.push(Pulling {
            case: Measured {
                image: image.profile,
                tag,
                scale: image.scale * f64::from(network.times),
                network: *network,
                runs,
                measured_s: 0.0,
                steal: 0.0,
                calibrations: (0, 0),
            },
            puller,
            reference,
            walls: Vec::new(),
            ticks: CpuTicks::default(),
        });
    }
    // Round robin over the images, so that a burst of load on this shared
    // machine falls on all of them rather than on one case.
    for round in 0..MAX_RUNS {
        for p in &mut pulling {
            if round < p.case.runs {
                let before = CpuTicks::now();
                p.walls.push(p.puller.pull(&p.reference)?.runs[0].wall_s);
                p.ticks.add(&before, &CpuTicks::now());
            }
        }
    }
    let mut cases = Vec::new();
    for mut p in pulling {
        p.case.measured_s = Stats::of(&p.walls).median;
        p.case.steal = p.ticks.steal_fraction();
        cases.push(p.case);
        if let Some(kept) = keep.as_deref_mut() {
            kept.push(p.puller);
        }
    }
    drop(server);
    Ok(cases)
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
