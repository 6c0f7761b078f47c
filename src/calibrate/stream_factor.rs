//! pulltime's streaming CPU factor, fitted to the wall times of measured
//! streaming pulls (`calibrate --from-records ... --network NAME`).
//!
//! The stage costs a streaming pull records are busy times, and when its threads
//! outnumber the cores (a registry on this host, three downloads, two decoders
//! and an extractor on two cores) each is stretched by the others: summed, they
//! exceed the process's CPU time by up to a third on loopback here. Fitted as they
//! are, and shared out again by the simulator's processor sharing, they would
//! count the contention twice. One factor on every stage cost corrects for it: the
//! one whose simulations of the same pulls (each record's image, over the network
//! they were pulled over) come closest to their median wall times, in relative
//! terms.

use crate::oci::record::PullRecord;
use crate::profiles::host::HostProfile;
use crate::profiles::network::NetworkProfile;
use crate::sim::{Policy, Scenario, SimError, input::from_record, simulate_record};

/// The factors tried: 0.50 to 1.50 in steps of 0.01.
const FACTORS: std::ops::RangeInclusive<u32> = 50..=150;

/// One record against its simulation at the fitted factor.
#[derive(Debug, Clone, PartialEq)]
pub struct WallFit {
    /// The record, as the user named it.
    pub source: String,
    /// Median wall time of its runs.
    pub measured_s: f64,
    /// Simulated at the fitted factor.
    pub fitted_s: f64,
    /// Simulated at factor 1 (the stage costs as recorded).
    pub unfitted_s: f64,
}

/// The fitted factor and every record's wall time.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamFactorFit {
    /// The factor.
    pub factor: f64,
    /// Per record.
    pub walls: Vec<WallFit>,
}

/// Why the factor could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum StreamFactorError {
    /// No record of a streaming pull by pulltime.
    #[error(
        "none of the records is a streaming pull by pulltime, whose wall times the factor is fitted to"
    )]
    NoStreamingRecords,
    /// A record the simulator cannot read.
    #[error(transparent)]
    Input(#[from] crate::sim::input::InputError),
    /// A simulation failed.
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// Fits `host`'s `pull.stream_cpu_factor` to the streaming pulltime records among
/// `records`, pulled over `network` (a registry on this host when
/// `registry_on_host`, as the lab's `serve` is).
pub fn fit_stream_factor(
    records: &[(String, PullRecord)],
    host: &HostProfile,
    network: &NetworkProfile,
    registry_on_host: bool,
) -> Result<StreamFactorFit, StreamFactorError> {
    let mut cases = Vec::new();
    for (name, r) in records {
        if r.simulated || r.puller.name != "pulltime" || r.settings.mode != "streaming" {
            continue;
        }
        let mut walls: Vec<f64> = r.runs.iter().map(|run| run.wall_s).collect();
        if walls.is_empty() {
            continue;
        }
        walls.sort_by(f64::total_cmp);
        let n = walls.len();
        let median = (walls[(n - 1) / 2] + walls[n / 2]) / 2.0;
        let scenario = Scenario {
            network: network.clone(),
            host: host.clone(),
            policy: Policy::Pulltime,
            max_concurrent_downloads: r.settings.max_concurrent_downloads.max(1),
            dockerhub_flow: network.cdn.is_some(),
            index: false,
            registry_on_host,
        };
        cases.push((name.clone(), median, from_record(name, r)?, scenario));
    }
    if cases.is_empty() {
        return Err(StreamFactorError::NoStreamingRecords);
    }
    let walls_at = |factor: f64| -> Result<Vec<f64>, SimError> {
        cases
            .iter()
            .map(|(_, _, image, scenario)| {
                let mut s = scenario.clone();
                s.host.pull.stream_cpu_factor = factor;
                Ok(simulate_record(image, &s, vec![])?.runs[0].wall_s)
            })
            .collect()
    };
    let error = |walls: &[f64]| -> f64 {
        walls
            .iter()
            .zip(&cases)
            .map(|(w, c)| ((w - c.1) / c.1).powi(2))
            .sum()
    };
    let mut best = (f64::INFINITY, 1.0, Vec::new());
    for step in FACTORS {
        let factor = f64::from(step) / 100.0;
        let walls = walls_at(factor)?;
        let e = error(&walls);
        if e < best.0 {
            best = (e, factor, walls);
        }
    }
    let unfitted = walls_at(1.0)?;
    Ok(StreamFactorFit {
        factor: best.1,
        walls: cases
            .iter()
            .zip(best.2)
            .zip(unfitted)
            .map(|(((source, measured, _, _), fitted), unfitted)| WallFit {
                source: source.clone(),
                measured_s: *measured,
                fitted_s: fitted,
                unfitted_s: unfitted,
            })
            .collect(),
    })
}
