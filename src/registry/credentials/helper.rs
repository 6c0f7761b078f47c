//! docker credential helpers: `docker-credential-NAME get` found on PATH, the
//! server name on stdin, `{"ServerURL","Username","Secret"}` on stdout. What a
//! helper prints is never shown (it may be a secret), and a helper that does not
//! answer in time is killed.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::registry::auth::{AuthError, Credentials, Secret};

/// What a helper prints when it has nothing for the server (docker's
/// `credentials.ErrCredentialsNotFound`).
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The most of a helper's output read.
const MAX_OUTPUT: u64 = 1 << 20;

/// A helper's answer. No `Debug`: it holds the secret as a plain string.
#[derive(serde::Deserialize)]
struct Answer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Asks `docker-credential-{helper}`, found in `search_path` (a `PATH` value),
/// for `server`'s credentials; `None` when it has none. A user name of `<token>`
/// makes the secret an identity token.
pub fn helper_get(
    helper: &str,
    server: &str,
    search_path: Option<&OsStr>,
    timeout: Duration,
) -> Result<Option<Credentials>, AuthError> {
    let program = format!("docker-credential-{helper}");
    let fail = |reason: String| AuthError::Helper {
        helper: helper.into(),
        server: server.into(),
        reason,
    };
    let found = search_path
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&program))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            fail(format!(
                "{program} not found on PATH (the docker config names helper {helper:?})"
            ))
        })?;
    let mut child = Command::new(&found)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot run {}: {e}", found.display())))?;
    // The name is far smaller than a pipe's buffer: this write does not block. A
    // helper that exits without reading it is answered by its exit, below.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(MAX_OUTPUT).read_to_end(&mut out);
        let _ = tx.send(out);
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "no answer within {} s; it was stopped",
                    timeout.as_secs_f64()
                )));
            }
            Err(e) => return Err(fail(format!("waiting for it: {e}"))),
        }
    };
    // A helper may leave a child holding its stdout open: wait a little, not forever.
    let out = rx
        .recv_timeout(Duration::from_secs(2))
        .map_err(|_| fail("its output did not end when it exited".into()))?;
    if !status.success() {
        if String::from_utf8_lossy(&out).trim() == NOT_FOUND {
            return Ok(None);
        }
        return Err(fail(format!(
            "{program} get exited with {status} (its output is not shown: it may hold secrets)"
        )));
    }
    let answer: Answer = serde_json::from_slice(&out).map_err(|_| {
        fail(format!(
            "{program} get did not answer with credential JSON (not shown: it may hold secrets)"
        ))
    })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if answer.username == "<token>" {
        Credentials::IdentityToken(Secret::new(answer.secret))
    } else {
        Credentials::Basic {
            username: answer.username,
            password: Secret::new(answer.secret),
        }
    }))
}
