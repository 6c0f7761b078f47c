//! `pulltime pull` against the real distribution registry, checked against
//! independent tools: `umoci unpack` (root filesystem), `skopeo` (pushing images no
//! code here produced) and `oci-client` (digests).

use crate::common;

use std::process::Command;

use common::{E, Registry, content, diff_metadata, layer, metadata, pulltime, run, snapshot};
use pulltime::oci::media_type::Compression;

/// Three layers exercising whiteouts, opaque directories, hard and symbolic links,
/// a file replaced by a directory and back, and odd modes.
fn tricky_layers() -> Vec<Vec<u8>> {
    vec![
        layer(&[
            E::Xattr("user.origin", b"layer 0"),
            E::Dir("etc", 0o755),
            E::Xattr("user.origin", b"layer 0"),
            E::Xattr("user.empty", b""),
            E::File("etc/passwd", 0o644, b"root:x:0:0::/root:/bin/sh\n".to_vec()),
            E::File("etc/secret", 0o600, content(1, 300)),
            E::Dir("usr", 0o755),
            E::Dir("usr/lib", 0o755),
            E::File("usr/lib/libfoo.so.1", 0o755, content(2, 50_000)),
            E::Symlink("usr/lib/libfoo.so", "libfoo.so.1"),
            E::Symlink("lib", "usr/lib"),
            E::Dir("opt", 0o755),
            E::Dir("opt/app", 0o750),
            E::File("opt/app/a", 0o644, content(3, 10)),
            E::File("opt/app/b", 0o644, content(4, 20)),
            E::Dir("opt/app/sub", 0o755),
            E::File("opt/app/sub/deep", 0o644, content(5, 30)),
            E::Dir("var", 0o755),
            E::File("var/gone", 0o644, content(6, 40)),
            E::Dir("var/gonedir", 0o755),
            E::File("var/gonedir/x", 0o644, content(7, 50)),
            E::File("tofile", 0o644, content(8, 5)),
            E::Dir("todir", 0o755),
            E::File("todir/inner", 0o644, content(9, 5)),
            E::File("bin-suid", 0o4755, content(10, 64)),
            E::File("sticky-no-read", 0o1600, content(11, 64)),
            E::Dir("tmp", 0o1777),
        ]),
        layer(&[
            // Whiteouts of a file and of a directory; opaque dir with a new child.
            E::Whiteout("var/gone"),
            E::Whiteout("var/gonedir"),
            E::Dir("opt/app", 0o755),
            E::Opaque("opt/app"),
            E::File("opt/app/new", 0o640, content(12, 100)),
            E::Hardlink("etc/passwd-hl", "etc/passwd"),
            // A file replaced by a directory and a directory by a file.
            E::Dir("tofile", 0o700),
            E::File("tofile/now-a-dir", 0o644, content(13, 7)),
            E::File("todir", 0o600, content(14, 9)),
            // Writing through a symlinked directory lands inside the root.
            E::File("lib/libbar.so", 0o644, content(15, 1000)),
            E::Dir("empty", 0o555),
        ]),
        layer(&[
            // Whiteout then re-create in the same layer, and a new file in an opaque dir.
            E::Whiteout("etc/secret"),
            E::File("etc/secret", 0o400, content(16, 33)),
            E::File("usr/lib/libfoo.so.1", 0o755, content(17, 60_000)),
            E::Hardlink("usr/lib/libfoo-hl", "usr/lib/libfoo.so.1"),
            E::Symlink("lib", "/usr/lib"),
        ]),
    ]
}

fn umoci_unpack(layout: &std::path::Path, tag: &str, bundle: &std::path::Path) {
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle));
}

fn skopeo_to_layout(reference: &str, layout: &std::path::Path, tag: &str) {
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:{tag}", layout.display())));
}

#[test]
fn pulled_rootfs_equals_umoci_unpack_for_gzip_and_uncompressed() {
    let reg = Registry::start();
    let home = tempfile::tempdir().unwrap();
    for (tag, compression) in [("gz", Compression::Gzip), ("plain", Compression::None)] {
        let reference = reg.reference(&format!("tricky:{tag}"));
        common::build_and_push(&reference, &tricky_layers(), compression);
        let work = tempfile::tempdir().unwrap();
        let dest = work.path().join("rootfs");
        pulltime(home.path())
            .args(["pull", &reference, "--quiet", "--dest"])
            .arg(&dest)
            .assert()
            .success();
        let layout = work.path().join("layout");
        skopeo_to_layout(&reference, &layout, tag);
        let bundle = work.path().join("bundle");
        umoci_unpack(&layout, tag, &bundle);
        let ours = snapshot(&dest);
        let theirs = snapshot(&bundle.join("rootfs"));
        assert!(ours.len() > 20, "{ours:?}");
        assert!(ours.contains_key("opt/app/new") && !ours.contains_key("opt/app/a"));
        assert!(!ours.contains_key("var/gone") && !ours.contains_key("var/gonedir"));
        assert_eq!(
            ours,
            theirs,
            "pulltime vs umoci ({tag}):\n{}",
            common::diff(&ours, &theirs)
        );
        // Owners, mtimes (directories the upper layers change without naming
        // them, as `etc` and `usr/lib`, included) and hard links.
        let (ours, theirs) = (metadata(&dest), metadata(&bundle.join("rootfs")));
        assert_eq!(ours["usr/lib"].mtime, Some(1_700_000_000_000_000_000));
        assert_eq!(ours["etc/passwd"].xattrs["user.origin"], b"layer 0");
        assert_eq!(
            ours,
            theirs,
            "pulltime vs umoci ({tag}):\n{}",
            diff_metadata(&ours, &theirs)
        );
    }
}

