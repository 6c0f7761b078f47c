//! Soak: many cold pulls of a multi-layer synthetic image through `pulltime serve
//! --faults`. With the `mixed` profile every pull must succeed with a root
//! filesystem identical to a fault-free pull; with `hopeless` every pull must fail
//! with a clear error after its retries, leaving nothing behind. Never a corrupt or
//! partial tree reported as success.
//!
//! CI runs a short soak (`PULLTIME_SOAK_PULLS`, default 24 pulls). The full one,
//! whose figures are in docs/reliability.md:
//!
//! ```sh
//! PULLTIME_SOAK_PULLS=200 cargo test --release --test soak -- --nocapture
//! ```

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{pulltime, snapshot};
use pulltime::oci::media_type::Compression;
use pulltime::oci::record::PullRecord;
use pulltime::oci::reference::Reference;
use pulltime::pipeline::measure::{MeasureOptions, measure};
use pulltime::pipeline::{Mode, PullOptions};
use pulltime::profiles::faults::FaultProfile;
use pulltime::server::{ServeOptions, ServerThread};
use pulltime::synth::{ImageProfile, SynthOptions, synthesize};

fn synth(dir: &Path) -> pulltime::synth::SynthImage {
    let profile = ImageProfile::load("sn-compose-post-original").unwrap();
    synthesize(
        &profile,
        SynthOptions {
            scale: 0.004,
            compression: Compression::Gzip,
        },
        dir,
        "v1",
    )
    .unwrap()
}

fn serve(layout: &Path, faults: Option<&str>, seed: u64) -> ServerThread {
    serve_as(layout, faults, seed, false)
}

fn serve_as(layout: &Path, faults: Option<&str>, seed: u64, hub: bool) -> ServerThread {
    ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.to_path_buf())],
        emulate_dockerhub: hub,
        rate_limit: 1_000_000,
        faults: faults.map(|f| {
            let mut p = FaultProfile::load(f).unwrap();
            p.seed = seed;
            p
        }),
        ..ServeOptions::default()
    })
    .unwrap()
}

