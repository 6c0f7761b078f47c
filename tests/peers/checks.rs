//! What every puller's record must show, pulling a synthetic image and the real
//! Debian-built one from the CNCF registry through pulltime's recording proxy,
//! twice:
//! - every blob byte fetched in both runs (the second run was cold too), and each
//!   layer's download window carrying its manifest size;
//! - a wall time that agrees with a clock outside pulltime (wrapper scripts around
//!   the pull commands, or dockerd's own debug log) within 5% (+10 ms for the
//!   wrappers' own `date` calls);
//! - `null` only where `runs[].unobserved` says why, and a phase said unobserved
//!   null in some layer;
//! - and the puller's store without the image afterwards.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use pulltime::oci::media_type::Compression;
use pulltime::oci::record::{LayerRun, PullRecord};

use crate::common::{Registry, build_and_push, many_files_layer, pulltime, run, which};

/// An image in the CNCF registry, with its layers as the registry's manifest gives them.
pub struct Source {
    pub reference: String,
    /// (digest, size) per layer, from `skopeo inspect --raw`.
    pub layers: Vec<(String, u64)>,
}

pub fn manifest_layers(reference: &str) -> Vec<(String, u64)> {
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]));
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    v["layers"]
        .as_array()
        .expect("a single-platform manifest")
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

pub fn synthetic(reg: &Registry) -> Source {
    let reference = reg.reference("synthetic/app:v1");
    build_and_push(
        &reference,
        &[
            many_files_layer(1, 400, 1_500),
            many_files_layer(2, 20, 200_000),
            many_files_layer(3, 150, 4_000),
        ],
        Compression::Gzip,
    );
    Source {
        layers: manifest_layers(&reference),
        reference,
    }
}

pub fn debian(reg: &Registry, test: &str) -> Option<Source> {
    let Some(layout) = super::debian_image() else {
        super::skip(
            test,
            "no Debian-built image: run benches/images/build.sh small (.ci/run does)",
        );
        return None;
    };
    let reference = reg.reference("debian/small:v1");
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{reference}"),
    ]));
    Some(Source {
        layers: manifest_layers(&reference),
        reference,
    })
}

/// Wrapper scripts for the CLI pullers that log, on the system clock, when each
/// pull command starts and ends; other calls go straight to the real program.
pub fn wrappers(log: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for tool in ["ctr", "podman", "skopeo", "umoci"] {
        let Some(real) = which(tool) else { continue };
        let script = format!(
            "#!/bin/sh\ncase \" $* \" in\n  *\" pull \"*|\" copy \"*|*\" raw unpack \"*) ;;\n  *) exec {real} \"$@\" ;;\nesac\nprintf 'start %s\\n' \"$(date +%s.%N)\" >> {log}\n{real} \"$@\"\nrc=$?\nprintf 'end %s\\n' \"$(date +%s.%N)\" >> {log}\nexit $rc\n",
            real = real.display(),
            log = log.display()
        );
        let path = dir.path().join(tool);
        std::fs::write(&path, script).unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(&path).unwrap().permissions(),
            0o755,
        );
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    dir
}

/// (start, end) of each wrapped command, in order.
pub fn wrapped_windows(log: &Path) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out = Vec::new();
    let mut start = None;
    for line in text.lines() {
        let (what, t) = line.split_once(' ').unwrap();
        let t: f64 = t.parse().unwrap();
        match what {
            "start" => start = Some(t),
            _ => out.push((start.take().expect("start before end"), t)),
        }
    }
    out
}

/// Pulls `source` twice with `puller` and checks the record.
pub fn pull_twice(
    puller: &str,
    source: &Source,
    extra: &[String],
    path: Option<&Path>,
) -> PullRecord {
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let json = home.path().join("record.json");
    let mut cmd = pulltime(home.path());
    cmd.args([
        "pull",
        &source.reference,
        "--puller",
        puller,
        "--runs",
        "2",
        "-q",
    ])
    .arg("--json")
    .arg(&json)
    .arg("--tmp-dir")
    .arg(tmp.path())
    .args(extra);
    if let Some(dir) = path {
        let old = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{old}", dir.display()));
    }
    cmd.assert().success();
    let record = pulltime::report::json::read_record(&json).unwrap();
    check_record(puller, source, &record);
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "{puller}: pulltime left files in its --tmp-dir"
    );
    record
}

