//! Which resource bounded a simulated pull, layer by layer and as a whole.
//!
//! A layer is applied once its last byte has arrived (containerd's, skopeo's and
//! staged pulltime's: every layer's) and (every policy applies layers in order)
//! the layer below is applied; what it does after both is its own work. So each layer's time splits into the network (request to last byte),
//! waiting for the layer below (in-order application) and its work after that,
//! itself split by what drives it ([`LayerWork`]: inflate CPU, extraction per
//! entry and per byte, snapshot copies, ...). In a streaming pull most work
//! overlaps the download and only what is left after the last byte counts.
//!
//! The whole pull's critical path runs back from the last layer: each layer's
//! work after it was ready, then either the layer below (when that was what it
//! waited for) or the network up to its last byte, then the resolve round trips.

use crate::oci::record::PullRecord;

use super::SimulationInfo;
use super::model::{Below, LayerWork, layer_work};

/// Why one layer took the time it took.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerBound {
    /// Position in the manifest.
    pub index: usize,
    /// From its request to its last byte.
    pub network_s: f64,
    /// Downloaded, waiting for the layer below to be applied.
    pub waited_below_s: f64,
    /// Its work after it was ready, by part (largest first, zeros left out).
    pub work: Vec<(&'static str, f64)>,
    /// The largest of the network, the wait and each part of the work.
    pub bound: &'static str,
    /// Seconds of `bound`.
    pub bound_s: f64,
    /// Already on the node: nothing done.
    pub cached: bool,
}

/// Why a simulated pull took the time it took.
#[derive(Debug, Clone, PartialEq)]
pub struct PullBounds {
    /// The whole pull.
    pub wall_s: f64,
    /// Its critical path by resource, largest first; the seconds add up to
    /// `wall_s`.
    pub path: Vec<(&'static str, f64)>,
    /// Per layer.
    pub layers: Vec<LayerBound>,
}

impl PullBounds {
    /// The resource with the most time on the critical path.
    pub fn bound(&self) -> (&'static str, f64) {
        self.path.first().copied().unwrap_or(("nothing", 0.0))
    }

    /// One line: what bounded the pull, and its critical path.
    pub fn summary(&self) -> String {
        let (name, s) = self.bound();
        let path: Vec<String> = self
            .path
            .iter()
            .filter(|(_, v)| *v >= 0.005)
            .map(|(n, v)| format!("{n} {v:.2} s"))
            .collect();
        format!(
            "bound by {name}: {s:.2} s of {:.2} s ({:.0}%); critical path: {}",
            self.wall_s,
            100.0 * s / self.wall_s.max(1e-12),
            path.join(", ")
        )
    }

