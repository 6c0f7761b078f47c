//! Standard output for results, ended as `cat` is when its reader goes away.
//!
//! SIGPIPE stays ignored, as Rust sets it, because the process also writes to
//! sockets: rustls hands TLS records to `writev(2)`, which has no `MSG_NOSIGNAL`,
//! so a registry that closes a connection (a refused client certificate, a reset)
//! would otherwise kill a pull with no message. Only stdout wants the default
//! action: when its reader is gone (`pulltime simulate ... | head -1`) a write
//! here restores SIGPIPE's default action and raises it, so the shell sees the
//! same status as for `cat`, and nothing is printed.

use std::io::{self, Write};

/// Writes to the process's stdout; a closed reader ends the process by SIGPIPE.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        ended_if_reader_gone(io::stdout().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        ended_if_reader_gone(io::stdout().flush())
    }
}

fn ended_if_reader_gone<T>(result: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &result
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        // SAFETY: signal(2) and raise(3) are async-signal-safe and may be called
        // from any thread; SIGPIPE is not blocked, so its default action ends the
        // whole process here. Were it blocked, SIGPIPE goes back to ignored and
        // the error is returned as it came.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::raise(libc::SIGPIPE);
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_errors_are_returned() {
        let e = ended_if_reader_gone::<()>(Err(io::Error::other("disk full")));
        assert_eq!(e.unwrap_err().to_string(), "disk full");
        assert_eq!(ended_if_reader_gone(Ok(3)).unwrap(), 3);
    }
}
