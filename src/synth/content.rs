//! Deterministic file content of three kinds whose compression ratios behave like
//! real image content: text (source, docs, metadata), binary (executables,
//! libraries, numeric arrays), and already-compressed data.

use std::io::{self, Read};

pub use crate::rng::Rng;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Words, indentation, punctuation.
    Text,
    /// Instruction-like records with small operands and zero runs.
    Binary,
    /// Uniform random bytes.
    Compressed,
}

/// A vocabulary shared by all text files of a layer (so text compresses across
/// files the way real source trees do).
#[derive(Debug, Clone)]
pub struct Vocabulary {
    words: Vec<Vec<u8>>,
}

impl Vocabulary {
    /// 2,048 pseudo-words from `rng`, plus common code tokens.
    pub fn new(rng: &mut Rng) -> Self {
        let mut words: Vec<Vec<u8>> = [
            "def", "return", "self", "import", "from", "class", "if", "else", "for", "in", "the",
            "and", "None", "True", "=", "==", "(", ")", ":", "\"\"\"",
        ]
        .iter()
        .map(|w| w.as_bytes().to_vec())
        .collect();
        while words.len() < 2048 {
            let len = 2 + rng.below(9) as usize;
            words.push((0..len).map(|_| b'a' + rng.below(26) as u8).collect());
        }
        Vocabulary { words }
    }
}

/// Streams `remaining` bytes of one kind.
pub struct ContentReader<'a> {
    kind: Kind,
    rng: Rng,
    remaining: u64,
    vocab: &'a Vocabulary,
    pending: Vec<u8>,
    pos: usize,
}

impl<'a> ContentReader<'a> {
    /// `len` bytes of `kind`, seeded.
    pub fn new(kind: Kind, seed: u64, len: u64, vocab: &'a Vocabulary) -> Self {
        ContentReader {
            kind,
            rng: Rng::new(seed),
            remaining: len,
            vocab,
            pending: Vec::with_capacity(8192),
            pos: 0,
        }
    }

    fn refill(&mut self) {
        self.pending.clear();
        self.pos = 0;
        match self.kind {
            Kind::Text => {
                let mut col = 0;
                while self.pending.len() < 4096 {
                    // Skewed word choice: frequent words dominate, like real text.
                    let u = self.rng.unit();
                    let i = ((u * u * u * u) * self.vocab.words.len() as f64) as usize;
                    let w = &self.vocab.words[i.min(self.vocab.words.len() - 1)];
                    self.pending.extend_from_slice(w);
                    col += w.len() + 1;
                    if col > 60 + self.rng.below(30) as usize {
                        self.pending.push(b'\n');
                        let indent = 4 * self.rng.below(3) as usize;
                        self.pending.extend(std::iter::repeat_n(b' ', indent));
                        col = indent;
                    } else {
                        self.pending.push(b' ');
                    }
                }
            }
            Kind::Binary => {
                while self.pending.len() < 4096 {
                    let r = self.rng.next_u64();
                    match r % 8 {
                        // A zero run (padding, BSS, sparse arrays).
                        0 => self
                            .pending
                            .extend(std::iter::repeat_n(0u8, 8 + (r >> 8) as usize % 24)),
                        // An opcode-like byte pair with a small operand.
                        1..=6 => {
                            let op = (r >> 8) as u8 & 0x3f;
                            self.pending.extend_from_slice(&[
                                0x48 | (op & 3),
                                0x80 + op,
                                (r >> 16) as u8 & 0x0f,
                                0,
                            ]);
                        }
                        // A full random word (addresses, constants, floats).
                        _ => self.pending.extend_from_slice(&(r >> 3).to_le_bytes()),
                    }
                }
            }
            Kind::Compressed => {
                for _ in 0..512 {
                    self.pending
                        .extend_from_slice(&self.rng.next_u64().to_le_bytes());
                }
            }
        }
    }
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.pos == self.pending.len() {
            self.refill();
        }
        let n = buf
            .len()
            .min(self.pending.len() - self.pos)
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip_ratio(kind: Kind) -> f64 {
        let vocab = Vocabulary::new(&mut Rng::new(1));
        let mut data = Vec::new();
        ContentReader::new(kind, 7, 1 << 20, &vocab)
            .read_to_end(&mut data)
            .unwrap();
        assert_eq!(data.len(), 1 << 20);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&data).unwrap();
        data.len() as f64 / e.finish().unwrap().len() as f64
    }

    #[test]
    fn kinds_compress_like_real_content() {
        let (t, b, c) = (
            gzip_ratio(Kind::Text),
            gzip_ratio(Kind::Binary),
            gzip_ratio(Kind::Compressed),
        );
        eprintln!("gzip ratios: text {t:.2} binary {b:.2} compressed {c:.3}");
        assert!((2.5..6.0).contains(&t), "text ratio {t}");
        assert!((1.5..3.5).contains(&b), "binary ratio {b}");
        assert!((0.95..1.05).contains(&c), "compressed ratio {c}");
    }

    #[test]
    fn same_seed_same_bytes() {
        let vocab = Vocabulary::new(&mut Rng::new(3));
        let read = |seed| {
            let mut v = Vec::new();
            ContentReader::new(Kind::Text, seed, 10_000, &vocab)
                .read_to_end(&mut v)
                .unwrap();
            v
        };
        assert_eq!(read(5), read(5));
        assert_ne!(read(5), read(6));
    }
}
