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
        helper_timeout: Duration::from_secs(5),
    }
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
