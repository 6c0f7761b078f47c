//! `pulltime calibrate --from-records`: this host's costs fitted to the per-layer
//! phase times of measured pulls, by any puller, by non-negative least squares.
//!
//! Each (puller, filesystem) gets its own fit of each phase it observed (pulltime's
//! streaming and staged modes, containerd's snapshotters apart):
//! - `extract_s` against the layer's regular files, directories, symlinks, hard
//!   links, whiteouts, tar bytes and a constant per layer (for pullers whose
//!   extraction includes decompression, docker's, containerd's and umoci's, the
//!   per-byte term holds it); and again against only what the simulator counts
//!   (files, directories, bytes, per layer): that fit is the one written;
//! - for pulltime, also `decompress_s` against tar bytes, per compression, and
//!   `verify_s` against compressed plus tar bytes;
//! - for containerd, `snapshot_prepare_s`, from its events: the commit of the
//!   layer below to this layer's prepare, against the files and directories and
//!   the bytes below, and a constant;
//! - for other pullers, the time before the first request and after the last
//!   layer (one constant each per pull), and in their modelled extraction a cost
//!   per compressed byte beside the one per byte written (inflating); docker's
//!   and podman's modelled extraction runs from the layer being ready
//!   (downloaded, the layer below applied) to its being applied, so that it holds
//!   what they do between layers;
//! - for every puller, the loopback transfer: each run's compressed bytes against
//!   the time from the first layer body byte to the last.
//!
//! Every run's every layer is one observation, weighted by the inverse of its
//! time so that the fit minimises relative errors. Records of another machine
//! (`host.machine`), or without one, are refused: costs are this host's.

use std::collections::BTreeMap;

use crate::oci::media_type::Compression;
use crate::oci::record::{LayerRun, PullRecord};
use crate::profiles::host::HostProfile;

/// A fitted cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// `per_file_s`, `per_dir_s`, `per_symlink_s`, `per_hardlink_s`,
    /// `per_whiteout_s`, `per_byte_s`.
    pub name: &'static str,
    /// Seconds per unit; 0 when not identified.
    pub value: f64,
    /// False when no observation had any of this unit, so nothing could be learnt.
    pub identified: bool,
}

/// One observation against its fitted value.
#[derive(Debug, Clone, PartialEq)]
pub struct Residual {
    /// Which record (as the user named it), run and layer.
    pub source: String,
    /// Layer index.
    pub layer: usize,
    /// Measured seconds.
    pub measured: f64,
    /// The fit's seconds.
    pub fitted: f64,
    /// What the base (probe-calibrated) profile predicts, where it models this phase.
    pub base: Option<f64>,
}

/// Root mean square and largest magnitude of relative errors; None for none.
pub fn rms_and_worst(rel: &[f64]) -> Option<(f64, f64)> {
    if rel.is_empty() {
        return None;
    }
    let rms = (rel.iter().map(|e| e * e).sum::<f64>() / rel.len() as f64).sqrt();
    let max = rel.iter().fold(0f64, |m, e| m.max(e.abs()));
    Some((rms, max))
}

/// The fit of one phase for one puller on one filesystem.
#[derive(Debug, Clone)]
pub struct PhaseFit {
    /// The puller whose records these are.
    pub puller: String,
    /// The filesystem they extracted to.
    pub filesystem: String,
    /// `extract_s`, `decompress_s (gzip)`, `decompress_s (zstd)`, `verify_s`.
    pub phase: String,
    /// The costs.
    pub terms: Vec<Term>,
    /// Every observation.
    pub residuals: Vec<Residual>,
    /// Distinct layers among the observations (fewer than identified terms: the
    /// fit is one of many).
    pub distinct_layers: usize,
    /// The solver converged (else the costs are its last iterate).
    pub converged: bool,
}

impl PhaseFit {
    /// Root mean square and largest relative error of `value` over observations
    /// of at least 5 ms (shorter ones are mostly timer noise).
    pub fn errors(&self, value: impl Fn(&Residual) -> Option<f64>) -> Option<(f64, f64)> {
        let rel: Vec<f64> = self
            .residuals
            .iter()
            .filter(|r| r.measured >= 0.005)
            .filter_map(|r| Some((value(r)? - r.measured) / r.measured))
            .collect();
        rms_and_worst(&rel)
    }

