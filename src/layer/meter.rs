//! Bounds what the tar reader buffers for one entry before handing it over: GNU
//! long names and pax records are read whole into memory by the `tar` crate, so a
//! hostile layer could make one of them gigabytes long. The meter counts every byte
//! the reader consumes and, while the reader is between entries, refuses to go more
//! than a fixed number of bytes past the end of the previous entry's data.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use crate::limits::LimitError;

const BLOCK: u64 = 512;

/// Shared position and window of a [`Metered`] reader.
#[derive(Debug)]
pub(super) struct Meter {
    /// Bytes consumed so far.
    pos: Cell<u64>,
    /// Position reads may not pass (u64::MAX outside a window).
    limit: Cell<u64>,
    /// Bytes allowed for one entry's headers.
    cap: u64,
    /// Where the current entry's data ends (its padding included).
    data_end: Cell<u64>,
}

impl Meter {
    /// A meter allowing `cap` bytes of headers per entry.
    pub(super) fn new(cap: u64) -> Rc<Meter> {
        Rc::new(Meter {
            pos: Cell::new(0),
            limit: Cell::new(u64::MAX),
            cap,
            data_end: Cell::new(0),
        })
    }

    /// The tar reader is about to look for the next entry.
    pub(super) fn open(&self) {
        self.limit.set(
            self.data_end
                .get()
                .max(self.pos.get())
                .saturating_add(self.cap),
        );
    }

    /// The tar reader returned an entry whose data (as stored) is `stored` bytes.
    pub(super) fn close(&self, stored: u64) {
        self.limit.set(u64::MAX);
        let padded = stored.div_ceil(BLOCK).saturating_mul(BLOCK);
        self.data_end.set(self.pos.get().saturating_add(padded));
    }
}

/// A reader that counts bytes consumed into a [`Meter`] and fails with
/// [`LimitError::EntryHeaders`] past its window.
pub(super) struct Metered<R> {
    pub(super) inner: R,
    pub(super) meter: Rc<Meter>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let m = &self.meter;
        let room = m.limit.get().saturating_sub(m.pos.get());
        if room == 0 && !buf.is_empty() {
            return Err(io::Error::other(LimitError::EntryHeaders { limit: m.cap }));
        }
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        m.pos.set(m.pos.get() + n as u64);
        Ok(n)
    }
}
