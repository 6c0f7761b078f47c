//! One stage of a pull alone, with pulltime's own code, per file: the single-stage
//! costs `benches/peers.sh` sets beside `sha256sum`, `gzip -dc`, `pigz -dc`,
//! `zstd -dc` and `tar -x` to compute the floor (docs/performance.md, "The floor").
//!
//! ```sh
//! cargo build --release --example stage_costs
//! target/release/examples/stage_costs sha256 BLOB_OR_TAR...
//! target/release/examples/stage_costs inflate gzip|zstd|libdeflate BLOB...
//! target/release/examples/stage_costs diff-id gzip|zstd|libdeflate BLOB...
//! target/release/examples/stage_costs apply DEST TAR...
//! target/release/examples/stage_costs backend
//! ```
//!
//! - `sha256`: the digest of each file with the hasher a pull uses (sha2, through
//!   `pipeline::readers::hash_all`, read in 256 KiB blocks);
//! - `inflate`: each blob through the decompressor a pull uses
//!   (`pipeline::readers::decoder`: the gzip backend compiled in, or zstd), its
//!   output discarded; `libdeflate`: gzip with libdeflate instead, for orientation
//!   only (not a backend of a pull: it decodes whole buffers, so the blob is read
//!   into memory and the whole output allocated, both inside the timing, and its
//!   memory grows with the layer);
//! - `diff-id`: the same decompression, printing `index  sha256:HEX  bytes` of
//!   each output (untimed): a layer's diff_id, to check a backend's output;
//! - `apply`: each tar stream (already decompressed) applied in the order given
//!   into DEST, as a pull applies its layers (`layer::apply_layer` with the default
//!   options, the tar read through a 256 KiB buffer as the streaming pull reads its
//!   spool); DEST must not exist;
//! - `backend`: prints the gzip backend a pull of this build inflates with
//!   (`pipeline::gzip::gzip_backend`: `isal`, `zlib-ng`, `zlib-rs` or `miniz`).
//!
//! Except for `diff-id` and `backend`, prints one tab-separated line per file, in
//! the order given:
//! `index  wall_s  user_s  sys_s  bytes`, where the CPU times are this thread's
//! (`getrusage(RUSAGE_THREAD)`; each stage runs on the calling thread alone) and
//! `bytes` is what the stage read (sha256), wrote out (inflate) or the file
//! content it wrote (apply).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::Instant;

use pulltime::layer::{ApplyOptions, apply_layer};
use pulltime::oci::media_type::Compression;
use pulltime::pipeline::gzip::gzip_backend;
use pulltime::pipeline::readers::{Busy, Hashing, decoder, hash_all};

type Error = Box<dyn std::error::Error>;

/// User and system CPU seconds of the calling thread so far.
fn thread_cpu() -> (f64, f64) {
    // SAFETY: rusage is plain old data that getrusage fills; RUSAGE_THREAD is
    // valid on Linux for the calling thread.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut r) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(r.ru_utime), secs(r.ru_stime))
}

/// Runs `stage` once per file, printing its wall and CPU time and byte count.
fn per_file(
    files: &[String],
    mut stage: impl FnMut(&Path) -> Result<u64, Error>,
) -> Result<(), Error> {
    for (i, f) in files.iter().enumerate() {
        let (u0, s0) = thread_cpu();
        let t = Instant::now();
        let bytes = stage(Path::new(f)).map_err(|e| format!("{f}: {}", chain(e.as_ref())))?;
        let wall = t.elapsed().as_secs_f64();
        let (u1, s1) = thread_cpu();
        println!("{i}\t{wall:.6}\t{:.6}\t{:.6}\t{bytes}", u1 - u0, s1 - s0);
    }
    Ok(())
}

/// What `inflate` and `diff-id` decompress with.
#[derive(Clone, Copy)]
enum Engine {
    /// A pull's decoder for this compression.
    Pull(Compression),
    /// libdeflate, whole-buffer gzip (orientation only).
    Libdeflate,
}

