//! The lab: `pulltime serve` (plain and as Docker Hub) and `pulltime synth`,
//! checked against the real distribution registry, skopeo, umoci and oci-client.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{Registry, pulltime, run, snapshot};
use pulltime::oci::media_type::Compression;
use pulltime::profiles::network::NetworkProfile;
use pulltime::server::{ServeOptions, ServerThread};
use pulltime::synth::{ImageProfile, SynthOptions, synthesize};

/// A small synthetic image with symlinks and a deletion, in a layout under `dir`.
fn synth_small(dir: &Path, compression: Compression) -> pulltime::synth::SynthImage {
    let profile = ImageProfile::load("sn-compose-post-original").unwrap();
    synthesize(
        &profile,
        SynthOptions {
            scale: 0.004,
            compression,
        },
        dir,
        "v1",
    )
    .unwrap()
}

fn serve(layout: &Path, hub: bool) -> ServerThread {
    ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.to_path_buf())],
        emulate_dockerhub: hub,
        rate_limit: 1000,
        ..ServeOptions::default()
    })
    .unwrap()
}

fn pull_to(
    home: &Path,
    reference: &str,
    dest: &Path,
    json: &Path,
) -> pulltime::oci::record::PullRecord {
    pulltime(home)
        .args(["pull", reference, "--quiet", "--dest"])
        .arg(dest)
        .arg("--json")
        .arg(json)
        .assert()
        .success();
    pulltime::report::json::read_record(json).unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn oci_client_digests(reference: &str) -> (String, Vec<String>, Vec<u8>) {
    use oci_client::client::{ClientConfig, ClientProtocol};
    use oci_client::secrets::RegistryAuth;
    block_on(async {
        let client = oci_client::Client::new(ClientConfig {
            protocol: ClientProtocol::Http,
            ..Default::default()
        });
        let r: oci_client::Reference = reference.parse().unwrap();
        let (manifest, digest) = client
            .pull_image_manifest(&r, &RegistryAuth::Anonymous)
            .await
            .unwrap();
        let mut blob = Vec::new();
        client
            .pull_blob(&r, &manifest.layers[0], &mut blob)
            .await
            .unwrap();
        (
            digest,
            manifest.layers.iter().map(|l| l.digest.clone()).collect(),
            blob,
        )
    })
}

#[test]
fn serve_and_distribution_give_the_same_image_to_every_client() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = synth_small(&layout, Compression::Gzip);

    // The real distribution registry accepts the synthetic image from our push code.
    let reg = Registry::start();
    let dist_ref = reg.reference("app:v1");
    block_on(async {
        let r = pulltime::oci::reference::Reference::parse(&dist_ref).unwrap();
        let opts = pulltime::registry::ClientOptions {
            scheme: pulltime::registry::Scheme::Http,
            ..Default::default()
        };
        let client = pulltime::registry::RegistryClient::new(
            &r,
            &opts,
            pulltime::registry::transport::RunClock::start(),
            true,
        )
        .unwrap();
        client.ping().await.unwrap();
        let layout = pulltime::oci::layout::Layout::open(&layout).unwrap();
        pulltime::registry::push::push_layout(&client, &layout, "v1", "v1")
            .await
            .unwrap();
    });
    let plain = serve(&layout, false);
    let hub = serve(&layout, true);
    let mut snapshots = Vec::new();
    for (name, reference) in [
        ("distribution", dist_ref.clone()),
        ("serve", plain.reference("app:v1")),
        ("serve-hub", hub.reference("app:v1")),
    ] {
        let dest = work.path().join(format!("rootfs-{name}"));
        let record = pull_to(
            home.path(),
            &reference,
            &dest,
            &work.path().join(format!("{name}.json")),
        );
        assert_eq!(
            record.image.manifest_digest, image.manifest.digest,
            "{name}"
        );
        let digests: Vec<&str> = record
            .image
            .layers
            .iter()
            .map(|l| l.digest.as_str())
            .collect();
        let want: Vec<&str> = image.layers.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(digests, want, "{name}");
        if name == "serve-hub" {
            let kinds: Vec<&str> = record.runs[0]
                .requests
                .iter()
                .map(|r| r.kind.as_str())
                .collect();
            assert!(
                kinds.contains(&"token") && kinds.contains(&"redirect"),
                "{kinds:?}"
            );
            assert!(record.runs[0].ratelimit.is_some());
            assert!(
                record.runs[0]
                    .requests
                    .iter()
                    .all(|r| !r.path.contains("sig=")),
                "queries are never recorded"
            );
        }
        snapshots.push(snapshot(&dest));
        // oci-client, an independent client, sees the same digests and bytes.
        let (digest, layers, blob) = oci_client_digests(&reference);
        assert_eq!(digest, image.manifest.digest, "oci-client via {name}");
        assert_eq!(
            layers,
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        );
        assert_eq!(
            pulltime::oci::digest::sha256_digest(&blob),
            image.layers[0].digest
        );
    }
    assert!(snapshots[0].len() > 100);
    assert_eq!(snapshots[0], snapshots[1]);
    assert_eq!(snapshots[0], snapshots[2]);
    assert!(
        !snapshots[0]
            .keys()
            .any(|k| k.starts_with("var/lib/apt/lists/")),
        "the profile's deletion became a whiteout"
    );
}

