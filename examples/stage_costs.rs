//! One stage of a pull alone, with pulltime's own code, per file: the single-stage
//! costs `benches/peers.sh` sets beside `sha256sum`, `gzip -dc`, `pigz -dc`,
//! `zstd -dc` and `tar -x` to compute the floor (docs/performance.md, "The floor").
//!
//! ```sh
//! cargo build --release --example stage_costs
//! target/release/examples/stage_costs sha256 BLOB_OR_TAR...
//! target/release/examples/stage_costs inflate gzip|zstd BLOB...
//! target/release/examples/stage_costs apply DEST TAR...
//! target/release/examples/stage_costs backend
//! ```
//!
//! - `sha256`: the digest of each file with the hasher a pull uses (sha2, through
//!   `pipeline::readers::hash_all`, read in 256 KiB blocks);
//! - `inflate`: each blob through the decompressor a pull uses
//!   (`pipeline::readers::decoder`: flate2 with the gzip backend compiled in, or
//!   zstd), its output discarded;
//! - `apply`: each tar stream (already decompressed) applied in the order given
//!   into DEST, as a pull applies its layers (`layer::apply_layer` with the default
//!   options, the tar read through a 256 KiB buffer as the streaming pull reads its
//!   spool); DEST must not exist;
//! - `backend`: prints the gzip backend compiled in (`zlib-ng`, `zlib-rs` or
//!   `miniz`).
//!
//! Prints one tab-separated line per file, in the order given:
//! `index  wall_s  user_s  sys_s  bytes`, where the CPU times are this thread's
//! (`getrusage(RUSAGE_THREAD)`; each stage runs on the calling thread alone) and
//! `bytes` is what the stage read (sha256), wrote out (inflate) or the file
//! content it wrote (apply).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::time::Instant;

use pulltime::layer::{ApplyOptions, apply_layer};
use pulltime::oci::media_type::Compression;
use pulltime::pipeline::readers::{decoder, hash_all};

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
        let bytes = stage(Path::new(f)).map_err(|e| format!("{f}: {e}"))?;
        let wall = t.elapsed().as_secs_f64();
        let (u1, s1) = thread_cpu();
        println!("{i}\t{wall:.6}\t{:.6}\t{:.6}\t{bytes}", u1 - u0, s1 - s0);
    }
    Ok(())
}

/// The gzip backend flate2 was built with (its precedence: a C zlib, then
/// zlib-rs, then miniz_oxide).
fn backend() -> &'static str {
    if cfg!(feature = "gzip-zlib-ng") {
        "zlib-ng"
    } else if cfg!(feature = "gzip-zlib-rs") {
        "zlib-rs"
    } else {
        "miniz"
    }
}

const USAGE: &str =
    "usage: stage_costs sha256 FILE... | inflate gzip|zstd BLOB... | apply DEST TAR... | backend";

fn main() {
    if let Err(e) = run() {
        eprintln!("stage_costs: {e}");
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
        ("backend", []) => println!("{}", backend()),
        ("sha256", files) if !files.is_empty() => {
            per_file(files, |p| Ok(hash_all(File::open(p)?)?.1))?
        }
        ("inflate", [format, blobs @ ..]) if !blobs.is_empty() => {
            let compression = match format.as_str() {
                "gzip" => Compression::Gzip,
                "zstd" => Compression::Zstd,
                other => return Err(format!("unknown compression {other}; {USAGE}").into()),
            };
            per_file(blobs, |p| {
                let mut d = decoder(compression, File::open(p)?)?;
                let mut out = 0u64;
                loop {
                    match d.read(&mut buf)? {
                        0 => return Ok(out),
                        n => out += n as u64,
                    }
                }
            })?
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
