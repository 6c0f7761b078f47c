//! Running other pullers' commands: every output line stamped with the run clock
//! as it arrives, and the command's own CPU (children included) from `wait4`.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::oci::record::CpuUsage;
use crate::registry::transport::RunClock;

use super::PeerError;
use super::cpu::from_rusage;

/// One line of output, when it arrived (seconds since the run started).
#[derive(Debug, Clone)]
pub struct Line {
    /// Arrival.
    pub at: Instant,
    /// Arrival, offset from the start of the clock it was stamped with.
    pub at_s: f64,
    /// `true` for stderr.
    pub stderr: bool,
    /// The text, without its newline.
    pub text: String,
}

/// A command that ran to its end.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its output lines, stdout and stderr interleaved by arrival.
    pub lines: Vec<Line>,
    /// When it was started and when it ended (offsets from the run start).
    pub window: (f64, f64),
    /// User and system CPU of the command and the children it waited for.
    pub cpu: CpuUsage,
}

impl Finished {
    /// The command's last lines, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let skip = self.lines.len().saturating_sub(n);
        self.lines[skip..]
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Fails with the command's own words unless it exited 0.
    pub fn check(self, what: &str) -> Result<Finished, PeerError> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(PeerError::Command {
                what: what.into(),
                status: self.status.to_string(),
                output: self.tail(12),
            })
        }
    }
}

fn collect(
    stream: impl Read + Send + 'static,
    stderr: bool,
    clock: RunClock,
    into: Arc<Mutex<Vec<Line>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for text in BufReader::new(stream).lines().map_while(Result::ok) {
            let at = Instant::now();
            let line = Line {
                at,
                at_s: clock.offset(at),
                stderr,
                text,
            };
            into.lock().expect("line log lock").push(line);
        }
    })
}

/// Runs `cmd` to its end (blocking: call from `spawn_blocking`).
pub fn run(cmd: &mut Command, clock: &RunClock) -> Result<Finished, PeerError> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let started = clock.offset(Instant::now());
    let mut running = Background::start(cmd, clock)?;
    let (status, usage) = wait4(&running.child)?;
    let ended = clock.offset(Instant::now());
    for r in running.readers.drain(..) {
        let _ = r.join();
    }
    let mut lines = running.lines();
    lines.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    // Reaped by wait4: nothing for Drop to kill or wait for.
    running.reaped = true;
    Ok(Finished {
        status,
        lines,
        window: (started, ended),
        cpu: from_rusage(&usage, short_name(&name)),
    })
}

/// Runs `cmd` and returns its stdout when it succeeds (for quick queries:
/// versions, listings).
pub fn output(cmd: &mut Command, what: &str) -> Result<String, PeerError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PeerError::Spawn { program, source })?;
    if !out.status.success() {
        return Err(PeerError::Command {
            what: what.into(),
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn short_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// Waits for `child` with `wait4`, which also gives its resource usage (std's
/// `wait` does not). The child is reaped here; `Child` is not waited again.
fn wait4(child: &Child) -> Result<(ExitStatus, libc::rusage), PeerError> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own unreaped child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((ExitStatus::from_raw(status), usage));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(PeerError::Spawn {
                program: format!("waiting for process {pid}"),
                source: e,
            });
        }
    }
}

/// A command that runs in the background (an event stream) until stopped.
pub struct Background {
    child: Child,
    readers: Vec<JoinHandle<()>>,
    lines: Arc<Mutex<Vec<Line>>>,
    /// Already waited for (with `wait4`).
    reaped: bool,
}

impl Background {
    /// Starts `cmd`, stamping its lines with `clock`.
    pub fn start(cmd: &mut Command, clock: &RunClock) -> Result<Background, PeerError> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| PeerError::Spawn { program, source })?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(collect(out, false, clock.clone(), lines.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(collect(err, true, clock.clone(), lines.clone()));
        }
        Ok(Background {
            child,
            readers,
            lines,
            reaped: false,
        })
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<Line> {
        self.lines.lock().expect("line log lock").clone()
    }

    /// Takes the lines that arrived since `clock` started, stamped with it, and
    /// forgets every line so far (a long session keeps no history).
    pub fn take_since(&self, clock: &RunClock) -> Vec<Line> {
        std::mem::take(&mut *self.lines.lock().expect("line log lock"))
            .into_iter()
            .filter(|l| l.at >= clock.started())
            .map(|l| Line {
                at_s: clock.offset(l.at),
                ..l
            })
            .collect()
    }

    /// The lines so far that satisfy `done`, waiting for them up to `limit`.
    pub fn wait_for(&self, limit: std::time::Duration, done: impl Fn(&[Line]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.lines.lock().expect("line log lock")) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Its exit status if it has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops it and returns every line it printed.
    pub fn stop(mut self) -> Vec<Line> {
        self.end();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        self.lines()
    }

    fn end(&mut self) {
        if !self.reaped {
            self.reaped = true;
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.end();
    }
}

/// The path of `program` on `PATH`, if it is there.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