impl Engine {
    fn parse(s: &str) -> Result<Engine, Error> {
        Ok(match s {
            "gzip" => Engine::Pull(Compression::Gzip),
            "zstd" => Engine::Pull(Compression::Zstd),
            "libdeflate" => Engine::Libdeflate,
            other => return Err(format!("unknown compression {other}; {USAGE}").into()),
        })
    }

    /// The decompressed content of the blob at `p`, streamed.
    fn open(self, p: &Path) -> Result<Box<dyn Read>, Error> {
        Ok(match self {
            Engine::Pull(c) => decoder(c, File::open(p)?)?,
            Engine::Libdeflate => Box::new(io::Cursor::new(libdeflate_gunzip(p)?)),
        })
    }
}

/// The blob at `p` gunzipped whole by libdeflate: the output buffer sized from the
/// trailer's ISIZE (exact for one member under 4 GiB), doubled while too small.
/// libdeflater decodes one gzip member: multi-member blobs are an error.
fn libdeflate_gunzip(p: &Path) -> Result<Vec<u8>, Error> {
    let gz = std::fs::read(p)?;
    let isize = match gz.len().checked_sub(4) {
        Some(at) => u32::from_le_bytes(gz[at..].try_into()?) as usize,
        None => return Err("too short for gzip".into()),
    };
    let mut d = libdeflater::Decompressor::new();
    let mut out = vec![0u8; isize.max(1 << 16)];
    loop {
        match d.gzip_decompress(&gz, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return Ok(out);
            }
            Err(libdeflater::DecompressionError::InsufficientSpace) => {
                out = vec![0u8; out.len() * 2]
            }
            Err(e) => return Err(format!("libdeflate: {e}").into()),
        }
    }
}

const USAGE: &str = "usage: stage_costs sha256 FILE... | inflate gzip|zstd|libdeflate BLOB... \
    | diff-id gzip|zstd|libdeflate BLOB... | apply DEST TAR... | backend";

/// An error with its causes: "write file failed: No space left on device".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

fn main() {
    if let Err(e) = run() {
        eprintln!("stage_costs: {}", chain(e.as_ref()));
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        return Err(USAGE.into());
    };
    let mut buf = vec![0u8; 256 << 10];
    match (cmd.as_str(), rest) {
        ("backend", []) => println!("{}", gzip_backend()),
        ("sha256", files) if !files.is_empty() => {
            per_file(files, |p| Ok(hash_all(File::open(p)?)?.1))?
        }
        ("inflate", [engine, blobs @ ..]) if !blobs.is_empty() => {
            let engine = Engine::parse(engine)?;
            per_file(blobs, |p| {
                if let Engine::Libdeflate = engine {
                    // The whole output at once: no copy out through `buf`.
                    return Ok(libdeflate_gunzip(p)?.len() as u64);
                }
                let mut d = engine.open(p)?;
                let mut out = 0u64;
                loop {
                    match d.read(&mut buf)? {
                        0 => return Ok(out),
                        n => out += n as u64,
                    }
                }
            })?
        }
        ("diff-id", [engine, blobs @ ..]) if !blobs.is_empty() => {
            let engine = Engine::parse(engine)?;
            for (i, b) in blobs.iter().enumerate() {
                let p = Path::new(b);
                let mut h = Hashing::new(engine.open(p)?, Busy::new(false));
                io::copy(&mut h, &mut io::sink()).map_err(|e| format!("{b}: {e}"))?;
                println!("{i}\t{}\t{}", h.digest(), h.byte_count());
            }
        }
        ("apply", [dest, tars @ ..]) if !tars.is_empty() => {
            let dest = Path::new(dest);
            if dest.exists() {
                return Err(
                    format!("{}: exists; apply needs a new directory", dest.display()).into(),
                );
            }
            std::fs::create_dir_all(dest)?;
            let options = ApplyOptions::default();
            per_file(tars, |p| {
                let tar = BufReader::with_capacity(256 << 10, File::open(p)?);
                Ok(apply_layer(tar, dest, &options)?.file_bytes)
            })?
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
