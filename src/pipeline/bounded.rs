//! The decompressing reader that enforces the size and ratio limits while a layer
//! streams, so a bomb is stopped after the bytes that prove it, never inflated whole.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use crate::limits::{LimitError, Limits};
use crate::oci::media_type::Compression;

/// Compressed bytes a decoder has consumed (not merely buffered), shared with the
/// [`Bounded`] reader that judges the ratio.
#[derive(Debug, Clone, Default)]
struct Consumed(Rc<Cell<u64>>);

/// A buffered reader that counts the bytes its user consumes.
struct CountingBufRead<B> {
    inner: B,
    consumed: Consumed,
}

impl<B: BufRead> Read for CountingBufRead<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.0.set(self.consumed.0.get() + n as u64);
        Ok(n)
    }
}

impl<B: BufRead> BufRead for CountingBufRead<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.consumed.0.set(self.consumed.0.get() + amt as u64);
        self.inner.consume(amt);
    }
}

/// A decompressed stream that fails with a [`LimitError`] (inside an
/// `io::Error`) as soon as it passes the size or ratio limit: the check happens
/// on every read, before the bytes reach extraction, so a bomb is never fully
/// decompressed.
pub struct Bounded<R> {
    inner: R,
    consumed: Option<Consumed>,
    produced: u64,
    max_bytes: u64,
    max_ratio: u64,
    ratio_floor: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.produced += n as u64;
        if self.produced > self.max_bytes {
            return Err(io::Error::other(LimitError::LayerSize {
                limit: self.max_bytes,
            }));
        }
        if let Some(consumed) = &self.consumed {
            let compressed = consumed.0.get().max(1);
            if self.produced >= self.ratio_floor
                && self.produced > compressed.saturating_mul(self.max_ratio)
            {
                return Err(io::Error::other(LimitError::Ratio {
                    compressed,
                    decompressed: self.produced,
                    limit: self.max_ratio,
                }));
            }
        }
        Ok(n)
    }
}

/// Read-side buffer for compressed input (as the unbounded decoder).
const INPUT_BUFFER: usize = 256 << 10;

/// A decompressing reader for a layer, bounded by `limits` (size always; ratio
/// for compressed layers, counted over the compressed bytes the decoder consumed).
pub fn bounded_decoder<'a, R: Read + 'a>(
    compression: Compression,
    input: R,
    limits: &Limits,
) -> io::Result<Bounded<Box<dyn Read + 'a>>> {
    let consumed = Consumed::default();
    let counted = CountingBufRead {
        inner: BufReader::with_capacity(INPUT_BUFFER, input),
        consumed: consumed.clone(),
    };
    let inner = crate::pipeline::readers::decode_buffered(compression, counted)?;
    Ok(Bounded {
        inner,
        consumed: (compression != Compression::None).then_some(consumed),
        produced: 0,
        max_bytes: limits.max_layer_bytes,
        max_ratio: limits.max_ratio,
        ratio_floor: limits.ratio_floor_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn drain(r: impl Read) -> Result<u64, LimitError> {
        let mut r = r;
        io::copy(&mut r, &mut io::sink())
            .map_err(|e| LimitError::find_in(&e).cloned().expect("a limit error"))
    }

    #[test]
    fn bounded_decoder_stops_bombs_and_passes_normal_streams() {
        let zeros = vec![0u8; 8 << 20];
        let bomb = gzip(&zeros);
        let limits = Limits {
            ratio_floor_bytes: 1 << 20,
            ..Limits::DEFAULT
        };
        match drain(bounded_decoder(Compression::Gzip, &bomb[..], &limits).unwrap()) {
            Err(LimitError::Ratio {
                decompressed,
                compressed,
                limit: 1000,
            }) => {
                assert!((1 << 20..8 << 20).contains(&decompressed));
                assert!(decompressed > compressed * 1000);
            }
            other => panic!("{other:?}"),
        }
        // The same stream passes with a floor above its size.
        let lenient = Limits {
            ratio_floor_bytes: 16 << 20,
            ..Limits::DEFAULT
        };
        let r = bounded_decoder(Compression::Gzip, &bomb[..], &lenient).unwrap();
        assert_eq!(drain(r), Ok(8 << 20));
        // Size is checked for every compression, plain tar included.
        let small = Limits {
            max_layer_bytes: 4 << 20,
            ..lenient
        };
        for (c, bytes) in [
            (Compression::Gzip, bomb.clone()),
            (
                Compression::Zstd,
                zstd::stream::encode_all(&zeros[..], 3).unwrap(),
            ),
            (Compression::None, zeros.clone()),
        ] {
            let r = bounded_decoder(c, &bytes[..], &small).unwrap();
            assert_eq!(
                drain(r),
                Err(LimitError::LayerSize { limit: 4 << 20 }),
                "{c:?}"
            );
        }
    }
}
