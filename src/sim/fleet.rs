//! Fleet bursts: N nodes cold-starting the same function at once against a
//! registry (or CDN) whose egress is shared. Every active transfer gets the same
//! rate, `min(per connection, node link / concurrent downloads, egress / active
//! transfers)`, so a processor-sharing queue on "bytes served per transfer" gives
//! exact completion times in O(events log events): 10,000 nodes in well under a
//! second.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::model::{PipelineCpu, SimLayerRun, apply_policy, simulate};
use super::{Scenario, SimError, SimImage, SimLoop};
use crate::rng::Rng;

/// The burst.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FleetOptions {
    /// Nodes pulling.
    pub nodes: usize,
    /// What the registry (or its CDN) can send in total, bytes per second.
    pub egress_bps: f64,
    /// Start times spread uniformly over this many seconds (0 = all at once).
    pub spread_s: f64,
    /// Share of nodes that already hold the first `cached_layers` layers.
    pub cached_fraction: f64,
    /// Layers those nodes hold.
    pub cached_layers: usize,
    /// Seed for start times and which nodes hold the cache.
    pub seed: u64,
}

/// Completion times of every node, from the burst's start.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FleetResult {
    /// Seconds from the burst's start to each node's last layer applied, sorted.
    pub completions: Vec<f64>,
    /// Pull durations (completion minus the node's own start), sorted.
    pub durations: Vec<f64>,
    /// Bytes served in total.
    pub bytes: u64,
    /// When the last byte left the registry.
    pub egress_end_s: f64,
    /// One node alone, for reference.
    pub single_node_s: f64,
}

