//! The `pulltime pull` command end to end against the real distribution registry:
//! the record, the table, statistics, staged timing, and every error a user can
//! act on.

use crate::common;

use common::{E, Registry, layer, many_files_layer, pulltime};
use predicates::prelude::*;
use pulltime::oci::media_type::Compression;

fn three_layer_image(
    reg: &Registry,
    name: &str,
    compression: Compression,
) -> pulltime::oci::image::BuiltImage {
    let layers = vec![
        many_files_layer(1, 600, 2000),
        many_files_layer(2, 300, 6000),
        layer(&[
            E::Dir("etc", 0o755),
            E::File("etc/app.conf", 0o644, b"x=1\n".to_vec()),
        ]),
    ];
    common::build_and_push(&reg.reference(name), &layers, compression)
}

#[test]
fn record_table_and_statistics_over_runs() {
    let reg = Registry::start();
    let image = three_layer_image(&reg, "app:v1", Compression::Gzip);
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("out.json");
    let reference = reg.reference("app:v1");
    let out = pulltime(home.path())
        .args(["pull", &reference, "--runs", "3", "--warmup", "1", "--json"])
        .arg(&json)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(out).unwrap();
    for l in &image.layers {
        assert!(
            table.contains(pulltime::report::short_digest(&l.digest)),
            "{table}"
        );
    }
    for word in [
        "share of wall",
        "phase",
        "median",
        "p95",
        "stddev",
        "decompress",
        "extract",
    ] {
        assert!(table.contains(word), "missing {word:?} in:\n{table}");
    }

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["simulated"], false);
    // Every figure traces to the gzip backend that inflated it.
    assert_eq!(
        v["tool"]["gzip_backend"],
        pulltime::pipeline::gzip::gzip_backend()
    );
    assert_eq!(v["image"]["reference"], reference);
    assert_eq!(v["image"]["manifest_digest"], image.manifest.digest);
    let host = pulltime::oci::platform::Platform::host();
    assert_eq!(
        v["image"]["platform"],
        format!("{}/{}", host.os, host.architecture)
    );
    let layers = v["image"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for (l, b) in layers.iter().zip(&image.layers) {
        assert_eq!(l["digest"], b.digest);
        assert_eq!(
            l["media_type"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(l["compressed_bytes"], b.data.len() as u64);
        assert!(
            l["uncompressed_bytes"].as_u64().unwrap() > l["compressed_bytes"].as_u64().unwrap()
        );
    }
    let settings = &v["settings"];
    assert_eq!(settings["mode"], "streaming");
    assert_eq!(settings["max_concurrent_downloads"], 3);
    assert_eq!(settings["runs"], 3);
    assert_eq!(settings["warmup"], 1);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "warm-up runs are not counted");
    for run in runs {
        let wall = run["wall_s"].as_f64().unwrap();
        let resolve = run["resolve_s"].as_f64().unwrap();
        assert!(wall > 0.0 && resolve > 0.0 && resolve < wall);
        let kinds: Vec<&str> = run["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "blob").count(),
            3,
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&"ping") && kinds.contains(&"manifest") && kinds.contains(&"config")
        );
        assert!(
            !run["connections"].as_array().unwrap().is_empty(),
            "each run opens new connections"
        );
        for (i, l) in run["layers"].as_array().unwrap().iter().enumerate() {
            for key in [
                "start_s",
                "end_s",
                "download_s",
                "ttfb_s",
                "verify_s",
                "decompress_s",
                "extract_s",
            ] {
                assert!(l[key].as_f64().unwrap() >= 0.0, "{key} in {l}");
            }
            assert!(l["end_s"].as_f64().unwrap() <= wall + 1e-6);
            assert!(l["start_s"].as_f64().unwrap() >= resolve - 1e-6);
            assert!(l["download_s"].as_f64().unwrap() >= l["ttfb_s"].as_f64().unwrap());
            assert_eq!(l["digest"], image.layers[i].digest);
            assert_eq!(l["compressed_bytes"], image.layers[i].data.len() as u64);
        }
        let files: Vec<u64> = run["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["files"].as_u64().unwrap())
            .collect();
        assert_eq!(files, [600, 300, 1]);
    }
    let summary = &v["summary"];
    for key in [
        "wall_s",
        "resolve_s",
        "download_s",
        "verify_s",
        "decompress_s",
        "extract_s",
    ] {
        let s = &summary[key];
        assert_eq!(s["n"], 3, "{key}");
        let (min, med, max) = (
            s["min"].as_f64().unwrap(),
            s["median"].as_f64().unwrap(),
            s["max"].as_f64().unwrap(),
        );
        assert!(min <= med && med <= max, "{key}: {s}");
        assert!(s["p95"].as_f64().unwrap() <= max && s["stddev"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(summary["layers"].as_array().unwrap().len(), 3);
    // The walls in the summary are the runs' walls.
    let walls: Vec<f64> = runs.iter().map(|r| r["wall_s"].as_f64().unwrap()).collect();
    let max = walls.iter().cloned().fold(0.0, f64::max);
    assert_eq!(summary["wall_s"]["max"].as_f64().unwrap(), max);
}

#[test]
fn staged_phases_add_up_to_wall_time() {
    let reg = Registry::start();
    let layers = vec![
        many_files_layer(3, 1500, 3000),
        many_files_layer(4, 1500, 3000),
        many_files_layer(5, 1000, 5000),
    ];
    let reference = reg.reference("staged:v1");
    common::build_and_push(&reference, &layers, Compression::Gzip);
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("r.json");
    pulltime(home.path())
        .args([
            "pull",
            &reference,
            "--mode",
            "staged",
            "--max-concurrent-downloads",
            "1",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .assert()
        .success();
    let record = pulltime::report::json::read_record(&json).unwrap();
    let run = &record.runs[0];
    let phases: f64 = run.resolve_s
        + run
            .layer_sum(|l| Some(l.download_s? + l.verify_s? + l.decompress_s? + l.extract_s?))
            .expect("pulltime observes every phase");
    let gap = (run.wall_s - phases).abs() / run.wall_s;
    assert!(
        gap < 0.05,
        "phases {phases:.4} s vs wall {:.4} s ({:.1}% apart)",
        run.wall_s,
        gap * 100.0
    );
    assert!(run.layer_sum(|l| l.extract_s) > Some(0.0));
    assert!(run.layer_sum(|l| l.decompress_s) > Some(0.0));
    assert!(run.unobserved.is_empty(), "{:?}", run.unobserved);
    assert_eq!(record.puller.name, "pulltime");
}

#[test]
fn staged_and_streaming_produce_the_same_tree() {
    let reg = Registry::start();
    let reference = reg.reference("modes:v1");
    three_layer_image(&reg, "modes:v1", Compression::Zstd);
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut snaps = Vec::new();
    let mut runs = Vec::new();
    // The third pull decodes and applies with three threads: later layers are
    // decoded ahead of their turn into spool files, and applied beside the
    // layers below, whatever the cores here; the fourth applies in order.
    for (mode, decoders, appliers) in [
        ("streaming", None, None),
        ("staged", None, None),
        ("streaming", Some("3"), Some("3")),
        ("streaming", None, Some("1")),
    ] {
        let dest = work.path().join(format!(
            "{mode}-{}-{}",
            decoders.unwrap_or("default"),
            appliers.unwrap_or("default")
        ));
        let json = dest.with_extension("json");
        let mut pull = pulltime(home.path());
        pull.args([
            "pull",
            &reference,
            "--quiet",
            "--mode",
            mode,
            "--max-concurrent-downloads",
            "2",
            "--dest",
        ])
        .arg(&dest)
        .arg("--json")
        .arg(&json);
        if let Some(d) = decoders {
            pull.args(["--decoders", d]);
        }
        if let Some(a) = appliers {
            pull.args(["--appliers", a]);
        }
        pull.assert().success();
        snaps.push(common::snapshot(&dest));
        let record = pulltime::report::json::read_record(&json).unwrap();
        let s = &record.settings;
        match (mode, decoders, appliers) {
            ("staged", _, _) => assert_eq!((s.decoders, s.appliers), (None, None)),
            (_, Some(d), Some(a)) => {
                assert_eq!(s.decoders, Some(d.parse().unwrap()));
                assert_eq!(s.appliers, Some(a.parse().unwrap()));
            }
            (_, None, Some(a)) => assert_eq!(s.appliers, Some(a.parse().unwrap())),
            _ => assert!(s.decoders >= Some(1) && s.appliers >= Some(1)),
        }
        runs.push(record.runs[0].clone());
    }
    assert_eq!(snaps[0].len(), 600 + 300 + 16 * 2 + 2 + 2);
    for other in &snaps[1..] {
        assert!(&snaps[0] == other, "{}", common::diff(&snaps[0], other));
    }
    // Staged writes every blob and tar stream to a file; streaming keeps what
    // its readers tail in memory: the first layer's blob (within the 1 MiB
    // window), which a decoder takes at once, and its tar stream, which the
    // applier tails from the first byte, never touch a file.
    for l in &runs[1].layers {
        assert_eq!(
            l.spooled_bytes,
            Some(l.compressed_bytes + l.uncompressed_bytes)
        );
    }
    for streaming in [&runs[0], &runs[2], &runs[3]] {
        let first = &streaming.layers[0];
        assert!(
            first.compressed_bytes < 1 << 20,
            "{}",
            first.compressed_bytes
        );
        assert_eq!(first.spooled_bytes, Some(0));
        for l in &streaming.layers {
            assert!(l.spooled_bytes <= Some(l.compressed_bytes + l.uncompressed_bytes));
        }
    }
}

#[test]
fn a_registry_on_loopback_is_never_proxied() {
    // As Go's proxy-from-environment (and so docker): loopback goes direct, so
    // the lab works behind a corporate proxy. Every variable points at a port
    // nothing listens on; the pull would fail through it.
    let reg = Registry::start();
    three_layer_image(&reg, "direct:v1", Compression::Gzip);
    let home = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let mut pull = pulltime(home.path());
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        pull.env(var, &dead);
    }
    pull.env_remove("NO_PROXY").env_remove("no_proxy");
    pull.args(["pull", &reg.reference("direct:v1"), "-q", "--timeout", "10"])
        .assert()
        .success();
}

#[test]
fn unknown_tag_unknown_repo_and_unreachable_registry() {
    let reg = Registry::start();
    three_layer_image(&reg, "exists:v1", Compression::Gzip);
    let home = tempfile::tempdir().unwrap();
    pulltime(home.path())
        .args(["pull", &reg.reference("exists:nope")])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("image not found")
                .and(predicate::str::contains("MANIFEST_UNKNOWN")),
        );
    pulltime(home.path())
        .args(["pull", &reg.reference("missing/repo:v1")])
        .assert()
        .failure()
        .stderr(predicate::str::contains("image not found"));
    let port = common::free_port();
    pulltime(home.path())
        .args(["pull", &format!("127.0.0.1:{port}/x:y"), "--timeout", "5"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("registry unreachable"));
    pulltime(home.path())
        .args(["pull", "UPPER/Case"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("invalid image reference"));
    pulltime(home.path())
        .args([
            "pull",
            &reg.reference("exists:v1"),
            "--platform",
            "plan9/mips",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "no manifest for platform plan9/mips",
        ));
}

#[test]
fn corrupted_blob_is_a_digest_mismatch_naming_the_layer_and_leaves_no_tree() {
    let reg = Registry::start();
    let image = three_layer_image(&reg, "corrupt:v1", Compression::Gzip);
    // Flip bytes in the middle of layer 1 inside the registry's own storage.
    let data_path = reg.blob_data_path(&image.layers[1].digest);
    let mut data = std::fs::read(&data_path).unwrap();
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&data_path, &data).unwrap();
    let actual = pulltime::oci::digest::sha256_digest(&data);
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // Three decoders: the layers after the corrupt one are being decoded ahead
    // when it fails, and must stop without leaving anything behind.
    // (--decoders is refused with --mode staged.)
    for (mode, decoders) in [("streaming", "1"), ("staged", ""), ("streaming", "3")] {
        let mode_args: &[&str] = match decoders {
            "" => &["--mode", mode],
            d => &["--mode", mode, "--decoders", d],
        };
        let dest = work.path().join(format!("new-{mode}-{decoders}"));
        pulltime(home.path())
            .args(["pull", &reg.reference("corrupt:v1")])
            .args(mode_args)
            .arg("--dest")
            .arg(&dest)
            .assert()
            .failure()
            .stderr(
                predicate::str::contains(format!(
                    "digest mismatch for layer 1 ({})",
                    image.layers[1].digest
                ))
                .and(predicate::str::contains(format!(
                    "expected {}",
                    image.layers[1].digest
                )))
                .and(predicate::str::contains(format!("got {actual}"))),
            );
        assert!(
            !dest.exists(),
            "{mode}: a destination pulltime created is removed on failure"
        );
        // An existing empty destination is left empty.
        let empty = work.path().join(format!("empty-{mode}-{decoders}"));
        std::fs::create_dir(&empty).unwrap();
        pulltime(home.path())
            .args(["pull", &reg.reference("corrupt:v1")])
            .args(mode_args)
            .arg("--dest")
            .arg(&empty)
            .assert()
            .failure()
            .stderr(predicate::str::contains("digest mismatch for layer 1"));
        assert_eq!(
            std::fs::read_dir(&empty).unwrap().count(),
            0,
            "{mode}: half-extracted tree left"
        );
    }
}

#[test]
fn wrong_diff_id_in_config_is_reported() {
    let reg = Registry::start();
    let tar = layer(&[E::File("a", 0o644, b"a".to_vec())]);
    let mut image = pulltime::oci::image::build_image(
        &[tar],
        Compression::Gzip,
        &pulltime::oci::platform::Platform::host(),
    )
    .unwrap();
    // Rebuild config and manifest with a diff_id that does not match the layer.
    let mut config: serde_json::Value = serde_json::from_slice(&image.config.data).unwrap();
    let wrong = pulltime::oci::digest::sha256_digest(b"not the layer");
    config["rootfs"]["diff_ids"][0] = serde_json::json!(wrong);
    image.config = pulltime::oci::image::Blob::new(
        &image.config.media_type,
        serde_json::to_vec(&config).unwrap(),
    );
    image.rebuild_manifest(pulltime::oci::media_type::OCI_MANIFEST);
    common::push(&reg.reference("diffid:v1"), &image, None);
    let home = tempfile::tempdir().unwrap();
    pulltime(home.path())
        .args(["pull", &reg.reference("diffid:v1")])
        .assert()
        .failure()
        .stderr(predicate::str::contains("rootfs.diff_ids").and(predicate::str::contains(wrong)));
}

#[test]
fn unsupported_layer_media_type_is_named() {
    let reg = Registry::start();
    let tar = layer(&[E::File("a", 0o644, b"a".to_vec())]);
    let mut image = pulltime::oci::image::build_image(
        &[tar],
        Compression::None,
        &pulltime::oci::platform::Platform::host(),
    )
    .unwrap();
    image.layers[0].media_type = "application/vnd.example.layer.v1+lz4".into();
    image.rebuild_manifest(pulltime::oci::media_type::OCI_MANIFEST);
    common::push(&reg.reference("lz4:v1"), &image, None);
    let home = tempfile::tempdir().unwrap();
    pulltime(home.path())
        .args(["pull", &reg.reference("lz4:v1")])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "unsupported media type \"application/vnd.example.layer.v1+lz4\"",
        ));
}

#[test]
fn unsafe_entry_from_a_registry_is_refused_by_name_and_nothing_escapes() {
    let reg = Registry::start();
    let tar = layer(&[
        E::Dir("ok", 0o755),
        E::File("ok/file", 0o644, b"fine".to_vec()),
        E::File("../../escaped", 0o644, b"pwned".to_vec()),
    ]);
    common::build_and_push(&reg.reference("evil:v1"), &[tar], Compression::Gzip);
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("a/b/rootfs");
    pulltime(home.path())
        .args(["pull", &reg.reference("evil:v1"), "--dest"])
        .arg(&dest)
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "unsafe tar entry \"../../escaped\"",
        ));
    assert!(!dest.exists());
    assert!(!work.path().join("escaped").exists() && !work.path().join("a/escaped").exists());
}

#[test]
fn destination_must_be_empty_and_is_kept_after_success() {
    let reg = Registry::start();
    three_layer_image(&reg, "keep:v1", Compression::Gzip);
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("mine"), "user data").unwrap();
    pulltime(home.path())
        .args(["pull", &reg.reference("keep:v1"), "--dest"])
        .arg(work.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("not empty").and(predicate::str::contains("--force")));
    assert_eq!(
        std::fs::read(work.path().join("mine")).unwrap(),
        b"user data"
    );
    let dest = work.path().join("rootfs");
    pulltime(home.path())
        .args([
            "pull",
            &reg.reference("keep:v1"),
            "--runs",
            "2",
            "--quiet",
            "--dest",
        ])
        .arg(&dest)
        .assert()
        .success();
    assert_eq!(std::fs::read(dest.join("etc/app.conf")).unwrap(), b"x=1\n");
    // --force empties it first, removing links without following them.
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), "not theirs").unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("link")).unwrap();
    std::fs::write(dest.join("stale"), "old").unwrap();
    pulltime(home.path())
        .args(["pull", &reg.reference("keep:v1"), "-q", "--force", "--dest"])
        .arg(&dest)
        .assert()
        .success();
    assert!(!dest.join("stale").exists() && !dest.join("link").exists());
    assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"not theirs");
    assert_eq!(std::fs::read(dest.join("etc/app.conf")).unwrap(), b"x=1\n");
}

