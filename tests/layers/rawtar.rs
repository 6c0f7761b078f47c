//! A tar writer that writes headers byte by byte, so the corpus can hold what the
//! `tar` crate's builder refuses to produce: names with `..`, sizes that disagree
//! with pax records, GNU long names, sparse entries, global pax headers, unknown
//! entry types, bad checksums.
#![allow(dead_code)]

const BLOCK: usize = 512;

/// Every entry's mtime unless told otherwise.
pub const MTIME: u64 = 1_700_000_000;

/// One header, field by field. `size_field` is what the ustar size field says;
/// `data` is what follows (padded to a block).
#[derive(Clone, Debug)]
pub struct H {
    pub name: Vec<u8>,
    pub kind: u8,
    pub mode: u32,
    pub link: Vec<u8>,
    pub size_field: Option<u64>,
    pub dev: (u32, u32),
    pub mtime: u64,
    pub owner: (u32, u32),
    /// GNU sparse map (offset, length) and real size; switches to the GNU magic.
    pub sparse: Option<(Vec<(u64, u64)>, u64)>,
    pub break_checksum: bool,
}

impl H {
    pub fn new(name: impl AsRef<[u8]>, kind: u8, mode: u32) -> H {
        H {
            name: name.as_ref().to_vec(),
            kind,
            mode,
            link: Vec::new(),
            size_field: None,
            dev: (0, 0),
            mtime: MTIME,
            owner: (0, 0),
            sparse: None,
            break_checksum: false,
        }
    }
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{v:0width$o}\0", width = field.len() - 1);
    assert_eq!(s.len(), field.len(), "{v} does not fit an octal field");
    field.copy_from_slice(s.as_bytes());
}

/// A tar stream being written.
#[derive(Default)]
pub struct Tar(Vec<u8>);

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    /// Writes a header and its data.
    pub fn raw(&mut self, h: &H, data: &[u8]) -> &mut Self {
        assert!(h.name.len() <= 100 && h.link.len() <= 100, "use long names");
        let mut b = [0u8; BLOCK];
        b[..h.name.len()].copy_from_slice(&h.name);
        octal(&mut b[100..108], h.mode as u64);
        octal(&mut b[108..116], h.owner.0 as u64);
        octal(&mut b[116..124], h.owner.1 as u64);
        octal(&mut b[124..136], h.size_field.unwrap_or(data.len() as u64));
        octal(&mut b[136..148], h.mtime);
        b[156] = h.kind;
        b[157..157 + h.link.len()].copy_from_slice(&h.link);
        match &h.sparse {
            None => {
                b[257..263].copy_from_slice(b"ustar\0");
                b[263..265].copy_from_slice(b"00");
                octal(&mut b[329..337], h.dev.0 as u64);
                octal(&mut b[337..345], h.dev.1 as u64);
            }
            Some((map, real)) => {
                b[257..265].copy_from_slice(b"ustar  \0");
                assert!(map.len() <= 4, "extended sparse maps are not written");
                for (i, (off, len)) in map.iter().enumerate() {
                    let at = 386 + i * 24;
                    octal(&mut b[at..at + 12], *off);
                    octal(&mut b[at + 12..at + 24], *len);
                }
                octal(&mut b[483..495], *real);
            }
        }
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| x as u32).sum();
        let sum = if h.break_checksum { sum + 1 } else { sum };
        let s = format!("{sum:06o}\0 ");
        b[148..156].copy_from_slice(s.as_bytes());
        self.0.extend_from_slice(&b);
        self.0.extend_from_slice(data);
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn file(&mut self, name: impl AsRef<[u8]>, mode: u32, data: &[u8]) -> &mut Self {
        self.raw(&H::new(name, b'0', mode), data)
    }

    /// A directory entry with mtime `mtime`.
    pub fn dir_at(&mut self, name: impl AsRef<[u8]>, mode: u32, mtime: u64) -> &mut Self {
        let mut h = H::new(name, b'5', mode);
        h.mtime = mtime;
        self.raw(&h, &[])
    }

    pub fn dir(&mut self, name: impl AsRef<[u8]>, mode: u32) -> &mut Self {
        self.raw(&H::new(name, b'5', mode), &[])
    }

    pub fn symlink(&mut self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> &mut Self {
        let mut h = H::new(name, b'2', 0o777);
        h.link = target.as_ref().to_vec();
        self.raw(&h, &[])
    }

    pub fn hardlink(&mut self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> &mut Self {
        let mut h = H::new(name, b'1', 0o644);
        h.link = target.as_ref().to_vec();
        self.raw(&h, &[])
    }

    pub fn device(&mut self, name: &str, kind: u8, major: u32, minor: u32) -> &mut Self {
        let mut h = H::new(name, kind, 0o600);
        h.dev = (major, minor);
        self.raw(&h, &[])
    }

    /// A pax extended header (`x`, or `g` for global) with `records`.
    pub fn pax(&mut self, kind: u8, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (k, v) in records {
            // "LEN key=value\n", LEN counting its own digits.
            let rest = k.len() + v.len() + 3;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        self.raw(&H::new("pax_header", kind, 0o644), &body)
    }

    /// A GNU long name (`L`) or long link (`K`) record for the next entry.
    pub fn gnu_long(&mut self, kind: u8, name: &[u8]) -> &mut Self {
        let mut data = name.to_vec();
        data.push(0);
        self.raw(&H::new("././@LongLink", kind, 0o644), &data)
    }

    /// The stream with its two end-of-archive blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut v = self.0.clone();
        v.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
        v
    }

    /// The stream cut after `n` bytes (a truncated layer).
    pub fn truncated(&self, n: usize) -> Vec<u8> {
        self.0[..n.min(self.0.len())].to_vec()
    }
}
