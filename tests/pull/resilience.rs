//! Stopping and secrets: Ctrl-C mid-pull stops the process, leaves no partial tree
//! and no scratch files; Basic credentials and bearer tokens never reach stdout,
//! stderr, tracing at any level, or the JSON record.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::pulltime;
use pulltime::oci::media_type::Compression;
use pulltime::profiles::network::NetworkProfile;
use pulltime::server::{ServeOptions, ServerThread};
use pulltime::synth::{ImageProfile, SynthOptions, synthesize};

fn synth(dir: &Path, scale: f64) -> pulltime::synth::SynthImage {
    let profile = ImageProfile::load("sn-compose-post-original").unwrap();
    synthesize(
        &profile,
        SynthOptions {
            scale,
            compression: Compression::Gzip,
        },
        dir,
        "v1",
    )
    .unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn ctrl_c_stops_the_pull_and_leaves_nothing_behind() {
    let layout = tempfile::tempdir().unwrap();
    synth(layout.path(), 0.05);
    // Slow enough that the pull is mid-way when interrupted.
    let server = ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.path().to_path_buf())],
        network: NetworkProfile::load("mobile-10m").unwrap(),
        ..ServeOptions::default()
    })
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let (home, dest, tmp) = (
        work.path().join("home"),
        work.path().join("rootfs"),
        work.path().join("tmp"),
    );
    for d in [&home, &tmp] {
        std::fs::create_dir(d).unwrap();
    }
    let bin = assert_cmd::cargo::cargo_bin("pulltime");
    let mut child = Command::new(bin)
        .env("HOME", &home)
        .args(["pull", &server.reference("app:v1"), "--quiet", "--dest"])
        .arg(&dest)
        .arg("--tmp-dir")
        .arg(&tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until files are landing in the destination (bounded).
    let deadline = Instant::now() + Duration::from_secs(60);
    while entries(&dest).is_empty() {
        assert!(Instant::now() < deadline, "the pull never started writing");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended too early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let interrupted_at = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        if interrupted_at.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("pulltime did not stop within 20 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr:\n{stderr}");
    assert!(stderr.contains("interrupted"), "stderr:\n{stderr}");
    // pulltime created the destination, so it removes it; scratch space is gone too.
    assert!(!dest.exists(), "left behind: {:?}", entries(&dest));
    assert!(
        entries(&tmp).is_empty(),
        "scratch left: {:?}",
        entries(&tmp)
    );
}

#[test]
fn ctrl_c_after_a_completed_run_keeps_its_record() {
    let layout = tempfile::tempdir().unwrap();
    synth(layout.path(), 0.02);
    let server = ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.path().to_path_buf())],
        network: NetworkProfile::load("home-50m").unwrap(),
        ..ServeOptions::default()
    })
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let (home, tmp, json) = (
        work.path().join("home"),
        work.path().join("tmp"),
        work.path().join("record.json"),
    );
    for d in [&home, &tmp] {
        std::fs::create_dir(d).unwrap();
    }
    let bin = assert_cmd::cargo::cargo_bin("pulltime");
    let mut child = Command::new(bin)
        .env("HOME", &home)
        .args([
            "pull",
            &server.reference("app:v1"),
            "--quiet",
            "--runs",
            "5",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--tmp-dir")
        .arg(&tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Each run unpacks into a root of its own, kept until the end: a second
    // root means the first run is complete (bounded wait).
    let roots = || {
        std::fs::read_dir(&tmp)
            .map(|rd| {
                rd.filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().starts_with("pulltime-rootfs-")
                })
                .count()
            })
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while roots() < 2 {
        assert!(Instant::now() < deadline, "the second run never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended too early"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("pulltime did not stop within 20 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr:\n{stderr}");
    let text =
        std::fs::read(&json).unwrap_or_else(|e| panic!("no record ({e}); stderr:\n{stderr}"));
    let record: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let kept = record["runs"].as_array().unwrap().len();
    assert!((1..5).contains(&kept), "{kept} runs kept");
    assert_eq!(record["settings"]["runs"], 5);
    assert_eq!(
        record["settings"]["stopped"],
        format!("stopped by the user after {kept} of 5 runs")
    );
    assert!(
        stderr.contains(&format!("stopped after {kept} of 5 runs"))
            && stderr.contains(json.to_str().unwrap()),
        "stderr:\n{stderr}"
    );
    for run in record["runs"].as_array().unwrap() {
        assert!(run["wall_s"].as_f64().unwrap() > 0.0);
    }
    assert!(
        entries(&tmp).is_empty(),
        "scratch left: {:?}",
        entries(&tmp)
    );
}

#[test]
fn basic_credentials_and_bearer_tokens_never_leak_at_any_log_level() {
    const USER: &str = "bob";
    const PASSWORD: &str = "hunter2-Pa55-never-print-me";
    let layout = tempfile::tempdir().unwrap();
    let image = synth(layout.path(), 0.004);
    // Docker Hub emulation: the client sends Basic credentials to the token
    // endpoint and bearer tokens to the registry; blobs come from the CDN listener.
    let server = ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.path().to_path_buf())],
        emulate_dockerhub: true,
        rate_limit: 1000,
        ..ServeOptions::default()
    })
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("record.json");
    let out = pulltime(work.path())
        .env("PULLTIME_LOG", "trace")
        .args(["pull", &server.reference("app:v1"), "-vv", "--user"])
        .arg(format!("{USER}:{PASSWORD}"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Tracing really ran at the lowest level, requests included.
    assert!(stderr.contains("TRACE"), "no trace output");
    assert!(
        stderr.contains("kind=\"token\""),
        "token request not traced:\n{stderr}"
    );
    let record = std::fs::read_to_string(&json).unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    // Every 64-hex string printed must be a digest of the image, never a token
    // (the emulation's tokens are 64 hex characters).
    let mut digests: Vec<String> = vec![image.manifest.digest.clone()];
    let parsed: serde_json::Value = serde_json::from_str(&record).unwrap();
    for l in parsed["image"]["layers"].as_array().unwrap() {
        digests.push(l["digest"].as_str().unwrap().into());
        digests.push(l["diff_id"].as_str().unwrap().into());
    }
    digests.push(parsed["image"]["config_digest"].as_str().unwrap().into());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (name, text) in [
        ("stdout", &*stdout),
        ("stderr", &*stderr),
        ("record", &*record),
    ] {
        assert!(!text.contains(PASSWORD), "password in {name}");
        assert!(!text.contains(&basic), "Basic credentials in {name}");
        assert!(!text.contains("Bearer "), "bearer header in {name}");
        for hex in hex_runs(text) {
            assert!(
                digests.iter().any(|d| d.ends_with(&hex)),
                "{name} holds a 64-hex string that is not a digest of the image (a token?): {hex}"
            );
        }
    }
}

/// Maximal runs of exactly 64 lowercase hex characters.
fn hex_runs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || ('a'..='f').contains(&c) {
            run.push(c);
        } else {
            if run.len() == 64 {
                out.push(std::mem::take(&mut run));
            }
            run.clear();
        }
    }
    out
}

