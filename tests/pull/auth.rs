//! Credentials against the real registry with htpasswd (Basic) auth: refused without
//! or with wrong credentials, accepted from `--user` and from the docker config
//! file, and never printed, logged or recorded.

use crate::common;

use base64::Engine as _;
use common::{E, Htpasswd, Registry, layer, pulltime};
use predicates::prelude::*;
use pulltime::oci::media_type::Compression;
use pulltime::registry::auth::Credentials;

const USER: &str = "alice";
const PASSWORD: &str = "s3cr3t-Pa55word-do-not-print";

fn registry_with_image() -> (Registry, String) {
    let reg = Registry::start_with(Some(Htpasswd {
        user: USER,
        password: PASSWORD,
    }));
    let reference = reg.reference("private/app:v1");
    let img = pulltime::oci::image::build_image(
        &[layer(&[E::File("hello", 0o644, b"hi".to_vec())])],
        Compression::Gzip,
        &pulltime::oci::platform::Platform::host(),
    )
    .unwrap();
    let creds = Credentials::basic(USER, PASSWORD);
    common::push(&reference, &img, Some(creds));
    (reg, reference)
}

fn assert_no_secret(output: &std::process::Output, extra: &[u8]) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for stream in [&output.stdout, &output.stderr, &extra.to_vec()] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains(PASSWORD), "password leaked:\n{text}");
        assert!(
            !text.contains(&encoded),
            "basic credentials leaked:\n{text}"
        );
    }
}

#[test]
fn anonymous_and_wrong_credentials_are_refused_clearly() {
    let (_reg, reference) = registry_with_image();
    let home = tempfile::tempdir().unwrap();
    pulltime(home.path())
        .args(["pull", &reference])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("authentication refused")
                .and(predicate::str::contains("--user")),
        );
    let out = pulltime(home.path())
        .args([
            "pull",
            &reference,
            "-vv",
            "--user",
            &format!("{USER}:wrong-{PASSWORD}"),
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("authentication refused"))
        .get_output()
        .clone();
    assert_no_secret(&out, b"");
}

#[test]
fn user_flag_and_docker_config_credentials_work_and_never_leak() {
    let (_reg, reference) = registry_with_image();
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("r.json");
    let out = pulltime(home.path())
        .args(["pull", &reference, "-vv", "--json"])
        .arg(&json)
        .args(["--user", &format!("{USER}:{PASSWORD}")])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_no_secret(&out, &std::fs::read(&json).unwrap());

    // ~/.docker/config.json with a base64 `auth` entry for this registry.
    let docker_dir = home.path().join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let addr = reference.split('/').next().unwrap();
    std::fs::write(
        docker_dir.join("config.json"),
        format!(r#"{{"auths":{{"{addr}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let json2 = work.path().join("r2.json");
    let out = pulltime(home.path())
        .args(["pull", &reference, "-vv", "--json"])
        .arg(&json2)
        .assert()
        .success()
        .get_output()
        .clone();
    assert_no_secret(&out, &std::fs::read(&json2).unwrap());

    // PULLTIME_USER in the environment is the same as --user.
    pulltime(home.path())
        .env("DOCKER_CONFIG", work.path())
        .env("PULLTIME_USER", format!("{USER}:{PASSWORD}"))
        .args(["pull", &reference, "--quiet"])
        .assert()
        .success();
}

#[test]
fn password_from_stdin_and_an_authfile_never_show_on_the_command_line() {
    let (_reg, reference) = registry_with_image();
    let home = tempfile::tempdir().unwrap();
    let out = pulltime(home.path())
        .args(["pull", "-q", &reference, "--user", USER, "--password-stdin"])
        .write_stdin(format!("{PASSWORD}\n"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&out, b"");
    // USER:PASSWORD with --password-stdin is a mistake, said as one.
    pulltime(home.path())
        .args([
            "pull",
            "-q",
            &reference,
            "--user",
            "a:b",
            "--password-stdin",
        ])
        .write_stdin("x\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("user name only"));
    // skopeo's and podman's --authfile: that file only.
    let authfile = home.path().join("auth.json");
    let registry = reference.split('/').next().unwrap();
    std::fs::write(
        &authfile,
        format!(
            r#"{{"auths":{{"{registry}":{{"auth":"{}"}}}}}}"#,
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
        ),
    )
    .unwrap();
    let out = pulltime(home.path())
        .args(["pull", "-q", &reference, "--authfile"])
        .arg(&authfile)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&out, b"");
    pulltime(home.path())
        .args(["pull", "-q", &reference, "--authfile"])
        .arg(home.path().join("missing.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.json"));
}
