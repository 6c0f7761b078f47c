//! calibrate, simulate, report and compare end to end: simulated records have the
//! measured records' shape, reports draw both, compare shows the expected size
//! differences between two images measured from the embedded registry.

use crate::common;

use common::pulltime;
use predicates::prelude::*;
use pulltime::oci::media_type::Compression;
use pulltime::server::{ServeOptions, ServerThread};
use pulltime::synth::{ImageProfile, SynthOptions, synthesize};

fn layout_with_pair(
    dir: &std::path::Path,
) -> (pulltime::synth::SynthImage, pulltime::synth::SynthImage) {
    let o = SynthOptions {
        scale: 0.003,
        compression: Compression::Gzip,
    };
    let a = synthesize(
        &ImageProfile::load("vp-transcode-original").unwrap(),
        o,
        dir,
        "orig",
    )
    .unwrap();
    let b = synthesize(
        &ImageProfile::load("vp-transcode-multistage").unwrap(),
        o,
        dir,
        "multi",
    )
    .unwrap();
    (a, b)
}

/// The keys `docs/json.md` promises for every record, measured or simulated.
fn assert_record_shape(v: &serde_json::Value) {
    assert_eq!(v["schema_version"], 2);
    assert_eq!(
        v["tool"]["gzip_backend"],
        pulltime::pipeline::gzip::gzip_backend()
    );
    for k in [
        "reference",
        "layers",
        "compressed_bytes",
        "uncompressed_bytes",
    ] {
        assert!(!v["image"][k].is_null(), "image.{k}");
    }
    for k in ["mode", "max_concurrent_downloads", "runs", "warmup"] {
        assert!(!v["settings"][k].is_null(), "settings.{k}");
    }
    let run = &v["runs"][0];
    assert!(run["wall_s"].as_f64().unwrap() > 0.0 && run["resolve_s"].as_f64().unwrap() > 0.0);
    for l in run["layers"].as_array().unwrap() {
        for k in [
            "digest",
            "compressed_bytes",
            "uncompressed_bytes",
            "files",
            "start_s",
            "end_s",
            "download_s",
            "ttfb_s",
            "verify_s",
            "decompress_s",
            "extract_s",
        ] {
            assert!(!l[k].is_null(), "runs[0].layers[].{k} in {l}");
        }
    }
    assert_eq!(
        v["summary"]["wall_s"]["n"].as_u64().unwrap() as usize,
        v["runs"].as_array().unwrap().len()
    );
}

#[test]
fn simulate_writes_a_record_that_report_and_diff_read() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let (orig, _) = layout_with_pair(&layout);
    let host = work.path().join("host.toml");
    // --dest that does not exist yet is created, as pull's is, and removed again.
    let probes = work.path().join("not/yet");
    pulltime(home.path())
        .args(["calibrate", "--quick", "--name", "test-host", "--out"])
        .arg(&host)
        .arg("--dest")
        .arg(&probes)
        .assert()
        .success();
    assert!(!work.path().join("not").exists());
    pulltime(home.path())
        .args(["calibrate", "--quick", "--dest"])
        .arg(&host)
        .assert()
        .failure()
        .stderr(predicate::str::contains("is not a directory"));
    // The pull's own costs were measured against the embedded registry.
    let profile = pulltime::profiles::host::HostProfile::load(&host).unwrap();
    let o = &profile.pull;
    for (what, v) in [
        ("startup_s", o.startup_s),
        ("request_s", o.request_s),
        ("loopback_bps", o.loopback_bps),
        ("serve_cpu_s_per_byte", o.serve_cpu_s_per_byte),
        ("spool_write_bps", o.spool_write_bps),
        ("spool_read_bps", o.spool_read_bps),
    ] {
        assert!(v.is_finite() && v > 0.0, "{what} = {v}");
    }
    assert!(o.startup_s < 1.0 && o.request_s < 0.1, "{o:?}");
    // Real pulls cost CPU of their own: the factor was measured (the default is
    // exactly 1), within its bounds.
    assert!(
        o.stream_cpu_factor != 1.0 && (0.5..=4.0).contains(&o.stream_cpu_factor),
        "stream_cpu_factor = {}",
        o.stream_cpu_factor
    );
    let json = work.path().join("sim.json");
    pulltime(home.path())
        .args([
            "simulate",
            &format!("oci:{}:orig", layout.display()),
            "--network",
            "edge-20m",
            "--policy",
            "docker",
            "--host",
        ])
        .arg(&host)
        .arg("--json")
        .arg(&json)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_record_shape(&v);
    assert_eq!(v["simulated"], true);
    assert_eq!(v["settings"]["mode"], "docker");
    assert_eq!(v["simulation"]["host"]["name"], "test-host");
    assert_eq!(v["simulation"]["network"]["name"], "edge-20m");
    // The layout's layers, exactly: digests and sizes read from the blobs.
    let layers = v["image"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), orig.layers.len());
    for (l, o) in layers.iter().zip(&orig.layers) {
        assert_eq!(l["digest"], o.digest);
        assert_eq!(l["compressed_bytes"], o.compressed_bytes);
        assert_eq!(l["uncompressed_bytes"], o.uncompressed_bytes);
    }
    // At 20 Mbit/s the download of the compressed bytes alone takes at least this long.
    let floor = orig.compressed_bytes() as f64 / 2.5e6;
    assert!(v["runs"][0]["wall_s"].as_f64().unwrap() > floor);

    // report draws it: one bar group per layer.
    let svg = work.path().join("w.svg");
    pulltime(home.path())
        .arg("report")
        .arg(&json)
        .arg("-o")
        .arg(&svg)
        .args(["--csv"])
        .arg(work.path().join("t.csv"))
        .assert()
        .success();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(
        text.matches(r#"<g class="layer""#).count(),
        orig.layers.len()
    );
    assert!(text.contains("simulated"));
    assert_eq!(
        std::fs::read_to_string(work.path().join("t.csv"))
            .unwrap()
            .lines()
            .count(),
        orig.layers.len() + 1
    );
}

