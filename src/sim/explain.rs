//! Why did pull time change less (or more) than size? For two simulated pulls of
//! two layouts of one application (say an original image and its multi-stage
//! rebuild) under the same scenario: which resource bounded each pull, and how much
//! each resource's time changed against what drives it (compressed bytes for the
//! network, uncompressed bytes for decompression, files for extraction).

use crate::oci::record::PullRecord;

/// What a simulated pull spent, by resource.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    /// The whole pull.
    pub wall_s: f64,
    /// Token, manifest, config: fixed round trips, whatever the size.
    pub resolve_s: f64,
    /// From the first layer request to the last byte.
    pub network_s: f64,
    /// Decompression, summed over layers.
    pub decompress_s: f64,
    /// Extraction, summed over layers.
    pub extract_s: f64,
}

impl Costs {
    /// Of a simulated record (every phase observed; a missing one counts 0).
    pub fn of(record: &PullRecord) -> Option<Costs> {
        let run = record.runs.first()?;
        let network_s = run
            .layers
            .iter()
            .map(|l| l.start_s + l.download_s.unwrap_or(0.0))
            .fold(run.resolve_s, f64::max)
            - run.resolve_s;
        Some(Costs {
            wall_s: run.wall_s,
            resolve_s: run.resolve_s,
            network_s,
            decompress_s: run.layer_sum(|l| l.decompress_s).unwrap_or(0.0),
            extract_s: run.layer_sum(|l| l.extract_s).unwrap_or(0.0),
        })
    }
}

/// Which stage sets the pace of a simulated pull: `network`, `decompress` or
/// `extract`.
pub fn bounding_phase(record: &PullRecord) -> &'static str {
    let c = Costs::of(record).expect("a simulated record has a run");
    if c.network_s >= c.decompress_s + c.extract_s {
        "network"
    } else if c.decompress_s >= c.extract_s {
        "decompress"
    } else {
        "extract"
    }
}

fn change(new: f64, old: f64) -> String {
    if old <= 0.0 {
        "-".into()
    } else {
        format!("{:+.0}%", 100.0 * (new - old) / old)
    }
}

fn files(r: &PullRecord) -> u64 {
    r.runs
        .first()
        .map_or(0, |run| run.layers.iter().map(|l| l.files).sum())
}

/// One sentence: `alt` against `base`, both simulated under the same scenario:
/// what bounds the pulls, each resource's change beside what drives it, and,
/// among the resources that take a tenth of the pull or more, the one that
/// shrank least (what keeps the pull from falling as much as the size).
pub fn why(base: &PullRecord, alt: &PullRecord) -> Option<String> {
    let (b, a) = (Costs::of(base)?, Costs::of(alt)?);
    // The resource with the most time on each critical path ([`super::bounds`]).
    let bound_of = |r: &PullRecord| {
        super::bounds::bounds(r).map_or_else(|| bounding_phase(r), |b| b.bound().0)
    };
    let (bound_b, bound_a) = (bound_of(base), bound_of(alt));
    let compressed = change(
        alt.image.compressed_bytes as f64,
        base.image.compressed_bytes as f64,
    );
    let uncompressed = change(
        alt.image.uncompressed_bytes as f64,
        base.image.uncompressed_bytes as f64,
    );
    let file_change = change(files(alt) as f64, files(base) as f64);
    let bound = if bound_a == bound_b {
        format!("both bound by {bound_b}")
    } else {
        format!("bound by {bound_b}, then by {bound_a}")
    };
    // (name, old, new) of each resource.
    let parts = [
        ("transfer", b.network_s, a.network_s),
        ("decompression", b.decompress_s, a.decompress_s),
        ("extraction", b.extract_s, a.extract_s),
        ("resolve round trips", b.resolve_s, a.resolve_s),
    ];
    let least = parts
        .iter()
        .filter(|(_, old, new)| *old > 0.0 && *new >= 0.1 * a.wall_s)
        .max_by(|x, y| (x.2 / x.1).total_cmp(&(y.2 / y.1)))
        .map(|(name, old, new)| format!("; shrinks least: {name} ({})", change(*new, *old)))
        .unwrap_or_default();
    Some(format!(
        "pull {} for {compressed} compressed: {bound}; transfer {} (compressed {compressed}), decompression {} (uncompressed {uncompressed}), extraction {} (files {file_change}), resolve {:.2} -> {:.2} s{least}",
        change(a.wall_s, b.wall_s),
        change(a.network_s, b.network_s),
        change(a.decompress_s, b.decompress_s),
        change(a.extract_s, b.extract_s),
        b.resolve_s,
        a.resolve_s,
    ))
}

/// The bandwidths, in Mbit/s, at which `compare` and `demo` explain.
pub const EXPLAIN_MBIT: [f64; 4] = [10.0, 100.0, 1000.0, 10000.0];

/// Each image's critical path by resource, for pictures.
pub type Paths = Vec<(String, Vec<(&'static str, f64)>)>;

/// Why, for simulated pulls of several images under one scenario (the first is
/// the baseline): a line per image on what bounded it and its critical path
/// ([`super::bounds`]), then a line per other image against the first
/// ([`why`]); and the paths, for [`crate::report::svg_bounds`].
pub fn explain_records(labels: &[String], records: &[PullRecord]) -> (Vec<String>, Paths) {
    let mut lines = Vec::new();
    let mut paths = Vec::new();
    for (label, r) in labels.iter().zip(records) {
        if let Some(b) = super::bounds::bounds(r) {
            lines.push(format!("{label}: {}", b.summary()));
            paths.push((label.clone(), b.path));
        }
    }
    if let Some(first) = records.first() {
        for (label, r) in labels.iter().zip(records).skip(1) {
            if let Some(w) = why(first, r) {
                lines.push(format!("{label} against the first: {w}"));
            }
        }
    }
    (lines, paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::media_type::Compression;
    use crate::sim::{Policy, Scenario, input::from_profile, simulate_at_bandwidth};

    fn scenario() -> Scenario {
        Scenario {
            network: crate::profiles::network::NetworkProfile::load("lan-1g").unwrap(),
            host: crate::profiles::host::HostProfile::builtin(),
            policy: Policy::Docker,
            max_concurrent_downloads: 3,
            dockerhub_flow: false,
            index: false,
            registry_on_host: false,
        }
    }

    #[test]
    fn slow_networks_are_network_bound_and_fast_ones_cpu_bound_and_it_says_so() {
        let load = |name: &str| {
            let p = crate::synth::ImageProfile::load(name).unwrap();
            from_profile(&p, 0.05, Compression::Gzip)
        };
        let (orig, multi) = (
            load("sn-compose-post-original"),
            load("sn-compose-post-multistage"),
        );
        let s = scenario();
        let at = |bps: f64| {
            let b = simulate_at_bandwidth(&orig, &s, bps, vec![]).unwrap();
            let a = simulate_at_bandwidth(&multi, &s, bps, vec![]).unwrap();
            why(&b, &a).unwrap()
        };
        let slow = at(1e6);
        assert!(slow.contains("both bound by network"), "{slow}");
        assert!(slow.contains("transfer -"), "{slow}");
        let fast = at(1e10);
        assert!(!fast.contains("bound by network"), "{fast}");
        assert!(fast.starts_with("pull -"), "{fast}");
    }
}
