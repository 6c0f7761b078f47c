//! Other pullers' records where the proxy has more to do (a registry that
//! redirects blobs to a CDN) and as baselines for a CI gate.

use pulltime::oci::media_type::Compression;

use crate::common::{Registry, build_and_push, many_files_layer, pulltime};

/// skopeo needs no daemon, so these run wherever skopeo and umoci do.
fn pull(home: &std::path::Path, reference: &str, runs: &str) -> assert_cmd::Command {
    let mut c = pulltime(home);
    c.args([
        "pull",
        reference,
        "--puller",
        "skopeo-umoci",
        "--runs",
        runs,
        "-q",
    ]);
    c
}

#[test]
fn blobs_redirected_to_a_cdn_pass_through_the_proxy() {
    let reg = Registry::start_with_cdn();
    let reference = reg.reference("cdn/app:v1");
    let image = build_and_push(
        &reference,
        &[
            many_files_layer(7, 50, 3_000),
            many_files_layer(8, 5, 50_000),
        ],
        Compression::Gzip,
    );
    let home = tempfile::tempdir().unwrap();
    let json = home.path().join("r.json");
    pull(home.path(), &reference, "1")
        .arg("--json")
        .arg(&json)
        .assert()
        .success();
    let record = pulltime::report::json::read_record(&json).unwrap();
    let run = &record.runs[0];
    let cdn = reg.cdn_addr.clone().unwrap();
    // Each layer: a 307 from the registry, then the CDN's body, both logged.
    for layer in &image.layers {
        let hops: Vec<_> = run
            .requests
            .iter()
            .filter(|r| r.kind == "redirect" && r.host == cdn)
            .collect();
        assert!(hops.len() >= image.layers.len(), "{:?}", run.requests);
        let l = run
            .layers
            .iter()
            .find(|l| l.digest == layer.digest)
            .unwrap();
        assert_eq!(l.compressed_bytes, layer.data.len() as u64, "{l:?}");
        assert!(l.redirect_s.is_some_and(|r| r > 0.0), "{l:?}");
    }
    assert!(run.cold.as_ref().unwrap().all_bytes_fetched);
}

#[test]
fn other_pullers_records_gate_ci_as_baselines() {
    let reg = Registry::start();
    let reference = reg.reference("gate/app:v1");
    build_and_push(
        &reference,
        &[many_files_layer(9, 30, 2_000)],
        Compression::Gzip,
    );
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("baselines");
    pull(home.path(), &reference, "4")
        .args(["--save-baseline", "skopeo"])
        .arg("--baseline-dir")
        .arg(&dir)
        .assert()
        .success();
    // A generous noise threshold (99%): the gate runs, compares what both sides saw, passes.
    pull(home.path(), &reference, "4")
        .args(["--baseline", "skopeo", "--noise-threshold", "0.99"])
        .args(["--fail-on-regression=wall,download,extract"])
        .arg("--baseline-dir")
        .arg(&dir)
        .assert()
        .success()
        .stdout(predicates::str::contains("not compared"));
    // A phase umoci does not show cannot be gated on.
    pull(home.path(), &reference, "4")
        .args(["--baseline", "skopeo", "--fail-on-regression=decompress"])
        .arg("--baseline-dir")
        .arg(&dir)
        .assert()
        .failure()
        .stderr(predicates::str::contains("cannot gate on decompress"));
}

#[test]
fn a_missing_daemon_or_puller_is_named_before_any_pull() {
    let home = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    pulltime(home.path())
        .args(["pull", "127.0.0.1:1/none/app:v1", "--puller", "docker"])
        .args(["--docker-host", "unix:///nonexistent/docker.sock"])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "dockerd is not reachable at /nonexistent/docker.sock",
        ));
    pulltime(home.path())
        .args(["pull", "127.0.0.1:1/none/app:v1", "--puller", "containerd"])
        .args(["--containerd-address", "/nonexistent/c.sock"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("containerd is not reachable"));
    // Nothing was pulled (port 1 has no registry): both failed on the daemon.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    pulltime(home.path())
        .args(["pull", "127.0.0.1:1/none/app:v1", "--puller", "cri-o"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "use pulltime, docker, containerd, podman, skopeo-umoci",
        ));
    pulltime(home.path())
        .args(["pull", "127.0.0.1:1/none/app:v1", "--puller", "podman"])
        .arg("--dest")
        .arg(home.path().join("rootfs"))
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "--dest keeps pulltime's root filesystem",
        ));
    pulltime(home.path())
        .args(["compare", "--puller", "pulltime,docker", "a:v1", "b:v1"])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "compare --puller takes one image reference",
        ));
}
