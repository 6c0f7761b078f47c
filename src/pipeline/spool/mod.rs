//! A spool per layer stream: one writer (a download, or a decoder) appends bytes
//! while one reader (a decoder, or the applier) tails them. Downloads never wait
//! for decoding, and layers decode ahead of their turn (they must be applied in
//! manifest order), so a spool may hold a whole layer before its reader starts.
//!
//! Where the bytes go depends on the reader:
//! - Bytes its reader is already tailing stay in memory, at most [`WINDOW`]
//!   unread, and pass to the reader without touching a file.
//! - Bytes nobody reads yet, and bytes past the window, go to a file in the
//!   scratch directory and are read back from it.
//!
//! Past the window a spool either spills to its file ([`WhenFull::Spill`]: the
//! network never waits for the CPU) or makes its writer wait ([`WhenFull::Wait`]:
//! a decoder whose layer is being applied goes no faster than the applier and
//! leaves the core to the others), except while its reader catches up with
//! bytes that were in the file when it came (a layer decoded ahead whose turn
//! comes): waiting for it to come through them would idle the writer's core, so
//! the writer spills instead, at most as much as there was to catch up with, and
//! again in smaller rounds while it spills less and never comes to that bound.
//! Before, every byte went through a file: on tmpfs the 450 MB of tar stream
//! written, read back and deleted cost a quarter of a pull's CPU
//! (docs/performance.md, "Spools").

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use tokio_util::sync::CancellationToken;

use super::readers::Busy;

/// Unread bytes a spool keeps in memory for a reader that is tailing it.
pub const WINDOW: usize = 1 << 20;

/// Size of the reads from a spool's file.
const FILE_READ: usize = 256 << 10;

/// How often a waiting reader or writer looks at the user's stop.
const POLL: Duration = Duration::from_millis(200);

/// What a writer does when its reader is tailing and the window is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Write past the window to the file.
    Spill,
    /// Wait until the reader has taken half the window (but spill while the
    /// reader catches up with the file; see the module's documentation).
    Wait,
}

#[derive(Debug)]
enum Chunk {
    Memory(Bytes),
    File { offset: u64, len: u64 },
}

#[derive(Debug, Default)]
struct State {
    chunks: VecDeque<Chunk>,
    /// Bytes in `chunks` held in memory.
    in_memory: usize,
    /// Bytes written to the file.
    spilled: u64,
    /// Bytes in the file the reader has not read yet.
    file_backlog: u64,
    /// Catching up: file bytes the reader has yet to read in this round.
    catch_up: u64,
    /// The round's size: the file bytes unread when the reader came (or came
    /// back), then the writer's spills of the round before.
    round: u64,
    /// What the writer spilled in this round instead of waiting.
    round_spilled: u64,
    /// The writer would have spilled more than the round in this round.
    round_capped: bool,
    reading: bool,
    reader_gone: bool,
    reader_waiting: bool,
    writer_waiting: bool,
    done: bool,
    failed: bool,
    removed: bool,
}

impl State {
    /// The reader starts, or goes on after a pause: it has the file's unread
    /// bytes to catch up with first.
    fn start_reading(&mut self) {
        if !self.reading {
            self.reading = true;
            self.begin_round(self.file_backlog);
        }
    }

    /// The writer put `len` more bytes in the file.
    fn spilled_to_file(&mut self, len: u64) {
        self.spilled += len;
        self.file_backlog += len;
        if self.reading && self.catch_up > 0 {
            self.round_spilled += len;
        }
    }

    fn begin_round(&mut self, bytes: u64) {
        self.catch_up = bytes;
        self.round = bytes;
        self.round_spilled = 0;
        self.round_capped = false;
    }

    /// Whether a writer whose window is full may spill `len` bytes rather than
    /// wait: while its reader catches up with the file, as much as the round's
    /// size. The reader has bytes to go on with, and waiting for it to come
    /// through them would leave the writer's core idle.
    fn may_spill_for_catch_up(&mut self, len: u64) -> bool {
        if self.catch_up == 0 {
            return false;
        }
        let may = self.round_spilled + len <= self.round;
        self.round_capped |= !may;
        may
    }

    /// The reader read `n` bytes from the file. At the end of a round, a writer
    /// that spilled less than the round and never came to its bound is the
    /// slower of the two: the reader goes on through what it spilled (the next
    /// bytes in the file) in a new, smaller round. Otherwise the writer waits
    /// for the reader from now on.
    fn read_from_file(&mut self, n: u64) {
        self.file_backlog = self.file_backlog.saturating_sub(n);
        if self.catch_up > 0 {
            self.catch_up = self.catch_up.saturating_sub(n);
            if self.catch_up == 0 {
                let next = if self.round_capped || self.round_spilled >= self.round {
                    0
                } else {
                    self.round_spilled
                };
                self.begin_round(next);
            }
        }
    }
}

