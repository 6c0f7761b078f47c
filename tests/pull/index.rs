//! Manifest negotiation against the real registry: OCI index, Docker manifest list,
//! Docker schema 2 and OCI manifests, and platform selection from an index.

use crate::common;

use common::{E, Registry, layer, pulltime};
use pulltime::oci::image::{Blob, BuiltImage};
use pulltime::oci::media_type::Compression;
use pulltime::oci::platform::Platform;
use serde_json::json;

const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// An image whose only file says which platform it is for.
fn image_for(platform: &Platform, docker_types: bool) -> BuiltImage {
    let marker = platform.to_string().into_bytes();
    let tar = layer(&[E::File("platform.txt", 0o644, marker)]);
    let mut img = pulltime::oci::image::build_image(&[tar], Compression::Gzip, platform).unwrap();
    if docker_types {
        img.config = Blob::new(DOCKER_CONFIG, img.config.data.clone());
        img.layers[0] = Blob::new(DOCKER_LAYER, img.layers[0].data.clone());
        img.rebuild_manifest(pulltime::oci::media_type::DOCKER_MANIFEST);
    }
    img
}

/// Pushes per-platform images by digest and an index (or manifest list) under `tag`.
fn push_index(reg: &Registry, repo: &str, tag: &str, platforms: &[Platform], docker_types: bool) {
    let mut entries = Vec::new();
    for p in platforms {
        let img = image_for(p, docker_types);
        common::push(
            &reg.reference(&format!("{repo}:{tag}-{}", p.architecture)),
            &img,
            None,
        );
        let mut platform = json!({"os": p.os, "architecture": p.architecture});
        if let Some(v) = &p.variant {
            platform["variant"] = json!(v);
        }
        let mut d = img.manifest.descriptor();
        d["platform"] = platform;
        entries.push(d);
    }
    // An attestation-like entry (unknown/unknown) comes first and must never be chosen.
    let mut attestation = entries[0].clone();
    attestation["platform"] = json!({"os": "unknown", "architecture": "unknown"});
    entries.insert(0, attestation);
    let media_type = if docker_types {
        pulltime::oci::media_type::DOCKER_LIST
    } else {
        pulltime::oci::media_type::OCI_INDEX
    };
    let index = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries});
    let blob = Blob::new(media_type, serde_json::to_vec(&index).unwrap());
    common::push_manifest(&reg.reference(&format!("{repo}:{tag}")), &blob);
}

fn pulled_platform(reference: &str, platform: Option<&str>) -> (String, serde_json::Value) {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("rootfs");
    let json = work.path().join("r.json");
    let mut cmd = pulltime(home.path());
    cmd.args(["pull", reference, "--quiet", "--dest"])
        .arg(&dest)
        .arg("--json")
        .arg(&json);
    if let Some(p) = platform {
        cmd.args(["--platform", p]);
    }
    cmd.assert().success();
    let v = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (
        std::fs::read_to_string(dest.join("platform.txt")).unwrap(),
        v,
    )
}

#[test]
fn oci_index_and_docker_manifest_list_pick_the_platform() {
    let reg = Registry::start();
    let host = Platform::host();
    let platforms = vec![
        Platform::parse("linux/amd64").unwrap(),
        Platform::parse("linux/arm64/v8").unwrap(),
        Platform::parse("linux/arm/v7").unwrap(),
        Platform::parse("linux/arm/v6").unwrap(),
    ];
    for (repo, docker_types, expected_type) in [
        ("oci", false, pulltime::oci::media_type::OCI_INDEX),
        ("docker", true, pulltime::oci::media_type::DOCKER_LIST),
    ] {
        push_index(&reg, repo, "multi", &platforms, docker_types);
        let reference = reg.reference(&format!("{repo}:multi"));
        let (got, v) = pulled_platform(&reference, Some("linux/arm/v7"));
        assert_eq!(got, "linux/arm/v7");
        assert_eq!(v["image"]["manifest_media_type"], expected_type);
        assert_eq!(v["image"]["platform"], "linux/arm/v7");
        assert_ne!(
            v["image"]["manifest_digest"],
            v["image"]["platform_manifest_digest"]
        );
        let kinds: Vec<&str> = v["runs"][0]["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"index"), "{kinds:?}");
        let (got, _) = pulled_platform(&reference, Some("linux/arm/v6"));
        assert_eq!(got, "linux/arm/v6");
        let (got, _) = pulled_platform(&reference, Some("linux/arm64"));
        assert_eq!(got, "linux/arm64/v8");
        if host.architecture == "amd64" {
            let (got, _) = pulled_platform(&reference, None);
            assert_eq!(got, "linux/amd64", "the default is the host platform");
        }
        let home = tempfile::tempdir().unwrap();
        pulltime(home.path())
            .args(["pull", &reference, "--platform", "linux/s390x"])
            .assert()
            .failure()
            .stderr(predicates::str::contains("available: unknown/unknown, linux/amd64, linux/arm64/v8, linux/arm/v7, linux/arm/v6"));
    }
}

#[test]
fn docker_schema2_manifest_pulls_and_records_its_media_types() {
    let reg = Registry::start();
    let img = image_for(&Platform::host(), true);
    let reference = reg.reference("schema2:v1");
    common::push(&reference, &img, None);
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("r.json");
    pulltime(home.path())
        .args(["pull", &reference, "--quiet", "--json"])
        .arg(&json)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        v["image"]["manifest_media_type"],
        pulltime::oci::media_type::DOCKER_MANIFEST
    );
    assert_eq!(v["image"]["layers"][0]["media_type"], DOCKER_LAYER);
    assert_eq!(v["image"]["manifest_digest"], img.manifest.digest);
    // Pull by digest, and by tag+digest.
    let by_digest = format!("{}/schema2@{}", reg.addr, img.manifest.digest);
    pulltime(home.path())
        .args(["pull", &by_digest, "--quiet"])
        .assert()
        .success();
    let both = format!("{}/schema2:v1@{}", reg.addr, img.manifest.digest);
    pulltime(home.path())
        .args(["pull", &both, "--quiet"])
        .assert()
        .success();
    let wrong = format!("{}/schema2@sha256:{}", reg.addr, "0".repeat(64));
    pulltime(home.path())
        .args(["pull", &wrong])
        .assert()
        .failure()
        .stderr(predicates::str::contains("image not found"));
}