#[test]
fn skopeo_pulls_from_and_pushes_to_serve_and_umoci_accepts_synthetic_layouts() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = synth_small(&layout, Compression::Zstd);
    // umoci cannot unpack zstd (0.4.7); a gzip twin checks umoci accepts our layouts.
    let gz_layout = work.path().join("gz");
    synth_small(&gz_layout, Compression::Gzip);
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:v1", gz_layout.display()))
        .arg(work.path().join("bundle")));

    for hub in [false, true] {
        let server = serve(&layout, hub);
        let copied = work.path().join(format!("copied-{hub}"));
        run(Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{}", server.reference("app:v1")))
            .arg(format!("oci:{}:v1", copied.display())));
        let m = pulltime::oci::layout::Layout::open(&copied)
            .unwrap()
            .manifest_for("v1")
            .unwrap();
        assert_eq!(
            m.digest, image.manifest.digest,
            "skopeo copy from serve (hub={hub})"
        );
        // skopeo pushes the gzip image into serve; pulltime pulls it back.
        run(Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:v1", gz_layout.display()))
            .arg(format!(
                "docker://{}",
                server.reference("pushed/by-skopeo:v2")
            )));
        let dest = work.path().join(format!("from-skopeo-push-{hub}"));
        pull_to(
            home.path(),
            &server.reference("pushed/by-skopeo:v2"),
            &dest,
            &work.path().join("p.json"),
        );
        assert_eq!(
            snapshot(&dest),
            snapshot(&work.path().join("bundle/rootfs"))
        );
    }
}

#[test]
fn synthesis_is_deterministic_and_scales() {
    let work = tempfile::tempdir().unwrap();
    let a = synth_small(&work.path().join("a"), Compression::Gzip);
    let b = synth_small(&work.path().join("b"), Compression::Gzip);
    assert_eq!(a.manifest.digest, b.manifest.digest);
    let profile = ImageProfile::load("sn-compose-post-original").unwrap();
    let big = synthesize(
        &profile,
        SynthOptions {
            scale: 0.008,
            compression: Compression::Gzip,
        },
        &work.path().join("c"),
        "v1",
    )
    .unwrap();
    let ratio = big.uncompressed_bytes() as f64 / a.uncompressed_bytes() as f64;
    assert!(
        (1.7..2.3).contains(&ratio),
        "doubling the scale doubles the bytes: {ratio}"
    );
    assert_eq!(a.layers.len(), profile.layers.len());
    // Compressed sizes behave like real content: neither raw nor trivially small.
    let r = a.uncompressed_bytes() as f64 / a.compressed_bytes() as f64;
    assert!((1.5..4.0).contains(&r), "compression ratio {r}");
    assert!(
        synthesize(
            &profile,
            SynthOptions {
                scale: 0.0,
                compression: Compression::Gzip
            },
            &work.path().join("d"),
            "v1"
        )
        .is_err()
    );
}