fn pull(reference: &str, dest: &Path, tmp: &Path, mode: Mode) -> Result<PullRecord, String> {
    let reference = Reference::parse(reference).unwrap();
    let mut pull = PullOptions::lab_defaults();
    pull.mode = mode;
    // Short timeouts so a stall is a fault the client sees, not a hang.
    pull.client.timeout = std::time::Duration::from_secs(5);
    let options = MeasureOptions {
        runs: 1,
        warmup: 0,
        dest: Some(dest.to_path_buf()),
        tmp_dir: tmp.to_path_buf(),
        pull,
        progress: pulltime::pipeline::progress::Progress::none(),
        settle: std::time::Duration::ZERO,
        deleted_at: None,
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(measure(&reference, &options))
        .map_err(|e| e.to_string())
}

fn pulls() -> usize {
    std::env::var("PULLTIME_SOAK_PULLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    failed: usize,
    retries: u64,
    resumes: u64,
    resumed_bytes: u64,
    restarts: u64,
    fault_s: f64,
}

impl Tally {
    fn add(&mut self, r: &PullRecord) {
        self.ok += 1;
        for run in &r.runs {
            self.retries += run.retries as u64;
            self.restarts += run.restarts as u64;
            self.fault_s += run.fault_s;
            for l in &run.layers {
                self.resumes += l.resumes as u64;
                self.resumed_bytes += l.resumed_bytes;
            }
        }
    }
}

#[test]
fn mixed_faults_never_yield_a_wrong_tree() {
    let layout = tempfile::tempdir().unwrap();
    let image = synth(layout.path());
    assert!(image.layers.len() >= 4, "a multi-layer image");
    let work = tempfile::tempdir().unwrap();
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();

    // The reference tree, from a fault-free server.
    let clean = serve(layout.path(), None, 1);
    let want_dir = work.path().join("want");
    pull(&clean.reference("app:v1"), &want_dir, &tmp, Mode::Streaming).unwrap();
    let want = snapshot(&want_dir);
    drop(clean);

    let n = pulls();
    // Two thirds against a plain registry, a third as Docker Hub (token endpoint,
    // 307 to the CDN listener): the same profile faults tokens and CDN bodies there.
    let plain = serve(layout.path(), Some("mixed"), 20261127);
    let hub = serve_as(layout.path(), Some("mixed"), 20261128, true);
    let mut tally = Tally::default();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for k in 0..n {
        let server = if k % 3 == 2 { &hub } else { &plain };
        let reference = server.reference("app:v1");
        let dest = work.path().join(format!("pull-{k}"));
        // Both modes go through the same faults.
        let mode = if k % 4 == 3 {
            Mode::Staged
        } else {
            Mode::Streaming
        };
        match pull(&reference, &dest, &tmp, mode) {
            Ok(record) => {
                let got = snapshot(&dest);
                assert!(
                    got == want,
                    "pull {k} succeeded with a different tree:\n{}",
                    common::diff(&want, &got)
                );
                tally.add(&record);
            }
            Err(e) => {
                tally.failed += 1;
                assert!(
                    !dest.exists(),
                    "pull {k} failed ({e}) but left {}",
                    dest.display()
                );
                *failures.entry(e).or_default() += 1;
            }
        }
        std::fs::remove_dir_all(&dest).ok();
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "scratch space left after pull {k}"
        );
    }
    let mut summary = plain.faults_injected().unwrap();
    let hub_summary = hub.faults_injected().unwrap();
    summary.total_injected += hub_summary.total_injected;
    for (k, v) in hub_summary.injected {
        *summary.injected.entry(k).or_default() += v;
    }
    for (k, v) in hub_summary.requests {
        *summary.requests.entry(k).or_default() += v;
    }
    println!(
        "soak (mixed): {n} pulls, {} succeeded, {} failed; {} faults injected {:?} over {:?}; \
         client: {} retries, {} resumed bodies ({} bytes kept), {} pull restarts, {:.1} s lost",
        tally.ok,
        tally.failed,
        summary.total_injected,
        summary.injected,
        summary.requests,
        tally.retries,
        tally.resumes,
        tally.resumed_bytes,
        tally.restarts,
        tally.fault_s
    );
    // Faults really happened, and the client really worked around them.
    assert!(summary.total_injected >= n as u64 / 2, "{summary:?}");
    assert!(tally.retries > 0 && tally.resumes > 0, "{tally:?}");
    // Only an injected corruption may cost a restart: a resumed body put together
    // wrongly would fail its digest and show up here.
    let corrupt = summary.injected.get("corrupt").copied().unwrap_or(0);
    assert!(
        tally.restarts <= corrupt,
        "{} restarts for {corrupt} corruptions",
        tally.restarts
    );
    // mixed is survivable with 5 attempts: a blob fails 5 times in a row with
    // probability ~1e-4, so every pull must have succeeded.
    assert_eq!(tally.failed, 0, "failures: {failures:#?}");
}

#[test]
fn hopeless_faults_fail_clearly_after_the_retries() {
    let layout = tempfile::tempdir().unwrap();
    synth(layout.path());
    let server = serve(layout.path(), Some("hopeless"), 1);
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("rootfs");
    let out = pulltime(work.path())
        .args([
            "pull",
            &server.reference("app:v1"),
            "--quiet",
            "--retries",
            "3",
        ])
        .arg("--dest")
        .arg(&dest)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("HTTP 503") && stderr.contains("gave up after 3 attempts"),
        "{stderr}"
    );
    assert!(!dest.exists(), "left a destination behind");
    let summary = server.faults_injected().unwrap();
    // Bounded: at most 3 attempts for each blob request that was started.
    let blobs = summary.requests.get("blob").copied().unwrap_or(0);
    assert!(blobs >= 3, "{summary:?}");
    assert!(blobs <= 3 * 8, "{summary:?}");
}
