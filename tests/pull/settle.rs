//! Waiting out a deletion before a measured run (`--settle`): on ext4 without a
//! journal a run into an emptied `--dest` starts only once the filesystem no
//! longer slows file creation near what was deleted (docs/performance.md).

use crate::common;

use common::{E, Registry, layer, pulltime};
use pulltime::oci::media_type::Compression;

fn image(reg: &Registry) -> String {
    let reference = reg.reference("settle:v1");
    let layers = vec![layer(&[
        E::Dir("etc", 0o755),
        E::File("etc/app.conf", 0o644, b"x=1\n".to_vec()),
    ])];
    common::build_and_push(&reference, &layers, Compression::Gzip);
    reference
}

fn record(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_run_after_emptying_the_destination_waits_on_ext4_without_a_journal() {
    let work = tempfile::tempdir().unwrap();
    if !pulltime::pipeline::filesystem::deletions_linger(work.path()) {
        crate::peers::skip(
            "a_run_after_emptying_the_destination_waits_on_ext4_without_a_journal",
            "the temporary directory is not on ext4 without a journal",
        );
        return;
    }
    let reg = Registry::start();
    let reference = image(&reg);
    let home = tempfile::tempdir().unwrap();
    let json = work.path().join("out.json");
    let dest = work.path().join("rootfs");
    let tmp = tempfile::tempdir_in(work.path()).unwrap();

    // Runs into --dest with --tmp-dir on the same filesystem: the runs before the
    // last go to temporary roots, nothing is deleted, nothing waits.
    let out = pulltime(home.path())
        .args([
            "pull", &reference, "--runs", "2", "--settle", "30", "--json",
        ])
        .arg(&json)
        .arg("--tmp-dir")
        .arg(tmp.path())
        .arg("--dest")
        .arg(&dest)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("waiting"), "{}", stderr_of(&out));
    assert_eq!(std::fs::read(dest.join("etc/app.conf")).unwrap(), b"x=1\n");
    let r = record(&json);
    assert_eq!(r["runs"].as_array().unwrap().len(), 2);
    assert_eq!(r["host"]["dest_filesystem"], "ext4");
    assert_eq!(r["host"]["dest_journal"], false);
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the first run's temporary root is removed at the end"
    );

    // --force deletes the tree first: the run waits, and says so.
    let started = std::time::Instant::now();
    let out = pulltime(home.path())
        .args(["pull", &reference, "--force", "--settle", "5", "--dest"])
        .arg(&dest)
        .arg("--tmp-dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("ext4 without a journal") && stderr.contains("--settle 0"),
        "no word of the wait: {stderr}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));

    // --settle 0: no wait, no word of one.
    let out = pulltime(home.path())
        .args(["pull", &reference, "--force", "--settle", "0", "--dest"])
        .arg(&dest)
        .arg("--tmp-dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("waiting"));

    // --tmp-dir on another filesystem: --dest itself is emptied between runs,
    // and the second run waits.
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() && !pulltime::pipeline::filesystem::same_filesystem(shm, work.path()) {
        let other = tempfile::tempdir_in(shm).unwrap();
        let out = pulltime(home.path())
            .args(["pull", &reference, "--runs", "2", "--settle", "5", "--dest"])
            .arg(work.path().join("rootfs2"))
            .arg("--tmp-dir")
            .arg(other.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("ext4 without a journal"),
            "{}",
            stderr_of(&out)
        );
    }
}

#[test]
fn no_wait_where_deletions_do_not_linger() {
    let shm = std::path::Path::new("/dev/shm");
    if pulltime::pipeline::filesystem::journal(shm).is_some() || !shm.is_dir() {
        crate::peers::skip(
            "no_wait_where_deletions_do_not_linger",
            "no tmpfs at /dev/shm",
        );
        return;
    }
    let reg = Registry::start();
    let reference = image(&reg);
    let home = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir_in(shm).unwrap();
    let out = pulltime(home.path())
        .args([
            "pull", &reference, "--runs", "2", "--settle", "30", "--dest",
        ])
        .arg(dest.path().join("rootfs"))
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("waiting"));
}