pub fn check_record(puller: &str, source: &Source, record: &PullRecord) {
    assert_eq!(record.schema_version, 2);
    assert_eq!(
        record.tool.gzip_backend.as_deref(),
        Some(pulltime::pipeline::gzip::gzip_backend())
    );
    assert_eq!(record.puller.name, puller);
    assert!(!record.puller.version.is_empty(), "{:?}", record.puller);
    assert_eq!(record.runs.len(), 2);
    let sizes: HashMap<&str, u64> = source
        .layers
        .iter()
        .map(|(d, s)| (d.as_str(), *s))
        .collect();
    for run in &record.runs {
        let cold = run
            .cold
            .as_ref()
            .expect("other pullers' runs carry a cold check");
        assert!(
            cold.all_bytes_fetched,
            "{puller} run {}: {cold:?}",
            run.index
        );
        // containerd keeps the config between runs (in its shared content store).
        assert!(
            cold.config_fetched || (puller == "containerd" && run.index > 0),
            "{puller} run {}: {cold:?}",
            run.index
        );
        assert_eq!(run.layers.len(), source.layers.len());
        for (l, (digest, size)) in run.layers.iter().zip(&source.layers) {
            assert_eq!(&l.digest, digest, "{puller}: layers in manifest order");
            assert_eq!(
                l.compressed_bytes,
                sizes[digest.as_str()],
                "{puller} {digest}"
            );
            assert_eq!(l.compressed_bytes, *size);
            let download = l.download_s.expect("the proxy sees every download");
            assert!(
                download > 0.0 && l.start_s + download <= run.wall_s + 1e-6,
                "{l:?}"
            );
            assert!(l.ttfb_s.is_some_and(|t| t <= download), "{l:?}");
            assert!(
                l.end_s <= run.wall_s + 1e-6,
                "{puller}: {l:?} ends after the pull"
            );
            for (phase, value) in phases(l) {
                assert!(
                    value.is_some() || run.unobserved.iter().any(|u| u.phase == phase),
                    "{puller}: {phase} is null but unobserved = {:?}",
                    run.unobserved
                );
            }
        }
        // A phase said to be unobserved is null in some layer (the reason names
        // which).
        for u in &run.unobserved {
            if let Some(phase) = phases(&run.layers[0])
                .iter()
                .map(|p| p.0)
                .find(|p| *p == u.phase)
            {
                assert!(
                    run.layers
                        .iter()
                        .any(|l| phases(l).iter().any(|(p, v)| *p == phase && v.is_none())),
                    "{puller}: {phase} said unobserved ({}) but every layer has it",
                    u.reason
                );
            }
        }
        let cpu = run.cpu.as_ref().expect("puller CPU");
        assert!(cpu.user_s + cpu.system_s > 0.0, "{puller}: {cpu:?}");
        assert_eq!(
            run.requests.iter().any(|r| r.kind == "config"),
            cold.config_fetched,
            "{:?}",
            run.requests
        );
    }
}

pub fn phases(l: &LayerRun) -> [(&'static str, Option<f64>); 4] {
    [
        ("verify_s", l.verify_s),
        ("decompress_s", l.decompress_s),
        ("extract_s", l.extract_s),
        ("stall_s", l.stall_s),
    ]
}

/// Each run's wall time against the outside clock's window for it.
pub fn check_wall(puller: &str, record: &PullRecord, windows: &[(f64, f64)]) {
    assert_eq!(windows.len(), record.runs.len(), "{puller}: {windows:?}");
    for (run, (a, b)) in record.runs.iter().zip(windows) {
        let outside = b - a;
        let off = (run.wall_s - outside).abs();
        assert!(
            off <= 0.05 * outside + 0.010,
            "{puller}: record wall {:.4} s, outside clock {outside:.4} s",
            run.wall_s
        );
    }
}

/// With the image already in the puller's store (pulled by the puller itself),
/// pulltime refuses to measure: the first run would not be cold.
pub fn refuses_when_already_held(puller: &str, reference: &str, extra: &[String]) {
    let home = tempfile::tempdir().unwrap();
    pulltime(home.path())
        .args(["pull", reference, "--puller", puller, "-q"])
        .args(extra)
        .assert()
        .failure()
        .stderr(predicates::str::contains(format!("{puller} already holds")));
}

/// Groups the wrapper windows `per_run` at a time (skopeo then umoci is one run).
pub fn per_run(windows: Vec<(f64, f64)>, per_run: usize) -> Vec<(f64, f64)> {
    windows
        .chunks(per_run)
        .map(|c| (c[0].0, c[c.len() - 1].1))
        .collect()
}

pub fn sources(reg: &Registry, test: &str) -> Vec<Source> {
    let mut v = vec![synthetic(reg)];
    v.extend(debian(reg, test));
    v
}
