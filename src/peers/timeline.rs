//! From what was seen (the proxy's blobs, the puller's events) to a run record:
//! per-layer download windows from the proxy, extraction windows from the puller,
//! nothing where neither saw anything.

use crate::oci::record::{ColdCheck, ImageInfo, LayerRun, RequestKind, RunRecord, Unobserved};

use super::Observed;
use super::proxy::ProxyLog;

/// One run of another puller, assembled. `counts` are the layers' entry counts as
/// pulltime read them from the blobs (per layer, manifest order).
pub fn run_record(
    image: &ImageInfo,
    config_size: u64,
    counts: &[LayerRun],
    log: &ProxyLog,
    observed: &Observed,
) -> RunRecord {
    // Offsets are re-based on the pull command's (or API call's) start: the
    // bookkeeping before it (CPU samples, spawning) is not the puller's time.
    let t0 = observed.window.0;
    let mut requests = log.requests.clone();
    for r in &mut requests {
        r.start_s -= t0;
        if r.kind == RequestKind::Blob
            && r.path.ends_with(&format!("/blobs/{}", image.config_digest))
        {
            r.kind = RequestKind::Config.as_str().into();
        }
    }
    let mut layers: Vec<LayerRun> = image
        .layers
        .iter()
        .enumerate()
        .map(|(i, info)| {
            // A blob whose every request failed has no body window.
            let seen = log
                .blobs
                .get(&info.digest)
                .filter(|b| b.end_s >= b.headers_s && b.headers_s >= b.start_s)
                .map(|b| super::proxy::BlobSeen {
                    start_s: b.start_s - t0,
                    headers_s: b.headers_s - t0,
                    end_s: b.end_s - t0,
                    ..b.clone()
                });
            let seen = seen.as_ref();
            let shift = |w: (f64, f64)| (w.0 - t0, w.1 - t0);
            let count = counts.get(i).cloned().unwrap_or_default();
            let extract = observed.extract[i].map(shift);
            let started = observed.extract_started[i]
                .map(|t| t - t0)
                .or(extract.map(|w| w.0));
            let download_end = seen
                .map(|b| b.end_s)
                .or(observed.download_done[i].map(|t| t - t0));
            let transfer = seen.map(|b| b.end_s - b.headers_s).unwrap_or(0.0);
            LayerRun {
                index: i,
                digest: info.digest.clone(),
                compressed_bytes: seen.map_or(0, |b| b.bytes),
                uncompressed_bytes: info.uncompressed_bytes,
                files: count.files,
                dirs: count.dirs,
                symlinks: count.symlinks,
                hardlinks: count.hardlinks,
                whiteouts: count.whiteouts,
                skipped_devices: 0,
                skipped_xattrs: 0,
                start_s: seen.map(|b| b.start_s).or(started).unwrap_or(0.0),
                end_s: extract
                    .map(|w| w.1)
                    .or(started)
                    .or(download_end)
                    .unwrap_or(0.0),
                download_s: seen.map(|b| b.end_s - b.start_s),
                ttfb_s: seen.map(|b| b.headers_s - b.start_s),
                redirect_s: seen.map(|b| b.redirect_s),
                throughput_bps: seen.map(|b| {
                    if transfer > 0.0 {
                        b.bytes as f64 / transfer
                    } else {
                        0.0
                    }
                }),
                verify_s: None,
                decompress_s: None,
                extract_s: extract.map(|(a, b)| b - a),
                stall_s: None,
                queued_s: match (started, download_end) {
                    (Some(s), Some(d)) => Some((s - d).max(0.0)),
                    _ => None,
                },
                retries: seen.map_or(0, |b| {
                    b.requests.saturating_sub(1 + u32::from(b.redirect_s > 0.0))
                }),
                ..LayerRun::default()
            }
        })
        .collect();
    let mut unobserved = observed.unobserved.clone();
    if observed.applies_in_order {
        let started: Vec<Option<f64>> = observed
            .extract_started
            .iter()
            .map(|s| s.map(|t| t - t0))
            .collect();
        infer_in_order_ends(
            &mut layers,
            &started,
            observed.all_applied_at.map(|t| t - t0),
            &mut unobserved,
        );
    }
    let first_layer = layers
        .iter()
        .filter(|l| l.download_s.is_some())
        .map(|l| l.start_s)
        .fold(f64::INFINITY, f64::min);
    let wall_s = observed.window.1 - t0;
    complete_unobserved(&layers, &mut unobserved);
    RunRecord {
        index: 0,
        wall_s,
        resolve_s: if first_layer.is_finite() {
            first_layer
        } else {
            wall_s
        },
        layers,
        requests,
        connections: log.connections.clone(),
        cold: Some(cold_check(image, config_size, log)),
        cpu: observed.cpu.clone(),
        puller_events: observed
            .events
            .iter()
            .map(|e| crate::oci::record::PullerEvent {
                at_s: e.at_s - t0,
                ..e.clone()
            })
            .collect(),
        unobserved,
        ..RunRecord::default()
    }
}

