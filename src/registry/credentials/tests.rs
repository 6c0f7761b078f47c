//! The order of sources, without credential helpers (the integration tests run
//! real helper executables on PATH).

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::registry::auth::Secret;

fn sources(dir: &Path) -> Sources {
    Sources {
        docker_config: Some(dir.join("docker.json")),
        podman_auth: Some(dir.join("podman.json")),
        helper_path: Some(dir.as_os_str().to_owned()),
        helper_timeout: Duration::from_secs(5),
    }
}

/// `docker-credential-NAME` in `dir`, running `body` after reading the server
/// name into `$server`.
fn helper(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, format!("#!/bin/sh\nserver=$(cat)\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn helpers_answer_fall_through_fail_and_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = Some(d.as_os_str());
    let t = Duration::from_secs(5);
    let reg = "127.0.0.1:5000";
    helper(
        d,
        "basic",
        r#"printf '{"ServerURL":"%s","Username":"u","Secret":"s-%s"}' "$server" "$server""#,
    );
    assert_eq!(
        helper_get("basic", reg, path, t).unwrap(),
        Some(Credentials::basic("u", format!("s-{reg}"))),
        "the server name arrives on stdin"
    );
    helper(d, "tok", r#"echo '{"Username":"<token>","Secret":"rt-1"}'"#);
    assert_eq!(
        helper_get("tok", reg, path, t).unwrap(),
        Some(Credentials::IdentityToken(Secret::new("rt-1")))
    );
    helper(
        d,
        "none",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    assert_eq!(helper_get("none", reg, path, t).unwrap(), None);
    helper(d, "leaky", "echo 'hunter2'; exit 2");
    let err = helper_get("leaky", reg, path, t).unwrap_err().to_string();
    assert!(
        err.contains("docker-credential-leaky") && err.contains(reg) && !err.contains("hunter2"),
        "{err}"
    );
    helper(d, "garbage", "echo '{\"Secret\": 7, \"x\": \"hunter2\"}'");
    let err = helper_get("garbage", reg, path, t).unwrap_err().to_string();
    assert!(!err.contains("hunter2"), "{err}");
    helper(d, "hang", "exec sleep 20");
    let started = std::time::Instant::now();
    let err = helper_get("hang", reg, path, Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    assert!(err.contains("no answer within 0.3 s"), "{err}");

    // In the lookup: credHelpers before credsStore before auths.
    let s = sources(d);
    std::fs::write(
        d.join("docker.json"),
        format!(
            r#"{{"credHelpers":{{"{reg}":"none"}},"credsStore":"tok",
                "auths":{{"{reg}":{{"username":"a","password":"b"}}}}}}"#
        ),
    )
    .unwrap();
    let f = lookup_in(&s, None, reg).unwrap().unwrap();
    assert_eq!(f.source, "credsStore via docker-credential-tok");
    std::fs::write(
        d.join("docker.json"),
        format!(r#"{{"credHelpers":{{"{reg}":"basic"}},"credsStore":"tok"}}"#),
    )
    .unwrap();
    let f = lookup_in(&s, None, reg).unwrap().unwrap();
    assert_eq!(
        f.source,
        format!("credHelpers[{reg}] via docker-credential-basic")
    );
}

fn auths(host: &str, entry: &str) -> String {
    format!(r#"{{"auths":{{"{host}":{entry}}}}}"#)
}

#[test]
fn user_then_docker_auths_then_podman() {
    let dir = tempfile::tempdir().unwrap();
    let s = sources(dir.path());
    let reg = "127.0.0.1:5000";
    assert_eq!(
        lookup_in(&s, None, reg).unwrap(),
        None,
        "no files: anonymous"
    );

    std::fs::write(
        dir.path().join("podman.json"),
        auths(reg, r#"{"username":"pod","password":"p"}"#),
    )
    .unwrap();
    let f = lookup_in(&s, None, reg).unwrap().unwrap();
    assert_eq!(f.credentials, Credentials::basic("pod", "p"));
    assert!(
        f.source.contains("podman") && f.source.contains(reg),
        "{}",
        f.source
    );

    // docker's entry without credentials (a helper's placeholder) is nothing.
    std::fs::write(dir.path().join("docker.json"), auths(reg, "{}")).unwrap();
    let f = lookup_in(&s, None, reg).unwrap().unwrap();
    assert_eq!(f.credentials, Credentials::basic("pod", "p"));

    std::fs::write(
        dir.path().join("docker.json"),
        auths(reg, r#"{"identitytoken":"rt-secret"}"#),
    )
    .unwrap();
    let f = lookup_in(&s, None, reg).unwrap().unwrap();
    assert_eq!(
        f.credentials,
        Credentials::IdentityToken(Secret::new("rt-secret"))
    );
    assert!(
        f.source.starts_with("auths[127.0.0.1:5000] in "),
        "{}",
        f.source
    );
    assert!(!format!("{f:?}").contains("rt-secret"));

    let f = lookup_in(&s, Some("me:pw"), reg).unwrap().unwrap();
    assert_eq!(f.credentials, Credentials::basic("me", "pw"));
    assert_eq!(f.source, "--user");
    assert!(lookup_in(&s, None, "other.example").unwrap().is_none());
}

#[test]
fn a_missing_helper_is_an_error_naming_it_and_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let s = sources(dir.path());
    std::fs::write(
        dir.path().join("docker.json"),
        r#"{"credHelpers":{"127.0.0.1:5000":"pulltime-test-no-such-helper"}}"#,
    )
    .unwrap();
    let err = lookup_in(&s, None, "127.0.0.1:5000")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("docker-credential-pulltime-test-no-such-helper")
            && err.contains("127.0.0.1:5000")
            && err.contains("PATH"),
        "{err}"
    );
    assert_eq!(
        helper_server_name("docker.io"),
        "https://index.docker.io/v1/"
    );
}
