//! Errors a user can act on, each with a non-zero exit and never a panic: a spent
//! rate limit and a long Retry-After spelled out, nothing listening, a full disk
//! (a small tmpfs), a read-only destination and one owned by someone else.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common;
use common::{E, Registry, layer, pulltime};
use predicates::prelude::*;
use pulltime::oci::media_type::Compression;
use pulltime::profiles::faults::FaultProfile;
use pulltime::server::{ServeOptions, ServerThread};

fn layout_with(dir: &Path, layers: &[Vec<u8>]) {
    let image = pulltime::oci::image::build_image(
        layers,
        Compression::Gzip,
        &pulltime::oci::platform::Platform::host(),
    )
    .unwrap();
    let out = pulltime::oci::layout::Layout::create(dir).unwrap();
    for blob in image.layers.iter().chain([&image.config, &image.manifest]) {
        out.put_blob(blob).unwrap();
    }
    out.tag(&image.manifest, "v1").unwrap();
}

fn small_layout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    layout_with(dir.path(), &[layer(&[E::File("a", 0o644, b"a".to_vec())])]);
    dir
}

fn no_panic() -> impl Predicate<str> {
    predicate::str::contains("panicked").not()
}

#[test]
fn a_spent_rate_limit_is_spelled_out_and_not_retried() {
    let layout = small_layout();
    let server = ServerThread::spawn(ServeOptions {
        layouts: vec![("library/app".into(), layout.path().to_path_buf())],
        emulate_dockerhub: true,
        rate_limit: 1,
        ..ServeOptions::default()
    })
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let reference = server.reference("library/app:v1");
    pulltime(home.path())
        .args(["pull", &reference])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "rate limit: 0 of 1 pulls left per 6 h",
        ));
    let started = Instant::now();
    pulltime(home.path())
        .args(["pull", "-q", &reference])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("HTTP 429")
                .and(predicate::str::contains("TOOMANYREQUESTS"))
                .and(predicate::str::contains("0 of 1 pulls left per 6 h"))
                .and(predicate::str::contains("log in (--user)"))
                .and(no_panic()),
        );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a spent quota was retried with backoff"
    );
}

#[test]
fn a_retry_after_longer_than_pulltime_waits_is_spelled_out() {
    let layout = small_layout();
    let faults = FaultProfile::parse(
        "test",
        "name = \"t\"\n[[rule]]\nkind = \"manifest\"\nfault = \"status\"\nstatus = 429\nretry_after = 3600\nevery = 1\n",
    )
    .unwrap();
    let server = ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.path().to_path_buf())],
        faults: Some(faults),
        ..ServeOptions::default()
    })
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    pulltime(home.path())
        .args(["pull", "-q", &server.reference("app:v1")])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("HTTP 429")
                .and(predicate::str::contains("retry after 3600 s"))
                .and(predicate::str::contains(
                    "longer than the 60 s pulltime waits",
                ))
                .and(no_panic()),
        );
}

