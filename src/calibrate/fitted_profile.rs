//! A host profile from `calibrate --from-records`' fits: the costs the fits of
//! one puller on one filesystem identified, on top of a base profile.

use crate::profiles::host::HostProfile;

use super::from_records::{EXTRACT_AS_MODELLED, FINISH, PhaseFit, SNAPSHOT, STARTUP, TRANSFER};

/// `base` with the costs the fits of `puller` (a group: `pulltime/streaming`,
/// `docker`, `containerd/native`, ...) on `filesystem` identified; costs the fits
/// did not identify stay `base`'s, a cost fitted to 0 is 0.
///
/// pulltime: the modelled extraction fit's per-file, per-directory and per-byte
/// costs, the gzip, zstd and sha256 rates. What the simulator adds to them itself
/// is taken out: the spool read per tar byte from extraction and the spool write
/// per tar byte from decompression (both timed inside those stages), and the
/// streaming CPU factor becomes 1 (the stages were timed in real pulls). The
/// per-layer constant has no place in pulltime's model and is only reported.
///
/// Every puller: the loopback transfer rate, from runs that moved 8 MB or more;
/// it is what a registry on this host gives the puller only if the records were
/// pulled from one without shaping (pulltime's `pull.loopback_bps`).
///
/// Other pullers: their own unpacking costs, with the per-layer constant,
/// containerd's snapshot costs (copies only for the native snapshotter), and the
/// time before the first request and after the last layer, under `pullers.NAME`.
pub fn fitted_profile(
    base: &HostProfile,
    fits: &[PhaseFit],
    puller: &str,
    filesystem: &str,
) -> HostProfile {
    if !puller.starts_with("pulltime") {
        return with_puller_costs(base, fits, puller, filesystem);
    }
    let mut p = base.clone();
    // A rate from seconds per byte; a cost fitted to 0 is as good as free.
    let rate = |per_byte: f64| 1.0 / per_byte.max(1e-18);
    let spool_read = base.pull.spool_read_s(1_000_000_000) / 1e9;
    let spool_write = base.pull.spool_write_s(1_000_000_000) / 1e9;
    for f in fits
        .iter()
        .filter(|f| f.puller == puller && f.filesystem == filesystem)
    {
        let value = |name: &str| f.term(name).filter(|t| t.identified).map(|t| t.value);
        match f.phase.as_str() {
            EXTRACT_AS_MODELLED => {
                if let Some(v) = value("per_file_s") {
                    p.extract_per_file_s = v;
                }
                if let Some(v) = value("per_dir_s") {
                    p.extract_per_dir_s = v;
                }
                if let Some(v) = value("per_byte_s") {
                    p.extract_bps = rate(v - spool_read);
                }
            }
            "decompress_s (gzip)" => {
                if let Some(v) = value("per_byte_s") {
                    p.gzip_bps = rate(v - spool_write);
                }
            }
            TRANSFER => {
                if let Some(v) = value("per_byte_s") {
                    p.pull.loopback_bps = rate(v);
                }
            }
            "decompress_s (zstd)" => {
                if let Some(v) = value("per_byte_s") {
                    p.zstd_bps = rate(v - spool_write);
                }
            }
            "verify_s" => {
                if let Some(v) = value("per_byte_s") {
                    p.sha256_bps = rate(v);
                }
            }
            _ => {}
        }
    }
    p.pull.stream_cpu_factor = 1.0;
    p.filesystem = filesystem.to_string();
    p
}

fn with_puller_costs(
    base: &HostProfile,
    fits: &[PhaseFit],
    puller: &str,
    filesystem: &str,
) -> HostProfile {
    let mut p = base.clone();
    let key = puller.split('/').next().unwrap_or(puller).to_string();
    let native = puller == "containerd/native";
    let mut costs = crate::profiles::host::PullerCosts {
        fitted_from: format!("{puller} pulls on {filesystem}"),
        ..Default::default()
    };
    for f in fits
        .iter()
        .filter(|f| f.puller == puller && f.filesystem == filesystem)
    {
        let value = |name: &str| {
            f.term(name)
                .filter(|t| t.identified)
                .map_or(0.0, |t| t.value)
        };
        match f.phase.as_str() {
            EXTRACT_AS_MODELLED => {
                costs.unpack_per_byte_s = value("per_byte_s");
                costs.unpack_per_compressed_byte_s = value("per_compressed_byte_s");
                costs.unpack_per_file_s = value("per_file_s");
                costs.unpack_per_dir_s = value("per_dir_s");
                costs.unpack_per_layer_s = value("per_layer_s");
            }
            TRANSFER => {
                let v = value("per_byte_s");
                costs.loopback_bps = if v > 0.0 { 1.0 / v } else { 0.0 };
            }
            STARTUP => costs.startup_s = value("per_pull_s"),
            FINISH => costs.finish_s = value("per_pull_s"),
            SNAPSHOT => {
                // overlayfs does not copy: its constant is all there is.
                if native {
                    costs.snapshot_copy_per_entry_s = value("per_entry_below_s");
                    costs.snapshot_copy_per_byte_s = value("per_byte_below_s");
                }
                costs.snapshot_per_layer_s = value("per_layer_s");
            }
            _ => {}
        }
    }
    p.pullers.insert(key, costs);
    p
}