    /// The value of a term.
    pub fn term(&self, name: &str) -> Option<&Term> {
        self.terms.iter().find(|t| t.name == name)
    }
}

/// Why records could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// A record measured elsewhere.
    #[error(
        "{source_name} was measured on another machine ({theirs}; this one is {ours}): costs are per host"
    )]
    OtherMachine {
        /// The record.
        source_name: String,
        /// Its machine.
        theirs: String,
        /// This one.
        ours: String,
    },
    /// A record that does not say where it was measured.
    #[error(
        "{0} does not say which machine it was measured on (written before records carried host.machine); measure again"
    )]
    NoMachine(String),
    /// This host has no machine id to compare with.
    #[error(
        "this host has no machine id (/etc/machine-id or /var/lib/dbus/machine-id), so records cannot be matched to it"
    )]
    UnknownHost,
    /// A simulation is not a measurement.
    #[error("{0} is a simulated record; calibrate from measured pulls")]
    Simulated(String),
    /// Nothing in the records to fit.
    #[error("the records have no observed per-layer phase to fit")]
    NothingToFit,
}

/// The extraction phases: every kind of entry, and what the simulator counts.
const EXTRACT: &str = "extract_s";
/// The fit whose costs go into a profile.
pub const EXTRACT_AS_MODELLED: &str = "extract_s (files, dirs, bytes, per layer: as modelled)";
const EXTRACT_TERMS: [&str; 7] = [
    "per_file_s",
    "per_dir_s",
    "per_symlink_s",
    "per_hardlink_s",
    "per_whiteout_s",
    "per_byte_s",
    "per_layer_s",
];
const MODELLED_TERMS: [&str; 4] = ["per_file_s", "per_dir_s", "per_byte_s", "per_layer_s"];
/// Pullers whose extraction includes decompression: inflating costs per
/// compressed byte as well as per byte written.
const MODELLED_TERMS_INFLATING: [&str; 5] = [
    "per_file_s",
    "per_dir_s",
    "per_byte_s",
    "per_compressed_byte_s",
    "per_layer_s",
];
/// The layers' transfer over loopback: compressed bytes from the first body byte
/// to the last, per run (the ceiling a registry on this host gives the puller).
pub(crate) const TRANSFER: &str = "loopback transfer_s";
pub(crate) const SNAPSHOT: &str = "snapshot_prepare_s";
const SNAPSHOT_TERMS: [&str; 3] = ["per_entry_below_s", "per_byte_below_s", "per_layer_s"];
/// Another puller's time before its first request (a command's start-up) and
/// after its last layer (writing the image's metadata): one constant per pull.
pub(crate) const STARTUP: &str = "startup_s";
pub(crate) const FINISH: &str = "finish_s";

fn extract_features(l: &LayerRun) -> Vec<f64> {
    vec![
        l.files as f64,
        l.dirs as f64,
        l.symlinks as f64,
        l.hardlinks as f64,
        l.whiteouts as f64,
        l.uncompressed_bytes as f64,
        1.0,
    ]
}

/// What the simulator counts; with the blob's size (`compressed`) for pullers
/// that inflate while extracting.
fn modelled_features(l: &LayerRun, compressed: Option<u64>) -> Vec<f64> {
    let mut x = vec![l.files as f64, l.dirs as f64, l.uncompressed_bytes as f64];
    x.extend(compressed.map(|c| c as f64));
    x.push(1.0);
    x
}

/// Observations of one phase of one group: (source, layer, features, seconds).
type Samples = Vec<(String, usize, Vec<f64>, f64)>;