#[test]
fn image_built_by_umoci_and_pushed_by_skopeo_pulls_like_umoci_unpacks_it() {
    let reg = Registry::start();
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let l = layout.display().to_string();
    run(Command::new("umoci").args(["init", "--layout", &l]));
    run(Command::new("umoci").args(["new", "--image", &format!("{l}:v1")]));
    // Layer 1: a small tree. Layer 2: deletions (whiteouts), a replaced file, links.
    let bundle = work.path().join("b1");
    umoci_unpack(&layout, "v1", &bundle);
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("app/data/nested")).unwrap();
    std::fs::write(rootfs.join("app/main.py"), content(20, 4000)).unwrap();
    std::fs::write(rootfs.join("app/data/model.bin"), content(21, 200_000)).unwrap();
    std::fs::write(rootfs.join("app/data/nested/x"), "x").unwrap();
    std::fs::write(rootfs.join("app/cache"), "old").unwrap();
    std::os::unix::fs::symlink("main.py", rootfs.join("app/entry")).unwrap();
    run(Command::new("umoci")
        .args(["repack", "--image", &format!("{l}:v1")])
        .arg(&bundle));
    std::fs::remove_dir_all(&bundle).unwrap();
    umoci_unpack(&layout, "v1", &bundle);
    std::fs::remove_dir_all(rootfs.join("app/data/nested")).unwrap();
    std::fs::remove_file(rootfs.join("app/cache")).unwrap();
    std::fs::write(rootfs.join("app/main.py"), content(22, 5000)).unwrap();
    std::fs::hard_link(rootfs.join("app/main.py"), rootfs.join("app/main-link.py")).unwrap();
    std::fs::set_permissions(
        rootfs.join("app/data/model.bin"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    run(Command::new("umoci")
        .args(["repack", "--image", &format!("{l}:v1")])
        .arg(&bundle));

    let reference = reg.reference("umoci/app:v1");
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{l}:v1"))
        .arg(format!("docker://{reference}")));

    let dest = work.path().join("rootfs");
    let json = work.path().join("record.json");
    pulltime(home.path())
        .args(["pull", &reference, "--quiet", "--json"])
        .arg(&json)
        .arg("--dest")
        .arg(&dest)
        .assert()
        .success();
    let oracle = work.path().join("oracle");
    umoci_unpack(&layout, "v1", &oracle);
    let ours = snapshot(&dest);
    let theirs = snapshot(&oracle.join("rootfs"));
    assert!(ours.contains_key("app/main-link.py") && !ours.contains_key("app/cache"));
    assert_eq!(ours, theirs, "{}", common::diff(&ours, &theirs));
    let (ours, theirs) = (metadata(&dest), metadata(&oracle.join("rootfs")));
    assert_eq!(ours, theirs, "{}", diff_metadata(&ours, &theirs));
    let record = pulltime::report::json::read_record(&json).unwrap();
    assert_eq!(record.image.layers.len(), 2);
    assert!(
        record.runs[0].layers[1].whiteouts >= 2,
        "{:?}",
        record.runs[0].layers[1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oci_client_sees_the_same_digests() {
    use oci_client::client::{ClientConfig, ClientProtocol};
    use oci_client::secrets::RegistryAuth;
    let reg = Registry::start();
    let home = tempfile::tempdir().unwrap();
    let reference = reg.reference("digests:zstd");
    let layers = tricky_layers();
    let image = tokio::task::spawn_blocking({
        let reference = reference.clone();
        move || common::build_and_push(&reference, &layers, Compression::Zstd)
    })
    .await
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("r.json");
    let mut cmd = pulltime(home.path());
    cmd.args(["pull", &reference, "--quiet", "--json"])
        .arg(&json);
    tokio::task::spawn_blocking(move || cmd.assert().success())
        .await
        .unwrap();
    let record = pulltime::report::json::read_record(&json).unwrap();

    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let r: oci_client::Reference = reference.parse().unwrap();
    let (manifest, digest) = client
        .pull_image_manifest(&r, &RegistryAuth::Anonymous)
        .await
        .unwrap();
    assert_eq!(record.image.manifest_digest, digest);
    assert_eq!(digest, image.manifest.digest);
    assert_eq!(record.image.config_digest, manifest.config.digest);
    let theirs: Vec<&str> = manifest.layers.iter().map(|l| l.digest.as_str()).collect();
    let ours: Vec<&str> = record
        .image
        .layers
        .iter()
        .map(|l| l.digest.as_str())
        .collect();
    assert_eq!(ours, theirs);
    let sizes: Vec<u64> = manifest.layers.iter().map(|l| l.size as u64).collect();
    let our_sizes: Vec<u64> = record.runs[0]
        .layers
        .iter()
        .map(|l| l.compressed_bytes)
        .collect();
    assert_eq!(our_sizes, sizes);
    // And the blob oci-client downloads hashes to the digest both agree on.
    let mut blob = Vec::new();
    client
        .pull_blob(&r, &manifest.layers[0], &mut blob)
        .await
        .unwrap();
    assert_eq!(
        pulltime::oci::digest::sha256_digest(&blob),
        record.image.layers[0].digest
    );
}
