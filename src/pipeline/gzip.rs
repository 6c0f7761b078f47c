//! The gzip backends compiled in, the one a pull inflates with, and its name (in
//! every JSON record's `tool.gzip_backend`, and printed by the benches), so a
//! figure can always be traced to the inflate that produced it. Why each exists
//! and how fast each is: docs/performance.md, "gzip backends".

use std::io::{self, BufRead, Read};

/// A gzip decoder implementation. Every one decodes multi-member gzip as one
/// stream, checks each member's CRC32 and size, and fails on input that ends
/// inside a member or has anything but another member after the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GzipBackend {
    /// ISA-L's igzip (the system's libisal; feature `gzip-isal`).
    #[cfg(pulltime_isal)]
    Isal,
    /// flate2's `MultiGzDecoder`, over the deflate backend flate2 was built with
    /// (features `gzip-zlib-ng`, `gzip-zlib-rs` or `gzip-miniz`).
    Flate2,
}

impl GzipBackend {
    /// The backend a pull inflates with: ISA-L when it is compiled in, else flate2.
    #[cfg(pulltime_isal)]
    pub const PULL: GzipBackend = GzipBackend::Isal;
    /// The backend a pull inflates with: ISA-L when it is compiled in, else flate2.
    #[cfg(not(pulltime_isal))]
    pub const PULL: GzipBackend = GzipBackend::Flate2;

    /// Every backend in this build (the tests run each of them).
    pub fn compiled_in() -> &'static [GzipBackend] {
        &[
            #[cfg(pulltime_isal)]
            GzipBackend::Isal,
            GzipBackend::Flate2,
        ]
    }

    /// `isal`, or flate2's backend: `zlib-ng`, `zlib-rs` or `miniz` (flate2's
    /// precedence when several are on: a C zlib, then zlib-rs, then miniz_oxide).
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(pulltime_isal)]
            GzipBackend::Isal => "isal",
            GzipBackend::Flate2 if cfg!(feature = "gzip-zlib-ng") => "zlib-ng",
            GzipBackend::Flate2 if cfg!(feature = "gzip-zlib-rs") => "zlib-rs",
            GzipBackend::Flate2 => "miniz",
        }
    }

    /// A streaming decoder of the gzip stream `input`.
    pub fn decoder<'a, B: BufRead + 'a>(self, input: B) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            #[cfg(pulltime_isal)]
            GzipBackend::Isal => Box::new(super::igzip::IgzipDecoder::new(input)?),
            GzipBackend::Flate2 => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        })
    }
}

/// The name of the gzip backend a pull of this build inflates with.
pub fn gzip_backend() -> &'static str {
    GzipBackend::PULL.name()
}

#[cfg(test)]
mod tests {
    //! Every backend compiled in against the `gzip` CLI, on layers made here from
    //! real files (tar of /usr/share/doc and the shared libraries, compressed by
    //! `gzip -6`, `gzip -1` and `pigz` when installed), so they run anywhere the
    //! tools are, CI included. Run with another backend, e.g.:
    //! `cargo test --no-default-features --features gzip-zlib-rs --lib gzip`.

    use super::*;
    use std::io::{BufReader, Write};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::OnceLock;

    /// One real layer: its gzip and what `gzip -dc` makes of it.
    struct Layer {
        name: String,
        gz: Vec<u8>,
        tar: Vec<u8>,
    }