/// How long after its last byte a layer may start applying and still count as
/// having waited for its download rather than for the layer below: the puller's
/// own bookkeeping between the two (closing its temporary file, scheduling).
const APPLY_LAG_S: f64 = 0.05;

/// For a puller that applies layers in order and shows only when each starts
/// (`started`, per layer, from the run start): layer i's extraction ends where layer i+1's starts, when i+1 had been
/// downloaded (by more than [`APPLY_LAG_S`]) before it started, so that it was
/// waiting for layer i; the last layer's ends at `all_applied_at`. Layers whose
/// end cannot be told keep `extract_s` null, and `unobserved` says which.
fn infer_in_order_ends(
    layers: &mut [LayerRun],
    started: &[Option<f64>],
    all_applied_at: Option<f64>,
    unobserved: &mut Vec<Unobserved>,
) {
    let n = layers.len();
    let mut unknown = Vec::new();
    for i in 0..n {
        if layers[i].extract_s.is_some() {
            continue;
        }
        let Some(start) = started.get(i).copied().flatten() else {
            unknown.push(i.to_string());
            continue;
        };
        let end = if i + 1 < n {
            let next = &layers[i + 1];
            let next_downloaded = next.start_s + next.download_s.unwrap_or(f64::INFINITY);
            started
                .get(i + 1)
                .copied()
                .flatten()
                .filter(|s| next_downloaded + APPLY_LAG_S <= *s)
        } else {
            all_applied_at
        };
        match end.filter(|e| *e >= start) {
            Some(e) => {
                layers[i].extract_s = Some(e - start);
                layers[i].end_s = e;
            }
            None => unknown.push(i.to_string()),
        }
    }
    unobserved.retain(|u| u.phase != "extract_s");
    if !unknown.is_empty() {
        unobserved.push(Unobserved {
            phase: "extract_s".into(),
            reason: format!(
                "the puller shows only when it starts applying a layer; an end is inferred from the next layer's start when that layer was waiting for it, which layer(s) {} were not followed by",
                unknown.join(", ")
            ),
        });
    }
}

/// Every phase that is `None` in some layer gets a reason: the puller's own
/// (docker hashes while downloading, ...), or, where the phase is seen for other
/// layers, that this puller gave no sign of it for these.
fn complete_unobserved(layers: &[LayerRun], unobserved: &mut Vec<Unobserved>) {
    type PhaseOf = fn(&LayerRun) -> Option<f64>;
    let phases: [(&str, PhaseOf); 9] = [
        ("download_s", |l| l.download_s),
        ("ttfb_s", |l| l.ttfb_s),
        ("redirect_s", |l| l.redirect_s),
        ("throughput_bps", |l| l.throughput_bps),
        ("verify_s", |l| l.verify_s),
        ("decompress_s", |l| l.decompress_s),
        ("extract_s", |l| l.extract_s),
        ("stall_s", |l| l.stall_s),
        ("queued_s", |l| l.queued_s),
    ];
    for (phase, of) in phases {
        let missing: Vec<String> = layers
            .iter()
            .filter(|l| of(l).is_none())
            .map(|l| l.index.to_string())
            .collect();
        if missing.is_empty() || unobserved.iter().any(|u| u.phase == phase) {
            continue;
        }
        let reason = if phase == "download_s"
            || phase == "ttfb_s"
            || phase == "throughput_bps"
            || phase == "redirect_s"
        {
            format!(
                "the proxy saw no complete download of layer(s) {}: the puller already had them, or its requests failed",
                missing.join(", ")
            )
        } else {
            format!(
                "the puller gave no sign of it for layer(s) {}",
                missing.join(", ")
            )
        };
        unobserved.push(Unobserved {
            phase: phase.into(),
            reason,
        });
    }
}

/// Did the puller fetch every byte of every layer (and the config)?
pub fn cold_check(image: &ImageInfo, config_size: u64, log: &ProxyLog) -> ColdCheck {
    let fetched = |digest: &str| log.blobs.get(digest).map_or(0, |b| b.bytes);
    let not_fetched: Vec<String> = image
        .layers
        .iter()
        .filter(|l| fetched(&l.digest) < l.compressed_bytes)
        .map(|l| l.digest.clone())
        .collect();
    ColdCheck {
        all_bytes_fetched: not_fetched.is_empty(),
        fetched_bytes: image.layers.iter().map(|l| fetched(&l.digest)).sum::<u64>(),
        expected_bytes: image.compressed_bytes,
        config_fetched: config_size > 0 && fetched(&image.config_digest) >= config_size,
        not_fetched,
    }
}
