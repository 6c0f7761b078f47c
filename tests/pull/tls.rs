//! TLS against the real CNCF registry serving a certificate from a CA made for
//! this run: the CA from `--ca-cert` or docker's `certs.d`, mutual TLS,
//! `--insecure-registry` (and its fallback to plain HTTP), the errors without a
//! CA, and the record's connection timing (DNS, TCP, TLS, protocol, peer); then
//! a CONNECT proxy from `HTTPS_PROXY`, and `NO_PROXY` going around it.

use std::path::Path;
use std::time::Duration;

use crate::common;
use common::connect_proxy::ConnectProxy;
use common::pki::Pki;
use common::{E, Registry, Setup, layer, pulltime};
use predicates::prelude::*;
use pulltime::oci::media_type::Compression;
use pulltime::registry::tls::TlsOptions;
use pulltime::registry::{ClientOptions, Scheme};

fn tls_registry(pki: &Pki, mutual: bool) -> Registry {
    Registry::start_setup(Setup {
        http_extra: pki.registry_tls_yaml(mutual),
        ..Setup::default()
    })
}

/// Pushes a two-layer image over TLS with pulltime's own client, trusting the
/// test CA (and presenting the client certificate through `certs_dir`).
fn push_over_tls(reference: &str, tls: TlsOptions) {
    let image = pulltime::oci::image::build_image(
        &[
            layer(&[E::File("etc/hello", 0o644, b"over tls".to_vec())]),
            layer(&[E::File("bin/tool", 0o755, common::content(7, 300_000))]),
        ],
        Compression::Gzip,
        &pulltime::oci::platform::Platform::host(),
    )
    .unwrap();
    common::push_with(
        reference,
        &image,
        ClientOptions {
            scheme: Scheme::Https,
            tls,
            ..ClientOptions::default()
        },
    );
}

fn ca_only(pki: &Pki) -> TlsOptions {
    TlsOptions {
        ca_certs: vec![pki.ca.clone()],
        ..TlsOptions::default()
    }
}

