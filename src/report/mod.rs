//! Output for people and machines: tables, JSON, progress bars.

pub mod aggregate;
pub mod compare;
pub mod export;
pub mod json;
pub mod regression;
pub mod stdout;
pub mod svg;
/// The critical-path pictures, by the name the callers know them by.
pub use svg::why as svg_bounds;
pub mod table;

/// `sha256:3f4a9c2b1e7d...` -> `3f4a9c2b1e7d`.
pub fn short_digest(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    &hex[..hex.len().min(12)]
}

/// Decimal units as docker prints them: `177.9 MB`.
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Seconds with millisecond precision.
pub fn secs(s: f64) -> String {
    format!("{s:.3} s")
}

/// `docker 20.10.24 (storage_driver overlay2, ...)`: who pulled, for headings.
pub fn puller_line(puller: &crate::oci::record::PullerInfo) -> String {
    let settings: Vec<String> = puller
        .settings
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if settings.is_empty() {
        format!("{} {}", puller.name, puller.version)
    } else {
        format!(
            "{} {} ({})",
            puller.name,
            puller.version,
            settings.join(", ")
        )
    }
}

/// `1 file`, `2 files`: a count with its noun, singular for one.
pub fn plural(n: u64, noun: &str) -> String {
    count(n, noun, &format!("{noun}s"))
}

/// `1 retry`, `2 retries`: a count with the singular or plural given.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest("abc"), "abc");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(177_900_000), "177.9 MB");
        assert_eq!(secs(1.23456), "1.235 s");
    }
}