/// `q`-quantile of a sorted sample (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// A time (or virtual time) ordered totally, for the event heaps.
#[derive(Debug, Clone, Copy, PartialEq)]
struct T(f64);
impl Eq for T {}
impl PartialOrd for T {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for T {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Simulates the burst. Fails if a node's simulation cannot finish.
pub fn simulate_fleet(
    image: &SimImage,
    scenario: &Scenario,
    o: &FleetOptions,
) -> Result<FleetResult, SimError> {
    let flow = scenario.flow();
    let single = simulate(
        image,
        &flow,
        &scenario.host,
        scenario.policy,
        scenario.max_concurrent_downloads,
    )?;
    let n_layers = image.layers.len();
    let per_flow_cap = flow
        .blobs
        .connection_bandwidth
        .unwrap_or(f64::INFINITY)
        .min(
            flow.blobs.link_bandwidth.unwrap_or(f64::INFINITY)
                / scenario.max_concurrent_downloads.max(1) as f64,
        );
    let mut rng = Rng::new(o.seed);
    let nodes = o.nodes.max(1);
    let starts: Vec<f64> = (0..nodes)
        .map(|_| {
            if o.spread_s > 0.0 {
                rng.unit() * o.spread_s
            } else {
                0.0
            }
        })
        .collect();
    let cached_nodes = (o.cached_fraction.clamp(0.0, 1.0) * nodes as f64).round() as usize;
    // Node state: next layer to request, layers in flight, per-layer times.
    let mut next = vec![0usize; nodes];
    let mut in_flight = vec![0usize; nodes];
    let mut runs: Vec<Vec<SimLayerRun>> = vec![vec![SimLayerRun::default(); n_layers]; nodes];
    for (n, run) in runs.iter_mut().enumerate() {
        if n < cached_nodes {
            for l in run.iter_mut().take(o.cached_layers) {
                l.cached = true;
            }
        }
    }
    // Events: body starts (time, node, layer); finishes on the virtual clock.
    let mut arrivals: BinaryHeap<Reverse<(T, usize, usize)>> = BinaryHeap::new();
    let mut finishes: BinaryHeap<Reverse<(T, usize, usize)>> = BinaryHeap::new();
    let (mut now, mut virt, mut active, mut bytes) = (0.0f64, 0.0f64, 0usize, 0u64);
    let request = |n: usize,
                   at: f64,
                   next: &mut [usize],
                   in_flight: &mut [usize],
                   runs: &mut [Vec<SimLayerRun>],
                   arrivals: &mut BinaryHeap<Reverse<(T, usize, usize)>>| {
        while in_flight[n] < scenario.max_concurrent_downloads.max(1) && next[n] < n_layers {
            let i = next[n];
            next[n] += 1;
            if runs[n][i].cached {
                continue;
            }
            let ttfb = single.layers[i].ttfb_s;
            runs[n][i].start_s = at;
            runs[n][i].ttfb_s = ttfb;
            runs[n][i].redirect_s = single.layers[i].redirect_s;
            in_flight[n] += 1;
            arrivals.push(Reverse((T(at + ttfb), n, i)));
        }
    };
    for (n, start) in starts.iter().enumerate() {
        request(
            n,
            start + single.resolve_s,
            &mut next,
            &mut in_flight,
            &mut runs,
            &mut arrivals,
        );
    }
    let rate = |active: usize| {
        if active == 0 {
            0.0
        } else {
            per_flow_cap.min(o.egress_bps / active as f64)
        }
    };
    let mut egress_end = 0.0f64;
    let transfers = runs.iter().flatten().filter(|l| !l.cached).count();
    let mut finished = 0usize;
    // Every event is one arrival or one finish of a (node, layer), and one more
    // step sees that none is left: bounded.
    let budget = 2 * nodes * n_layers + 1;
    for _ in 0..budget {
        let r = rate(active);
        let next_finish = finishes.peek().map(|Reverse((v, _, _))| {
            if r > 0.0 {
                now + (v.0 - virt) / r
            } else {
                f64::INFINITY
            }
        });
        let next_arrival = arrivals.peek().map(|Reverse((t, _, _))| t.0);
        let (t, is_finish) = match (next_finish, next_arrival) {
            (None, None) => break,
            (Some(f), Some(a)) if f <= a => (f, true),
            (Some(f), None) => (f, true),
            (_, Some(a)) => (a, false),
        };
        if r.is_finite() {
            virt += r * (t - now);
        }
        now = t;
        if is_finish {
            let Reverse((_, n, i)) = finishes.pop().expect("peeked");
            finished += 1;
            active -= 1;
            in_flight[n] -= 1;
            runs[n][i].download_end_s = now;
            egress_end = egress_end.max(now);
            request(n, now, &mut next, &mut in_flight, &mut runs, &mut arrivals);
        } else {
            let Reverse((_, n, i)) = arrivals.pop().expect("peeked");
            let size = image.layers[i].compressed as f64;
            bytes += image.layers[i].compressed;
            active += 1;
            if rate(active).is_infinite() {
                // Unlimited: the transfer is instantaneous.
                finishes.push(Reverse((T(virt), n, i)));
            } else {
                finishes.push(Reverse((T(virt + size), n, i)));
            }
        }
    }
    if finished < transfers {
        return Err(SimError::EventBudget {
            stage: SimLoop::Fleet,
            budget,
            done: finished,
            total: transfers,
        });
    }
    let mut completions = Vec::with_capacity(nodes);
    let mut durations = Vec::with_capacity(nodes);
    for (n, run) in runs.iter_mut().enumerate() {
        apply_policy(
            run,
            image,
            &scenario.host,
            scenario.policy,
            starts[n] + single.resolve_s,
            // Nodes pull from a remote registry: moving bytes costs them no
            // loopback serving.
            PipelineCpu {
                serve_per_byte: 0.0,
                ..PipelineCpu::of(&scenario.flow(), &scenario.host)
            },
        )?;
        // As in one node's pull: what the puller does after its last layer.
        let finish = scenario
            .policy
            .own_costs(&scenario.host)
            .map_or(0.0, |c| c.finish_s);
        let end = run
            .iter()
            .map(|l| l.end_s)
            .fold(starts[n] + single.resolve_s, f64::max)
            + finish;
        completions.push(end);
        durations.push(end - starts[n]);
    }
    completions.sort_by(f64::total_cmp);
    durations.sort_by(f64::total_cmp);
    Ok(FleetResult {
        completions,
        durations,
        bytes,
        egress_end_s: egress_end,
        single_node_s: single.wall_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::media_type::Compression;
    use crate::profiles::network::NetworkProfile;
    use crate::sim::model::tests::instant_host;
    use crate::sim::{Policy, SimLayer};

    fn scenario(per_conn: f64) -> Scenario {
        Scenario {
            network: NetworkProfile {
                connection_bandwidth: Some(per_conn),
                link_bandwidth: Some(per_conn * 3.0),
                ..NetworkProfile::unshaped()
            },
            host: instant_host(0.0),
            policy: Policy::Pulltime,
            max_concurrent_downloads: 3,
            dockerhub_flow: false,
            registry_on_host: false,
            index: false,
        }
    }

    fn image(mb: &[u64]) -> SimImage {
        SimImage {
            name: "t".into(),
            layers: mb
                .iter()
                .map(|m| SimLayer {
                    digest: String::new(),
                    media_type: String::new(),
                    compressed: m * 1_000_000,
                    uncompressed: m * 1_000_000,
                    file_bytes: 0,
                    files: 0,
                    dirs: 0,
                    compression: Compression::None,
                    cached: false,
                })
                .collect(),
            manifest_bytes: 0,
            config_bytes: 0,
            estimated: vec![],
        }
    }

    fn opts(nodes: usize, egress: f64) -> FleetOptions {
        FleetOptions {
            nodes,
            egress_bps: egress,
            spread_s: 0.0,
            cached_fraction: 0.0,
            cached_layers: 0,
            seed: 1,
        }
    }

    #[test]
    fn egress_bound_burst_takes_total_bytes_over_egress() {
        // 100 nodes x 10 MB over 100 MB/s of egress: 10 s, every node at once.
        let r = simulate_fleet(&image(&[10]), &scenario(1e9), &opts(100, 1e8)).unwrap();
        assert!((r.egress_end_s - 10.0).abs() < 1e-6, "{}", r.egress_end_s);
        assert!((quantile(&r.completions, 0.5) - 10.0).abs() < 1e-6);
        assert_eq!(r.bytes, 100 * 10_000_000);
    }

    #[test]
    fn ample_egress_leaves_nodes_at_single_node_speed() {
        let img = image(&[5, 5]);
        let r = simulate_fleet(&img, &scenario(1e6), &opts(10, 1e12)).unwrap();
        let max = *r.completions.last().unwrap();
        assert!(
            (max - r.single_node_s).abs() < 1e-6,
            "{max} vs {}",
            r.single_node_s
        );
    }

    #[test]
    fn cached_base_layers_cut_the_burst() {
        let img = image(&[80, 20]);
        let cold = simulate_fleet(&img, &scenario(1e9), &opts(50, 1e8)).unwrap();
        let warm = simulate_fleet(
            &img,
            &scenario(1e9),
            &FleetOptions {
                cached_fraction: 1.0,
                cached_layers: 1,
                ..opts(50, 1e8)
            },
        )
        .unwrap();
        assert!(
            (cold.egress_end_s - 50.0).abs() < 1e-6 && (warm.egress_end_s - 10.0).abs() < 1e-6,
            "{} {}",
            cold.egress_end_s,
            warm.egress_end_s
        );
    }

    #[test]
    fn ten_thousand_spread_nodes_all_complete_after_their_start() {
        // Speed is measured by benches/fidelity.rs, not asserted here.
        let img = image(&[30, 20, 10, 5, 1, 1, 1]);
        let r = simulate_fleet(
            &img,
            &scenario(1.25e7),
            &FleetOptions {
                spread_s: 2.0,
                ..opts(10_000, 1.25e9)
            },
        )
        .unwrap();
        assert_eq!((r.completions.len(), r.durations.len()), (10_000, 10_000));
        assert!(
            r.durations[0] >= r.single_node_s - 1e-9,
            "no node beats a node alone"
        );
        // 68 MB x 10,000 over 1.25 GB/s cannot finish before 544 s.
        assert!(r.egress_end_s >= 544.0 - 1e-6, "{}", r.egress_end_s);
    }
}
