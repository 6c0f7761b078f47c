//! dockerd and containerd started for one test, with all their state in a
//! temporary directory, stopped (SIGTERM, then SIGKILL) when dropped.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::which;

/// A daemon child process and its directory.
pub struct Daemon {
    child: Child,
    /// Its API socket.
    pub socket: PathBuf,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
    /// Everything it keeps.
    pub dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Waits up to 30 s for `ready`, failing early if the daemon exits.
fn wait_ready(
    mut d: Daemon,
    what: &str,
    ready: impl Fn(&Daemon) -> bool,
) -> Result<Daemon, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ready(&d) {
            return Ok(d);
        }
        if let Ok(Some(status)) = d.child.try_wait() {
            return Err(format!("{what} exited ({status}): {}", log_tail(&d.log)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "{what} did not answer within 30 s: {}",
        log_tail(&d.log)
    ))
}

fn spawn(
    program: &str,
    args: &[String],
    dir: tempfile::TempDir,
    socket: PathBuf,
) -> Result<Daemon, String> {
    let bin = which(program).ok_or_else(|| format!("{program} is not installed"))?;
    let log = dir.path().join("log");
    let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(out)
        .spawn()
        .map_err(|e| format!("starting {program}: {e}"))?;
    Ok(Daemon {
        child,
        socket,
        log,
        dir,
    })
}

/// One HTTP/1.0 request over a unix socket; the body of the answer.
pub fn unix_http(socket: &Path, method: &str, path: &str) -> Option<String> {
    let mut s = UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: docker\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// dockerd 20.10 with the flags docs/peers.md gives, debug log on (for the
/// test's own clock), state under a temporary directory.
pub fn dockerd() -> Result<Daemon, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    let socket = d.join("d.sock");
    let args: Vec<String> = vec![
        "-D".into(),
        "--iptables=false".into(),
        "--ip6tables=false".into(),
        "--bridge=none".into(),
        format!("--data-root={}", d.join("root").display()),
        format!("--exec-root={}", d.join("exec").display()),
        format!("--pidfile={}", d.join("pid").display()),
        format!("--host=unix://{}", socket.display()),
    ];
    let daemon = spawn("dockerd", &args, dir, socket)?;
    wait_ready(daemon, "dockerd", |d| {
        unix_http(&d.socket, "GET", "/_ping").is_some_and(|b| b.trim() == "OK")
    })
}

/// containerd 1.6 with root, state and sockets under a temporary directory.
pub fn containerd() -> Result<Daemon, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    let socket = d.join("c.sock");
    let config = d.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}\"\n",
            d.join("root").display(),
            d.join("state").display(),
            socket.display(),
            d.join("t.sock").display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let daemon = spawn(
        "containerd",
        &[format!("--config={}", config.display())],
        dir,
        socket,
    )?;
    wait_ready(daemon, "containerd", |d| {
        Command::new("ctr")
            .arg("--address")
            .arg(&d.socket)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// podman's store under a temporary directory, if podman works here.
pub fn podman_store() -> Result<tempfile::TempDir, String> {
    which("podman").ok_or("podman is not installed")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = Command::new("podman")
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--runroot")
        .arg(dir.path().join("run"))
        .args(["--events-backend", "none", "info"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "podman info failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(dir)
}
