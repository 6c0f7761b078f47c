//! `pulltime demo`: the study, reproduced on one machine. Synthesises the study's
//! original/multi-stage pairs, serves them from the embedded registry behind a
//! Docker Hub emulation over a shaped network, pulls each cold several times, and
//! compares.

use std::path::{Path, PathBuf};

use crate::oci::media_type::Compression;
use crate::oci::record::PullRecord;
use crate::oci::reference::Reference;
use crate::pipeline::PullOptions;
use crate::pipeline::measure::{MeasureOptions, measure};
use crate::profiles::network::NetworkProfile;
use crate::server::{ServeOptions, ServerThread};
use crate::synth::{ImageProfile, SynthOptions, synthesize};

/// The study's functions, each an original and a multi-stage profile.
pub const PAIRS: &[&str] = &[
    "sn-compose-post",
    "ml-object-detection",
    "sn-text-filter",
    "vp-transcode",
];

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Scale of every image (1.0 = the study's sizes).
    pub scale: f64,
    /// Cold pulls per image.
    pub runs: usize,
    /// Where layouts and records go.
    pub out: PathBuf,
    /// Network between the puller and the emulated Docker Hub.
    pub network: NetworkProfile,
    /// Layer compression.
    pub compression: Compression,
    /// Which pairs.
    pub pairs: Vec<String>,
    /// Where the pulls' progress events go.
    pub progress: crate::pipeline::progress::Progress,
}

/// One function's two records.
#[derive(Debug, Clone)]
pub struct PairResult {
    /// Function name.
    pub pair: String,
    /// The original image's record.
    pub original: PullRecord,
    /// The multi-stage image's record.
    pub multistage: PullRecord,
}

