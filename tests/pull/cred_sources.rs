//! Where credentials come from, in docker's order, against the real registry with
//! htpasswd auth: credential helpers (real executables on PATH, written by the
//! tests) from `credHelpers` and `credsStore`, `auths`, `--user` over all, and
//! podman's auth file when docker's config has nothing. Each source is given the
//! right or a wrong password so that only the one that should win can pass.

use std::path::{Path, PathBuf};

use crate::common;

use base64::Engine as _;
use common::{E, Htpasswd, Registry, layer, pulltime};
use predicates::prelude::*;
use pulltime::oci::media_type::Compression;
use pulltime::registry::auth::Credentials;

const USER: &str = "alice";
const PASSWORD: &str = "helper-Pa55word-do-not-print";
const WRONG: &str = "wrong-Pa55word-do-not-print";

/// How a test credential helper answers.
pub enum Helper<'a> {
    /// These credentials for `host`, "not found" for any other server.
    Answer {
        host: &'a str,
        username: &'a str,
        secret: &'a str,
    },
    /// Fails, printing something secret-looking on stdout.
    Fail,
}

/// Writes `docker-credential-NAME` into `dir`: it logs `NAME get SERVER` to `log`
/// and answers as `helper` says.
pub fn write_helper(dir: &Path, name: &str, log: &Path, helper: &Helper<'_>) {
    let answer = match helper {
        Helper::Answer {
            host,
            username,
            secret,
        } => format!(
            r#"if [ "$server" = "{host}" ]; then
  printf '{{"ServerURL":"%s","Username":"{username}","Secret":"{secret}"}}' "$server"
else
  echo "credentials not found in native keychain"; exit 1
fi"#
        ),
        Helper::Fail => format!("echo 'oops {PASSWORD}'; exit 3"),
    };
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nserver=$(cat)\necho \"{name} $1 $server\" >> '{}'\n{answer}\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// PATH with `dir` first.
pub fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

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
    common::push(&reference, &img, Some(Credentials::basic(USER, PASSWORD)));
    (reg, reference)
}

fn auth_entry(password: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    format!(r#"{{"auth":"{b}"}}"#)
}

struct Env {
    home: tempfile::TempDir,
    bin: tempfile::TempDir,
    log: PathBuf,
    addr: String,
}

impl Env {
    fn new(addr: &str) -> Env {
        let bin = tempfile::tempdir().unwrap();
        let log = bin.path().join("helpers.log");
        std::fs::write(&log, "").unwrap();
        Env {
            home: tempfile::tempdir().unwrap(),
            bin,
            log,
            addr: addr.into(),
        }
    }

    fn helper(&self, name: &str, password: &str) {
        write_helper(
            self.bin.path(),
            name,
            &self.log,
            &Helper::Answer {
                host: &self.addr,
                username: USER,
                secret: password,
            },
        );
    }

    fn config(&self, json: &str) {
        let dir = self.home.path().join(".docker");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), json).unwrap();
    }

    /// The helper runs logged since the last call.
    fn runs(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap();
        std::fs::write(&self.log, "").unwrap();
        text
    }

    fn pull(&self, reference: &str) -> assert_cmd::Command {
        let mut c = pulltime(self.home.path());
        c.env("PATH", path_with(self.bin.path()))
            .env("XDG_RUNTIME_DIR", self.home.path().join("run"))
            .args(["pull", reference, "-v"]);
        c
    }
}

fn assert_no_secret(output: &std::process::Output) {
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains(PASSWORD) && !text.contains(WRONG),
            "secret leaked:\n{text}"
        );
    }
}