#[test]
fn an_expired_token_mid_pull_runs_the_token_flow_again() {
    let layout = tempfile::tempdir().unwrap();
    synth(layout.path(), 0.02);
    // Tokens live 0.3 s; one download at a time over 20 Mbit/s takes longer, so
    // later blob requests carry an expired token and get a 401 challenge.
    let server = ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.path().to_path_buf())],
        emulate_dockerhub: true,
        rate_limit: 1000,
        token_ttl: Duration::from_millis(300),
        network: NetworkProfile::load("edge-20m").unwrap(),
        ..ServeOptions::default()
    })
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("record.json");
    pulltime(work.path())
        .args(["pull", &server.reference("app:v1"), "--quiet"])
        .args(["--max-concurrent-downloads", "1", "--json"])
        .arg(&json)
        .assert()
        .success();
    let record = pulltime::report::json::read_record(&json).unwrap();
    let requests = &record.runs[0].requests;
    let tokens = requests.iter().filter(|r| r.kind == "token").count();
    let refused = requests
        .iter()
        .filter(|r| r.kind == "blob" && r.status == 401)
        .count();
    assert!(
        refused >= 1,
        "no blob request met an expired token: {requests:#?}"
    );
    // One new token per 401, not a loop.
    assert_eq!(tokens, 1 + refused, "{requests:#?}");
    assert!(record.runs[0].wall_s > 0.3);
}

fn stalling_server(layout: &Path, rules: &str) -> ServerThread {
    let profile = pulltime::profiles::faults::FaultProfile::parse(
        "test",
        &format!("name = \"stalls\"\nseed = 1\n{rules}"),
    )
    .unwrap();
    ServerThread::spawn(ServeOptions {
        layouts: vec![("app".into(), layout.to_path_buf())],
        faults: Some(profile),
        ..ServeOptions::default()
    })
    .unwrap()
}

#[test]
fn timeouts_turn_stalls_into_retries_and_a_dead_server_into_a_clear_error() {
    let layout = tempfile::tempdir().unwrap();
    let image = synth(layout.path(), 0.004);
    let work = tempfile::tempdir().unwrap();

    // The first response for the largest layer stalls for 30 s after 100 bytes:
    // with a 1 s read timeout the body is cut there and resumed with Range, and
    // the pull succeeds.
    let big = image
        .layers
        .iter()
        .max_by_key(|l| l.compressed_bytes)
        .unwrap();
    let server = stalling_server(
        layout.path(),
        &format!(
            "[[rule]]\nkind = \"blob\"\npath_contains = \"{}\"\nfault = \"stall\"\nseconds = 30.0\nafter_bytes = 100\nfirst = 1\n",
            big.digest
        ),
    );
    let json = work.path().join("stalled-once.json");
    let started = Instant::now();
    pulltime(work.path())
        .args([
            "pull",
            &server.reference("app:v1"),
            "--quiet",
            "--timeout",
            "1",
        ])
        .arg("--json")
        .arg(&json)
        .assert()
        .success();
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "waited out the stall"
    );
    let record = pulltime::report::json::read_record(&json).unwrap();
    let layer = record.runs[0]
        .layers
        .iter()
        .find(|l| l.digest == big.digest)
        .unwrap();
    assert_eq!(layer.resumes, 1, "{layer:?}");
    assert!(layer.resumed_bytes >= 100, "{layer:?}");
    assert!(
        layer.fault_s >= 0.9,
        "the 1 s timeout is time lost: {layer:?}"
    );

    // Every blob response stalls before its headers: 2 attempts of 1 s each per
    // blob, then a clear error, in bounded time.
    let dead = stalling_server(
        layout.path(),
        "[[rule]]\nkind = \"blob\"\nfault = \"stall\"\nseconds = 30.0\nprobability = 1.0\n",
    );
    let started = Instant::now();
    let out = pulltime(work.path())
        .args(["pull", &dead.reference("app:v1"), "--quiet"])
        .args(["--timeout", "1", "--retries", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("gave up after 2 attempts"), "{stderr}");
    assert!(
        stderr.contains("timed out") || stderr.contains("timeout"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "not bounded by --timeout"
    );
}