/// Fits every phase the records observed. `machine` is this host's
/// ([`crate::pipeline::measure::machine_id`]); `base` the profile the fit is
/// checked against.
pub fn fit_records(
    records: &[(String, PullRecord)],
    machine: Option<&str>,
    base: &HostProfile,
) -> Result<Vec<PhaseFit>, FitError> {
    let ours = machine.ok_or(FitError::UnknownHost)?;
    // (puller, filesystem, phase) -> samples
    let mut groups: BTreeMap<(String, String, String), Samples> = BTreeMap::new();
    for (name, r) in records {
        if r.simulated {
            return Err(FitError::Simulated(name.clone()));
        }
        match &r.host.machine {
            None => return Err(FitError::NoMachine(name.clone())),
            Some(m) if m != ours => {
                return Err(FitError::OtherMachine {
                    source_name: name.clone(),
                    theirs: m.clone(),
                    ours: ours.to_string(),
                });
            }
            Some(_) => {}
        }
        let fs = r
            .host
            .dest_filesystem
            .clone()
            .unwrap_or_else(|| "unknown".into());
        // containerd's snapshotters and pulltime's modes work differently: each
        // its own fit.
        let puller = match r.puller.settings.get("snapshotter") {
            Some(s) if r.puller.name == "containerd" => format!("containerd/{s}"),
            _ if r.puller.name == "pulltime" => format!("pulltime/{}", r.settings.mode),
            _ => r.puller.name.clone(),
        };
        for run in &r.runs {
            // `pull --no-stage-timing`: its extract_s holds the waits; not a cost.
            if r.puller.name == "pulltime"
                && run.unobserved.iter().any(|u| u.phase == "decompress_s")
            {
                continue;
            }
            let source = format!("{name} run {}", run.index + 1);
            // containerd: from the commit of the layer below to this layer's
            // prepare, the snapshotter makes its snapshot (native: a copy of
            // everything below).
            let at = |layer: usize, event: &str| {
                run.puller_events
                    .iter()
                    .find(|e| e.layer == layer && e.event == event)
                    .map(|e| e.at_s)
            };
            let (mut entries_below, mut bytes_below) = (0u64, 0u64);
            for (i, l) in run.layers.iter().enumerate() {
                if i > 0
                    && let (Some(commit), Some(prepare)) =
                        (at(i - 1, "snapshot commit"), at(i, "snapshot prepare"))
                {
                    groups
                        .entry((puller.clone(), fs.clone(), "snapshot_prepare_s".into()))
                        .or_default()
                        .push((
                            source.clone(),
                            l.index,
                            vec![entries_below as f64, bytes_below as f64, 1.0],
                            (prepare - commit).max(0.0),
                        ));
                }
                // As the simulator counts the tree below: files and directories.
                entries_below += l.files + l.dirs;
                bytes_below += l.uncompressed_bytes;
            }
            // The transfer: first body byte to last, of runs that moved at least
            // 8 MB (below that, per-request costs dominate).
            let (first, last, bytes) = run
                .layers
                .iter()
                .filter_map(|l| Some((l.start_s + l.ttfb_s?, l.start_s + l.download_s?, l)))
                .fold((f64::INFINITY, 0f64, 0u64), |(f, e, b), (s, d, l)| {
                    (f.min(s), e.max(d), b + l.compressed_bytes)
                });
            if bytes >= 8_000_000 && last > first {
                groups
                    .entry((puller.clone(), fs.clone(), TRANSFER.into()))
                    .or_default()
                    .push((source.clone(), 0, vec![bytes as f64], last - first));
            }
            // docker and podman apply each layer once it is downloaded and the
            // layer below applied, and take time between layers outside what they
            // show as extraction (docker registers each layer, and shows no
            // extraction start for a small one): their modelled extraction runs
            // from the layer being ready to its being applied. (containerd's time
            // between layers is its snapshot, fitted above; umoci's lines leave
            // no gaps.)
            // A layer docker applied at once has no extraction window; its
            // "Pull complete" is when it was applied.
            let pull_complete = |i: usize| {
                run.puller_events
                    .iter()
                    .find(|e| e.layer == i && e.event == "Pull complete")
                    .map(|e| e.at_s)
            };
            let mut below_end = 0f64;
            let applied: Vec<Option<f64>> = run
                .layers
                .iter()
                .map(|l| {
                    let end = if l.extract_s.is_some() {
                        Some(l.end_s)
                    } else {
                        pull_complete(l.index)
                    };
                    let ready = l.download_s.map(|d| below_end.max(l.start_s + d));
                    if let Some(e) = end {
                        below_end = below_end.max(e);
                    }
                    Some((end? - ready?).max(0.0))
                })
                .collect();
            let from_ready = matches!(r.puller.name.as_str(), "docker" | "podman");
            if r.puller.name != "pulltime" {
                let last_layer = run.layers.iter().map(|l| l.end_s).fold(0f64, f64::max);
                let first_request = run.requests.first().map(|q| q.start_s);
                for (phase, y) in [
                    (STARTUP, first_request),
                    (FINISH, Some((run.wall_s - last_layer).max(0.0))),
                ] {
                    if let Some(y) = y {
                        groups
                            .entry((puller.clone(), fs.clone(), phase.into()))
                            .or_default()
                            .push((source.clone(), 0, vec![1.0], y));
                    }
                }
            }
            for l in &run.layers {
                let mut add = |phase: String, x: Vec<f64>, y: Option<f64>| {
                    if let Some(y) = y {
                        groups
                            .entry((puller.clone(), fs.clone(), phase))
                            .or_default()
                            .push((source.clone(), l.index, x, y));
                    }
                };
                add(EXTRACT.into(), extract_features(l), l.extract_s);
                let blob = r
                    .image
                    .layers
                    .get(l.index)
                    .map_or(0, |i| i.compressed_bytes);
                add(
                    EXTRACT_AS_MODELLED.into(),
                    modelled_features(l, (r.puller.name != "pulltime").then_some(blob)),
                    if from_ready {
                        applied.get(l.index).copied().flatten()
                    } else {
                        l.extract_s
                    },
                );
                let compression = r
                    .image
                    .layers
                    .get(l.index)
                    .and_then(|i| Compression::of_media_type(&i.media_type));
                if let Some(c) = compression.filter(|c| *c != Compression::None) {
                    let label = format!("decompress_s ({})", format!("{c:?}").to_lowercase());
                    add(label, vec![l.uncompressed_bytes as f64], l.decompress_s);
                }
                add(
                    "verify_s".into(),
                    vec![(l.compressed_bytes + l.uncompressed_bytes) as f64],
                    l.verify_s,
                );
            }
        }
    }
    if groups.is_empty() {
        return Err(FitError::NothingToFit);
    }
    Ok(groups
        .into_iter()
        .map(|((puller, filesystem, phase), samples)| {
            let decompresses = !puller.starts_with("pulltime");
            fit_group(puller, filesystem, phase, &samples, base, decompresses)
        })
        .collect())
}

