//! ISA-L's igzip as a streaming gzip decoder (feature `gzip-isal`): a [`Read`]
//! over a [`BufRead`] of gzip, in constant memory (one ~90 KB inflate state; the
//! input is the caller's buffer, the output the caller's `read` buffer).
//!
//! - Multi-member gzip (pigz, concatenated streams) decodes as one stream, as
//!   flate2's `MultiGzDecoder` does.
//! - Every member's header is parsed and its trailer checked (CRC32 and ISIZE) by
//!   ISA-L itself (`crc_flag = ISAL_GZIP`).
//! - Input that ends inside a member is an error ([`IgzipError::Truncated`],
//!   `UnexpectedEof`), never a short read; so is empty input.
//! - Anything after the last member must be another member: trailing garbage,
//!   zero padding included, is an error ([`IgzipError::Corrupt`]), as with flate2.
//! - After an error, every later `read` fails too.
//!
//! The library is the system's libisal, linked by build.rs; the C shim
//! (`igzip_shim.c`, beside this file) owns ISA-L's `struct inflate_state`, so its
//! layout is the C compiler's reading of the installed header, never a copy of it
//! here.

use std::ffi::c_int;
use std::io::{self, BufRead, Read};
use std::marker::{PhantomData, PhantomPinned};
use std::ptr::NonNull;

/// What can go wrong decoding gzip with igzip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IgzipError {
    /// The input ended inside a gzip member (or was empty).
    #[error("truncated gzip stream: the input ended inside a gzip member")]
    Truncated,
    /// ISA-L rejected the stream; the reason is its return code's meaning.
    #[error("corrupt gzip stream: {0}")]
    Corrupt(&'static str),
    /// The inflate state could not be allocated.
    #[error("out of memory allocating the igzip inflate state")]
    NoMemory,
    /// ISA-L consumed and produced nothing with input and room for output.
    #[error("igzip made no progress (a bug in pulltime's use of ISA-L)")]
    Stuck,
}

