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
    // Costs the fits do not identify stay the base profile's.
    let mut costs = base.pullers.get(&key).cloned().unwrap_or_default();
    costs.fitted_from = format!("{puller} pulls on {filesystem}");
    if !native {
        // Only the native snapshotter copies the tree below.
        costs.snapshot_copy_per_entry_s = 0.0;
        costs.snapshot_copy_per_byte_s = 0.0;
    }
    for f in fits
        .iter()
        .filter(|f| f.puller == puller && f.filesystem == filesystem)
    {
        let set = |slot: &mut f64, name: &str| {
            if let Some(t) = f.term(name).filter(|t| t.identified) {
                *slot = t.value;
            }
        };
        match f.phase.as_str() {
            EXTRACT_AS_MODELLED => {
                set(&mut costs.unpack_per_byte_s, "per_byte_s");
                set(
                    &mut costs.unpack_per_compressed_byte_s,
                    "per_compressed_byte_s",
                );
                set(&mut costs.unpack_per_file_s, "per_file_s");
                set(&mut costs.unpack_per_dir_s, "per_dir_s");
                set(&mut costs.unpack_per_layer_s, "per_layer_s");
            }
            TRANSFER => {
                let mut per_byte = 0.0;
                set(&mut per_byte, "per_byte_s");
                if per_byte > 0.0 {
                    costs.loopback_bps = 1.0 / per_byte;
                }
            }
            STARTUP => set(&mut costs.startup_s, "per_pull_s"),
            FINISH => set(&mut costs.finish_s, "per_pull_s"),
            SNAPSHOT => {
                if native {
                    set(&mut costs.snapshot_copy_per_entry_s, "per_entry_below_s");
                    set(&mut costs.snapshot_copy_per_byte_s, "per_byte_below_s");
                }
                set(&mut costs.snapshot_per_layer_s, "per_layer_s");
            }
            _ => {}
        }
    }
    p.pullers.insert(key, costs);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::from_records::Term;
    use crate::profiles::host::PullerCosts;

    #[test]
    fn a_puller_fit_keeps_the_base_costs_it_did_not_identify() {
        let mut base = HostProfile::builtin();
        base.pullers.insert(
            "docker".into(),
            PullerCosts {
                unpack_per_dir_s: 1e-4,
                loopback_bps: 4e8,
                ..Default::default()
            },
        );
        let term = |name: &'static str, value: f64, identified: bool| Term {
            name,
            value,
            identified,
        };
        let fit = PhaseFit {
            puller: "docker".into(),
            filesystem: "tmpfs".into(),
            phase: EXTRACT_AS_MODELLED.into(),
            terms: vec![
                term("per_file_s", 5e-5, true),
                term("per_dir_s", 0.0, false),
                term("per_byte_s", 3e-9, true),
            ],
            residuals: Vec::new(),
            distinct_layers: 3,
            converged: true,
        };
        let p = fitted_profile(&base, &[fit], "docker", "tmpfs");
        let c = &p.pullers["docker"];
        assert_eq!(c.unpack_per_file_s, 5e-5);
        assert_eq!(c.unpack_per_byte_s, 3e-9);
        // Not identified, or not fitted at all: the base's.
        assert_eq!(c.unpack_per_dir_s, 1e-4);
        assert_eq!(c.loopback_bps, 4e8);
        assert_eq!(c.fitted_from, "docker pulls on tmpfs");
    }
}