fn fit_group(
    puller: String,
    filesystem: String,
    phase: String,
    samples: &Samples,
    base: &HostProfile,
    decompresses: bool,
) -> PhaseFit {
    let names: Vec<&'static str> = match phase.as_str() {
        EXTRACT => EXTRACT_TERMS.to_vec(),
        EXTRACT_AS_MODELLED if decompresses => MODELLED_TERMS_INFLATING.to_vec(),
        EXTRACT_AS_MODELLED => MODELLED_TERMS.to_vec(),
        SNAPSHOT => SNAPSHOT_TERMS.to_vec(),
        STARTUP | FINISH => vec!["per_pull_s"],
        _ => vec!["per_byte_s"],
    };
    let x: Vec<Vec<f64>> = samples.iter().map(|s| s.2.clone()).collect();
    let y: Vec<f64> = samples.iter().map(|s| s.3).collect();
    // Relative errors are what matter (a layer of 10 ms and one of 3 s count
    // alike), so each row is weighted by 1 / its time (at least 5 ms: shorter
    // times are mostly timer noise).
    let weight: Vec<f64> = y.iter().map(|v| 1.0 / v.max(0.005)).collect();
    let wx: Vec<Vec<f64>> = x
        .iter()
        .zip(&weight)
        .map(|(row, w)| row.iter().map(|v| v * w).collect())
        .collect();
    let wy: Vec<f64> = y.iter().zip(&weight).map(|(v, w)| v * w).collect();
    let (b, converged) = nnls(&wx, &wy);
    let identified: Vec<bool> = (0..names.len())
        .map(|j| x.iter().any(|row| row[j] != 0.0))
        .collect();
    let mut distinct: Vec<&Vec<f64>> = x.iter().collect();
    distinct.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    distinct.dedup();
    let residuals = samples
        .iter()
        .map(|(source, layer, xs, measured)| Residual {
            source: source.clone(),
            layer: *layer,
            measured: *measured,
            fitted: xs.iter().zip(&b).map(|(a, c)| a * c).sum(),
            base: base_prediction(&phase, xs, base, decompresses),
        })
        .collect();
    PhaseFit {
        puller,
        filesystem,
        phase,
        terms: names
            .iter()
            .zip(&b)
            .zip(&identified)
            .map(|((name, value), identified)| Term {
                name,
                value: *value,
                identified: *identified,
            })
            .collect(),
        residuals,
        distinct_layers: distinct.len(),
        converged,
    }
}

