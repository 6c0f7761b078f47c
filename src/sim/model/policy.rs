//! The CPU side of the model: what each layer's stages cost on a host, and how a
//! policy schedules them after (or, streaming, during) the downloads.

use crate::profiles::host::HostProfile;

use super::{Flow, SimLayerRun};
use crate::sim::{Policy, SimError, SimImage, SimLayer};

/// What pulltime's streaming pipeline costs on top of its stages' CPU, for one
/// flow of bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineCpu {
    /// CPU seconds per transferred byte spent on the pull's cores by someone else:
    /// a registry on this host serving it.
    pub serve_per_byte: f64,
    /// The host's streaming CPU factor.
    pub factor: f64,
}

impl PipelineCpu {
    /// For `flow` on `host`.
    pub fn of(flow: &Flow, host: &HostProfile) -> PipelineCpu {
        PipelineCpu {
            serve_per_byte: if flow.registry_on_host {
                host.pull.serve_cpu_s_per_byte
            } else {
                0.0
            },
            factor: host.pull.stream_cpu_factor,
        }
    }
}

/// [`cpu_costs`]' result: CPU seconds of one layer's stages, each done alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuCosts {
    /// Hashing the blob and the tar stream.
    pub verify: f64,
    /// Decompressing (0 for an uncompressed layer).
    pub decompress: f64,
    /// Extracting: file content, then per file and per directory.
    pub extract: f64,
}

/// CPU costs of one layer on `host`.
pub fn cpu_costs(l: &SimLayer, host: &HostProfile) -> CpuCosts {
    let verify = (l.compressed + l.uncompressed) as f64 / host.sha256_bps;
    let decompress = host
        .decompress_bps(l.compression)
        .map_or(0.0, |bps| l.uncompressed as f64 / bps);
    let extract = l.file_bytes as f64 / host.extract_bps
        + l.files as f64 * host.extract_per_file_s
        + l.dirs as f64 * host.extract_per_dir_s;
    CpuCosts {
        verify,
        decompress,
        extract,
    }
}

/// CPU seconds of one layer in a streaming pull, as its stages cost alone (before
/// `pull.stream_cpu_factor`), by the thread that does them: the download task
/// (hashing the blob and writing it to its spool as it arrives), the decoder
/// (reading the spool back, decompressing, hashing the tar stream and writing it
/// to its own spool) and the extractor (reading that spool, extracting).
///
/// Spools keep bytes in memory for a reader that is already tailing them, and
/// write to a file only what runs ahead of it. The first layer's tar stream is
/// tailed from its first byte (`first`), so it costs no spool file; the model
/// counts every other stream as spilled, an upper bound that the calibrated
/// `stream_cpu_factor` brings down to what real pulls cost.
pub fn stream_work(l: &SimLayer, host: &HostProfile, first: bool) -> StreamWork {
    let costs = cpu_costs(l, host);
    let o = &host.pull;
    let hash = |bytes: u64| bytes as f64 / host.sha256_bps;
    let tar_spool = if first { 0 } else { l.uncompressed };
    StreamWork {
        transfer: hash(l.compressed) + o.spool_write_s(l.compressed),
        decode: o.spool_read_s(l.compressed)
            + costs.decompress
            + hash(l.uncompressed)
            + o.spool_write_s(tar_spool),
        extract: o.spool_read_s(tar_spool) + costs.extract,
    }
}

/// [`stream_work`]'s result: CPU seconds by thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamWork {
    /// The download task, while the body arrives.
    pub transfer: f64,
    /// The decoder thread.
    pub decode: f64,
    /// The extractor.
    pub extract: f64,
}

impl StreamWork {
    /// All of it.
    pub fn total(&self) -> f64 {
        self.transfer + self.decode + self.extract
    }
}

/// One layer's CPU work as the policy's puller pays it, by what drives it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LayerWork {
    /// Hashing after the layer is downloaded, as the policy schedules it
    /// (pulltime's blob and tar stream; containerd's and umoci's tar stream; none
    /// for docker and podman, or inside the unpack of pullers with fitted costs).
    pub verify: f64,
    /// Inflating (pulltime's own stage; other pullers' is in `unpack_bytes`).
    pub decompress: f64,
    /// Writing file content, per byte (other pullers: inflating included, per
    /// compressed and per written byte).
    pub unpack_bytes: f64,
    /// Creating files and directories, per entry.
    pub entries: f64,
    /// A fixed cost per layer.
    pub per_layer: f64,
    /// Making the layer's snapshot (containerd's native snapshotter copies the tree
    /// below).
    pub snapshot: f64,
    /// `unpack_bytes` includes inflating (another puller's fitted unpack).
    pub unpack_inflates: bool,
}

