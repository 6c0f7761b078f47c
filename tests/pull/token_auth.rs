//! Bearer token auth against the real registry (`auth: token:`) with a token
//! service written in the tests (`common::token_server`): scoped tokens, tokens
//! that expire mid-pull, a denied repository, and identity tokens (OAuth2 refresh
//! tokens) from the docker config or a credential helper, never printed.

use crate::common;
use crate::pull::cred_sources::{Helper, path_with, write_helper};

use common::{E, Policy, Registry, Setup, TokenRequest, TokenServer, layer, pulltime};
use predicates::prelude::*;
use pulltime::oci::media_type::Compression;
use pulltime::registry::auth::Credentials;

const ALICE: &str = "alice";
const ALICE_PW: &str = "alice-Pa55-do-not-print";
const ADMIN: &str = "admin";
const ADMIN_PW: &str = "admin-Pa55-do-not-print";
const REFRESH: &str = "rt-alice-refresh-token-do-not-print";

/// alice may pull and push `app`, nothing on `secret`; admin may push `secret`.
fn policy(lifetime_s: i64) -> Policy {
    Policy {
        users: vec![(ALICE, ALICE_PW), (ADMIN, ADMIN_PW)],
        refresh_tokens: vec![(REFRESH, ALICE)],
        grants: vec![
            (ALICE, "app", &["pull", "push"]),
            (ADMIN, "secret", &["pull", "push"]),
        ],
        lifetime_s,
    }
}

fn start(lifetime_s: i64) -> (TokenServer, Registry) {
    let tokens = TokenServer::start(policy(lifetime_s));
    let reg = Registry::start_setup(Setup {
        top_extra: tokens.registry_yaml(),
        ..Setup::default()
    });
    (tokens, reg)
}

/// `n` layers of `size` bytes that do not compress.
fn image(n: usize, size: usize) -> pulltime::oci::image::BuiltImage {
    let layers: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (i as u64 + 1);
            let data: Vec<u8> = (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            layer(&[E::File(
                ["a", "b", "c", "d", "e", "f", "g", "h"][i % 8],
                0o644,
                data,
            )])
        })
        .collect();
    pulltime::oci::image::build_image(
        &layers,
        Compression::Gzip,
        &pulltime::oci::platform::Platform::host(),
    )
    .unwrap()
}

fn pull_requests(log: &[TokenRequest], repo: &str) -> Vec<TokenRequest> {
    let scope = format!("repository:{repo}:pull");
    log.iter()
        .filter(|r| r.scopes == [scope.clone()])
        .cloned()
        .collect()
}

fn assert_no_secret(output: &std::process::Output, extra: &[u8]) {
    for stream in [&output.stdout, &output.stderr, &extra.to_vec()] {
        let text = String::from_utf8_lossy(stream);
        for secret in [REFRESH, ALICE_PW, ADMIN_PW] {
            assert!(!text.contains(secret), "secret leaked:\n{text}");
        }
    }
}