#[test]
fn nothing_listening_says_so_without_a_tls_hint() {
    let home = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", common::free_port());
    pulltime(home.path())
        .args(["pull", "-q", &format!("{addr}/x:y"), "--retries", "1"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains(format!("nothing listens at {addr}"))
                .and(predicate::str::contains("--plain-http").not())
                .and(no_panic()),
        );
}

/// Mounts a tmpfs (read-only when asked) at `dir`; `None` where this machine
/// does not allow it (not root, no mount namespace rights).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, options: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_names_the_directory_and_leaves_nothing_that_looks_complete() {
    let work = tempfile::tempdir().unwrap();
    let small = work.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let Some(_mount) = Tmpfs::mount(&small, "size=512k") else {
        crate::peers::skip(
            "a_full_disk_names_the_directory",
            "cannot mount a tmpfs here (needs root)",
        );
        return;
    };
    let reg = Registry::start();
    let reference = reg.reference("big/app:v1");
    // 2 MB of incompressible data cannot fit in 512 KiB.
    common::build_and_push(
        &reference,
        &[
            layer(&[E::File("etc/small", 0o644, b"x".to_vec())]),
            layer(&[E::File("big", 0o644, common::content(3, 2_000_000))]),
        ],
        Compression::Gzip,
    );
    let home = tempfile::tempdir().unwrap();
    let dest = small.join("rootfs");
    let json = work.path().join("record.json");
    pulltime(home.path())
        .args(["pull", "-q", &reference, "--dest", dest.to_str().unwrap()])
        .args(["--tmp-dir", small.to_str().unwrap()])
        .args(["--json", json.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("No space left on device")
                .and(predicate::str::contains(small.to_str().unwrap()))
                .and(no_panic()),
        );
    assert!(
        !dest.exists(),
        "a partial tree was left at {}",
        dest.display()
    );
    assert!(!json.exists(), "a record of a pull that failed");
    let left: Vec<_> = std::fs::read_dir(&small).unwrap().collect();
    assert!(left.is_empty(), "scratch left: {left:?}");

    // Blobs spooled elsewhere: the extraction fills the disk, and says where.
    let scratch = work.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    pulltime(home.path())
        .args(["pull", "-q", &reference, "--dest", dest.to_str().unwrap()])
        .args(["--tmp-dir", scratch.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("No space left on device")
                .and(predicate::str::contains("\"big\""))
                .and(predicate::str::contains(format!(
                    "root filesystem: {}",
                    dest.display()
                )))
                .and(no_panic()),
        );
    assert!(
        !dest.exists(),
        "a partial tree was left at {}",
        dest.display()
    );
}

#[test]
fn read_only_and_foreign_destinations_are_refused_clearly() {
    let layout = small_layout();
    let server = ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.path().to_path_buf())],
        ..ServeOptions::default()
    })
    .unwrap();
    let reference = server.reference("app:v1");
    let work = tempfile::tempdir().unwrap();
    let ro = work.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let home = tempfile::tempdir().unwrap();
    match Tmpfs::mount(&ro, "ro,size=64k") {
        Some(_mount) => {
            pulltime(home.path())
                .args(["pull", "-q", &reference, "--dest"])
                .arg(ro.join("rootfs"))
                .assert()
                .failure()
                .stderr(
                    predicate::str::contains("Read-only file system")
                        .and(predicate::str::contains(
                            ro.join("rootfs").to_str().unwrap(),
                        ))
                        .and(no_panic()),
                );
        }
        None => crate::peers::skip(
            "read_only_destinations_are_refused",
            "cannot mount a read-only tmpfs here (needs root)",
        ),
    }

    // A directory owned by root, pulled into by an unprivileged user.
    let theirs = work.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    let nobody_home = work.path().join("nobody");
    std::fs::create_dir(&nobody_home).unwrap();
    let is_root = unsafe { libc::geteuid() } == 0;
    if !is_root || common::which("setpriv").is_none() {
        crate::peers::skip(
            "foreign_destinations_are_refused",
            "needs root and setpriv to pull as another user",
        );
        return;
    }
    // SAFETY: chown(2) on a path we created.
    let path = std::ffi::CString::new(nobody_home.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0);
    for dir in [work.path(), home.path()] {
        let _ = Command::new("chmod").arg("o+rx").arg(dir).status();
    }
    let bin = assert_cmd::cargo::cargo_bin("pulltime");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args(["pull", "-q", &reference, "--dest"])
        .arg(&theirs)
        .arg("--tmp-dir")
        .arg(&nobody_home)
        .env("HOME", &nobody_home)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Permission denied")
        && stderr.contains("pulltime")
        && !out.status.success()
        && stderr.contains("exec")
    {
        crate::peers::skip(
            "foreign_destinations_are_refused",
            "the test binary is not readable by nobody",
        );
        return;
    }
    assert!(
        !out.status.success(),
        "pulled into a directory it may not write"
    );
    assert!(
        stderr.contains("Permission denied") && stderr.contains(theirs.to_str().unwrap()),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0);
}
