//! One synthetic layer: a directory tree under the layer's path, files with
//! log-normal sizes and content kinds balanced to the mix by bytes, symlinks, and
//! whiteouts for deletions, streamed through the compressor into the layout.

use std::io::{self, BufWriter, Write};

use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::content::{ContentReader, Kind, Rng, Vocabulary};
use super::{SynthLayer, SynthOptions};
use crate::oci::layout::Layout;
use crate::oci::media_type::Compression;
use crate::profiles::image::LayerProfile;

/// A fixed mtime so that layers are reproducible.
const MTIME: u64 = 1_600_000_000;
/// Files per directory, on average.
const FILES_PER_DIR: u64 = 30;

/// Writes the layer into `layout`; returns its descriptor and what it contains.
pub fn write_layer(
    layout: &Layout,
    lp: &LayerProfile,
    index: usize,
    seed: u64,
    options: SynthOptions,
) -> io::Result<(serde_json::Value, SynthLayer)> {
    let scale = |n: u64| -> u64 {
        if n == 0 {
            0
        } else {
            ((n as f64 * options.scale).round() as u64).max(1)
        }
    };
    let files = scale(lp.files);
    let size = if lp.size == 0 {
        0
    } else {
        ((lp.size as f64 * options.scale).round() as u64).max(files)
    };
    let symlinks = scale(lp.symlinks);
    let mut rng = Rng::new(seed);
    let vocab = Vocabulary::new(&mut rng);

    let tmp = layout.temp_blob()?;
    let blob_hash = HashingWriter::new(BufWriter::with_capacity(1 << 20, tmp.reopen()?));
    let encoder = match options.compression {
        Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
            blob_hash,
            flate2::Compression::default(),
        )),
        Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(blob_hash, 3)?),
        Compression::None => Encoder::None(blob_hash),
    };
    let mut tar = tar::Builder::new(HashingWriter::new(encoder));
    tar.mode(tar::HeaderMode::Deterministic);

    let base = lp.path.trim_matches('/');
    let mut dirs: Vec<(String, u32)> = Vec::new();
    // The layer's path and its parents.
    let mut acc = String::new();
    for c in base.split('/').filter(|c| !c.is_empty()) {
        acc = if acc.is_empty() {
            c.to_string()
        } else {
            format!("{acc}/{c}")
        };
        append_dir(&mut tar, &acc)?;
    }
    if files > 0 {
        let n_dirs = files.div_ceil(FILES_PER_DIR).max(1);
        let root = base.to_string();
        dirs.push((root.clone(), 0));
        for d in 0..n_dirs.saturating_sub(1) {
            let want_depth = 1 + rng.below(u64::from(lp.depth.max(1))) as u32;
            let parents: Vec<&(String, u32)> = dirs
                .iter()
                .filter(|(_, dep)| *dep + 1 == want_depth)
                .collect();
            let (parent, dep) = if parents.is_empty() {
                dirs[rng.below(dirs.len() as u64) as usize].clone()
            } else {
                parents[rng.below(parents.len() as u64) as usize].clone()
            };
            let path = join(&parent, &format!("d{index}-{d}"));
            append_dir(&mut tar, &path)?;
            dirs.push((path, dep + 1));
        }
    }

    // Log-normal file sizes scaled to the layer size.
    let weights: Vec<f64> = (0..files)
        .map(|_| (lp.size_sigma * rng.normal()).exp())
        .collect();
    let total_w: f64 = weights.iter().sum();
    let mut sizes: Vec<u64> = weights
        .iter()
        .map(|w| (w / total_w * size as f64).floor() as u64)
        .collect();
    let assigned: u64 = sizes.iter().sum();
    if let Some(first) = sizes.first_mut() {
        *first += size - assigned.min(size);
    }
    // Kinds balanced by bytes toward the mix.
    let mix = [lp.mix.text, lp.mix.binary, lp.mix.compressed];
    let mix_total: f64 = mix.iter().sum();
    let mut kind_bytes = [0f64; 3];
    let mut file_paths = Vec::with_capacity(files as usize);
    for (k, file_size) in sizes.iter().enumerate() {
        let done: f64 = kind_bytes.iter().sum::<f64>() + *file_size as f64;
        let deficit = |i: usize| mix[i] / mix_total * done - kind_bytes[i];
        let kind_i = (0..3)
            .max_by(|a, b| deficit(*a).total_cmp(&deficit(*b)))
            .expect("three kinds");
        kind_bytes[kind_i] += *file_size as f64;
        let (kind, ext, mode) = match kind_i {
            0 => (Kind::Text, "py", 0o644),
            1 => (Kind::Binary, "so", 0o755),
            _ => (Kind::Compressed, "gz", 0o644),
        };
        let dir = &dirs[rng.below(dirs.len() as u64) as usize].0;
        let path = join(dir, &format!("f{index}-{k}.{ext}"));
        let mut h = header(tar::EntryType::Regular, mode, *file_size);
        let content = ContentReader::new(kind, rng.next_u64(), *file_size, &vocab);
        tar.append_data(&mut h, &path, content)?;
        file_paths.push(path);
    }
    for s in 0..symlinks {
        let (Some(target), Some((dir, _))) = (
            file_paths.get(rng.below(file_paths.len() as u64) as usize),
            dirs.get(rng.below(dirs.len() as u64) as usize),
        ) else {
            break; // a layer without files has nothing to link to
        };
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        tar.append_link(
            &mut h,
            join(dir, &format!("l{index}-{s}")),
            format!("/{target}"),
        )?;
    }
    for gone in &lp.delete {
        let gone = gone.trim_matches('/');
        let (parent, name) = gone.rsplit_once('/').unwrap_or(("", gone));
        let mut h = header(tar::EntryType::Regular, 0o644, 0);
        tar.append_data(&mut h, join(parent, &format!(".wh.{name}")), io::empty())?;
    }

    let diff_writer = tar.into_inner()?;
    let (diff_id, uncompressed) = diff_writer.digest();
    let blob_writer = diff_writer.inner.finish()?;
    let (digest, compressed) = blob_writer.digest();
    let mut file = blob_writer.inner.into_inner().map_err(|e| e.into_error())?;
    file.flush()?;
    file.sync_data()?;
    drop(file);
    layout.commit_blob(tmp, &digest)?;
    let media_type = match options.compression {
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
    };
    let descriptor = json!({
        "mediaType": media_type,
        "digest": digest,
        "size": compressed,
        "annotations": {"org.pulltime.layer": lp.name},
    });
    Ok((
        descriptor,
        SynthLayer {
            digest,
            diff_id,
            compressed_bytes: compressed,
            uncompressed_bytes: uncompressed,
            files,
        },
    ))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut h, format!("{path}/"), io::empty())
}

/// Counts and hashes what passes through.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
    fn digest(&self) -> (String, u64) {
        (
            format!("sha256:{}", hex::encode(self.hasher.clone().finalize())),
            self.bytes,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type BlobSink = HashingWriter<BufWriter<std::fs::File>>;

enum Encoder {
    Gzip(flate2::write::GzEncoder<BlobSink>),
    Zstd(zstd::stream::write::Encoder<'static, BlobSink>),
    None(BlobSink),
}

impl Encoder {
    fn finish(self) -> io::Result<BlobSink> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::None(w) => Ok(w),
        }
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}