#[test]
fn cred_helpers_then_creds_store_then_auths_and_user_over_all() {
    let (reg, reference) = registry_with_image();
    let env = Env::new(&reg.addr);
    let a = &reg.addr;
    // credHelpers has the right password; credsStore and auths have wrong ones.
    env.helper("pttest", PASSWORD);
    env.helper("ptstore", WRONG);
    env.config(&format!(
        r#"{{"credHelpers":{{"{a}":"pttest"}},"credsStore":"ptstore","auths":{{"{a}":{}}}}}"#,
        auth_entry(WRONG)
    ));
    let out = env
        .pull(&reference)
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "credHelpers[{a}] via docker-credential-pttest"
        )))
        .get_output()
        .clone();
    assert_no_secret(&out);
    assert_eq!(
        env.runs(),
        format!("pttest get {a}\n"),
        "only credHelpers ran"
    );

    // Without credHelpers, credsStore (now right) wins over auths (wrong).
    env.helper("ptstore", PASSWORD);
    env.config(&format!(
        r#"{{"credsStore":"ptstore","auths":{{"{a}":{}}}}}"#,
        auth_entry(WRONG)
    ));
    env.pull(&reference)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "credsStore via docker-credential-ptstore",
        ));
    assert_eq!(env.runs(), format!("ptstore get {a}\n"));

    // A helper with nothing for this host falls through to auths.
    write_helper(
        env.bin.path(),
        "ptother",
        &env.log,
        &Helper::Answer {
            host: "elsewhere.example",
            username: USER,
            secret: WRONG,
        },
    );
    env.config(&format!(
        r#"{{"credHelpers":{{"{a}":"ptother"}},"auths":{{"{a}":{}}}}}"#,
        auth_entry(PASSWORD)
    ));
    env.pull(&reference)
        .assert()
        .success()
        .stderr(predicate::str::contains(format!("auths[{a}] in ")));
    assert_eq!(env.runs(), format!("ptother get {a}\n"));

    // --user wins over everything, and no helper runs.
    env.helper("pttest", WRONG);
    env.config(&format!(
        r#"{{"credHelpers":{{"{a}":"pttest"}},"credsStore":"ptstore","auths":{{"{a}":{}}}}}"#,
        auth_entry(WRONG)
    ));
    env.pull(&reference)
        .args(["--user", &format!("{USER}:{PASSWORD}")])
        .assert()
        .success();
    assert_eq!(env.runs(), "");
    // ... and without it, the wrong helper answer is used and refused.
    env.pull(&reference)
        .assert()
        .failure()
        .stderr(predicate::str::contains("authentication refused"));
}

#[test]
fn a_failing_helper_is_named_and_its_output_never_shown() {
    let (reg, reference) = registry_with_image();
    let env = Env::new(&reg.addr);
    write_helper(env.bin.path(), "ptfail", &env.log, &Helper::Fail);
    env.config(&format!(r#"{{"credHelpers":{{"{}":"ptfail"}}}}"#, reg.addr));
    let out = env
        .pull(&reference)
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("docker-credential-ptfail")
                .and(predicate::str::contains(reg.addr.as_str())),
        )
        .get_output()
        .clone();
    assert_no_secret(&out);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("oops"));
    assert_eq!(env.runs(), format!("ptfail get {}\n", reg.addr));
}

#[test]
fn podman_auth_file_when_docker_has_nothing() {
    let (reg, reference) = registry_with_image();
    let env = Env::new(&reg.addr);
    let a = &reg.addr;
    let podman = env.home.path().join("auth.json");
    let podman_auths = |password: &str| {
        std::fs::write(
            &podman,
            format!(r#"{{"auths":{{"{a}":{}}}}}"#, auth_entry(password)),
        )
        .unwrap();
    };
    podman_auths(PASSWORD);
    env.pull(&reference)
        .env("REGISTRY_AUTH_FILE", &podman)
        .assert()
        .success()
        .stderr(predicate::str::contains("podman's"));
    // A wrong podman file is really read: refused.
    podman_auths(WRONG);
    let out = env
        .pull(&reference)
        .env("REGISTRY_AUTH_FILE", &podman)
        .assert()
        .failure()
        .get_output()
        .clone();
    assert_no_secret(&out);
    // docker's config, when it has credentials, comes first.
    env.config(&format!(
        r#"{{"auths":{{"{a}":{}}}}}"#,
        auth_entry(PASSWORD)
    ));
    env.pull(&reference)
        .env("REGISTRY_AUTH_FILE", &podman)
        .assert()
        .success();
    // Without REGISTRY_AUTH_FILE: $XDG_RUNTIME_DIR/containers/auth.json.
    env.config("{}");
    let run = env.home.path().join("run").join("containers");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("auth.json"),
        format!(r#"{{"auths":{{"{a}":{}}}}}"#, auth_entry(PASSWORD)),
    )
    .unwrap();
    env.pull(&reference).assert().success();
    std::fs::remove_file(run.join("auth.json")).unwrap();
    env.pull(&reference).assert().failure();
}

#[test]
fn an_identity_token_cannot_answer_basic_auth() {
    let (reg, reference) = registry_with_image();
    let env = Env::new(&reg.addr);
    env.config(&format!(
        r#"{{"auths":{{"{}":{{"identitytoken":"{PASSWORD}"}}}}}}"#,
        reg.addr
    ));
    let out = env
        .pull(&reference)
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("asks for Basic auth")
                .and(predicate::str::contains("identity token")),
        )
        .get_output()
        .clone();
    assert_no_secret(&out);
}