/// One layer stream's spool.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    when_full: WhenFull,
    state: Mutex<State>,
    /// Bytes arrived or the writer ended; waited on by the reader and by
    /// [`Spool::wait_done`], so always notified to all.
    readable: Condvar,
    /// The reader took bytes or left; only the writer waits on it.
    writable: Condvar,
    stop: CancellationToken,
}

impl Spool {
    /// A spool whose file, if it needs one, is `path`. Once `stop` is cancelled
    /// (the user asked the pull to stop), reads fail as interrupted and waiting
    /// writers spill.
    pub fn new(path: PathBuf, when_full: WhenFull, stop: CancellationToken) -> Self {
        Spool {
            path,
            when_full,
            state: Mutex::new(State::default()),
            readable: Condvar::new(),
            writable: Condvar::new(),
            stop,
        }
    }

    /// The file bytes go to when they cannot stay in memory.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("spool lock")
    }

    /// Frees the spool's memory and deletes its file, once its reader is done with
    /// it or will not come (bytes still queued are dropped, so a reader would see
    /// them missing; errors are ignored: the scratch directory goes at the end
    /// anyway). Later writes are dropped.
    pub fn remove(&self) {
        let mut s = self.lock();
        s.removed = true;
        s.chunks.clear();
        s.in_memory = 0;
        s.file_backlog = 0;
        s.begin_round(0);
        drop(s);
        self.writable.notify_all();
        let _ = std::fs::remove_file(&self.path);
    }

    /// Bytes that went through the file rather than memory.
    pub fn spilled(&self) -> u64 {
        self.lock().spilled
    }

    /// The writing end (one per spool).
    pub fn writer(&self) -> SpoolWriter<'_> {
        SpoolWriter {
            spool: self,
            file: None,
            file_len: 0,
        }
    }

    /// The writer ended: `ok` false means the reader gets an error.
    pub fn finish(&self, ok: bool) {
        let mut s = self.lock();
        s.done = true;
        s.failed = !ok;
        drop(s);
        self.readable.notify_all();
    }

    /// A guard that finishes the spool as failed if it is dropped before
    /// [`FinishGuard::finish`] (a writer that panics must not leave readers waiting).
    pub fn guard(&self) -> FinishGuard<'_> {
        FinishGuard {
            spool: self,
            armed: true,
        }
    }

    /// Blocks until the writer has ended (successfully or not).
    pub fn wait_done(&self) {
        let mut s = self.lock();
        while !s.done {
            s = self.readable.wait(s).expect("spool lock");
        }
    }

    /// Keeps bytes in memory from now on, as for a reader, because one is about
    /// to start (a layer a decoder or the applier takes first): its first bytes
    /// need not go through the file while the reader's thread gets going.
    pub fn expect_reader(&self) {
        self.lock().start_reading();
    }

    /// The reader stops reading for a while (its layer waits for the layers below
    /// it): meanwhile bytes past the window go to the file, as before it came, so
    /// that the writer does not wait for it. `false`: it reads again.
    pub fn pause_reader(&self, paused: bool) {
        let mut s = self.lock();
        if paused {
            s.reading = false;
        } else {
            s.start_reading();
        }
        drop(s);
        if paused {
            self.writable.notify_all();
        }
    }

    /// The reading end (one per spool): returns bytes as they arrive and EOF once
    /// the writer succeeded; time spent waiting for bytes goes to `stall`. From
    /// now on the writer keeps bytes in memory for it.
    pub fn reader(&self, stall: Busy) -> SpoolReader<'_> {
        self.lock().start_reading();
        SpoolReader {
            spool: self,
            memory: Bytes::new(),
            file: None,
            file_offset: 0,
            file_left: 0,
            buf: Vec::new(),
            buf_pos: 0,
            stall,
        }
    }
}

/// See [`Spool::writer`].
pub struct SpoolWriter<'a> {
    spool: &'a Spool,
    file: Option<File>,
    file_len: u64,
}

