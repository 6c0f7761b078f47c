//! Each puller pulls a synthetic image and the real Debian-built one from the CNCF
//! registry, through pulltime's recording proxy, twice. The record must show:
//! - every blob byte fetched in both runs (the second run was cold too), and each
//!   layer's download window carrying its manifest size;
//! - a wall time that agrees with a clock outside pulltime (wrapper scripts around
//!   the pull commands, or dockerd's own debug log) within 5% (+10 ms for the
//!   wrappers' own `date` calls);
//! - `null` exactly where `runs[].unobserved` says why;
//! - and the puller's store without the image afterwards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use pulltime::oci::media_type::Compression;
use pulltime::oci::record::{LayerRun, PullRecord};

use super::daemons::{self, unix_http};
use crate::common::{Registry, build_and_push, many_files_layer, pulltime, run, which};

/// An image in the CNCF registry, with its layers as the registry's manifest gives them.
struct Source {
    reference: String,
    /// (digest, size) per layer, from `skopeo inspect --raw`.
    layers: Vec<(String, u64)>,
}

fn manifest_layers(reference: &str) -> Vec<(String, u64)> {
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

fn synthetic(reg: &Registry) -> Source {
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

fn debian(reg: &Registry, test: &str) -> Option<Source> {
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
fn wrappers(log: &Path) -> tempfile::TempDir {
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
fn wrapped_windows(log: &Path) -> Vec<(f64, f64)> {
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
fn pull_twice(puller: &str, source: &Source, extra: &[String], path: Option<&Path>) -> PullRecord {
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

fn check_record(puller: &str, source: &Source, record: &PullRecord) {
    assert_eq!(record.schema_version, 2);
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
                assert_eq!(
                    value.is_none(),
                    run.unobserved.iter().any(|u| u.phase == phase),
                    "{puller}: {phase} is {value:?} but unobserved = {:?}",
                    run.unobserved
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

fn phases(l: &LayerRun) -> [(&'static str, Option<f64>); 4] {
    [
        ("verify_s", l.verify_s),
        ("decompress_s", l.decompress_s),
        ("extract_s", l.extract_s),
        ("stall_s", l.stall_s),
    ]
}

/// Each run's wall time against the outside clock's window for it.
fn check_wall(puller: &str, record: &PullRecord, windows: &[(f64, f64)]) {
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
fn refuses_when_already_held(puller: &str, reference: &str, extra: &[String]) {
    let home = tempfile::tempdir().unwrap();
    pulltime(home.path())
        .args(["pull", reference, "--puller", puller, "-q"])
        .args(extra)
        .assert()
        .failure()
        .stderr(predicates::str::contains(format!("{puller} already holds")));
}

/// Groups the wrapper windows `per_run` at a time (skopeo then umoci is one run).
fn per_run(windows: Vec<(f64, f64)>, per_run: usize) -> Vec<(f64, f64)> {
    windows
        .chunks(per_run)
        .map(|c| (c[0].0, c[c.len() - 1].1))
        .collect()
}

fn sources(reg: &Registry, test: &str) -> Vec<Source> {
    let mut v = vec![synthetic(reg)];
    v.extend(debian(reg, test));
    v
}

#[test]
fn containerd_pulls_are_decomposed_cold_and_cleaned_up() {
    let test = "peers::containerd";
    let daemon = match daemons::containerd() {
        Ok(d) => d,
        Err(e) => return super::skip(test, &e),
    };
    let reg = Registry::start();
    for snapshotter in ["native", "overlayfs"] {
        for source in sources(&reg, test) {
            let log = daemon.dir.path().join(format!("wrap-{snapshotter}.log"));
            let _ = std::fs::remove_file(&log);
            let wrap = wrappers(&log);
            let extra = vec![
                "--containerd-address".to_string(),
                daemon.socket.display().to_string(),
                "--snapshotter".into(),
                snapshotter.into(),
            ];
            let record = pull_twice("containerd", &source, &extra, Some(wrap.path()));
            check_wall("containerd", &record, &wrapped_windows(&log));
            assert_eq!(record.puller.settings["snapshotter"], snapshotter);
            for run in &record.runs {
                // ctr pull downloads everything, then unpacks layer after layer.
                let last_download = run
                    .layers
                    .iter()
                    .map(|l| l.start_s + l.download_s.unwrap())
                    .fold(0.0, f64::max);
                let mut previous_end = last_download;
                for l in &run.layers {
                    let extract = l.extract_s.expect("snapshot events give the unpack");
                    let start = l.end_s - extract;
                    assert!(
                        start >= previous_end - 1e-3,
                        "{snapshotter}: {:?}",
                        run.layers
                    );
                    previous_end = l.end_s;
                }
            }
            // Each run had a namespace of its own (so none found another's
            // snapshots), and all of them are gone with their snapshots.
            let namespaces = run(Command::new("ctr")
                .arg("--address")
                .arg(&daemon.socket)
                .args(["namespaces", "ls", "-q"]));
            assert!(!namespaces.contains("pulltime"), "{namespaces}");
            let snapshots = daemon.dir.path().join(format!(
                "root/io.containerd.snapshotter.v1.{snapshotter}/snapshots"
            ));
            assert_eq!(
                std::fs::read_dir(&snapshots).unwrap().count(),
                0,
                "{snapshots:?}"
            );
            let blobs = daemon
                .dir
                .path()
                .join("root/io.containerd.content.v1.content/blobs/sha256");
            assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 0, "{blobs:?}");
            assert_eq!(
                record.puller.settings["namespace"],
                "pulltime-N (one per run)"
            );
        }
    }
    // Content in any namespace would be reused (it is shared), so it counts.
    let reference = reg.reference("synthetic/app:v1");
    run(Command::new("ctr")
        .arg("--address")
        .arg(&daemon.socket)
        .args([
            "--namespace",
            "elsewhere",
            "images",
            "pull",
            "--plain-http",
            &reference,
        ]));
    refuses_when_already_held(
        "containerd",
        &reference,
        &[
            "--containerd-address".into(),
            daemon.socket.display().to_string(),
        ],
    );
}

/// dockerd's debug log: per pull, from "Trying to pull" to the last "Applied tar".
fn dockerd_windows(log: &Path) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(log).unwrap();
    let time = |line: &str| -> f64 {
        let t = line
            .split("time=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let st = humantime::parse_rfc3339(t).unwrap();
        st.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let mut out: Vec<(f64, f64)> = Vec::new();
    for line in text.lines() {
        // Two "Trying to pull" lines open each pull (the repository, then its
        // endpoint); a window opens at the first one.
        if line.contains("Trying to pull") && out.last().is_none_or(|w| !w.1.is_nan()) {
            out.push((time(line), f64::NAN));
        } else if line.contains("Applied tar")
            && let Some(last) = out.last_mut()
        {
            last.1 = time(line);
        }
    }
    out
}

#[test]
fn docker_pulls_are_decomposed_from_its_progress_stream() {
    let test = "peers::docker";
    let daemon = match daemons::dockerd() {
        Ok(d) => d,
        Err(e) => return super::skip(test, &e),
    };
    let reg = Registry::start();
    let host = format!("unix://{}", daemon.socket.display());
    for source in sources(&reg, test) {
        let before = dockerd_windows(&daemon.log).len();
        let record = pull_twice(
            "docker",
            &source,
            &["--docker-host".into(), host.clone()],
            None,
        );
        let windows = dockerd_windows(&daemon.log)[before..].to_vec();
        // The log's window starts a little after the API call and ends just before
        // the image is committed, so the record may only be longer.
        check_wall("docker", &record, &windows);
        assert_eq!(record.puller.settings["storage_driver"], "overlay2");
        for run in &record.runs {
            // docker 20.10 extracts one layer at a time, in manifest order: in its
            // own events, each "Extracting" comes after the layer before's "Pull
            // complete", and "Pull complete" comes layer by layer.
            let when = |layer: usize, status: &str| {
                run.puller_events
                    .iter()
                    .find(|e| e.layer == layer && e.event == status)
                    .map(|e| e.at_s)
            };
            let n = run.layers.len();
            let completes: Vec<f64> = (0..n)
                .map(|i| when(i, "Pull complete").expect("Pull complete per layer"))
                .collect();
            assert!(
                completes.windows(2).all(|w| w[0] <= w[1]),
                "{:?}",
                run.puller_events
            );
            for i in 1..n {
                if let Some(extracting) = when(i, "Extracting") {
                    assert!(extracting >= completes[i - 1], "{:?}", run.puller_events);
                }
                assert!(
                    when(i, "Download complete").is_some(),
                    "{:?}",
                    run.puller_events
                );
            }
            let mut previous_end = 0.0;
            for l in &run.layers {
                let extract = l.extract_s.expect("Extracting .. Pull complete");
                let start = l.end_s - extract;
                assert!(start >= previous_end - 1e-3, "{:?}", run.layers);
                assert!(l.queued_s.is_some(), "{l:?}");
                previous_end = l.end_s;
            }
        }
        let images = unix_http(&daemon.socket, "GET", "/v1.41/images/json").unwrap();
        assert_eq!(images.trim(), "[]", "docker kept the image");
    }
    let reference = reg.reference("synthetic/app:v1");
    let (name, tag) = reference.rsplit_once(':').unwrap();
    unix_http(
        &daemon.socket,
        "POST",
        &format!("/v1.41/images/create?fromImage={name}&tag={tag}"),
    )
    .unwrap();
    refuses_when_already_held("docker", &reference, &["--docker-host".into(), host]);
}

#[test]
fn podman_pulls_are_decomposed_and_removed() {
    let test = "peers::podman";
    let store = match daemons::podman_store() {
        Ok(d) => d,
        Err(e) => return super::skip(test, &e),
    };
    let reg = Registry::start();
    let (root, runroot) = (store.path().join("root"), store.path().join("run"));
    for source in sources(&reg, test) {
        let log = store.path().join("wrap.log");
        let _ = std::fs::remove_file(&log);
        let wrap = wrappers(&log);
        let extra = vec![
            "--podman-root".to_string(),
            root.display().to_string(),
            "--podman-runroot".into(),
            runroot.display().to_string(),
        ];
        let record = pull_twice("podman", &source, &extra, Some(wrap.path()));
        check_wall("podman", &record, &wrapped_windows(&log));
        for run in &record.runs {
            // podman applies layers in order; each start is seen.
            let starts: Vec<f64> = run.layers.iter().map(|l| l.end_s).collect();
            assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
        }
        let images = run(Command::new("podman")
            .arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(["--events-backend", "none", "images", "-q"]));
        assert_eq!(images.trim(), "");
    }
    let reference = reg.reference("synthetic/app:v1");
    run(Command::new("podman")
        .arg("--root")
        .arg(&root)
        .arg("--runroot")
        .arg(&runroot)
        .args([
            "--events-backend",
            "none",
            "pull",
            "-q",
            "--tls-verify=false",
            &reference,
        ]));
    refuses_when_already_held(
        "podman",
        &reference,
        &[
            "--podman-root".into(),
            root.display().to_string(),
            "--podman-runroot".into(),
            runroot.display().to_string(),
        ],
    );
}

#[test]
fn skopeo_umoci_pulls_are_decomposed_per_layer() {
    let test = "peers::skopeo_umoci";
    let reg = Registry::start();
    for source in sources(&reg, test) {
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("skopeo-umoci-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let wrap = wrappers(&log);
        let record = pull_twice("skopeo-umoci", &source, &[], Some(wrap.path()));
        check_wall("skopeo-umoci", &record, &per_run(wrapped_windows(&log), 2));
        for run in &record.runs {
            for l in &run.layers {
                assert!(l.extract_s.is_some_and(|e| e > 0.0), "{l:?}");
            }
        }
        let _ = std::fs::remove_file(&log);
    }
}

#[test]
fn compare_rotates_pullers_and_its_records_report_and_diff() {
    let test = "peers::compare";
    let daemon = match daemons::containerd() {
        Ok(d) => d,
        Err(e) => return super::skip(test, &e),
    };
    let reg = Registry::start();
    let tagged = synthetic(&reg);
    // By digest, as CI pipelines pin images (containerd's between-run clean-up
    // must cope with a reference that has no tag).
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}", tagged.reference),
    ]));
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(raw.as_bytes()))
    );
    let source = Source {
        reference: reg.reference(&format!("synthetic/app@{digest}")),
        layers: tagged.layers,
    };
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out");
    let assert = pulltime(home.path())
        .args(["compare", "--puller", "containerd,pulltime,skopeo-umoci"])
        .arg(&source.reference)
        .args(["--runs", "3", "--containerd-address"])
        .arg(&daemon.socket)
        .arg("--records")
        .arg(&out)
        .arg("--waterfalls")
        .arg(&out)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let order: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("round "))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "containerd",
            "pulltime",
            "skopeo-umoci",
            "pulltime",
            "skopeo-umoci",
            "containerd",
            "skopeo-umoci",
            "containerd",
            "pulltime"
        ],
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    for name in ["containerd", "pulltime", "skopeo-umoci"] {
        assert!(stdout.contains(name), "{stdout}");
        let record =
            pulltime::report::json::read_record(&out.join(format!("{name}.json"))).unwrap();
        assert_eq!(record.runs.len(), 3, "{name}");
        assert_eq!(record.puller.name, name);
        let svg = std::fs::read_to_string(out.join(format!("{name}.svg"))).unwrap();
        assert_eq!(svg.matches("class=\"layer\"").count(), 3, "{name}");
    }
    // report and diff read them; diff says what one side could not observe.
    pulltime(home.path())
        .arg("report")
        .arg(out.join("containerd.json"))
        .assert()
        .success()
        .stdout(predicates::str::contains("decompress_s not observed"));
    pulltime(home.path())
        .arg("diff")
        .arg(out.join("pulltime.json"))
        .arg(out.join("containerd.json"))
        .assert()
        .success()
        .stdout(predicates::str::contains("not compared"));
    // containerd's own costs fitted from its records go into the host profile
    // (under pullers.containerd) and drive the simulator's containerd policy.
    let profile = home.path().join("ctd.toml");
    pulltime(home.path())
        .args(["calibrate", "--puller", "containerd", "--from-records"])
        .arg(out.join("containerd.json"))
        .arg("--out")
        .arg(&profile)
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "snapshot_prepare_s of containerd/overlayfs",
        ));
    let host = pulltime::profiles::host::HostProfile::load(&profile).unwrap();
    let costs = &host.pullers["containerd"];
    assert!(costs.unpack_per_byte_s > 0.0, "{costs:?}");
    assert_eq!(
        costs.fitted_from.split(' ').next(),
        Some("containerd/overlayfs")
    );
    pulltime(home.path())
        .args(["simulate"])
        .arg(out.join("containerd.json"))
        .args(["--policy", "containerd", "--network", "loopback", "--host"])
        .arg(&profile)
        .assert()
        .success();
    // A gate on a phase one side cannot see is refused, not passed.
    pulltime(home.path())
        .arg("diff")
        .arg(out.join("pulltime.json"))
        .arg(out.join("containerd.json"))
        .args(["--fail-on-regression=decompress", "--significance", "0.2"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("cannot gate on decompress"));
}
