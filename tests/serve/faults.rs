//! `pulltime serve --faults`: every fault kind observed on the wire with a raw TCP
//! client (status and Retry-After, RST versus clean FIN after fewer bytes than
//! Content-Length, a flipped byte, stalls), rules that hit only their kind,
//! seeded determinism, the counters, and bad profiles.

use crate::common;

use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use super::raw::{KillOnDrop, Lab, content, error_code, lab, lab_with, profile, raw_get};
use pulltime::oci::digest::sha256_digest;
use pulltime::profiles::faults::FaultProfile;

#[test]
fn status_faults_send_the_status_retry_after_and_an_error_body() {
    let lab = lab(r#"
name = "t"
[[rule]]
kind = "manifest"
fault = "status"
status = 429
retry_after = 7
nth = [1]
[[rule]]
kind = "blob"
fault = "status"
status = 503
nth = [2]
"#);
    let addr = lab.server.addr;
    let m1 = raw_get(addr, "/v2/app/manifests/v1", &[]);
    assert_eq!(m1.status, 429);
    assert_eq!(m1.header("retry-after"), Some("7"));
    assert_eq!(error_code(&m1.body), "TOOMANYREQUESTS");
    let m2 = raw_get(addr, "/v2/app/manifests/v1", &[]);
    assert_eq!((m2.status, m2.header("retry-after")), (200, None));

    let b1 = lab.blob(&lab.layer_digest, &[]);
    assert_eq!(b1.status, 200);
    assert_eq!(sha256_digest(&b1.body), lab.layer_digest);
    let b2 = lab.blob(&lab.layer_digest, &[]);
    assert_eq!((b2.status, b2.header("retry-after")), (503, None));
    assert_eq!(error_code(&b2.body), "UNAVAILABLE");
    assert_eq!(lab.blob(&lab.layer_digest, &[]).status, 200);
    // Uploads, HEADs and the base endpoint are never faulted nor counted.
    assert_eq!(raw_get(addr, "/v2/", &[]).status, 200);

    let summary = lab.server.faults_injected().unwrap();
    assert_eq!(summary.requests["manifest"], 2);
    assert_eq!(summary.requests["blob"], 3);
    assert_eq!(summary.requests["token"], 0);
    assert_eq!(
        lab.injected(),
        vec![("status-429".into(), 1), ("status-503".into(), 1)]
    );
    assert_eq!(summary.total_injected, 2);
    assert_eq!(
        summary
            .events
            .iter()
            .map(|e| (e.kind.name(), e.request))
            .collect::<Vec<_>>(),
        vec![("manifest", 1), ("blob", 2)]
    );
    // The same summary over HTTP.
    let over_http = raw_get(addr, "/pulltime/faults", &[]);
    let parsed: pulltime::profiles::faults::FaultSummary =
        serde_json::from_slice(&over_http.body).unwrap();
    assert_eq!(parsed, lab.server.faults_injected().unwrap());
}

#[test]
fn reset_is_an_rst_and_truncation_a_clean_close_both_short_of_content_length() {
    let lab = lab(r#"
name = "t"
[[rule]]
kind = "blob"
fault = "reset"
after_bytes = 1000
nth = [1]
[[rule]]
kind = "blob"
fault = "truncate"
after_bytes = 2000
nth = [2, 4]
"#);
    let full = lab.layer.len();
    let reset = lab.blob(&lab.layer_digest, &[]);
    assert_eq!((reset.status, reset.content_length()), (200, full));
    assert!(
        reset.reset,
        "expected ECONNRESET, got a clean EOF after {} bytes",
        reset.body.len()
    );
    assert_eq!(reset.body, lab.layer[..1000]);

    let cut = lab.blob(&lab.layer_digest, &[]);
    assert_eq!((cut.status, cut.content_length()), (200, full));
    assert!(!cut.reset, "expected a clean close");
    assert_eq!(cut.body, lab.layer[..2000]);

    let whole = lab.blob(&lab.layer_digest, &[]);
    assert_eq!(
        (whole.status, whole.body.len(), whole.reset),
        (200, full, false)
    );
    assert_eq!(sha256_digest(&whole.body), lab.layer_digest);

    // A Range request is faulted the same way, counting from the range's start.
    let ranged = lab.blob(&lab.layer_digest, &[("Range", "bytes=5000-")]);
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.content_length(), full - 5000);
    assert_eq!(
        ranged.header("content-range"),
        Some(format!("bytes 5000-{}/{full}", full - 1).as_str())
    );
    assert!(!ranged.reset);
    assert_eq!(ranged.body, lab.layer[5000..7000]);
    assert_eq!(
        lab.injected(),
        vec![("reset".into(), 1), ("truncate".into(), 2)]
    );
}

#[test]
fn corrupt_bodies_have_the_right_length_and_the_wrong_digest_and_hit_only_their_target() {
    let lab = lab(&format!(
        r#"
name = "t"
[[rule]]
kind = "blob"
path_contains = "{}"
fault = "corrupt"
every = 1
"#,
        // The layer's digest, known before the lab exists: its content is seeded.
        sha256_digest(&content(7, 200_000))
    ));
    let full = lab.layer.len();
    let bad = lab.blob(&lab.layer_digest, &[]);
    assert_eq!(
        (bad.status, bad.body.len(), bad.content_length()),
        (200, full, full)
    );
    assert_eq!(
        bad.header("docker-content-digest"),
        Some(lab.layer_digest.as_str())
    );
    assert_ne!(sha256_digest(&bad.body), lab.layer_digest);
    let differing: Vec<usize> = (0..full).filter(|&i| bad.body[i] != lab.layer[i]).collect();
    assert_eq!(differing, vec![full / 2]);
    // A range of it: the middle byte of the range is flipped.
    let ranged = lab.blob(&lab.layer_digest, &[("Range", "bytes=1000-1999")]);
    assert_eq!((ranged.status, ranged.body.len()), (206, 1000));
    let differing: Vec<usize> = (0..1000)
        .filter(|&i| ranged.body[i] != lab.layer[1000 + i])
        .collect();
    assert_eq!(differing, vec![500]);
    // Other blobs and the manifest are untouched.
    let config = lab.blob(&lab.config_digest, &[]);
    assert_eq!(sha256_digest(&config.body), lab.config_digest);
    let manifest = raw_get(lab.server.addr, "/v2/app/manifests/v1", &[]);
    assert_eq!(manifest.status, 200);
    assert_eq!(
        Some(sha256_digest(&manifest.body).as_str()),
        manifest.header("docker-content-digest")
    );
    assert_eq!(lab.injected(), vec![("corrupt".into(), 2)]);
}

#[test]
fn stalls_hold_headers_or_the_body_longer_than_a_client_timeout() {
    let lab = lab(r#"
name = "t"
[[rule]]
kind = "manifest"
fault = "stall"
seconds = 3.0
nth = [1]
[[rule]]
kind = "blob"
fault = "stall"
seconds = 3.0
after_bytes = 1000
nth = [1]
"#);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(1000))
        .build()
        .unwrap();
    let base = format!("http://{}", lab.server.addr);
    rt.block_on(async {
        let e = http
            .get(format!("{base}/v2/app/manifests/v1"))
            .send()
            .await
            .unwrap_err();
        assert!(e.is_timeout(), "{e}");
        let ok = http
            .get(format!("{base}/v2/app/manifests/v1"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        // Headers come at once; the body stops after 1000 bytes.
        let r = http
            .get(format!("{base}/v2/app/blobs/{}", lab.layer_digest))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let e = r.bytes().await.unwrap_err();
        assert!(e.is_timeout(), "{e}");
        let r = http
            .get(format!("{base}/v2/app/blobs/{}", lab.layer_digest))
            .send()
            .await
            .unwrap();
        assert_eq!(sha256_digest(&r.bytes().await.unwrap()), lab.layer_digest);
    });
    // A patient client gets the whole stalled body.
    let lab2 = lab_with(
        profile(
            r#"
name = "t"
[[rule]]
kind = "blob"
fault = "stall"
seconds = 0.3
after_bytes = 1000
every = 1
"#,
        ),
        None,
        false,
        50_000,
    );
    let slow = lab2.blob(&lab2.layer_digest, &[]);
    assert_eq!(sha256_digest(&slow.body), lab2.layer_digest);
    assert_eq!(lab.injected(), vec![("stall".into(), 2)]);
    assert_eq!(lab2.injected(), vec![("stall".into(), 1)]);
}

#[test]
fn dockerhub_emulation_slow_token_and_cdn_faults_and_no_body_faults_on_redirects() {
    let lab = lab_with(
        profile(
            r#"
name = "t"
[[rule]]
kind = "token"
fault = "slow-token"
seconds = 3.0
nth = [1]
[[rule]]
kind = "blob"
fault = "corrupt"
every = 1
[[rule]]
kind = "cdn-blob"
fault = "truncate"
fraction = 0.25
nth = [1]
"#,
        ),
        None,
        true,
        100_000,
    );
    let base = format!("http://{}", lab.server.addr);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(1000))
        .build()
        .unwrap();
    let token_url =
        format!("{base}/token?service=registry.pulltime.test&scope=repository:app:pull");
    let location = rt.block_on(async {
        let e = http.get(&token_url).send().await.unwrap_err();
        assert!(e.is_timeout(), "the first token request must be slow: {e}");
        let t: serde_json::Value = http
            .get(&token_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = t["token"].as_str().unwrap().to_string();
        let r = http
            .get(format!("{base}/v2/app/blobs/{}", lab.layer_digest))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 307);
        r.headers()["location"].to_str().unwrap().to_string()
    });
    let cdn = lab.server.cdn_addr.unwrap();
    let path = location.split_once(&cdn.to_string()).unwrap().1.to_string();
    let cut = raw_get(cdn, &path, &[]);
    assert_eq!(
        (cut.status, cut.content_length(), cut.body.len(), cut.reset),
        (200, 100_000, 25_000, false)
    );
    let whole = raw_get(cdn, &path, &[]);
    assert_eq!(sha256_digest(&whole.body), lab.layer_digest);
    let s = lab.server.faults_injected().unwrap();
    assert_eq!(
        (
            s.requests["token"],
            s.requests["blob"],
            s.requests["cdn-blob"]
        ),
        (2, 1, 2)
    );
    // The blob GET was a 307 without a body: the corrupt rule fired but had
    // nothing to flip, so it is not counted.
    assert_eq!(
        lab.injected(),
        vec![("slow-token".into(), 1), ("truncate".into(), 1)]
    );
}

/// A blob GET's status, bytes received and whether it was reset.
type Outcome = (u16, usize, bool);

/// The outcome of `n` blob GETs.
fn outcomes(lab: &Lab, n: usize) -> Vec<Outcome> {
    (0..n)
        .map(|_| {
            let r = lab.blob(&lab.layer_digest, &[]);
            (r.status, r.body.len(), r.reset)
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_faults_and_another_seed_others() {
    let mixed = FaultProfile::load("mixed").unwrap();
    let text = r#"
name = "t"
seed = 5
[[rule]]
kind = "blob"
fault = "status"
status = 500
probability = 0.25
[[rule]]
kind = "blob"
fault = "truncate"
fraction = 0.5
probability = 0.25
"#;
    let runs: Vec<(Vec<Outcome>, Vec<String>)> = [None, None, Some(6)]
        .into_iter()
        .map(|seed| {
            let lab = lab_with(profile(text), seed, false, 20_000);
            let o = outcomes(&lab, 30);
            let events = lab.server.faults_injected().unwrap().events;
            assert_eq!(
                o.iter().filter(|x| x.0 == 500).count() as u64,
                events.iter().filter(|e| e.fault == "status-500").count() as u64
            );
            assert_eq!(
                o.iter().filter(|x| x.1 == 10_000).count() as u64,
                events.iter().filter(|e| e.fault == "truncate").count() as u64
            );
            (
                o,
                events
                    .iter()
                    .map(|e| format!("{}#{}:{}", e.kind.name(), e.request, e.fault))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    assert_ne!(runs[0].0, runs[2].0);
    let faulted = runs[0]
        .0
        .iter()
        .filter(|o| o.0 != 200 || o.1 != 20_000)
        .count();
    assert!(
        (3..=27).contains(&faulted),
        "{faulted} of 30 faulted at p = 0.44"
    );
    // The built-in profile keeps its own seed unless overridden.
    assert_eq!(mixed.seed, 1);
}

#[test]
fn cli_rejects_bad_fault_profiles_with_clear_errors() {
    let home = tempfile::tempdir().unwrap();
    let out = common::pulltime(home.path())
        .args(["serve", "--faults", "meltdown"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("meltdown") && err.contains("mixed") && err.contains("hopeless"),
        "{err}"
    );
    for (body, expect) in [
        ("kind = \"blob\"\nfault = \"explode\"\nevery = 1", "explode"),
        (
            "kind = \"blob\"\nfault = \"corrupt\"\nprobability = 1.5",
            "probability 1.5",
        ),
        (
            "kind = \"teapot\"\nfault = \"corrupt\"\nevery = 1",
            "teapot",
        ),
    ] {
        let file = home.path().join("bad.toml");
        std::fs::write(&file, format!("name = \"bad\"\n[[rule]]\n{body}\n")).unwrap();
        let out = common::pulltime(home.path())
            .args(["serve", "--faults"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{body}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(expect) && err.contains("bad.toml"),
            "{body}: {err}"
        );
    }
}

#[test]
fn cli_serves_faults_counts_them_and_prints_the_summary_on_ctrl_c() {
    use std::io::BufRead;
    let home = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("pulltime");
    let mut child = KillOnDrop(
        std::process::Command::new(bin)
            .env("HOME", home.path())
            .args(["serve", "--faults", "hopeless", "--seed", "9"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut addr = None;
    let mut banner = String::new();
    for _ in 0..10 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        banner.push_str(&line);
        if let Some(a) = line
            .trim()
            .strip_prefix("pulltime registry listening on http://")
        {
            addr = Some(a.parse::<SocketAddr>().unwrap());
        }
        if line.starts_with("fault profile:") {
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no address in {banner}"));
    assert!(
        banner.contains("fault profile: hopeless (seed 9, 2 rules)"),
        "{banner}"
    );
    let digest = sha256_digest(b"anything");
    for _ in 0..3 {
        let r = raw_get(addr, &format!("/v2/app/blobs/{digest}"), &[]);
        assert_eq!(r.status, 503);
    }
    // SIGINT is what Ctrl-C sends.
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.0.wait().unwrap().success());
    let last = rest
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no summary line"));
    let s: pulltime::profiles::faults::FaultSummary = serde_json::from_str(last).unwrap();
    assert_eq!((s.profile.as_str(), s.seed), ("hopeless", 9));
    assert_eq!(
        (
            s.requests["blob"],
            s.injected["status-503"],
            s.total_injected
        ),
        (3, 3, 3)
    );
}