/// What the base profile says the phase costs (its extraction model knows files,
/// directories and bytes; symlinks, hard links and whiteouts cost it nothing). For
/// pullers that decompress while extracting, its gzip rate is added.
fn base_prediction(phase: &str, x: &[f64], base: &HostProfile, decompresses: bool) -> Option<f64> {
    let bytes = match phase {
        EXTRACT => x[5],
        EXTRACT_AS_MODELLED => x[2],
        _ => 0.0,
    };
    let gunzip = if decompresses {
        bytes / base.gzip_bps
    } else {
        0.0
    };
    match phase {
        EXTRACT | EXTRACT_AS_MODELLED => Some(
            x[0] * base.extract_per_file_s
                + x[1] * base.extract_per_dir_s
                + bytes / base.extract_bps
                + gunzip,
        ),
        "decompress_s (gzip)" => Some(x[0] / base.gzip_bps),
        "decompress_s (zstd)" => Some(x[0] / base.zstd_bps),
        "verify_s" => Some(x[0] / base.sha256_bps),
        _ => None,
    }
}

/// Non-negative least squares: `b >= 0` minimising `|X b - y|`, by cyclic
/// coordinate descent on column-scaled data (a convex problem with a box
/// constraint: each step is exact, the sweep count is bounded).
pub fn nnls(x: &[Vec<f64>], y: &[f64]) -> (Vec<f64>, bool) {
    let k = x.first().map_or(0, Vec::len);
    let scale: Vec<f64> = (0..k)
        .map(|j| x.iter().fold(0f64, |m, row| m.max(row[j].abs())))
        .collect();
    let col = |j: usize| -> Vec<f64> {
        x.iter()
            .map(|row| {
                if scale[j] > 0.0 {
                    row[j] / scale[j]
                } else {
                    0.0
                }
            })
            .collect()
    };
    let cols: Vec<Vec<f64>> = (0..k).map(col).collect();
    let norms: Vec<f64> = cols.iter().map(|c| c.iter().map(|v| v * v).sum()).collect();
    let mut b = vec![0.0; k];
    let mut r: Vec<f64> = y.to_vec();
    let mut converged = false;
    for _ in 0..100_000 {
        let mut largest = 0f64;
        for j in 0..k {
            if norms[j] == 0.0 {
                continue;
            }
            let g: f64 = cols[j].iter().zip(&r).map(|(c, r)| c * r).sum();
            let next = (b[j] + g / norms[j]).max(0.0);
            let d = next - b[j];
            if d != 0.0 {
                for (ri, c) in r.iter_mut().zip(&cols[j]) {
                    *ri -= d * c;
                }
                b[j] = next;
                largest = largest.max(d.abs() / next.abs().max(1e-300));
            }
        }
        if largest < 1e-10 {
            converged = true;
            break;
        }
    }
    let b = b
        .iter()
        .zip(&scale)
        .map(|(v, s)| if *s > 0.0 { v / s } else { 0.0 })
        .collect();
    (b, converged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nnls_recovers_known_costs_and_keeps_them_non_negative() {
        // extract = 30 us/file + 20 us/dir + 1 ns/byte, exactly.
        let truth = [30e-6, 20e-6, 1e-9];
        let x: Vec<Vec<f64>> = [
            [100.0, 10.0, 1e6],
            [5000.0, 300.0, 2e8],
            [10.0, 2.0, 5e8],
            [800.0, 90.0, 3e7],
        ]
        .iter()
        .map(|r| r.to_vec())
        .collect();
        let y: Vec<f64> = x
            .iter()
            .map(|r| r.iter().zip(&truth).map(|(a, b)| a * b).sum())
            .collect();
        let (b, converged) = nnls(&x, &y);
        assert!(converged);
        for (got, want) in b.iter().zip(&truth) {
            assert!((got - want).abs() / want < 1e-4, "{b:?}");
        }
        // A column that only hurts the fit stays at 0 instead of going negative.
        let x2: Vec<Vec<f64>> = x.iter().map(|r| vec![r[0], r[0] * 2.0 + 1.0]).collect();
        let y2: Vec<f64> = x.iter().map(|r| r[0] * 1e-5).collect();
        let (b2, _) = nnls(&x2, &y2);
        assert!(b2.iter().all(|v| *v >= 0.0), "{b2:?}");
    }
}
