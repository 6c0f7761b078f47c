//! The hostile-layer corpus, part two: limits that only a pull can hit (layer count,
//! manifest and config size, decompression bombs), served by the CNCF distribution
//! registry and pulled with `pulltime pull` and its limit flags, in both modes. Each
//! case asserts the named error and that nothing outside the destination changed.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use common::{E, Node, Registry, layer, pulltime, snapshot};
use predicates::prelude::*;
use pulltime::oci::image::{Blob, BuiltImage, build_image};
use pulltime::oci::media_type::Compression;
use pulltime::oci::platform::Platform;
use sha2::{Digest, Sha256};

/// A destination inside a work directory that also holds a sentinel.
struct Work {
    _dir: tempfile::TempDir,
    _tmp: tempfile::TempDir,
    _home: tempfile::TempDir,
    path: PathBuf,
    before: BTreeMap<String, Node>,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        std::fs::create_dir_all(path.join("sentinel/dir")).unwrap();
        std::fs::write(path.join("sentinel/victim"), "precious").unwrap();
        let before = snapshot(&path);
        Work {
            _dir: dir,
            _tmp: tempfile::tempdir().unwrap(),
            _home: tempfile::tempdir().unwrap(),
            path,
            before,
        }
    }

    fn dest(&self) -> PathBuf {
        self.path.join("dest")
    }

    /// `pulltime pull REF --dest work/dest --tmp-dir <elsewhere> --quiet ARGS...`.
    fn pull(&self, reference: &str, args: &[&str]) -> assert_cmd::assert::Assert {
        pulltime(self._home.path())
            .args(["pull", reference, "--quiet", "--dest"])
            .arg(self.dest())
            .arg("--tmp-dir")
            .arg(self._tmp.path())
            .args(args)
            .assert()
    }

    /// Nothing but the destination changed next to it.
    fn outside_unchanged(&self) {
        let after: BTreeMap<String, Node> = snapshot(&self.path)
            .into_iter()
            .filter(|(k, _)| k != "dest" && !k.starts_with("dest/"))
            .collect();
        assert_eq!(after, self.before, "{}", common::diff(&self.before, &after));
    }
}

fn tiny_layers(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let name: &'static str = Box::leak(format!("f{i}").into_boxed_str());
            layer(&[E::File(name, 0o644, vec![b'x'; i + 1])])
        })
        .collect()
}

/// An image of one gzip layer holding `files` files of `size` zero bytes, built
/// without holding the tar in memory.
fn zero_bomb(reg: &Registry, repo_tag: &str, files: usize, size: u64) -> BuiltImage {
    let mut tar_hash = Sha256::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut put = |bytes: &[u8]| {
        tar_hash.update(bytes);
        gz.write_all(bytes).unwrap();
    };
    let chunk = vec![0u8; 1 << 20];
    for i in 0..files {
        let mut h = tar::Header::new_ustar();
        h.set_path(if files == 1 {
            "zeros".into()
        } else {
            format!("zeros{i}")
        })
        .unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        put(h.as_bytes());
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            put(&chunk[..n]);
            left -= n as u64;
        }
        put(&vec![0u8; ((512 - size % 512) % 512) as usize]);
    }
    put(&[0u8; 1024]);
    let diff_id = format!("sha256:{}", hex::encode(tar_hash.finalize()));
    let blob = Blob::new(
        "application/vnd.oci.image.layer.v1.tar+gzip",
        gz.finish().unwrap(),
    );
    let mut image = build_image(&tiny_layers(1), Compression::Gzip, &Platform::host()).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&image.config.data).unwrap();
    config["rootfs"]["diff_ids"] = serde_json::json!([diff_id]);
    image.config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        serde_json::to_vec(&config).unwrap(),
    );
    image.layers = vec![blob];
    image.rebuild_manifest(pulltime::oci::media_type::OCI_MANIFEST);
    common::push(&reg.reference(repo_tag), &image, None);
    image
}

fn assert_no_dest(w: &Work) {
    assert!(
        !w.dest().exists(),
        "a failed pull left {}",
        w.dest().display()
    );
}

#[test]
fn more_layers_than_the_limit_are_refused_and_the_limit_itself_passes() {
    let reg = Registry::start();
    common::build_and_push(
        &reg.reference("many:v1"),
        &tiny_layers(5),
        Compression::Gzip,
    );
    let w = Work::new();
    w.pull(&reg.reference("many:v1"), &["--max-layers", "4"])
        .failure()
        .stderr(predicate::str::contains(
            "the image has 5 layers, more than 4 (--max-layers)",
        ));
    assert_no_dest(&w);
    w.outside_unchanged();
    w.pull(&reg.reference("many:v1"), &["--max-layers", "5"])
        .success();
    assert_eq!(snapshot(&w.dest()).len(), 5);
    w.outside_unchanged();
}

