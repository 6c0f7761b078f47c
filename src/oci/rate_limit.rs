//! Docker Hub's rate-limit headers (`ratelimit-limit: 100;w=21600`,
//! `ratelimit-remaining: 97;w=21600`) read and said in words.

use super::record::RateLimit;

impl RateLimit {
    /// In words: `76 of 100 pulls left per 6 h`.
    pub fn words(&self) -> Option<String> {
        Self::words_of(Some(&self.limit), &self.remaining)
    }

    /// Header values (`100;w=21600`, `97;w=21600`) in words; `None` when
    /// `remaining` does not parse.
    pub fn words_of(limit: Option<&str>, remaining: &str) -> Option<String> {
        let (remaining, _) = quota(remaining)?;
        let (limit, window) = limit.and_then(quota).unzip();
        let window = window.flatten().map(|w| {
            if w % 3600 == 0 {
                format!(" per {} h", w / 3600)
            } else {
                format!(" per {w} s")
            }
        });
        Some(match limit {
            Some(l) => format!(
                "{remaining} of {l} pulls left{}",
                window.unwrap_or_default()
            ),
            None => format!("{remaining} pulls left"),
        })
    }
}

/// A rate-limit header value, `100;w=21600` -> (100, Some(21600)).
pub fn quota(v: &str) -> Option<(u64, Option<u64>)> {
    let mut parts = v.split(';');
    let n = parts.next()?.trim().parse().ok()?;
    let window = parts
        .filter_map(|p| p.trim().strip_prefix("w="))
        .find_map(|w| w.parse().ok());
    Some((n, window))
}