impl LayerWork {
    /// Extraction as the record shows it: everything but hashing and inflating.
    pub fn extract(&self) -> f64 {
        self.unpack_bytes + self.entries + self.per_layer + self.snapshot
    }

    /// Each part with the name explanations give it.
    pub fn parts(&self) -> [(&'static str, f64); 6] {
        [
            ("hashing", self.verify),
            ("inflate CPU", self.decompress),
            (
                if self.unpack_inflates {
                    "inflate + write per byte"
                } else {
                    "extraction per byte"
                },
                self.unpack_bytes,
            ),
            ("extraction per entry", self.entries),
            ("per-layer overhead", self.per_layer),
            ("snapshot copy", self.snapshot),
        ]
    }
}

/// The files, directories and bytes of the layers below one layer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Below {
    /// Files and directories.
    pub entries: u64,
    /// Tar stream bytes.
    pub bytes: u64,
}

/// What layer `index` of an image costs `policy`'s puller on `host`: the
/// puller's own fitted costs (`[pullers.NAME]`) when the profile has them, else
/// pulltime's stages.
pub fn layer_work(
    l: &SimLayer,
    index: usize,
    below: Below,
    host: &HostProfile,
    policy: Policy,
) -> LayerWork {
    let Some(c) = policy.own_costs(host) else {
        let costs = cpu_costs(l, host);
        let unpack_bytes = l.file_bytes as f64 / host.extract_bps;
        // The hashing each policy does after a layer is downloaded: docker and
        // podman hash while downloading; containerd and umoci hash the tar
        // stream as they unpack.
        let verify = match policy {
            Policy::Docker | Policy::Podman => 0.0,
            Policy::Containerd | Policy::SkopeoUmoci => l.uncompressed as f64 / host.sha256_bps,
            Policy::Pulltime | Policy::Staged => costs.verify,
        };
        return LayerWork {
            verify,
            decompress: costs.decompress,
            unpack_bytes,
            entries: costs.extract - unpack_bytes,
            per_layer: 0.0,
            snapshot: 0.0,
            unpack_inflates: false,
        };
    };
    LayerWork {
        verify: 0.0,
        decompress: 0.0,
        unpack_bytes: l.uncompressed as f64 * c.unpack_per_byte_s
            + l.compressed as f64 * c.unpack_per_compressed_byte_s,
        entries: l.files as f64 * c.unpack_per_file_s + l.dirs as f64 * c.unpack_per_dir_s,
        per_layer: c.unpack_per_layer_s,
        // containerd's native snapshotter copies everything below first.
        snapshot: if index > 0 {
            c.snapshot_per_layer_s
                + below.entries as f64 * c.snapshot_copy_per_entry_s
                + below.bytes as f64 * c.snapshot_copy_per_byte_s
        } else {
            0.0
        },
        unpack_inflates: true,
    }
}