#[test]
fn json_to_stdout_is_the_record_and_the_table_goes_to_stderr() {
    let reg = Registry::start();
    three_layer_image(&reg, "stdout:v1", Compression::None);
    let home = tempfile::tempdir().unwrap();
    let out = pulltime(home.path())
        .args(["pull", &reg.reference("stdout:v1"), "--json", "-"])
        .assert()
        .success()
        .stderr(predicate::str::contains("share of wall"))
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value =
        serde_json::from_slice(&out).expect("stdout is exactly one JSON record");
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
}

#[test]
fn blob_redirects_to_another_host_are_followed_and_timed() {
    let reg = Registry::start_with_cdn();
    let image = three_layer_image(&reg, "cdn:v1", Compression::Gzip);
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("r.json");
    let dest = work.path().join("rootfs");
    pulltime(home.path())
        .args(["pull", &reg.reference("cdn:v1"), "--quiet", "--json"])
        .arg(&json)
        .arg("--dest")
        .arg(&dest)
        .assert()
        .success();
    let record = pulltime::report::json::read_record(&json).unwrap();
    let run = &record.runs[0];
    let cdn = reg.cdn_addr.as_deref().unwrap();
    let hops: Vec<_> = run
        .requests
        .iter()
        .filter(|r| r.kind == "redirect")
        .collect();
    // Three layers and the config blob are all redirected.
    assert_eq!(hops.len(), 4, "{:?}", run.requests);
    assert!(hops.iter().all(|r| r.host == cdn && r.status == 200));
    let first: Vec<_> = run.requests.iter().filter(|r| r.kind == "blob").collect();
    assert!(
        first.iter().all(|r| r.status == 307 && r.host == reg.addr),
        "{first:?}"
    );
    for (l, b) in run.layers.iter().zip(&image.layers) {
        assert!(l.redirect_s > Some(0.0) && l.redirect_s < l.ttfb_s, "{l:?}");
        assert_eq!(l.compressed_bytes, b.data.len() as u64);
    }
    assert!(
        run.connections.iter().any(|c| c.target.ends_with(cdn)),
        "{:?}",
        run.connections
    );
    // Which of a layer's requests opened connections: each connection is
    // opened by one request; with three downloads at once over HTTP/1.1, some
    // layers open connections to the CDN, and their set-up is part of the TTFB.
    let mut claimed: Vec<usize> = Vec::new();
    for l in &run.layers {
        let conns: Vec<_> = run
            .connections
            .iter()
            .filter(|c| l.connections_opened.contains(&c.id))
            .collect();
        assert_eq!(conns.len(), l.connections_opened.len(), "{l:?}");
        let setup: f64 = conns.iter().map(|c| c.connect_s).sum();
        assert!((l.connect_s.unwrap() - setup).abs() < 1e-9, "{l:?}");
        assert!(l.connect_s < l.ttfb_s, "{l:?}");
        claimed.extend(&l.connections_opened);
    }
    let to_cdn = |id: &usize| run.connections.iter().any(|c| c.id == *id && c.host == cdn);
    assert!(
        claimed.iter().any(to_cdn),
        "no layer opened a CDN connection: {:?}",
        run.layers
    );
    let opened_by_requests: Vec<usize> = run.requests.iter().filter_map(|r| r.connection).collect();
    let mut unique = opened_by_requests.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        opened_by_requests.len(),
        "a connection opened twice"
    );
    assert!(claimed.iter().all(|id| opened_by_requests.contains(id)));
    assert_eq!(std::fs::read(dest.join("etc/app.conf")).unwrap(), b"x=1\n");
}

#[test]
fn without_stage_timing_the_untimed_stages_are_null_not_zero() {
    let reg = Registry::start();
    let reference = reg.reference("untimed/app:v1");
    common::build_and_push(
        &reference,
        &[many_files_layer(31, 50, 2_000)],
        Compression::Gzip,
    );
    let home = tempfile::tempdir().unwrap();
    let json = home.path().join("r.json");
    pulltime(home.path())
        .args(["pull", &reference, "--no-stage-timing", "-q", "--json"])
        .arg(&json)
        .assert()
        .success();
    let record = pulltime::report::json::read_record(&json).unwrap();
    let run = &record.runs[0];
    let l = &run.layers[0];
    assert_eq!((l.verify_s, l.decompress_s), (None, None), "{l:?}");
    assert!(l.extract_s.is_some_and(|e| e > 0.0), "{l:?}");
    let phases: Vec<&str> = run.unobserved.iter().map(|u| u.phase.as_str()).collect();
    assert_eq!(phases, ["verify_s", "decompress_s", "stall_s"]);
    assert!(record.summary.decompress_s.is_none());
}
