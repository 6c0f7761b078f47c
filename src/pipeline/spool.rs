//! A spool file per layer: the download writes compressed bytes into it while the
//! extraction thread tails it. Downloads never wait for extraction (layers must be
//! applied in order, so later layers arrive before their turn), and extraction of
//! the current layer consumes bytes as soon as they land, without the whole blob.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::readers::Busy;

#[derive(Debug, Default)]
struct State {
    written: u64,
    done: bool,
    failed: bool,
}

/// One layer's spool.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    state: Mutex<State>,
    cond: Condvar,
    stop: CancellationToken,
}

impl Spool {
    /// A spool backed by `path` (created by [`Spool::create`]). Once `stop` is
    /// cancelled (the user asked the pull to stop), reads fail as interrupted.
    pub fn new(path: PathBuf, stop: CancellationToken) -> Self {
        Spool {
            path,
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
            stop,
        }
    }

    /// The backing file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Deletes the backing file once its bytes are consumed (readers that have it
    /// open keep reading; errors are ignored: the scratch dir goes at the end anyway).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Creates the backing file for writing.
    pub fn create(&self) -> io::Result<File> {
        File::create(&self.path)
    }

    /// Publishes that the first `written` bytes are in the file.
    pub fn advance(&self, written: u64) {
        self.state.lock().expect("spool lock").written = written;
        self.cond.notify_all();
    }

    /// The download ended: `ok` false means readers get an error.
    pub fn finish(&self, ok: bool) {
        let mut s = self.state.lock().expect("spool lock");
        s.done = true;
        s.failed = !ok;
        drop(s);
        self.cond.notify_all();
    }

    /// A guard that finishes the spool as failed if it is dropped before
    /// [`FinishGuard::finish`] (a writer that panics must not leave readers waiting).
    pub fn guard(&self) -> FinishGuard<'_> {
        FinishGuard {
            spool: self,
            armed: true,
        }
    }

    /// Blocks until the download has ended (successfully or not).
    pub fn wait_done(&self) {
        let mut s = self.state.lock().expect("spool lock");
        while !s.done {
            s = self.cond.wait(s).expect("spool lock");
        }
    }

    /// A reader that returns bytes as they arrive and EOF once the download
    /// succeeded; time spent waiting for bytes goes to `stall`.
    pub fn reader(&self, stall: Busy) -> SpoolReader<'_> {
        SpoolReader {
            spool: self,
            file: None,
            pos: 0,
            stall,
        }
    }
}

/// See [`Spool::guard`].
pub struct FinishGuard<'a> {
    spool: &'a Spool,
    armed: bool,
}

impl FinishGuard<'_> {
    /// Finishes the spool (`ok` false: readers get an error).
    pub fn finish(mut self, ok: bool) {
        self.armed = false;
        self.spool.finish(ok);
    }
}

impl Drop for FinishGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.spool.finish(false);
        }
    }
}

/// Tails a [`Spool`].
pub struct SpoolReader<'a> {
    spool: &'a Spool,
    file: Option<File>,
    pos: u64,
    stall: Busy,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let available = {
            let mut s = self.spool.state.lock().expect("spool lock");
            loop {
                if s.failed {
                    return Err(io::Error::other("the layer's download failed"));
                }
                if self.spool.stop.is_cancelled() {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
                }
                if s.written > self.pos {
                    break s.written - self.pos;
                }
                if s.done {
                    return Ok(0);
                }
                let t = Instant::now();
                s = self
                    .spool
                    .cond
                    .wait_timeout(s, Duration::from_millis(200))
                    .expect("spool lock")
                    .0;
                self.stall.add(t.elapsed());
            }
        };
        if self.file.is_none() {
            let mut f = File::open(&self.spool.path)?;
            f.seek(SeekFrom::Start(self.pos))?;
            self.file = Some(f);
        }
        let want = buf
            .len()
            .min(usize::try_from(available).unwrap_or(usize::MAX));
        let n = self
            .file
            .as_mut()
            .expect("opened above")
            .read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

    #[test]
    fn reader_tails_the_writer_and_sees_failure() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(Spool::new(
            dir.path().join("blob"),
            CancellationToken::new(),
        ));
        let writer = {
            let spool = spool.clone();
            std::thread::spawn(move || {
                let mut f = spool.create().unwrap();
                for i in 0..50u64 {
                    f.write_all(&[i as u8; 1000]).unwrap();
                    spool.advance((i + 1) * 1000);
                    std::thread::sleep(Duration::from_millis(1));
                }
                spool.finish(true);
            })
        };
        let mut out = Vec::new();
        spool.reader(Busy::default()).read_to_end(&mut out).unwrap();
        writer.join().unwrap();
        assert_eq!(out.len(), 50_000);
        assert!(
            out.chunks(1000)
                .enumerate()
                .all(|(i, c)| c.iter().all(|b| *b == i as u8))
        );

        // A writer that panics with its guard armed fails the spool for its readers
        // instead of leaving them waiting.
        let orphan = Arc::new(Spool::new(dir.path().join("b3"), CancellationToken::new()));
        let w = {
            let orphan = orphan.clone();
            std::thread::spawn(move || {
                let _guard = orphan.guard();
                panic!("writer died");
            })
        };
        assert!(w.join().is_err());
        assert!(orphan.reader(Busy::default()).read(&mut [0; 10]).is_err());

        let failed = Spool::new(dir.path().join("b2"), CancellationToken::new());
        failed.finish(false);
        assert!(failed.reader(Busy::default()).read(&mut [0; 10]).is_err());
    }
}