    /// One line per layer.
    pub fn layer_lines(&self) -> Vec<String> {
        self.layers
            .iter()
            .map(|l| {
                if l.cached {
                    return format!("layer {}: cached, nothing to do", l.index);
                }
                // Parts under 5 ms are noise to a reader.
                let work: Vec<String> = l
                    .work
                    .iter()
                    .filter(|(_, v)| *v >= 0.005)
                    .map(|(n, v)| format!("{n} {v:.2}"))
                    .collect();
                let work = if work.is_empty() {
                    "nothing left after its last byte".to_string()
                } else {
                    format!("then {}", work.join(", "))
                };
                format!(
                    "layer {}: bound by {} ({:.2} s); network {:.2} s, waited {:.2} s for the layer below, {work}",
                    l.index, l.bound, l.bound_s, l.network_s, l.waited_below_s
                )
            })
            .collect()
    }
}

/// Splits `total`, a layer's work after it was ready, over `work`'s parts in
/// proportion (a streaming layer's is the remainder of all of them).
fn split(work: &LayerWork, total: f64) -> Vec<(&'static str, f64)> {
    let parts = work.parts();
    let sum: f64 = parts.iter().map(|p| p.1).sum();
    if sum <= 0.0 || total <= 0.0 {
        return Vec::new();
    }
    let mut out: Vec<(&'static str, f64)> =
        parts.iter().map(|(n, v)| (*n, total * v / sum)).collect();
    out.retain(|p| p.1 > 0.0);
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// One layer on the way back along the critical path.
struct Step {
    /// It was ready when the layer below was applied (not at its last byte).
    waited_below: bool,
    /// Its last byte.
    last_byte: f64,
    /// Its work after it was ready, by part.
    after: Vec<(&'static str, f64)>,
}

/// The bounds of a simulated record (None for a measured one).
pub fn bounds(record: &PullRecord) -> Option<PullBounds> {
    let info: SimulationInfo = serde_json::from_value(record.simulation.clone()?).ok()?;
    let run = record.runs.first()?;
    let mut below = Below::default();
    let mut prev_end = run.resolve_s;
    let mut layers = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    let all_first = matches!(
        info.policy,
        super::Policy::Containerd | super::Policy::SkopeoUmoci | super::Policy::Staged
    );
    let last_of_all = run
        .layers
        .iter()
        .map(|l| l.start_s + l.download_s.unwrap_or(0.0))
        .fold(run.resolve_s, f64::max);
    for (i, (l, lr)) in info.image.layers.iter().zip(&run.layers).enumerate() {
        let work = layer_work(l, i, below, &info.host, info.policy);
        below.entries += l.files + l.dirs;
        below.bytes += l.uncompressed;
        if l.cached {
            layers.push(LayerBound {
                index: i,
                network_s: 0.0,
                waited_below_s: 0.0,
                work: Vec::new(),
                bound: "nothing (cached)",
                bound_s: 0.0,
                cached: true,
            });
            steps.push(Step {
                waited_below: true,
                last_byte: prev_end,
                after: Vec::new(),
            });
            continue;
        }
        // containerd, skopeo and staged pulltime unpack nothing before every
        // download is done.
        let last_byte = if all_first {
            last_of_all
        } else {
            lr.start_s + lr.download_s.unwrap_or(0.0)
        };
        let ready = prev_end.max(last_byte);
        let waited_below = (prev_end - last_byte).max(0.0);
        let after = split(&work, (lr.end_s - ready).max(0.0));
        let mut candidates = vec![
            ("network", last_byte - lr.start_s),
            ("in-order application", waited_below),
        ];
        candidates.extend(after.iter().copied());
        let (bound, bound_s) = candidates
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or(("network", 0.0));
        layers.push(LayerBound {
            index: i,
            network_s: last_byte - lr.start_s,
            waited_below_s: waited_below,
            work: after.clone(),
            bound,
            bound_s,
            cached: false,
        });
        steps.push(Step {
            waited_below: prev_end >= last_byte,
            last_byte,
            after,
        });
        prev_end = lr.end_s.max(prev_end);
    }
    // Back from the last layer: its work, then what it waited for.
    let mut path: std::collections::BTreeMap<&'static str, f64> = Default::default();
    let last_end = run
        .layers
        .iter()
        .map(|l| l.end_s)
        .fold(run.resolve_s, f64::max);
    let mut add = |name: &'static str, s: f64| {
        if s > 0.0 {
            *path.entry(name).or_default() += s;
        }
    };
    add("finish (image metadata)", run.wall_s - last_end);
    let mut network_until = None;
    for step in steps.iter().rev() {
        for (n, v) in &step.after {
            add(n, *v);
        }
        if !step.waited_below {
            network_until = Some(step.last_byte);
            break;
        }
    }
    match network_until {
        Some(t) => {
            add("network", t - run.resolve_s);
            add("resolve (token, manifest, config)", run.resolve_s);
        }
        None => add("resolve (token, manifest, config)", run.resolve_s),
    }
    let mut path: Vec<(&'static str, f64)> = path.into_iter().collect();
    // The parts add up to the wall time but for what no layer accounts for (the
    // streaming model's scheduling): call it what it is.
    let accounted: f64 = path.iter().map(|p| p.1).sum();
    if run.wall_s - accounted > 0.001 {
        path.push(("waiting between stages", run.wall_s - accounted));
    }
    path.sort_by(|a, b| b.1.total_cmp(&a.1));
    Some(PullBounds {
        wall_s: run.wall_s,
        path,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::media_type::Compression;
    use crate::profiles::host::{HostProfile, PullerCosts};
    use crate::sim::{Policy, Scenario, input::from_profile, simulate_at_bandwidth};

    fn host() -> HostProfile {
        HostProfile::builtin()
    }

    fn scenario(policy: Policy, host: HostProfile) -> Scenario {
        Scenario {
            network: crate::profiles::network::NetworkProfile::load("lan-1g").unwrap(),
            host,
            policy,
            max_concurrent_downloads: 3,
            dockerhub_flow: false,
            index: false,
            registry_on_host: false,
        }
    }

    fn image() -> crate::sim::SimImage {
        let p = crate::synth::ImageProfile::load("sn-compose-post-original").unwrap();
        from_profile(&p, 0.05, Compression::Gzip)
    }

    #[test]
    fn the_critical_path_adds_up_to_the_wall_time_for_every_policy() {
        for policy in [
            Policy::Docker,
            Policy::Containerd,
            Policy::Podman,
            Policy::SkopeoUmoci,
            Policy::Pulltime,
            Policy::Staged,
        ] {
            for bps in [1e6, 1e8, 1e10] {
                let r = simulate_at_bandwidth(&image(), &scenario(policy, host()), bps, vec![])
                    .unwrap();
                let b = bounds(&r).unwrap();
                let sum: f64 = b.path.iter().map(|p| p.1).sum();
                assert!(
                    (sum - b.wall_s).abs() < 1e-6 * b.wall_s.max(1.0),
                    "{policy:?} at {bps}: {sum} vs {}: {:?}",
                    b.wall_s,
                    b.path
                );
                assert_eq!(b.layers.len(), r.runs[0].layers.len());
            }
        }
    }

    #[test]
    fn slow_networks_bound_by_network_fast_ones_by_the_host() {
        let at = |bps: f64| {
            let r = simulate_at_bandwidth(&image(), &scenario(Policy::Docker, host()), bps, vec![])
                .unwrap();
            bounds(&r).unwrap()
        };
        assert_eq!(at(1e6).bound().0, "network", "{:?}", at(1e6).path);
        let fast = at(1e10);
        assert_ne!(fast.bound().0, "network", "{:?}", fast.path);
        assert!(
            fast.summary().starts_with("bound by "),
            "{}",
            fast.summary()
        );
    }

    #[test]
    fn native_snapshot_copies_show_where_the_profile_has_them() {
        let mut h = host();
        h.pullers.insert(
            "containerd".into(),
            PullerCosts {
                unpack_per_byte_s: 1e-9,
                snapshot_copy_per_entry_s: 1e-3,
                ..Default::default()
            },
        );
        let r = simulate_at_bandwidth(&image(), &scenario(Policy::Containerd, h), 1e10, vec![])
            .unwrap();
        let b = bounds(&r).unwrap();
        assert!(
            b.path.iter().any(|p| p.0 == "snapshot copy"),
            "{:?}",
            b.path
        );
        // The first layer has nothing below to copy; a later one does.
        assert!(!b.layers[0].work.iter().any(|p| p.0 == "snapshot copy"));
        assert!(
            b.layers
                .iter()
                .skip(1)
                .any(|l| l.work.iter().any(|p| p.0 == "snapshot copy"))
        );
    }
}