#[test]
fn measured_records_report_and_compare_with_expected_size_differences() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let (orig, multi) = layout_with_pair(&layout);
    let server = ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.clone())],
        ..ServeOptions::default()
    })
    .unwrap();
    let mut records = Vec::new();
    for tag in ["orig", "multi"] {
        let json = work.path().join(format!("{tag}.json"));
        pulltime(home.path())
            .args([
                "pull",
                &server.reference(&format!("app:{tag}")),
                "--quiet",
                "--runs",
                "2",
                "--json",
            ])
            .arg(&json)
            .assert()
            .success();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_record_shape(&v);
        records.push(json);
    }
    let svg = work.path().join("m.svg");
    pulltime(home.path())
        .arg("report")
        .arg(&records[0])
        .arg("-o")
        .arg(&svg)
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&svg)
            .unwrap()
            .matches(r#"<g class="layer""#)
            .count(),
        orig.layers.len()
    );

    let pct =
        |new: u64, old: u64| format!("{:+.0}%", 100.0 * (new as f64 - old as f64) / old as f64);
    let chart = work.path().join("sweep.svg");
    let why_chart = work.path().join("why.svg");
    let out = pulltime(home.path())
        .arg("compare")
        .arg(&records[0])
        .arg(&records[1])
        .arg("--svg")
        .arg(&chart)
        .arg("--why-svg")
        .arg(&why_chart)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("measured:"), "{out}");
    // And why, in words, at 10 Mbit/s to 10 Gbit/s: what bounds, what shrank least.
    let why: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("shrinks least"))
        .collect();
    assert_eq!(why.len(), 4, "{out}");
    assert!(why.iter().all(|l| l.contains("bound by")), "{out}");
    // Each image's critical path at each of the four bandwidths, in words and
    // drawn: a bar per image and bandwidth.
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("critical path: "))
            .count(),
        2 * 4,
        "{out}"
    );
    let why_svg = std::fs::read_to_string(&why_chart).unwrap();
    assert_eq!(why_svg.matches(r#"class="bar""#).count(), 2 * 4);
    // The measured table's change row carries the size differences of the images.
    let change_row = out
        .lines()
        .find(|l| l.trim_start().starts_with("change"))
        .unwrap();
    assert!(
        change_row.contains(&pct(multi.uncompressed_bytes(), orig.uncompressed_bytes())),
        "{change_row}"
    );
    assert!(
        change_row.contains(&pct(multi.compressed_bytes(), orig.compressed_bytes())),
        "{change_row}"
    );
    assert!(
        change_row.contains(&pct(multi.files(), orig.files())),
        "{change_row}"
    );
    let sweep = std::fs::read_to_string(&chart).unwrap();
    assert_eq!(sweep.matches("<polyline").count(), 2);
    // Lines and bars are named by the records' image references, not their files.
    for svg in [&sweep, &why_svg] {
        assert!(
            svg.contains("/app:orig<") && svg.contains("/app:multi<"),
            "{svg}"
        );
        assert!(!svg.contains("orig.json"), "{svg}");
    }
}

#[test]
fn simulate_what_ifs_and_bad_input() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let svg = work.path().join("bw.svg");
    pulltime(home.path())
        .args([
            "simulate",
            "ml-object-detection-original",
            "--scale",
            "0.1",
            "--recompress",
            "zstd",
            "--cached-layers",
            "3",
            "--merge-layers",
            "--split-layers",
            "4",
            "--cpu-speed",
            "2",
            "--bandwidth",
            "10Mbit,1Gbit",
            "--svg",
        ])
        .arg(&svg)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("recompressed to zstd")
                .and(predicate::str::contains("first 3 layers cached"))
                .and(predicate::str::contains("layers merged"))
                .and(predicate::str::contains("largest layer split in 4"))
                .and(predicate::str::contains("CPU 2x as fast"))
                .and(predicate::str::contains("at 10.0 Mbit/s"))
                .and(predicate::str::contains("bound by"))
                .and(predicate::str::contains("estimated:")),
        );
    // Why, per layer and for the pull: the critical path adds up to the pull.
    let docker_lan = [
        "simulate",
        "ml-object-detection-original",
        "--scale",
        "0.1",
        "--policy",
        "docker",
        "--network",
        "lan-1g",
    ];
    let out = pulltime(home.path())
        .args(docker_lan)
        .args(["--json", "-"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let record: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let layers = record["runs"][0]["layers"].as_array().unwrap().len();
    let out = pulltime(home.path())
        .args(docker_lan)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let why = out.split("why:").nth(1).expect("a why section");
    assert_eq!(
        why.lines()
            .filter(|l| l.trim_start().starts_with("layer "))
            .count(),
        layers,
        "{out}"
    );
    let whole = why.lines().find(|l| l.contains("as is: bound by")).unwrap();
    let path = whole.split("critical path: ").nth(1).unwrap();
    let sum: f64 = path
        .split(", ")
        .map(|part| part.rsplit(' ').nth(1).unwrap().parse::<f64>().unwrap())
        .sum();
    let wall = record["runs"][0]["wall_s"].as_f64().unwrap();
    // Each part is printed to 10 ms, parts under 5 ms left out.
    assert!(
        (sum - wall).abs() < 0.02 * path.split(", ").count() as f64 + 0.05,
        "{whole} vs {wall}"
    );
    // The sweep draws a line per scenario: as is and the five what-ifs.
    let sweep = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(sweep.matches("<polyline").count(), 6, "{sweep}");
    for label in [">as is<", ">recompressed to zstd<", ">CPU 2x as fast<"] {
        assert!(sweep.contains(label), "{label} in {sweep}");
    }
    let csv = work.path().join("s.csv");
    pulltime(home.path())
        .args([
            "simulate",
            "vp-transcode-original",
            "--merge-layers",
            "--csv",
        ])
        .arg(&csv)
        .assert()
        .success();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.starts_with("scenario,bandwidth_bit_per_s,pull_s,resolve_s"),
        "{text}"
    );
    pulltime(home.path())
        .args(["simulate", "no-such-thing"])
        .assert()
        .failure();
    pulltime(home.path())
        .args(["simulate", "vp-transcode-original", "--cpu-speed", "0"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "--cpu-speed must be a positive factor",
        ));
    pulltime(home.path())
        .args(["simulate", "vp-transcode-original", "--network", "nowhere"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown network profile"));
    pulltime(home.path())
        .args([
            "simulate",
            "vp-transcode-original",
            "--host",
            "/nonexistent.toml",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("pulltime calibrate"));
    pulltime(home.path())
        .args(["simulate", "vp-transcode-original", "--bandwidth", "fast"])
        .assert()
        .failure();
}

#[test]
fn fleet_bursts_and_aggregate() {
    let home = tempfile::tempdir().unwrap();
    // 200 nodes x ~0.17 GB over 1 Gbit/s of egress: bounded by egress, far slower than one node.
    let burst_args = [
        "simulate",
        "sn-compose-post-multistage",
        "--scale",
        "0.1",
        "--fleet",
        "200",
        "--egress",
        "1Gbit",
        "--fleet-spread",
        "1",
    ];
    let out = pulltime(home.path())
        .args(burst_args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("p99") && out.contains("one node alone"),
        "{out}"
    );
    let secs = |line: &str, field: usize| -> f64 {
        out.lines()
            .find(|l| l.starts_with(line))
            .unwrap()
            .split_whitespace()
            .nth(field)
            .unwrap()
            .parse()
            .unwrap()
    };
    let p50 = secs("completed", 4);
    let alone = secs("one node alone:", 3);
    assert!(p50 > 5.0 * alone, "p50 {p50} vs one node {alone}:\n{out}");
    // --json writes the burst: its inputs and every node's times, as printed.
    let burst = home.path().join("burst.json");
    pulltime(home.path())
        .args(burst_args)
        .arg("--json")
        .arg(&burst)
        .assert()
        .success();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&burst).unwrap()).unwrap();
    assert_eq!(v["burst"]["nodes"], 200);
    let completions = v["result"]["completions"].as_array().unwrap();
    assert_eq!(completions.len(), 200);
    assert_eq!(v["result"]["durations"].as_array().unwrap().len(), 200);
    let json_p50 = completions[99].as_f64().unwrap();
    assert!(
        (json_p50 - p50).abs() < 0.006,
        "{json_p50} vs printed {p50}"
    );
    pulltime(home.path())
        .args(["simulate", "vp-transcode-original", "--fleet", "0"])
        .assert()
        .failure();
    pulltime(home.path())
        .args([
            "simulate",
            "vp-transcode-original",
            "--fleet",
            "10",
            "--fleet-cached-fraction",
            "2",
        ])
        .assert()
        .failure();

    // aggregate merges the runs of several records.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    layout_with_pair(&layout);
    let server = ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.clone())],
        ..ServeOptions::default()
    })
    .unwrap();
    let mut files = Vec::new();
    for k in 0..3 {
        let json = work.path().join(format!("node{k}.json"));
        pulltime(home.path())
            .args([
                "pull",
                &server.reference("app:multi"),
                "--quiet",
                "--runs",
                "2",
                "--json",
            ])
            .arg(&json)
            .assert()
            .success();
        files.push(json);
    }
    let summary = work.path().join("agg.json");
    pulltime(home.path())
        .arg("aggregate")
        .args(&files)
        .arg("--json")
        .arg(&summary)
        .assert()
        .success()
        .stdout(predicate::str::contains("3 records, 6 runs"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(v["phases"][0]["phase"], "wall");
    assert_eq!(v["phases"][0]["n"], 6);
    let (p50, p99, max) = (
        v["phases"][0]["p50"].as_f64().unwrap(),
        v["phases"][0]["p99"].as_f64().unwrap(),
        v["phases"][0]["max"].as_f64().unwrap(),
    );
    assert!(p50 <= p99 && p99 <= max);
}

#[test]
fn tls_versions_change_the_simulated_handshakes() {
    // dockerhub-100m: registry 30 ms away, CDN 10 ms, TCP 1 round trip; TLS 1.3
    // adds one round trip per new connection, TLS 1.2 two, none zero.
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let run = |tls: &str| -> serde_json::Value {
        let json = work.path().join(format!("tls-{tls}.json"));
        pulltime(home.path())
            .args(["simulate", "sn-text-filter-multistage", "--scale", "0.01"])
            .args(["--network", "dockerhub-100m", "--tls", tls, "--json"])
            .arg(&json)
            .assert()
            .success();
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
    };
    let (none, v13, v12) = (run("none"), run("1.3"), run("1.2"));
    let conns = |r: &serde_json::Value| r["runs"][0]["connections"].as_array().unwrap().clone();
    for c in conns(&none) {
        assert!(c["tls_s"].is_null(), "{c}");
    }
    for (record, rtts) in [(&v13, 1.0), (&v12, 2.0)] {
        for c in conns(record) {
            let rtt = if c["host"] == "registry" {
                0.030
            } else {
                0.010
            };
            let tls = c["tls_s"].as_f64().unwrap();
            assert!((tls - rtts * rtt).abs() < 1e-9, "{c}");
            assert!((c["tcp_s"].as_f64().unwrap() - rtt).abs() < 1e-9, "{c}");
        }
    }
    let resolve = |r: &serde_json::Value| r["runs"][0]["resolve_s"].as_f64().unwrap();
    // The resolve phase opens a registry connection (ping) first: one registry
    // RTT more per TLS round trip, at least.
    assert!(resolve(&v13) - resolve(&none) >= 0.030 - 1e-9);
    assert!(resolve(&v12) - resolve(&v13) >= 0.030 - 1e-9);
}