    /// Runs `cmd` with `input` on stdin; its stdout, or a panic naming it.
    fn pipe(cmd: &mut Command, input: &[u8]) -> Vec<u8> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", out.status);
        out.stdout
    }

    /// `gzip -dc`: the independent decompressor every backend is checked against.
    fn gunzip_cli(gz: &[u8]) -> Vec<u8> {
        pipe(Command::new("gzip").arg("-dc"), gz)
    }

    /// Regular files under the first existing `roots`, in name order, until
    /// `budget` bytes: real content of the kind layers hold.
    fn files_under(roots: &[&str], budget: u64) -> (PathBuf, Vec<PathBuf>) {
        let root = roots
            .iter()
            .map(Path::new)
            .find(|r| r.is_dir())
            .unwrap_or_else(|| panic!("none of {roots:?} on this machine"));
        let (mut picked, mut total, mut dirs) = (Vec::new(), 0u64, vec![root.to_path_buf()]);
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            entries.sort();
            for p in entries.into_iter().rev() {
                let Ok(m) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                if m.is_dir() {
                    dirs.push(p);
                } else if m.is_file() && total < budget && std::fs::File::open(&p).is_ok() {
                    total += m.len();
                    picked.push(p.strip_prefix(root).unwrap().to_path_buf());
                }
            }
        }
        assert!(total > budget / 4, "only {total} bytes under {root:?}");
        (root.to_path_buf(), picked)
    }

    /// A tar of those files, made by `tar`.
    fn tar_of(root: &Path, files: &[PathBuf]) -> Vec<u8> {
        let mut list = Vec::new();
        for f in files {
            list.extend_from_slice(f.as_os_str().as_encoded_bytes());
            list.push(0);
        }
        pipe(
            Command::new("tar")
                .args(["--create", "--file=-", "--no-recursion", "--null"])
                .arg("--directory")
                .arg(root)
                .arg("--files-from=-"),
            &list,
        )
    }

    /// The real layers, made once per test process.
    fn layers() -> &'static [Layer] {
        static LAYERS: OnceLock<Vec<Layer>> = OnceLock::new();
        LAYERS.get_or_init(|| {
            let (root, files) = files_under(&["/usr/share/doc"], 8 << 20);
            let text = tar_of(&root, &files);
            let libs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"];
            let (root, files) = files_under(&libs, 16 << 20);
            let binary = tar_of(&root, &files);
            // gzip -6 of a named file: its header carries the name (FNAME).
            let dir = tempfile::tempdir().unwrap();
            let named = dir.path().join("layer.tar");
            std::fs::write(&named, &text).unwrap();
            let out = Command::new("gzip").args(["-6", "-c"]).arg(&named).output();
            let text_gz6 = out.unwrap().stdout;
            let mut made = vec![
                ("doc, gzip -6 (named)", text_gz6),
                (
                    "libs, gzip -1",
                    pipe(Command::new("gzip").arg("-1"), &binary),
                ),
                (
                    "libs, gzip -6",
                    pipe(Command::new("gzip").arg("-6"), &binary),
                ),
            ];
            if Command::new("pigz").arg("--version").output().is_ok() {
                made.push(("doc, pigz -6", pipe(Command::new("pigz").arg("-6"), &text)));
            } else {
                eprintln!("pigz not installed: its layer is not tested");
            }
            let layers: Vec<Layer> = made
                .into_iter()
                .map(|(name, gz)| Layer {
                    name: name.into(),
                    tar: gunzip_cli(&gz),
                    gz,
                })
                .collect();
            // The oracle agrees with the tars it was made from.
            assert!(layers[0].tar == text && layers[1].tar == binary);
            layers
        })
    }

    /// `gz` decoded by `backend`, input through `in_buf`-byte buffers, read in
    /// `reads`-sized pieces (cycled).
    fn decode(
        backend: GzipBackend,
        gz: &[u8],
        in_buf: usize,
        reads: &[usize],
    ) -> io::Result<Vec<u8>> {
        let mut d = backend.decoder(BufReader::with_capacity(in_buf, gz))?;
        let (mut out, mut buf) = (Vec::new(), vec![0u8; *reads.iter().max().unwrap()]);
        for &n in reads.iter().cycle() {
            match d.read(&mut buf[..n])? {
                0 => return Ok(out),
                k => out.extend_from_slice(&buf[..k]),
            }
        }
        unreachable!()
    }

    fn decode_all(backend: GzipBackend, gz: &[u8]) -> io::Result<Vec<u8>> {
        decode(backend, gz, 256 << 10, &[256 << 10])
    }

    /// The error decoding `gz` with `backend`; a panic if it decodes.
    fn decode_err(backend: GzipBackend, gz: &[u8], what: &str) -> io::Error {
        match decode_all(backend, gz) {
            Ok(out) => panic!(
                "{}: {what}: decoded {} bytes, no error",
                backend.name(),
                out.len()
            ),
            Err(e) => e,
        }
    }

    #[test]
    fn real_layers_decode_byte_identical_to_the_gzip_cli() {
        for layer in layers() {
            for &b in GzipBackend::compiled_in() {
                let out = decode_all(b, &layer.gz).unwrap();
                assert!(
                    out == layer.tar,
                    "{}: {}: output differs from gzip -dc",
                    b.name(),
                    layer.name
                );
            }
        }
    }

    #[test]
    fn small_and_odd_buffers_decode_the_same() {
        let layer = &layers()[1];
        for &b in GzipBackend::compiled_in() {
            let out = decode(b, &layer.gz, 4099, &[1, 7, 512, 4096, 65537, 3]).unwrap();
            assert!(out == layer.tar, "{}: {}", b.name(), layer.name);
        }
    }

    #[test]
    fn multi_member_gzip_decodes_as_one_stream() {
        let (a, b) = (&layers()[0], &layers()[1]);
        let empty = pipe(&mut Command::new("gzip"), b"");
        let gz = [a.gz.as_slice(), &empty, &b.gz, &empty].concat();
        let want = [a.tar.as_slice(), &b.tar].concat();
        assert!(gunzip_cli(&gz) == want, "gzip -dc of the members");
        for &backend in GzipBackend::compiled_in() {
            // Small input buffers put member boundaries inside and across fills.
            for in_buf in [256 << 10, 4099] {
                let out = decode(backend, &gz, in_buf, &[256 << 10]).unwrap();
                assert!(out == want, "{}: input buffer {in_buf}", backend.name());
            }
        }
    }

    #[test]
    fn truncated_streams_are_errors_never_short_reads() {
        let gz = &layers()[0].gz;
        let two = [gz.as_slice(), gz].concat();
        let n = gz.len();
        let cuts: [(&[u8], &str); 9] = [
            (b"", "empty input"),
            (&gz[..5], "inside the header"),
            (&gz[..10], "after the fixed header, inside the name"),
            (&gz[..n / 2], "inside the deflate data"),
            (&gz[..n - 8], "all deflate data, no trailer"),
            (&gz[..n - 4], "CRC32 without ISIZE"),
            (&gz[..n - 1], "one byte short"),
            (&two[..n + 5], "inside the second member's header"),
            (&two[..2 * n - 3], "inside the second member's trailer"),
        ];
        for (cut, what) in cuts {
            assert!(
                !gzip_cli_accepts(cut),
                "gzip -t accepts the stream cut {what}"
            );
            for &b in GzipBackend::compiled_in() {
                let e = decode_err(b, cut, what);
                assert_eq!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof,
                    "{}: {what}: {e}",
                    b.name()
                );
            }
        }
    }

    /// Whether `gzip -t` accepts `gz`: the independent check that a damaged
    /// stream really is damaged.
    fn gzip_cli_accepts(gz: &[u8]) -> bool {
        let mut child = Command::new("gzip")
            .arg("-t")
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = gz.to_vec();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let ok = child.wait().unwrap().success();
        let _ = feeder.join().unwrap();
        ok
    }

    #[test]
    fn corrupt_streams_are_errors() {
        let gz = &layers()[2].gz;
        let n = gz.len();
        let damaged = |at: usize, what: &'static str| {
            let mut d = gz.clone();
            d[at] ^= 0x55;
            (d, what)
        };
        // Damaged deflate data can also read as a longer stream that runs out
        // of input: an error either way, of any kind. A damaged header or
        // trailer must be reported as such, not as a truncation.
        let in_deflate = [
            damaged(n / 3, "a flipped byte in the deflate data"),
            damaged(n / 2, "a flipped byte in the deflate data"),
            damaged(n - 9, "the last byte of deflate data flipped"),
        ];
        let in_wrapper = [
            damaged(0, "bad magic"),
            damaged(2, "a method other than deflate"),
            damaged(n - 8, "a wrong CRC32"),
            damaged(n - 1, "a wrong ISIZE"),
        ];
        for (d, what) in in_deflate.iter().chain(&in_wrapper) {
            assert!(
                !gzip_cli_accepts(d),
                "gzip -t accepts the stream with {what}"
            );
            for &b in GzipBackend::compiled_in() {
                let e = decode_err(b, d, what);
                if in_wrapper.iter().any(|(w, _)| w == d) {
                    assert_ne!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof,
                        "{}: {what}: {e}",
                        b.name()
                    );
                }
            }
        }
    }

    /// Trailing bytes after the last member that are not a member (garbage, zero
    /// padding, a lone magic byte): an error with every backend. flate2's
    /// `MultiGzDecoder`, the reference, reads them as the next member's header and
    /// fails; the `gzip` CLI warns and ignores them. A layer is exactly its gzip
    /// members, so strict it is (its digest covers the garbage; nothing is lost).
    #[test]
    fn trailing_garbage_after_the_last_member_is_an_error() {
        let gz = &layers()[1].gz;
        for (tail, what) in [
            (&b"not a gzip member at all"[..], "garbage"),
            (&[0u8; 512][..], "zero padding"),
            (&b"\x1f"[..], "a lone magic byte"),
        ] {
            let d = [gz.as_slice(), tail].concat();
            for &b in GzipBackend::compiled_in() {
                decode_err(b, &d, what);
            }
        }
    }
}
