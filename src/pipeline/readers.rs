//! Reader adapters that attribute time to pipeline stages. Stages that overlap in
//! streaming mode run inside one chain of readers on one thread, so each stage's busy
//! time is "time inside my `read`" minus "time inside the reader under me".

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::gzip::GzipBackend;
use crate::oci::media_type::Compression;

/// An accumulator of busy time, shared between a reader and whoever reads the total.
/// Created off when stage timing is switched off (`PullOptions::stage_timing`, the
/// CLI's `--no-stage-timing`): then nothing reads the clock and totals read zero,
/// which is how the instrumentation's own cost is measured. [`Busy::default`] is on.
#[derive(Debug, Clone)]
pub struct Busy(Option<Rc<Cell<Duration>>>);

impl Default for Busy {
    fn default() -> Self {
        Busy::new(true)
    }
}

impl Busy {
    /// An accumulator that times (`timed`) or one that reads no clock.
    pub fn new(timed: bool) -> Self {
        Busy(timed.then(Rc::default))
    }
    /// Adds `d`.
    pub fn add(&self, d: Duration) {
        if let Some(c) = &self.0 {
            c.set(c.get() + d);
        }
    }
    /// Total so far.
    pub fn get(&self) -> Duration {
        self.0.as_ref().map_or(Duration::ZERO, |c| c.get())
    }
    /// Whether this accumulator times anything.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }
}

/// Counts the time spent inside `inner.read`.
pub struct Timed<R> {
    inner: R,
    busy: Busy,
}

impl<R> Timed<R> {
    /// Wraps `inner`, adding its read time to `busy`.
    pub fn new(inner: R, busy: Busy) -> Self {
        Timed { inner, busy }
    }
}

impl<R: Read> Read for Timed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.busy.is_on() {
            return self.inner.read(buf);
        }
        let t = Instant::now();
        let r = self.inner.read(buf);
        self.busy.add(t.elapsed());
        r
    }
}

/// Hashes what passes through (sha256), timing only the hashing.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    busy: Busy,
}

impl<R> Hashing<R> {
    /// Wraps `inner`; hashing time goes to `busy`.
    pub fn new(inner: R, busy: Busy) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            busy,
        }
    }

    /// Bytes seen so far.
    pub fn byte_count(&self) -> u64 {
        self.bytes
    }

    /// `sha256:<hex>` of everything read.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.busy.is_on() {
            let t = Instant::now();
            self.hasher.update(&buf[..n]);
            self.busy.add(t.elapsed());
        } else {
            self.hasher.update(&buf[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Read-side buffer for compressed input.
const INPUT_BUFFER: usize = 256 << 10;

/// A decompressing reader for a layer's compression.
pub fn decoder<'a, R: Read + 'a>(
    compression: Compression,
    input: R,
) -> io::Result<Box<dyn Read + 'a>> {
    decode_buffered(compression, BufReader::with_capacity(INPUT_BUFFER, input))
}

/// A decompressing reader over already buffered input (which sees exactly the
/// compressed bytes the decoder consumes); gzip through [`GzipBackend::PULL`].
pub fn decode_buffered<'a, B: BufRead + 'a>(
    compression: Compression,
    buffered: B,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        // Multi-member gzip (pigz, concatenated streams) is valid in layers.
        Compression::Gzip => GzipBackend::PULL.decoder(buffered)?,
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Compression::None => Box::new(buffered),
    })
}

/// sha256 of a whole reader, e.g. a blob file: the verify phase of staged mode
/// (timed as a whole by its caller, so the hasher itself reads no clock).
pub fn hash_all(mut r: impl Read) -> io::Result<(String, u64)> {
    let mut h = Hashing::new(&mut r, Busy::new(false));
    let mut buf = vec![0u8; INPUT_BUFFER];
    while h.read(&mut buf)? > 0 {}
    Ok((h.digest(), h.byte_count()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn decoders_round_trip_and_hash() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::stream::encode_all(&data[..], 1).unwrap();
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
        for (c, bytes) in [
            (Compression::Gzip, gz.clone()),
            (Compression::Zstd, zs),
            (Compression::None, data.clone()),
        ] {
            let busy = Busy::default();
            let mut h = Hashing::new(decoder(c, &bytes[..]).unwrap(), busy.clone());
            let mut out = Vec::new();
            h.read_to_end(&mut out).unwrap();
            assert_eq!(out, data, "{c:?}");
            assert_eq!(h.digest(), want);
            assert_eq!(h.byte_count(), data.len() as u64);
            assert!(busy.get() > Duration::ZERO);
        }
        // Two gzip members concatenated decode as one stream.
        let double = [gz.clone(), gz].concat();
        let mut out = Vec::new();
        decoder(Compression::Gzip, &double[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), data.len() * 2);
        assert_eq!(hash_all(&data[..]).unwrap(), (want, data.len() as u64));
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut out = Vec::new();
        let r = decoder(Compression::Gzip, &b"\x1f\x8b\x08\x00garbage"[..])
            .unwrap()
            .read_to_end(&mut out);
        assert!(r.is_err());
    }
}
