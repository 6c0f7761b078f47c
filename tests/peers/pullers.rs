//! docker, containerd, podman and skopeo+umoci, each pulling the synthetic and the
//! Debian-built image twice through the proxy; `checks` says what their records
//! must show.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::checks::*;
use super::daemons::{self, unix_http};
use crate::common::{Registry, run};

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
