//! What changed in the image between two records (layers added and removed,
//! bytes and files), so that a regression points at its cause.

use crate::oci::record::PullRecord;
use crate::report::{human_bytes, short_digest};

fn files(r: &PullRecord) -> i64 {
    r.runs
        .last()
        .map_or(0, |run| run.layers.iter().map(|l| l.files as i64).sum())
}

/// Layers added and removed, bytes and files: what may explain a change.
pub fn image_changes(old: &PullRecord, new: &PullRecord) -> Vec<String> {
    let (o, n) = (&old.image, &new.image);
    let mut out = Vec::new();
    let simulated: Vec<&str> = [(old, "old"), (new, "new")]
        .iter()
        .filter(|(r, _)| r.image.platform_manifest_digest.is_empty())
        .map(|(_, side)| *side)
        .collect();
    if !simulated.is_empty() {
        out.push(format!(
            "image not compared: the {} record has no manifest digest (simulated from a profile or layout)",
            simulated.join(" and ")
        ));
        return out;
    }
    if o.platform_manifest_digest == n.platform_manifest_digest {
        out.push(format!(
            "image unchanged (manifest {})",
            short_digest(&n.platform_manifest_digest)
        ));
        return out;
    }
    out.push(format!(
        "image changed: manifest {} -> {}",
        short_digest(&o.platform_manifest_digest),
        short_digest(&n.platform_manifest_digest)
    ));
    let files_of = |r: &PullRecord, digest: &str| {
        r.runs
            .last()
            .and_then(|run| run.layers.iter().find(|l| l.digest == digest))
            .map_or(0, |l| l.files)
    };
    for l in &n.layers {
        if !o.layers.iter().any(|x| x.digest == l.digest) {
            out.push(format!(
                "layer added: {} ({} compressed, {} uncompressed, {})",
                short_digest(&l.digest),
                human_bytes(l.compressed_bytes),
                human_bytes(l.uncompressed_bytes),
                crate::report::plural(files_of(new, &l.digest), "file")
            ));
        }
    }
    for l in &o.layers {
        if !n.layers.iter().any(|x| x.digest == l.digest) {
            out.push(format!(
                "layer removed: {} ({} compressed, {} uncompressed, {})",
                short_digest(&l.digest),
                human_bytes(l.compressed_bytes),
                human_bytes(l.uncompressed_bytes),
                crate::report::plural(files_of(old, &l.digest), "file")
            ));
        }
    }
    let delta = |a: u64, b: u64| {
        let d = b as i64 - a as i64;
        let sign = if d < 0 { "-" } else { "+" };
        let pct = if a > 0 {
            format!(" ({:+.1}%)", 100.0 * d as f64 / a as f64)
        } else {
            String::new()
        };
        format!("{sign}{}{pct}", human_bytes(d.unsigned_abs()))
    };
    out.push(format!(
        "layers {} -> {}; compressed {}; uncompressed {}; files {:+}",
        o.layers.len(),
        n.layers.len(),
        delta(o.compressed_bytes, n.compressed_bytes),
        delta(o.uncompressed_bytes, n.uncompressed_bytes),
        files(new) - files(old)
    ));
    out
}