impl SpoolWriter<'_> {
    /// Appends `bytes`. Returns the time spent waiting for the reader to make room
    /// ([`WhenFull::Wait`]), which is nobody's busy time.
    pub fn push(&mut self, bytes: Bytes) -> io::Result<Duration> {
        let len = bytes.len();
        let mut waited = Duration::ZERO;
        if len == 0 {
            return Ok(waited);
        }
        let spool = self.spool;
        let mut s = spool.lock();
        loop {
            if s.removed || s.reader_gone {
                // Nobody will read these bytes (a reader that stopped early, at
                // the tar stream's end-of-archive blocks, or on an error).
                return Ok(waited);
            }
            if !s.reading {
                break;
            }
            // One chunk larger than the window still passes through memory.
            if s.in_memory == 0 || s.in_memory + len <= WINDOW {
                s.in_memory += len;
                s.chunks.push_back(Chunk::Memory(bytes));
                let wake = s.reader_waiting;
                drop(s);
                if wake {
                    spool.readable.notify_all();
                }
                return Ok(waited);
            }
            if spool.when_full == WhenFull::Spill
                || s.may_spill_for_catch_up(len as u64)
                || spool.stop.is_cancelled()
            {
                break;
            }
            let t = Instant::now();
            s.writer_waiting = true;
            s = spool.writable.wait_timeout(s, POLL).expect("spool lock").0;
            s.writer_waiting = false;
            waited += t.elapsed();
        }
        drop(s);
        let offset = self.file_len;
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(File::create(&spool.path)?),
        };
        file.write_all(&bytes)?;
        self.file_len += len as u64;
        let mut s = spool.lock();
        if s.removed {
            // Removed while this block was being written: the file may have been
            // created again after its deletion.
            drop(s);
            let _ = std::fs::remove_file(&spool.path);
            return Ok(waited);
        }
        s.spilled_to_file(len as u64);
        match s.chunks.back_mut() {
            Some(Chunk::File { offset: o, len: l }) if *o + *l == offset => *l += len as u64,
            _ => s.chunks.push_back(Chunk::File {
                offset,
                len: len as u64,
            }),
        }
        let wake = s.reader_waiting;
        drop(s);
        if wake {
            spool.readable.notify_all();
        }
        Ok(waited)
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

/// Tails a [`Spool`]; buffered itself ([`BufRead`]), so it needs no `BufReader`.
pub struct SpoolReader<'a> {
    spool: &'a Spool,
    /// The rest of the memory chunk being read.
    memory: Bytes,
    file: Option<File>,
    /// Where the file chunk being read continues, and how much of it is left.
    file_offset: u64,
    file_left: u64,
    /// Bytes read from the file and not yet consumed (`buf[buf_pos..]`).
    buf: Vec<u8>,
    buf_pos: usize,
    stall: Busy,
}

impl SpoolReader<'_> {
    /// Takes the next chunk, waiting for the writer; false at the end.
    fn next_chunk(&mut self) -> io::Result<bool> {
        let spool = self.spool;
        let mut s = spool.lock();
        let chunk = loop {
            if s.failed {
                return Err(io::Error::other("the layer's download failed"));
            }
            if spool.stop.is_cancelled() {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
            if let Some(c) = s.chunks.pop_front() {
                break c;
            }
            if s.done {
                return Ok(false);
            }
            let t = Instant::now();
            s.reader_waiting = true;
            s = spool.readable.wait_timeout(s, POLL).expect("spool lock").0;
            s.reader_waiting = false;
            self.stall.add(t.elapsed());
        };
        match chunk {
            Chunk::Memory(b) => {
                s.in_memory -= b.len();
                let wake = s.writer_waiting && s.in_memory <= WINDOW / 2;
                drop(s);
                if wake {
                    spool.writable.notify_one();
                }
                self.memory = b;
            }
            Chunk::File { offset, len } => {
                drop(s);
                self.file_offset = offset;
                self.file_left = len;
            }
        }
        Ok(true)
    }

    /// Reads the next piece of the current file chunk into `buf`.
    fn read_file(&mut self) -> io::Result<()> {
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(File::open(&self.spool.path)?),
        };
        let want = self.file_left.min(FILE_READ as u64) as usize;
        self.buf.resize(want, 0);
        file.read_exact_at(&mut self.buf, self.file_offset)?;
        self.spool.lock().read_from_file(want as u64);
        self.buf_pos = 0;
        self.file_offset += want as u64;
        self.file_left -= want as u64;
        Ok(())
    }
}

impl BufRead for SpoolReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        loop {
            if !self.memory.is_empty() {
                return Ok(&self.memory);
            }
            if self.buf_pos < self.buf.len() {
                return Ok(&self.buf[self.buf_pos..]);
            }
            if self.file_left > 0 {
                self.read_file()?;
                continue;
            }
            if !self.next_chunk()? {
                return Ok(&[]);
            }
        }
    }

    fn consume(&mut self, amt: usize) {
        if !self.memory.is_empty() {
            self.memory.advance(amt);
        } else {
            self.buf_pos += amt;
        }
    }
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Drop for SpoolReader<'_> {
    fn drop(&mut self) {
        let mut s = self.spool.lock();
        s.reader_gone = true;
        drop(s);
        self.spool.writable.notify_all();
    }
}

#[cfg(test)]
mod tests;