impl From<IgzipError> for io::Error {
    fn from(e: IgzipError) -> io::Error {
        let kind = match e {
            IgzipError::Truncated => io::ErrorKind::UnexpectedEof,
            IgzipError::Corrupt(_) => io::ErrorKind::InvalidData,
            IgzipError::NoMemory => io::ErrorKind::OutOfMemory,
            IgzipError::Stuck => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// The meaning of an `isal_inflate` return code (igzip_lib.h), for errors.
fn corrupt(code: c_int) -> IgzipError {
    IgzipError::Corrupt(match code {
        -1 => "invalid deflate block",
        -2 => "invalid deflate symbol",
        -3 => "invalid deflate lookback distance",
        -4 => "invalid gzip header (not a gzip member)",
        -5 => "the gzip header names a method other than deflate",
        -6 => "checksum mismatch (CRC32 or size in the trailer, or the header's CRC16)",
        6 => "a preset dictionary is needed (not valid in gzip)",
        _ => "unexpected igzip return code",
    })
}

/// ISA-L's `struct inflate_state`, opaque: only igzip_shim.c sees inside.
#[repr(C)]
struct InflateState {
    _opaque: [u8; 0],
    _not_send_sync_or_unpin: PhantomData<(*mut u8, PhantomPinned)>,
}

// The shim (igzip_shim.c, compiled and linked by build.rs with libisal).
unsafe extern "C" {
    fn pulltime_igzip_new() -> *mut InflateState;
    fn pulltime_igzip_free(s: *mut InflateState);
    fn pulltime_igzip_reset(s: *mut InflateState);
    fn pulltime_igzip_inflate(
        s: *mut InflateState,
        input: *const u8,
        in_len: u32,
        out: *mut u8,
        out_len: u32,
        consumed: *mut u32,
        produced: *mut u32,
        finished: *mut c_int,
    ) -> c_int;
}

/// An owned inflate state (freed on drop).
struct State(NonNull<InflateState>);

/// What one `isal_inflate` call did.
struct Step {
    consumed: usize,
    produced: usize,
    /// The member is complete and its trailer checked.
    finished: bool,
    /// `isal_inflate`'s return code (0: no error).
    code: c_int,
}

impl State {
    fn new() -> Result<State, IgzipError> {
        // SAFETY: the shim allocates and initialises a state, or returns NULL.
        let p = unsafe { pulltime_igzip_new() };
        NonNull::new(p).map(State).ok_or(IgzipError::NoMemory)
    }

    fn reset(&mut self) {
        // SAFETY: self.0 is a live state from pulltime_igzip_new, used by this
        // thread only (`&mut self`).
        unsafe { pulltime_igzip_reset(self.0.as_ptr()) }
    }

    /// One call of `isal_inflate` from `input` into `out` (each at most 4 GiB per
    /// call; the rest is left for the next).
    fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Step {
        let in_len = u32::try_from(input.len()).unwrap_or(u32::MAX);
        let out_len = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let (mut consumed, mut produced, mut finished) = (0u32, 0u32, 0 as c_int);
        // SAFETY: self.0 is a live state, used by this thread only (`&mut self`).
        // `input` is valid for reads of in_len bytes and `out` for writes of
        // out_len bytes (both at most the slices' lengths) for the call; the shim
        // clears the state's pointers to them before returning, so nothing keeps
        // them. The three out-parameters are valid for writes.
        let code = unsafe {
            pulltime_igzip_inflate(
                self.0.as_ptr(),
                input.as_ptr(),
                in_len,
                out.as_mut_ptr(),
                out_len,
                &mut consumed,
                &mut produced,
                &mut finished,
            )
        };
        Step {
            consumed: consumed as usize,
            produced: produced as usize,
            finished: finished != 0,
            code,
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // SAFETY: self.0 came from pulltime_igzip_new and is freed once, here.
        unsafe { pulltime_igzip_free(self.0.as_ptr()) }
    }
}

/// A streaming multi-member gzip decoder over buffered input.
pub struct IgzipDecoder<R> {
    inner: R,
    state: State,
    /// The last member is complete: more input starts another.
    between_members: bool,
    /// The error that ended decoding, returned again by every later `read`.
    failed: Option<IgzipError>,
}

impl<R: BufRead> IgzipDecoder<R> {
    /// A decoder of the gzip stream `inner` (nothing is read yet).
    pub fn new(inner: R) -> Result<Self, IgzipError> {
        Ok(IgzipDecoder {
            inner,
            state: State::new()?,
            between_members: false,
            failed: None,
        })
    }

    fn fail(&mut self, e: IgzipError) -> io::Error {
        self.failed = Some(e);
        e.into()
    }
}

impl<R: BufRead> Read for IgzipDecoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.failed {
            return Err(e.into());
        }
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.inner.fill_buf()?;
            if self.between_members {
                if input.is_empty() {
                    return Ok(0); // the end, after whole members only
                }
                self.state.reset();
                self.between_members = false;
            }
            let eof = input.is_empty();
            let step = self.state.inflate(input, out);
            self.inner.consume(step.consumed);
            if step.code != 0 {
                return Err(self.fail(corrupt(step.code)));
            }
            self.between_members = step.finished;
            if step.produced > 0 {
                return Ok(step.produced);
            }
            if step.consumed == 0 && !step.finished {
                // No output, none of the input taken, the member not over: at the
                // end of the input the member is cut short; before it, ISA-L
                // would spin.
                let e = if eof {
                    IgzipError::Truncated
                } else {
                    IgzipError::Stuck
                };
                return Err(self.fail(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The decoder's own contract; its output against the `gzip` CLI on real
    //! layers is tested with every backend in `pipeline::gzip`.

    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn igzip_error(e: &io::Error) -> IgzipError {
        *e.get_ref()
            .and_then(|e| e.downcast_ref::<IgzipError>())
            .unwrap_or_else(|| panic!("not an IgzipError: {e:?}"))
    }

    #[test]
    fn errors_are_typed_and_every_later_read_fails_too() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 7 + i / 1000) as u8).collect();
        let gz = gzip(&data);
        let n = gz.len();
        let mut bad_crc = gz.clone();
        bad_crc[n - 8] ^= 1;
        for (input, want) in [
            (&gz[..n - 2], IgzipError::Truncated),
            (&bad_crc[..], corrupt(-6)),
        ] {
            let mut d = IgzipDecoder::new(input).unwrap();
            let mut buf = vec![0u8; 1 << 16];
            let e = loop {
                match d.read(&mut buf) {
                    Ok(0) => panic!("{want}: decoded to the end"),
                    Ok(_) => {}
                    Err(e) => break e,
                }
            };
            assert_eq!(igzip_error(&e), want);
            let again = d.read(&mut buf).unwrap_err();
            assert_eq!(igzip_error(&again), want, "{again}");
            assert_eq!(again.kind(), e.kind());
        }
    }

    #[test]
    fn an_empty_read_buffer_reads_nothing_and_consumes_nothing() {
        let gz = gzip(b"hello");
        let mut d = IgzipDecoder::new(&gz[..]).unwrap();
        assert_eq!(d.read(&mut []).unwrap(), 0);
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
    }
}