fn record(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn pull(home: &Path, reference: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    pulltime(home)
        .args(["pull", "-q", reference])
        .args(extra)
        .env("PULLTIME_CERTS_DIR", home.join("no-certs.d"))
        .timeout(Duration::from_secs(120))
        .assert()
}

#[test]
fn a_private_ca_is_trusted_from_ca_cert_or_certs_d_and_connections_are_split() {
    let pki = Pki::new();
    let reg = tls_registry(&pki, false);
    let reference = reg.reference("tls/app:v1");
    push_over_tls(&reference, ca_only(&pki));
    let home = tempfile::tempdir().unwrap();
    let ca = pki.ca.to_str().unwrap();

    // Without the CA: a clear error that says what to do, naming the registry.
    pull(home.path(), &reference, &["--scheme", "https"])
        .failure()
        .stderr(
            predicate::str::contains("certificate signed by unknown authority")
                .and(predicate::str::contains("--ca-cert"))
                .and(predicate::str::contains(format!(
                    "/etc/docker/certs.d/{}/",
                    reg.addr
                )))
                .and(predicate::str::contains("--plain-http").not())
                .and(predicate::str::contains("panicked").not()),
        );

    // --ca-cert: the pull works, and every connection is TLS with its parts.
    let json = home.path().join("ca-cert.json");
    pull(
        home.path(),
        &reference,
        &[
            "--scheme",
            "https",
            "--ca-cert",
            ca,
            "--json",
            json.to_str().unwrap(),
        ],
    )
    .success();
    let rec = record(&json);
    assert_eq!(rec["settings"]["scheme"], "https");
    let run = &rec["runs"][0];
    let conns = run["connections"].as_array().unwrap();
    assert!(!conns.is_empty());
    for c in conns {
        assert_eq!(c["host"], reg.addr.as_str(), "{c}");
        assert_eq!(c["peer"], reg.addr.as_str(), "{c}");
        assert!(c["dns_s"].is_null(), "an IP address needs no lookup: {c}");
        assert_eq!(c["protocol"], "h2", "the registry offers h2 over TLS: {c}");
        assert!(c["proxy"].is_null(), "{c}");
        let (tcp, tls, total) = (
            c["tcp_s"].as_f64().unwrap(),
            c["tls_s"].as_f64().unwrap(),
            c["connect_s"].as_f64().unwrap(),
        );
        // Both parts were seen (a missing ClientHello mark would leave TLS at 0);
        // which is longer depends on the machine's load, so it is not asserted.
        assert!(tcp > 0.0 && tls > 0.0, "{c}");
        assert!(
            (tcp + tls - total).abs() < 1e-3,
            "parts add up to the whole: {c}"
        );
    }
    // The first request opened the first connection; h2 carries the rest on it.
    let requests = run["requests"].as_array().unwrap();
    assert_eq!(requests[0]["connection"], conns[0]["id"], "{}", requests[0]);
    // A request is credited with a connection only if it went over it (hyper
    // may open one and then send on another it pooled meanwhile), and each
    // connection with at most one request.
    let mut opened: Vec<u64> = requests
        .iter()
        .filter_map(|r| r["connection"].as_u64())
        .collect();
    let n = opened.len();
    opened.sort();
    opened.dedup();
    assert_eq!(opened.len(), n, "a connection credited twice");
    assert!(n >= 1 && n <= conns.len());

    // `localhost` is looked up, and the lookup is timed.
    let by_name = reference.replace("127.0.0.1", "localhost");
    let json = home.path().join("localhost.json");
    pull(
        home.path(),
        &by_name,
        &[
            "--scheme",
            "https",
            "--ca-cert",
            ca,
            "--json",
            json.to_str().unwrap(),
        ],
    )
    .success();
    let rec = record(&json);
    let c = &rec["runs"][0]["connections"][0];
    assert!(c["dns_s"].as_f64().is_some(), "{c}");

    // docker's certs.d convention, the directory named for the tests.
    let certs_d = pki.certs_d(&reg.addr, false);
    pulltime(home.path())
        .args(["pull", "-q", &reference, "--scheme", "https"])
        .env("PULLTIME_CERTS_DIR", &certs_d)
        .assert()
        .success();
    // A certificate for another registry does not help this one.
    let other = pki.certs_d("127.0.0.1:1", false);
    pulltime(home.path())
        .args(["pull", "-q", &reference, "--scheme", "https"])
        .args(["--certs-dir", other.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown authority"));
}

#[test]
fn insecure_registries_skip_verification_or_fall_back_to_http() {
    let pki = Pki::new();
    let reg = tls_registry(&pki, false);
    let reference = reg.reference("tls/app:v1");
    push_over_tls(&reference, ca_only(&pki));
    let home = tempfile::tempdir().unwrap();
    let json = home.path().join("insecure.json");
    // No CA at all: the certificate is not checked, with a warning.
    pull(
        home.path(),
        &reference,
        &[
            "--insecure-registry",
            &reg.addr,
            "--json",
            json.to_str().unwrap(),
        ],
    )
    .success()
    .stderr(predicate::str::contains("insecure registry").and(predicate::str::contains(&reg.addr)));
    assert_eq!(record(&json)["settings"]["scheme"], "https");
    // Only the host named is insecure.
    pull(
        home.path(),
        &reference,
        &["--scheme", "https", "--insecure-registry", "127.0.0.1:1"],
    )
    .failure()
    .stderr(predicate::str::contains("unknown authority"));

    // A plain-HTTP registry named insecure: HTTPS first, then HTTP, as docker.
    let plain = Registry::start();
    let plain_ref = plain.reference("plain/app:v1");
    common::build_and_push(
        &plain_ref,
        &[layer(&[E::File("a", 0o644, b"a".to_vec())])],
        Compression::Gzip,
    );
    let json = home.path().join("fallback.json");
    pull(
        home.path(),
        &plain_ref,
        &[
            "--insecure-registry",
            &plain.addr,
            "--runs",
            "2",
            "--json",
            json.to_str().unwrap(),
        ],
    )
    .success()
    .stderr(predicate::str::contains("using plain HTTP"));
    let rec = record(&json);
    assert_eq!(rec["settings"]["scheme"], "http");
    for run in rec["runs"].as_array().unwrap() {
        // The fallback was found once, before the runs: no run pays for it.
        for r in run["requests"].as_array().unwrap() {
            assert_ne!(r["status"], 0, "a failed attempt in a counted run: {r}");
        }
        for c in run["connections"].as_array().unwrap() {
            assert!(c["tls_s"].is_null() && c["protocol"] == "http/1.1", "{c}");
        }
    }
    // Asking for HTTPS from a plain registry says it has no TLS.
    pull(home.path(), &plain_ref, &["--scheme", "https"])
        .failure()
        .stderr(
            predicate::str::contains("does not speak TLS")
                .and(predicate::str::contains("--scheme http")),
        );
}

#[test]
fn mutual_tls_takes_the_client_certificate_from_certs_d() {
    let pki = Pki::new();
    let reg = tls_registry(&pki, true);
    let reference = reg.reference("mtls/app:v1");
    let with_client = pki.certs_d(&reg.addr, true);
    push_over_tls(
        &reference,
        TlsOptions {
            certs_dir: with_client.clone(),
            ..TlsOptions::default()
        },
    );
    let home = tempfile::tempdir().unwrap();
    let ca_only_dir = pki.certs_d(&reg.addr, false);
    pulltime(home.path())
        .args(["pull", "-q", &reference, "--scheme", "https"])
        .args([
            "--certs-dir",
            ca_only_dir.to_str().unwrap(),
            "--retries",
            "1",
        ])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("client certificate")
                .and(predicate::str::contains("client.cert")),
        );
    let dest = home.path().join("rootfs");
    pulltime(home.path())
        .args(["pull", "-q", &reference, "--scheme", "https"])
        .args(["--certs-dir", with_client.to_str().unwrap()])
        .args(["--dest", dest.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(std::fs::read(dest.join("etc/hello")).unwrap(), b"over tls");
}

#[test]
fn https_proxy_carries_the_pull_and_no_proxy_goes_around_it() {
    let pki = Pki::new();
    let reg = tls_registry(&pki, false);
    let port = reg.addr.rsplit(':').next().unwrap().to_string();
    push_over_tls(&reg.reference("proxied/app:v1"), ca_only(&pki));
    // A name only the proxy can reach (it sends every tunnel to 127.0.0.1).
    let reference = format!("registry.pttest:{port}/proxied/app:v1");
    let proxy = ConnectProxy::start();
    let home = tempfile::tempdir().unwrap();
    let ca = pki.ca.to_str().unwrap();
    let json = home.path().join("proxied.json");
    pulltime(home.path())
        .args(["pull", "-q", &reference, "--ca-cert", ca])
        .args(["--json", json.to_str().unwrap()])
        .env(
            "HTTPS_PROXY",
            format!("http://user:proxy-pw@{}", proxy.addr),
        )
        .assert()
        .success();
    assert!(
        proxy
            .seen()
            .iter()
            .all(|t| *t == format!("registry.pttest:{port}"))
            && !proxy.seen().is_empty(),
        "{:?}",
        proxy.seen()
    );
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(
        !text.contains("proxy-pw"),
        "the proxy's password is in the record"
    );
    let rec: serde_json::Value = serde_json::from_str(&text).unwrap();
    for c in rec["runs"][0]["connections"].as_array().unwrap() {
        assert_eq!(c["proxy"], format!("http://{}", proxy.addr), "{c}");
        assert_eq!(c["peer"], proxy.addr.as_str(), "{c}");
        assert_eq!(c["host"], format!("registry.pttest:{port}"), "{c}");
        assert!(c["tls_s"].as_f64().unwrap() > 0.0, "{c}");
    }
    let tunnels = proxy.seen().len();

    // NO_PROXY: the name is looked up here, where it does not exist.
    pulltime(home.path())
        .args(["pull", "-q", &reference, "--ca-cert", ca, "--retries", "1"])
        .env("HTTPS_PROXY", format!("http://{}", proxy.addr))
        .env("NO_PROXY", "example.org,.pttest")
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("cannot resolve registry.pttest")
                .and(predicate::str::contains("--plain-http").not()),
        );
    assert_eq!(proxy.seen().len(), tunnels, "NO_PROXY was not honoured");

    // A proxy that is not there is named in the error, without its password.
    let dead = format!("127.0.0.1:{}", common::free_port());
    pulltime(home.path())
        .args(["pull", "-q", &reference, "--ca-cert", ca, "--retries", "1"])
        .env("HTTPS_PROXY", format!("http://user:proxy-pw@{dead}"))
        .assert()
        .failure()
        .stderr(
            predicate::str::contains(format!("through proxy http://{dead}"))
                .and(predicate::str::contains("HTTPS_PROXY"))
                .and(predicate::str::contains("proxy-pw").not()),
        );
}