#[test]
fn synth_command_writes_a_layout_and_pushes_to_distribution() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let reg = Registry::start();
    let reference = reg.reference("synth/vp:v1");
    let dir = work.path().join("oci");
    pulltime(home.path())
        .args([
            "synth",
            "vp-transcode-multistage",
            "--scale",
            "0.003",
            "--compression",
            "zstd",
            "--push",
            &reference,
        ])
        .arg("--to")
        .arg(format!("oci:{}", dir.display()))
        .assert()
        .success()
        .stdout(predicates::str::contains("pushed"));
    pull_to(
        home.path(),
        &reference,
        &work.path().join("rootfs"),
        &work.path().join("r.json"),
    );
    pulltime(home.path())
        .args(["synth", "no-such-profile", "--to", "oci:/nonexistent"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("unknown image profile"));
    pulltime(home.path())
        .args(["synth", "vp-transcode-multistage"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("--to oci:DIR"));
}

#[test]
fn demo_runs_end_to_end_and_writes_records() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = work.path().join("demo");
    pulltime(home.path())
        .args([
            "demo",
            "--scale",
            "0.002",
            "--runs",
            "1",
            "--network",
            "lan-1g",
            "--pairs",
            "sn-compose-post,vp-transcode",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stdout(
            predicates::str::contains("sn-compose-post original")
                .and(predicates::str::contains("vp-transcode multi-stage"))
                .and(predicates::str::contains("change"))
                // Why, per pair and bandwidth, and a picture per pair.
                .and(predicates::str::contains(
                    "why pull time falls less than size",
                ))
                .and(predicates::str::contains(
                    "sn-compose-post at 10.000 Gbit/s: pull",
                ))
                .and(predicates::str::contains(
                    "vp-transcode at 10.0 Mbit/s: pull",
                )),
        );
    for pair in ["sn-compose-post", "vp-transcode"] {
        let svg = std::fs::read_to_string(out.join(format!("why-{pair}.svg"))).unwrap();
        // Two images at each of the four bandwidths.
        assert_eq!(svg.matches(r#"class="bar""#).count(), 8, "{pair}");
    }
    for name in [
        "sn-compose-post-original",
        "sn-compose-post-multi-stage",
        "vp-transcode-original",
        "vp-transcode-multi-stage",
    ] {
        let r =
            pulltime::report::json::read_record(&out.join("records").join(format!("{name}.json")))
                .unwrap();
        assert_eq!(r.runs.len(), 1);
        assert!(
            r.runs[0].requests.iter().any(|q| q.kind == "token"),
            "the demo goes through the Docker Hub flow"
        );
    }
    pulltime(home.path())
        .args(["demo", "--network", "nowhere"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("unknown network profile"));
}

use predicates::prelude::PredicateBooleanExt;

#[test]
fn network_profiles_load_by_name_or_file() {
    assert_eq!(NetworkProfile::load("edge-20m").unwrap().rtt_ms, 40.0);
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        f.path(),
        "name = \"mine\"\nrtt_ms = 5\nlink_bandwidth = \"1Gbit\"\n",
    )
    .unwrap();
    assert_eq!(
        NetworkProfile::load(f.path().to_str().unwrap())
            .unwrap()
            .name,
        "mine"
    );
}

/// The command from the issue's "done when", run as a user would: the binary, a
/// chosen port, the Docker Hub profile and emulation, a layout.
#[test]
fn serve_command_serves_pulltime_oci_client_and_skopeo() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let profile = ImageProfile::load("vp-transcode-multistage").unwrap();
    let image = synthesize(
        &profile,
        SynthOptions {
            scale: 0.002,
            compression: Compression::Gzip,
        },
        &layout,
        "v1",
    )
    .unwrap();
    let port = common::free_port();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pulltime"))
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--network",
            "dockerhub-100m",
            "--emulate",
            "dockerhub",
            "--layout",
        ])
        .arg(format!("app={}", layout.display()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _guard = Kill(child);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let first = lines.next().unwrap().unwrap();
    assert_eq!(
        first,
        format!("pulltime registry listening on http://127.0.0.1:{port}")
    );
    let reference = format!("127.0.0.1:{port}/app:v1");
    let record = pull_to(
        home.path(),
        &reference,
        &work.path().join("rootfs"),
        &work.path().join("r.json"),
    );
    assert_eq!(record.image.manifest_digest, image.manifest.digest);
    // Over dockerhub-100m every registry request pays a 30 ms round trip (±3 ms
    // jitter) and every CDN request a 10 ms one (±1 ms).
    for r in &record.runs[0].requests {
        let floor = if r.kind == "redirect" { 0.009 } else { 0.027 };
        assert!(r.ttfb_s >= floor, "{r:?}");
    }
    let (digest, _, _) = oci_client_digests(&reference);
    assert_eq!(digest, image.manifest.digest);
    run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}")));
    let copied = work.path().join("copied");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:v1", copied.display())));
}

/// skopeo's `--debug` lines saying it asked to mount a blob from `from`.
fn mount_attempts(debug: &str, from: &str) -> usize {
    debug
        .lines()
        .filter(|l| l.contains("mount") && l.contains(&format!("from={from}")))
        .count()
}

#[test]
fn skopeo_mounts_blobs_across_repositories_and_the_image_unpacks_as_umoci_does() {
    // skopeo tries a cross-repository mount for a blob it has seen in another
    // repository of the same registry: first from a repository served out of a
    // layout, then from one pushed into serve. Each pushed image must pull as
    // umoci unpacks the original.
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = synth_small(&layout, Compression::Gzip);
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:v1", layout.display()))
        .arg(work.path().join("bundle")));
    let expected = snapshot(&work.path().join("bundle/rootfs"));
    let server = serve(&layout, false);
    let skopeo = |from: &str, to: &str| -> String {
        let out = Command::new("skopeo")
            .args([
                "--debug",
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
            ])
            .args([from, to])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "skopeo copy {from} {to}:\n{stderr}");
        stderr
    };
    let blobs = image.layers.len() + 1;
    for (source, target) in [("app", "pushed-app"), ("pushed-app", "pushed-again")] {
        // Reading from `source` teaches skopeo where its blobs live ...
        skopeo(
            &format!("docker://{}", server.reference(&format!("{source}:v1"))),
            &format!(
                "oci:{}:v1",
                work.path().join(format!("seen-{source}")).display()
            ),
        );
        // ... so the push to `target` mounts them from there.
        let debug = skopeo(
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{}", server.reference(&format!("{target}:v1"))),
        );
        assert!(
            mount_attempts(&debug, source) >= 1,
            "skopeo never tried to mount from {source}:\n{debug}"
        );
        let dest = work.path().join(format!("pulled-{target}"));
        let record = pull_to(
            home.path(),
            &server.reference(&format!("{target}:v1")),
            &dest,
            &work.path().join(format!("{target}.json")),
        );
        assert_eq!(record.image.layers.len() + 1, blobs);
        assert_eq!(
            common::diff(&snapshot(&dest), &expected),
            "",
            "{target} (mounted from {source}) does not unpack as umoci unpacks the original"
        );
    }
}
