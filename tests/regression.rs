//! Baselines end to end: save one pulling from `pulltime serve --network lan-1g`,
//! then the same image under `edge-20m` regresses (and `--fail-on-regression`
//! fails) while the same profile shows no change; `pulltime diff` on records.

mod common;

use std::path::Path;

use common::pulltime;
use predicates::prelude::*;
use pulltime::oci::media_type::Compression;
use pulltime::profiles::network::NetworkProfile;
use pulltime::server::{ServeOptions, ServerThread};
use pulltime::synth::{ImageProfile, SynthOptions, synthesize};

fn serve(layout: &Path, network: &str) -> ServerThread {
    ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.to_path_buf())],
        network: NetworkProfile::load(network).unwrap(),
        ..ServeOptions::default()
    })
    .unwrap()
}

/// Timing comparisons need a quiet machine: the tests of this file never overlap.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Extraction on tmpfs when there is one: less disk noise between batches.
fn tmp_dir() -> std::path::PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

#[test]
fn baseline_regression_gate_and_diff() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let profile = ImageProfile::load("sn-compose-post-multistage").unwrap();
    synthesize(
        &profile,
        SynthOptions {
            scale: 0.02,
            compression: Compression::Gzip,
        },
        &layout,
        "v1",
    )
    .unwrap();
    let lan = serve(&layout, "lan-1g");
    let edge = serve(&layout, "edge-20m");
    let dir = work.path().join("baselines");
    let pull = |server: &ServerThread, runs: &str| {
        let mut c = pulltime(home.path());
        c.args([
            "pull",
            &server.reference("app:v1"),
            "--quiet",
            "--runs",
            runs,
            "--baseline-dir",
        ])
        .arg(&dir)
        .arg("--tmp-dir")
        .arg(tmp_dir())
        // Warm-up pulls (not counted) bring the registry's page cache and the
        // binary to the same state for baseline and candidate: each counted run
        // is still a cold pull.
        .args(["--warmup", "2"]);
        c
    };
    pull(&lan, "10")
        .args(["--save-baseline", "lan", "--json"])
        .arg(work.path().join("lan.json"))
        .assert()
        .success();
    let saved = pulltime::report::json::read_record(&dir.join("lan.json")).unwrap();
    assert_eq!(
        saved.runs.len(),
        10,
        "the baseline keeps every run's samples"
    );
    assert!(saved.image.layers.iter().all(|l| l.uncompressed_bytes > 0));

    // Same profile: no change, and the gate passes. These pulls take ~60 ms, so
    // CPU noise on a shared 2-core machine can move them by a third between two
    // batches; the threshold says what this test treats as noise (the slower
    // network below is several times slower, far beyond it).
    pull(&lan, "10")
        .args([
            "--baseline",
            "lan",
            "--fail-on-regression",
            "--noise-threshold",
            "60%",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::is_match(r"(?m)^wall .* no change within noise$")
                .unwrap()
                .and(predicate::str::contains("image unchanged")),
        );

    // A slower network: regressed, and the gate fails naming the phase.
    pull(&edge, "5")
        .args(["--baseline", "lan", "--fail-on-regression", "--json"])
        .arg(work.path().join("edge.json"))
        .assert()
        .failure()
        .stdout(predicate::str::is_match(r"(?m)^wall .* regressed$").unwrap())
        .stderr(predicate::str::contains(
            "pull time regressed against baseline \"lan\": wall +",
        ));
    // Gating phases that did not regress passes: a record against itself, every phase gated.
    pulltime(home.path())
        .args([
            "diff",
            "--fail-on-regression=wall,resolve,download,verify,decompress,extract",
        ])
        .arg(dir.join("lan.json"))
        .arg(dir.join("lan.json"))
        .assert()
        .success()
        .stdout(predicate::str::contains("regressed").not());

    // The same comparison between saved records.
    pulltime(home.path())
        .args(["diff"])
        .arg(dir.join("lan.json"))
        .arg(work.path().join("edge.json"))
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"(?m)^download .* regressed$").unwrap());

    // A simulated record compares too: the same image simulated over a 2 Mbit/s,
    // 100 ms network (a "what would this network do" review) regresses against the
    // LAN baseline, whatever the build's speed.
    let slow = work.path().join("slow.toml");
    std::fs::write(&slow, "name = \"slow\"\nsource = \"test\"\nrtt_ms = 100\nconnect_rtts = 2\nconnection_bandwidth = \"2Mbit\"\nlink_bandwidth = \"2Mbit\"\n").unwrap();
    pulltime(home.path())
        .args([
            "simulate",
            &format!("oci:{}:v1", layout.display()),
            "--network",
        ])
        .arg(&slow)
        .arg("--json")
        .arg(work.path().join("sim.json"))
        .assert()
        .success();
    pulltime(home.path())
        .args(["diff", "--fail-on-regression"])
        .arg(dir.join("lan.json"))
        .arg(work.path().join("sim.json"))
        .assert()
        .failure()
        .stdout(
            predicate::str::contains("(simulated)").and(predicate::str::contains("one new value")),
        );

    // Missing baselines and bad names are clear errors before anything is pulled.
    pull(&lan, "1")
        .args(["--baseline", "nope"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no baseline named \"nope\""));
    pull(&lan, "1")
        .args(["--save-baseline", "../escape"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("baseline name"));
    assert!(!work.path().join("escape.json").exists());
    pull(&lan, "1")
        .args(["--fail-on-regression"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("needs --baseline"));
}

#[test]
fn a_changed_image_says_what_changed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let small = ImageProfile::load("vp-transcode-multistage").unwrap();
    let big = ImageProfile::load("vp-transcode-original").unwrap();
    let o = SynthOptions {
        scale: 0.003,
        compression: Compression::Gzip,
    };
    synthesize(&small, o, &layout, "small").unwrap();
    synthesize(&big, o, &layout, "big").unwrap();
    let server = serve(&layout, "loopback");
    let record = |tag: &str| {
        let json = work.path().join(format!("{tag}.json"));
        pulltime(home.path())
            .args([
                "pull",
                &server.reference(&format!("app:{tag}")),
                "--quiet",
                "--runs",
                "3",
                "--json",
            ])
            .arg(&json)
            .assert()
            .success();
        json
    };
    let (a, b) = (record("small"), record("big"));
    pulltime(home.path())
        .arg("diff")
        .arg(&a)
        .arg(&b)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("image changed: manifest")
                .and(predicate::str::contains("layer added:"))
                .and(predicate::str::contains("layer removed:"))
                .and(
                    predicate::str::is_match(
                        r"layers 6 -> 6; compressed \+[0-9.]+ [kM]B \(\+[0-9.]+%\)",
                    )
                    .unwrap(),
                ),
        );
}