#[test]
fn oversized_manifest_and_config_are_refused_naming_the_flag() {
    let reg = Registry::start();
    let image =
        common::build_and_push(&reg.reference("big:v1"), &tiny_layers(5), Compression::Gzip);
    assert!(image.manifest.data.len() > 512);
    let w = Work::new();
    w.pull(&reg.reference("big:v1"), &["--max-manifest-size", "512"])
        .failure()
        .stderr(predicate::str::contains(
            "manifest is larger than 512B (--max-manifest-size)",
        ));
    assert_no_dest(&w);

    // A small manifest whose config is padded past the limit.
    let mut padded = build_image(&tiny_layers(1), Compression::Gzip, &Platform::host()).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&padded.config.data).unwrap();
    config["config"]["Labels"] = serde_json::json!({"padding": "p".repeat(64 << 10)});
    padded.config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        serde_json::to_vec(&config).unwrap(),
    );
    padded.rebuild_manifest(pulltime::oci::media_type::OCI_MANIFEST);
    common::push(&reg.reference("padded:v1"), &padded, None);
    w.pull(
        &reg.reference("padded:v1"),
        &["--max-manifest-size", "16KiB"],
    )
    .failure()
    .stderr(predicate::str::contains(
        "image config is larger than 16KiB (--max-manifest-size)",
    ));
    assert_no_dest(&w);
    w.pull(
        &reg.reference("padded:v1"),
        &["--max-manifest-size", "128KiB"],
    )
    .success();
    w.outside_unchanged();
}

#[test]
fn gzip_bomb_is_stopped_by_the_ratio_in_both_modes() {
    let reg = Registry::start();
    // 300 MiB of zeros: gzip reaches ~1030:1, past the default 1000:1 once the
    // 256 MiB floor is decompressed.
    let image = zero_bomb(&reg, "bomb:v1", 1, 300 << 20);
    assert!(image.layers[0].data.len() < 400 << 10);
    let w = Work::new();
    for mode in ["streaming", "staged"] {
        w.pull(&reg.reference("bomb:v1"), &["--mode", mode])
            .failure()
            .stderr(
                predicate::str::contains("layer 0 (")
                    .and(predicate::str::contains("expands more than 1000:1"))
                    .and(predicate::str::contains("(--max-ratio)")),
            );
        assert_no_dest(&w);
    }
    // Raising the ratio lets it through: the limit is what stopped it.
    w.pull(&reg.reference("bomb:v1"), &["--max-ratio", "2000"])
        .success();
    assert_eq!(
        std::fs::metadata(w.dest().join("zeros")).unwrap().len(),
        300 << 20
    );
    w.outside_unchanged();
}

#[test]
fn layer_larger_than_the_size_limit_is_stopped_while_streaming() {
    let reg = Registry::start();
    // 96 files of 1 MiB: the stream passes 64 MiB before any file says so.
    zero_bomb(&reg, "zeros:v1", 96, 1 << 20);
    let w = Work::new();
    for mode in ["streaming", "staged"] {
        w.pull(
            &reg.reference("zeros:v1"),
            &["--mode", mode, "--max-layer-size", "64MiB"],
        )
        .failure()
        .stderr(predicate::str::contains(
            "decompresses to more than 64MiB (--max-layer-size)",
        ));
        assert_no_dest(&w);
    }
    // One file announcing 96 MiB: refused from its header when extraction reaches
    // it first, or by the decoder (which runs ahead on another core) when that
    // passes 64 MiB first; either way by the same limit, and nothing is kept.
    zero_bomb(&reg, "onefile:v1", 1, 96 << 20);
    w.pull(&reg.reference("onefile:v1"), &["--max-layer-size", "64MiB"])
        .failure()
        .stderr(
            predicate::str::contains(
                "entry \"zeros\" would bring the file content written by this layer to 100663296 bytes, more than 64MiB (--max-layer-size)",
            )
            .or(predicate::str::contains(
                "decompresses to more than 64MiB (--max-layer-size)",
            )),
        );
    assert_no_dest(&w);
    w.outside_unchanged();
}

#[test]
fn hostile_entry_limits_reach_the_command_line() {
    let reg = Registry::start();
    let deep = format!("{}f", "d/".repeat(40));
    let deep: &'static str = Box::leak(deep.into_boxed_str());
    common::build_and_push(
        &reg.reference("deep:v1"),
        &[layer(&[E::File(deep, 0o644, b"x".to_vec())])],
        Compression::Gzip,
    );
    let w = Work::new();
    w.pull(&reg.reference("deep:v1"), &["--max-path-depth", "20"])
        .failure()
        .stderr(predicate::str::contains(
            "is 41 directories deep, more than 20 (--max-path-depth)",
        ));
    w.pull(&reg.reference("deep:v1"), &["--max-path-length", "50"])
        .failure()
        .stderr(predicate::str::contains(
            "name is 81 bytes long, more than 50 (--max-path-length)",
        ));
    w.pull(&reg.reference("deep:v1"), &["--max-entries", "1"])
        .success();
    assert!(w.dest().join(deep).is_file());
    w.outside_unchanged();
}

#[test]
fn bad_limit_values_are_refused_by_the_parser() {
    let w = Work::new();
    for args in [
        ["--max-layer-size", "ten"],
        ["--max-manifest-size", "4 parsecs"],
        ["--max-layers", "0"],
        ["--max-ratio", "0"],
    ] {
        w.pull("127.0.0.1:1/x:y", &args)
            .failure()
            .stderr(predicate::str::contains(args[0]));
    }
    w.outside_unchanged();
}
