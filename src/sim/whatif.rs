//! What-ifs: the changes users ask about, applied to an image or a network before
//! simulating. Each says in words what it did.

use super::{SimImage, SimLayer};
use crate::oci::media_type::Compression;
use crate::profiles::network::NetworkProfile;

/// gzip ratio assumed when a layer has never been compressed.
const DEFAULT_GZIP_RATIO: f64 = 2.5;
/// zstd (level 3) compresses this much better than gzip on image content (estimate).
const ZSTD_OVER_GZIP: f64 = 1.05;

fn media_type(c: Compression) -> &'static str {
    match c {
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
    }
}

/// Every layer recompressed with `to`; compressed sizes estimated from the current
/// ratio (zstd 5% smaller than gzip; uncompressed = tar size).
pub fn recompress(image: &SimImage, to: Compression) -> SimImage {
    let mut out = image.clone();
    for l in &mut out.layers {
        let ratio = l.uncompressed as f64 / l.compressed.max(1) as f64;
        let gzip_ratio = match l.compression {
            Compression::Gzip => ratio,
            Compression::Zstd => ratio / ZSTD_OVER_GZIP,
            Compression::None => DEFAULT_GZIP_RATIO,
        };
        let new_ratio = match to {
            Compression::Gzip => gzip_ratio,
            Compression::Zstd => gzip_ratio * ZSTD_OVER_GZIP,
            Compression::None => 1.0,
        };
        l.compressed = (l.uncompressed as f64 / new_ratio.max(1e-9)) as u64;
        l.compression = to;
        l.media_type = media_type(to).into();
    }
    out.estimated
        .push(format!("compressed sizes after recompressing to {to:?}"));
    out
}

/// Marks layers as already on the node: the first `n`, or those whose digest
/// starts with one of `digests`.
pub fn cache(image: &SimImage, first: usize, digests: &[String]) -> SimImage {
    let mut out = image.clone();
    for (i, l) in out.layers.iter_mut().enumerate() {
        let by_digest = digests.iter().any(|d| {
            !d.is_empty()
                && l.digest
                    .trim_start_matches("sha256:")
                    .starts_with(d.trim_start_matches("sha256:"))
        });
        l.cached = i < first || by_digest;
    }
    out
}

/// All layers merged into one (same compression as the first).
pub fn merge(image: &SimImage) -> SimImage {
    let mut out = image.clone();
    let Some(first) = image.layers.first() else {
        return out;
    };
    let sum = |f: fn(&SimLayer) -> u64| image.layers.iter().map(f).sum::<u64>();
    out.layers = vec![SimLayer {
        digest: "merged".into(),
        compressed: sum(|l| l.compressed),
        uncompressed: sum(|l| l.uncompressed),
        file_bytes: sum(|l| l.file_bytes),
        files: sum(|l| l.files),
        dirs: sum(|l| l.dirs),
        ..first.clone()
    }];
    out
}

/// The largest layer split into `parts` equal layers.
pub fn split(image: &SimImage, parts: usize) -> SimImage {
    let mut out = image.clone();
    let parts = parts.max(1) as u64;
    let Some((i, big)) = image
        .layers
        .iter()
        .enumerate()
        .max_by_key(|(_, l)| l.uncompressed)
    else {
        return out;
    };
    let piece = |v: u64| v.div_ceil(parts);
    let pieces: Vec<SimLayer> = (0..parts)
        .map(|k| SimLayer {
            digest: format!("{}-part{k}", big.digest),
            compressed: piece(big.compressed),
            uncompressed: piece(big.uncompressed),
            file_bytes: piece(big.file_bytes),
            files: piece(big.files),
            dirs: piece(big.dirs),
            ..big.clone()
        })
        .collect();
    out.layers.splice(i..=i, pieces);
    out
}

/// The network with every bandwidth (registry and CDN, per connection and link)
/// set to `bytes_per_s`.
pub fn with_bandwidth(network: &NetworkProfile, bytes_per_s: f64) -> NetworkProfile {
    let mut n = network.clone();
    n.connection_bandwidth = Some(bytes_per_s);
    n.link_bandwidth = Some(bytes_per_s);
    if let Some(c) = &mut n.cdn {
        c.connection_bandwidth = Some(bytes_per_s);
        c.link_bandwidth = Some(bytes_per_s);
    }
    n.name = format!(
        "{} at {}",
        network.name,
        crate::profiles::network::format_bandwidth(bytes_per_s)
    );
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> SimImage {
        let l = |d: &str, c, u, f| SimLayer {
            digest: d.into(),
            media_type: media_type(Compression::Gzip).into(),
            compressed: c,
            uncompressed: u,
            file_bytes: u,
            files: f,
            dirs: 1,
            compression: Compression::Gzip,
            cached: false,
        };
        SimImage {
            name: "x".into(),
            layers: vec![l("sha256:aa", 100, 250, 10), l("sha256:bb", 400, 1000, 30)],
            manifest_bytes: 0,
            config_bytes: 0,
            estimated: vec![],
        }
    }

    #[test]
    fn what_ifs() {
        let z = recompress(&img(), Compression::Zstd);
        assert_eq!(z.layers[0].compressed, (250.0 / (2.5 * 1.05)) as u64);
        assert_eq!(
            recompress(&img(), Compression::None).layers[1].compressed,
            1000
        );
        let c = cache(&img(), 1, &[]);
        assert!(c.layers[0].cached && !c.layers[1].cached);
        assert!(cache(&img(), 0, &["bb".into()]).layers[1].cached);
        let m = merge(&img());
        assert_eq!(
            (m.layers.len(), m.layers[0].compressed, m.layers[0].files),
            (1, 500, 40)
        );
        let s = split(&img(), 4);
        assert_eq!(s.layers.len(), 5);
        assert_eq!(s.layers[1].compressed, 100);
        let n = with_bandwidth(&NetworkProfile::load("dockerhub-100m").unwrap(), 1e6);
        assert_eq!(n.cdn.unwrap().link_bandwidth, Some(1e6));
    }
}