/// Decides when each layer's CPU work runs and when it is applied, from its
/// download times; fills in the CPU costs. `pipeline` only matters to pulltime's
/// streaming, whose CPU simulation may fail ([`SimError`]).
pub fn apply_policy(
    layers: &mut [SimLayerRun],
    image: &SimImage,
    host: &HostProfile,
    policy: Policy,
    resolve_s: f64,
    pipeline: PipelineCpu,
) -> Result<(), SimError> {
    if policy == Policy::Pulltime {
        return stream_policy(layers, image, host, resolve_s, pipeline);
    }
    let mut prev_end = resolve_s;
    let last_download = layers
        .iter()
        .map(|l| l.download_end_s)
        .fold(resolve_s, f64::max);
    let fitted = policy.own_costs(host).is_some();
    let mut below = Below::default();
    for (i, l) in image.layers.iter().enumerate() {
        let lr = &mut layers[i];
        let work = layer_work(l, i, below, host, policy);
        below.entries += l.files + l.dirs;
        below.bytes += l.uncompressed;
        if lr.cached {
            lr.end_s = prev_end;
            continue;
        }
        let (decompress, extract) = (work.decompress, work.extract());
        // The record shows what hashing the layer costs on this host, whether or
        // not the policy waits for it (docker hashes while downloading).
        lr.verify_s = if fitted {
            0.0
        } else {
            cpu_costs(l, host).verify
        };
        lr.decompress_s = decompress;
        lr.extract_s = extract;
        let (compressed_hash, uncompressed_hash) = (
            l.compressed as f64 / host.sha256_bps,
            l.uncompressed as f64 / host.sha256_bps,
        );
        lr.end_s = match policy {
            Policy::Pulltime => unreachable!("streaming is simulated by stream_policy"),
            // Docker and podman: a layer is extracted after its download completes
            // (the digest is checked while downloading), one layer at a time, in
            // order.
            Policy::Docker | Policy::Podman => {
                prev_end.max(lr.download_end_s) + decompress + extract
            }
            // containerd (classic), skopeo then umoci: fetch everything, then unpack
            // layer by layer. With their own costs, the uncompressed hash is inside
            // the measured unpack.
            Policy::Containerd | Policy::SkopeoUmoci if fitted => {
                prev_end.max(last_download) + extract
            }
            Policy::Containerd | Policy::SkopeoUmoci => {
                prev_end.max(last_download) + decompress + extract + uncompressed_hash
            }
            // pulltime --mode staged: fetch everything, then per layer verify,
            // decompress, verify the tar, extract.
            Policy::Staged => {
                prev_end.max(last_download)
                    + compressed_hash
                    + decompress
                    + uncompressed_hash
                    + extract
            }
        };
        prev_end = lr.end_s;
    }
    Ok(())
}

/// pulltime streaming: each download task hashes and spools its blob as it
/// arrives; decoder threads (one per core) take layers in manifest order and
/// decompress and hash each as its bytes arrive; one thread extracts in order as
/// decoded bytes arrive; all of them, and a registry serving from this host, share
/// the cores (`crate::sim::cpu`).
fn stream_policy(
    layers: &mut [SimLayerRun],
    image: &SimImage,
    host: &HostProfile,
    resolve_s: f64,
    pipeline: PipelineCpu,
) -> Result<(), SimError> {
    let factor = pipeline.factor;
    let mut fetched = Vec::new();
    let mut input = Vec::new();
    for (i, l) in image.layers.iter().enumerate() {
        let lr = &mut layers[i];
        if lr.cached {
            continue;
        }
        let costs = cpu_costs(l, host);
        lr.verify_s = costs.verify * factor;
        lr.decompress_s = costs.decompress * factor;
        lr.extract_s = costs.extract * factor;
        let work = stream_work(l, host, fetched.is_empty());
        let body = lr.start_s + lr.ttfb_s;
        let in_flight = lr.download_end_s - body;
        // The transfer's own CPU (the download task's, and a registry's on this
        // host) runs while the body arrives; an instantaneous transfer's lands on
        // the decoder, which waits for it.
        let transfer = work.transfer * factor + l.compressed as f64 * pipeline.serve_per_byte;
        let (transfer_cores, transfer_on_decoder) = if in_flight > 1e-12 {
            (transfer / in_flight, 0.0)
        } else {
            (0.0, transfer)
        };
        input.push(crate::sim::cpu::StreamLayer {
            body_s: body,
            download_end_s: lr.download_end_s.max(body),
            decode_work: work.decode * factor + transfer_on_decoder,
            extract_work: work.extract * factor,
            transfer_cores,
        });
        fetched.push(i);
    }
    let times = crate::sim::cpu::stream(&input, host.cpus, resolve_s)?;
    let mut prev_end = resolve_s;
    let mut done = fetched.into_iter().zip(times).peekable();
    for (i, lr) in layers.iter_mut().enumerate() {
        lr.end_s = match done.next_if(|(f, _)| *f == i) {
            Some((_, t)) => t.extracted_s.max(prev_end),
            // Cached: nothing to apply.
            None => prev_end,
        };
        prev_end = lr.end_s;
    }
    Ok(())
}