/// Errors of the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Unknown pair or profile.
    #[error(transparent)]
    Profile(#[from] crate::profiles::ProfileError),
    /// Synthesis.
    #[error(transparent)]
    Synth(#[from] crate::synth::SynthError),
    /// The registry.
    #[error(transparent)]
    Serve(#[from] crate::server::ServeError),
    /// A pull.
    #[error(transparent)]
    Pull(#[from] crate::pipeline::PullError),
    /// Writing records.
    #[error(transparent)]
    Record(#[from] crate::report::json::RecordError),
    /// A record the explanation could not read.
    #[error(transparent)]
    Input(#[from] crate::sim::input::InputError),
    /// The explanation's simulation.
    #[error(transparent)]
    Sim(#[from] crate::sim::SimError),
    /// Output directory.
    #[error("{path}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the demo, reporting each step through `say`.
pub fn run(options: &DemoOptions, say: &mut dyn FnMut(&str)) -> Result<Vec<PairResult>, DemoError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| DemoError::Io { path, source }
    };
    std::fs::create_dir_all(options.out.join("records")).map_err(io(&options.out))?;
    let synth = SynthOptions {
        scale: options.scale,
        compression: options.compression,
    };
    let mut layouts = Vec::new();
    for pair in &options.pairs {
        let dir = options.out.join("layouts").join(pair);
        for (variant, tag) in [("original", "original"), ("multistage", "multi-stage")] {
            let profile = ImageProfile::load(&format!("{pair}-{variant}"))?;
            let img = synthesize(&profile, synth, &dir, tag)?;
            say(&format!(
                "synthesised {pair}:{tag}: {}, {}, {} compressed",
                crate::report::plural(img.layers.len() as u64, "layer"),
                crate::report::plural(img.files(), "file"),
                crate::report::human_bytes(img.compressed_bytes())
            ));
        }
        layouts.push((pair.clone(), dir));
    }
    let pulls = options.pairs.len() * 2 * options.runs;
    let server = ServerThread::spawn(ServeOptions {
        layouts,
        network: options.network.clone(),
        emulate_dockerhub: true,
        // Two manifest GETs per pull at most; never let the demo hit 429.
        rate_limit: (pulls * 2 + 10) as u64,
        ..ServeOptions::default()
    })?;
    say(&format!(
        "serving them at {} as Docker Hub would (token auth, blobs via a CDN at {}), network profile {}",
        server.addr,
        server.cdn_addr.map(|a| a.to_string()).unwrap_or_default(),
        options.network.name
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io(&options.out))?;
    let mut results = Vec::new();
    for pair in &options.pairs {
        let mut records = Vec::new();
        for tag in ["original", "multi-stage"] {
            let reference = Reference::parse(&server.reference(&format!("{pair}:{tag}")))
                .expect("valid reference");
            say(&format!("pulling {pair}:{tag} cold {} times", options.runs));
            let measure_options = MeasureOptions {
                runs: options.runs,
                warmup: 0,
                dest: None,
                tmp_dir: std::env::temp_dir(),
                pull: PullOptions::lab_defaults(),
                progress: options.progress.clone(),
                settle: std::time::Duration::ZERO,
                deleted_at: None,
            };
            let record = runtime.block_on(measure(&reference, &measure_options))?;
            let path = options
                .out
                .join("records")
                .join(format!("{pair}-{tag}.json"));
            crate::report::json::write_record(&record, &path)?;
            records.push(record);
        }
        let multistage = records.pop().expect("two records");
        let original = records.pop().expect("two records");
        results.push(PairResult {
            pair: pair.clone(),
            original,
            multistage,
        });
    }
    Ok(results)
}

/// The side-by-side table of a demo run.
pub fn table(results: &[PairResult]) -> String {
    use crate::report::compare::{Entry, comparison_table};
    let groups: Vec<Vec<Entry<'_>>> = results
        .iter()
        .map(|r| {
            vec![
                Entry {
                    label: format!("{} original", r.pair),
                    record: &r.original,
                },
                Entry {
                    label: format!("{} multi-stage", r.pair),
                    record: &r.multistage,
                },
            ]
        })
        .collect();
    comparison_table(&groups)
}

/// Why one pair's pull time fell less than its size, at each of
/// [`EXPLAIN_MBIT`](crate::sim::explain::EXPLAIN_MBIT).
#[derive(Debug, Clone)]
pub struct PairExplanation {
    /// Function name.
    pub pair: String,
    /// Per bandwidth: its label and the multi-stage image against the original
    /// in one sentence ([`why`](crate::sim::explain::why)).
    pub lines: Vec<(String, String)>,
    /// The critical paths, for [`crate::report::svg_bounds::critical_paths`].
    pub groups: Vec<crate::report::svg_bounds::Group>,
}

/// Explains each pair: both images as their records measured them, simulated
/// with pulltime's policy on the built-in host profile over the demo's network
/// at 10 Mbit/s to 10 Gbit/s.
pub fn explain(
    results: &[PairResult],
    network: &NetworkProfile,
) -> Result<Vec<PairExplanation>, DemoError> {
    use crate::sim::explain::{EXPLAIN_MBIT, explain_records, why};
    use crate::sim::{Policy, Scenario, input::from_record, simulate_at_bandwidth};
    let scenario = Scenario {
        network: network.clone(),
        host: crate::profiles::host::HostProfile::builtin(),
        policy: Policy::Pulltime,
        max_concurrent_downloads: Policy::Pulltime.default_downloads(),
        dockerhub_flow: network.cdn.is_some(),
        index: false,
        registry_on_host: false,
    };
    let mut out = Vec::new();
    for r in results {
        let labels = vec![
            format!("{} original", r.pair),
            format!("{} multi-stage", r.pair),
        ];
        let images = [
            from_record(&labels[0], &r.original)?,
            from_record(&labels[1], &r.multistage)?,
        ];
        let mut e = PairExplanation {
            pair: r.pair.clone(),
            lines: Vec::new(),
            groups: Vec::new(),
        };
        for mbit in EXPLAIN_MBIT {
            let bps = mbit * 1e6 / 8.0;
            let records = images
                .iter()
                .map(|i| simulate_at_bandwidth(i, &scenario, bps, vec![]))
                .collect::<Result<Vec<_>, _>>()?;
            let (_, paths) = explain_records(&labels, &records);
            let label = crate::profiles::network::format_bandwidth(bps);
            if let Some(w) = why(&records[0], &records[1]) {
                e.lines.push((label.clone(), w));
            }
            e.groups.push((label, paths));
        }
        out.push(e);
    }
    Ok(out)
}