#[test]
fn pull_with_a_scoped_token() {
    let (tokens, reg) = start(300);
    let reference = reg.reference("app:v1");
    common::push(
        &reference,
        &image(1, 1000),
        Some(Credentials::basic(ALICE, ALICE_PW)),
    );
    let pushed = tokens.requests();
    assert!(
        pushed
            .iter()
            .any(|r| r.scopes == ["repository:app:pull,push"] && r.user.as_deref() == Some(ALICE)),
        "the push asked for push scope as alice: {pushed:?}"
    );
    let home = tempfile::tempdir().unwrap();
    // Anonymous: the token service grants nothing, the registry denies.
    pulltime(home.path())
        .args(["pull", &reference, "--quiet"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("access to repository app"));
    let out = pulltime(home.path())
        .args([
            "pull",
            &reference,
            "-vv",
            "--user",
            &format!("{ALICE}:{ALICE_PW}"),
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_no_secret(&out, b"");
    let pulls = pull_requests(&tokens.requests(), "app");
    assert!(
        pulls
            .iter()
            .any(|r| r.method == "GET" && r.user.as_deref() == Some(ALICE) && r.status == 200),
        "{pulls:?}"
    );
}

#[test]
fn a_token_that_expires_mid_pull_is_renewed() {
    // Tokens work for 2 s; 6 layers of 256 KiB through a 256 KiB/s link, one at a
    // time, take about 6 s: later blob GETs meet a 401 and must fetch a new token.
    let (tokens, reg) = start(2);
    let direct = reg.reference("app:v1");
    common::push(
        &direct,
        &image(6, 256 << 10),
        Some(Credentials::basic(ALICE, ALICE_PW)),
    );
    let slow = common::Throttle::start(&reg.addr, 256 << 10);
    let reference = format!("{}/app:v1", slow.addr);
    let before = tokens.requests().len();
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("r.json");
    pulltime(home.path())
        .args([
            "pull",
            &reference,
            "--quiet",
            "--max-concurrent-downloads",
            "1",
        ])
        .args(["--user", &format!("{ALICE}:{ALICE_PW}"), "--json"])
        .arg(&json)
        .assert()
        .success();
    let log = tokens.requests()[before..].to_vec();
    let pulls = pull_requests(&log, "app");
    assert!(
        pulls.len() >= 2 && pulls.iter().all(|r| r.status == 200),
        "one run needed more than one token: {log:?}"
    );
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let requests = record["runs"][0]["requests"].as_array().unwrap();
    let refused_blobs = requests
        .iter()
        .filter(|r| r["kind"] == "blob" && r["status"] == 401)
        .count();
    assert!(
        refused_blobs >= 1,
        "a blob GET met the expired token and was retried: {requests:#?}"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r["kind"] == "blob" && r["status"] == 200)
            .count(),
        6
    );
}

#[test]
fn a_denied_repository_fails_clearly() {
    let (tokens, reg) = start(300);
    let reference = reg.reference("secret:v1");
    common::push(
        &reference,
        &image(1, 1000),
        Some(Credentials::basic(ADMIN, ADMIN_PW)),
    );
    let home = tempfile::tempdir().unwrap();
    let out = pulltime(home.path())
        .args([
            "pull",
            &reference,
            "--quiet",
            "--user",
            &format!("{ALICE}:{ALICE_PW}"),
        ])
        .assert()
        .failure()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "access to repository secret on {} denied",
            reg.addr
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_no_secret(&out, b"");
    // alice's credentials were good: the token service was asked and said yes,
    // with no access to `secret` in the token.
    let asked = pull_requests(&tokens.requests(), "secret");
    assert!(
        !asked.is_empty()
            && asked
                .iter()
                .all(|r| r.status == 200 && r.user.as_deref() == Some(ALICE)),
        "{asked:?}"
    );
}

fn docker_config(home: &std::path::Path, json: &str) {
    let dir = home.join(".docker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), json).unwrap();
}

#[test]
fn identity_token_in_docker_config_is_a_refresh_token() {
    let (tokens, reg) = start(300);
    let reference = reg.reference("app:v1");
    common::push(
        &reference,
        &image(1, 1000),
        Some(Credentials::basic(ALICE, ALICE_PW)),
    );
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("r.json");
    docker_config(
        home.path(),
        &format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"{REFRESH}"}}}}}}"#,
            reg.addr
        ),
    );
    let before = tokens.requests().len();
    let out = pulltime(home.path())
        .args(["pull", &reference, "-vv", "--json"])
        .arg(&json)
        .assert()
        .success()
        .stderr(predicate::str::contains(format!("auths[{}]", reg.addr)))
        .get_output()
        .clone();
    assert_no_secret(&out, &std::fs::read(&json).unwrap());
    let log = tokens.requests()[before..].to_vec();
    assert!(!log.is_empty());
    for r in &log {
        assert_eq!(r.method, "POST", "{r:?}");
        assert_eq!(r.grant_type.as_deref(), Some("refresh_token"));
        assert_eq!(r.client_id.as_deref(), Some("pulltime"));
        assert_eq!(r.user.as_deref(), Some(ALICE));
        assert_eq!(r.scopes, ["repository:app:pull"]);
    }

    // A wrong refresh token is refused by the token service, and said so.
    let wrong = format!("{REFRESH}-wrong");
    docker_config(
        home.path(),
        &format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"{wrong}"}}}}}}"#,
            reg.addr
        ),
    );
    let out = pulltime(home.path())
        .args(["pull", &reference, "-vv"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(format!(
            "authentication refused by {}",
            tokens.addr
        )))
        .get_output()
        .clone();
    assert_no_secret(&out, b"");
    assert_eq!(tokens.requests().last().unwrap().status, 401);
}

#[test]
fn credential_helper_token_answer_is_an_identity_token() {
    let (tokens, reg) = start(300);
    let reference = reg.reference("app:v1");
    common::push(
        &reference,
        &image(1, 1000),
        Some(Credentials::basic(ALICE, ALICE_PW)),
    );
    let home = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("helper.log");
    write_helper(
        bin.path(),
        "pttest",
        &log,
        &Helper::Answer {
            host: &reg.addr,
            username: "<token>",
            secret: REFRESH,
        },
    );
    docker_config(
        home.path(),
        &format!(r#"{{"credHelpers":{{"{}":"pttest"}}}}"#, reg.addr),
    );
    let before = tokens.requests().len();
    let out = pulltime(home.path())
        .env("PATH", path_with(bin.path()))
        .args(["pull", &reference, "-vv"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_no_secret(&out, b"");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("pttest get")
    );
    let log = tokens.requests()[before..].to_vec();
    assert!(
        !log.is_empty()
            && log
                .iter()
                .all(|r| r.grant_type.as_deref() == Some("refresh_token")),
        "{log:?}"
    );
}
