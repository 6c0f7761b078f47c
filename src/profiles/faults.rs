//! Fault profiles (`profiles/faults/*.toml`): which requests `pulltime serve
//! --faults` misbehaves on, how, and when. The decisions are a pure function of
//! the profile's seed and how many requests each rule has matched so far, so the
//! same seed and the same request sequence give the same faults. See
//! `docs/faults.md` for the format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::source::ProfileError;

use crate::rng::Rng;

mod raw;

/// The profiles shipped with pulltime, embedded so the binary needs no files.
pub const BUILTIN: &[(&str, &str)] = &[
    ("reset", include_str!("../../profiles/faults/reset.toml")),
    (
        "ratelimit",
        include_str!("../../profiles/faults/ratelimit.toml"),
    ),
    (
        "server-errors",
        include_str!("../../profiles/faults/server-errors.toml"),
    ),
    ("stall", include_str!("../../profiles/faults/stall.toml")),
    (
        "truncate",
        include_str!("../../profiles/faults/truncate.toml"),
    ),
    (
        "corrupt",
        include_str!("../../profiles/faults/corrupt.toml"),
    ),
    (
        "slow-token",
        include_str!("../../profiles/faults/slow-token.toml"),
    ),
    ("mixed", include_str!("../../profiles/faults/mixed.toml")),
    (
        "hopeless",
        include_str!("../../profiles/faults/hopeless.toml"),
    ),
];

/// The kinds of request a fault can be injected into (GETs only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestKind {
    /// `GET /token` (Docker Hub emulation).
    Token,
    /// `GET /v2/<repo>/manifests/<reference>`.
    Manifest,
    /// `GET /v2/<repo>/blobs/<digest>` on the registry listener.
    Blob,
    /// `GET /cdn/<digest>` on the CDN listener (Docker Hub emulation).
    CdnBlob,
}

impl RequestKind {
    /// Every kind, in a fixed order.
    pub const ALL: [RequestKind; 4] = [
        RequestKind::Token,
        RequestKind::Manifest,
        RequestKind::Blob,
        RequestKind::CdnBlob,
    ];

    /// The name used in profiles and summaries.
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Token => "token",
            RequestKind::Manifest => "manifest",
            RequestKind::Blob => "blob",
            RequestKind::CdnBlob => "cdn-blob",
        }
    }
}

/// Which requests a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Token requests.
    Token,
    /// Manifest GETs.
    Manifest,
    /// Blob GETs on the registry listener.
    Blob,
    /// Blob GETs on the CDN listener.
    CdnBlob,
    /// All of the above.
    Any,
}

impl Target {
    fn matches(self, kind: RequestKind) -> bool {
        match self {
            Target::Any => true,
            Target::Token => kind == RequestKind::Token,
            Target::Manifest => kind == RequestKind::Manifest,
            Target::Blob => kind == RequestKind::Blob,
            Target::CdnBlob => kind == RequestKind::CdnBlob,
        }
    }
}

/// Where a body is cut: after a byte count or a fraction of the body.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cut {
    /// After this many body bytes.
    Bytes(u64),
    /// After this fraction (0 <= f < 1) of the body.
    Fraction(f64),
}

impl Cut {
    /// The bytes of a `len`-byte body that are sent; always fewer than `len` so
    /// the cut really happens (`len` must be positive).
    pub fn bytes_of(self, len: u64) -> u64 {
        let n = match self {
            Cut::Bytes(n) => n,
            Cut::Fraction(f) => (len as f64 * f) as u64,
        };
        n.min(len.saturating_sub(1))
    }
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "fault")]
pub enum Fault {
    /// TCP reset (RST) after part of the body.
    Reset {
        /// How much of the body gets out first.
        after: Cut,
    },
    /// An error status instead of the response, with a registry error body.
    Status {
        /// 429, 500, 502, 503 or 504.
        code: u16,
        /// `Retry-After` seconds, if sent.
        retry_after: Option<u64>,
    },
    /// A pause before the headers, or in the middle of the body.
    Stall {
        /// How long.
        seconds: f64,
        /// Pause after this many body bytes; `None` = before the headers.
        after_bytes: Option<u64>,
    },
    /// The headers announce the full `Content-Length`; the connection closes
    /// cleanly (FIN) after fewer bytes.
    Truncate {
        /// How much of the body gets out.
        after: Cut,
    },
    /// One byte of the body flipped (the middle one): right length, wrong digest.
    Corrupt,
    /// The token endpoint answers late.
    SlowToken {
        /// How long.
        seconds: f64,
    },
}

impl Fault {
    /// The label counted in summaries: `reset`, `status-429`, `stall`, ...
    pub fn label(&self) -> String {
        match self {
            Fault::Reset { .. } => "reset".into(),
            Fault::Status { code, .. } => format!("status-{code}"),
            Fault::Stall { .. } => "stall".into(),
            Fault::Truncate { .. } => "truncate".into(),
            Fault::Corrupt => "corrupt".into(),
            Fault::SlowToken { .. } => "slow-token".into(),
        }
    }

    /// Whether the fault changes the response body (and so needs one).
    pub fn needs_body(&self) -> bool {
        matches!(
            self,
            Fault::Reset { .. }
                | Fault::Truncate { .. }
                | Fault::Corrupt
                | Fault::Stall {
                    after_bytes: Some(_),
                    ..
                }
        )
    }
}

/// When a rule fires, counting the requests it matches from 1: on a scheduled
/// request, or when a seeded draw falls below `probability`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Schedule {
    /// Chance per request (0..=1).
    pub probability: f64,
    /// These requests (1-based).
    pub nth: Vec<u64>,
    /// Every k-th request.
    pub every: Option<u64>,
    /// The first k requests.
    pub first: u64,
}

impl Schedule {
    /// Whether the `n`-th matched request (1-based) of rule `rule` is faulted.
    pub fn fires(&self, seed: u64, rule: usize, n: u64) -> bool {
        self.nth.contains(&n)
            || self.every.is_some_and(|k| n.is_multiple_of(k))
            || n <= self.first
            || (self.probability > 0.0 && draw(seed, rule, n) < self.probability)
    }
}

/// A uniform number in [0, 1) that depends only on `(seed, rule, n)`.
fn draw(seed: u64, rule: usize, n: u64) -> f64 {
    let key = seed
        ^ (rule as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407)
        ^ n.wrapping_mul(0x9FB2_1C65_1E98_DF25);
    let mut rng = Rng::new(key);
    rng.next_u64();
    rng.unit()
}

/// One rule of a profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// Which requests.
    pub kind: Target,
    /// Only requests for this repository (the token's scope for token requests).
    pub repository: Option<String>,
    /// Only requests whose path and query contain this text.
    pub path_contains: Option<String>,
    /// What goes wrong.
    pub fault: Fault,
    /// When.
    pub when: Schedule,
}

/// A request, as far as fault rules look at it.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// Its kind.
    pub kind: RequestKind,
    /// Its repository, if it names one.
    pub repository: Option<&'a str>,
    /// Path and query (`/v2/app/blobs/sha256:..`, `/token?scope=...`).
    pub path_and_query: &'a str,
}

impl Rule {
    fn matches(&self, req: &RequestInfo<'_>) -> bool {
        self.kind.matches(req.kind)
            && self
                .repository
                .as_deref()
                .is_none_or(|r| req.repository == Some(r))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| req.path_and_query.contains(p))
    }
}

/// A decision: rule `rule` fires `fault` on the `n`-th request it matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Index of the rule in the profile.
    pub rule: usize,
    /// The rule's count of matched requests (1-based) at this request.
    pub n: u64,
    /// What to do.
    pub fault: Fault,
}

/// A fault profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultProfile {
    /// Short name.
    pub name: String,
    /// What it does and why.
    pub description: String,
    /// Seed of the probability draws (`pulltime serve --seed` overrides it).
    pub seed: u64,
    /// Rules in order; the first that fires on a request wins.
    pub rules: Vec<Rule>,
}

impl FaultProfile {
    /// Decides the fault for `req`. `matched` holds one counter per rule: every
    /// rule that matches the request counts it (whether or not an earlier rule
    /// fires), so each rule's decisions depend only on the seed and its own count.
    pub fn decide(&self, matched: &mut [u64], req: &RequestInfo<'_>) -> Option<Decision> {
        let mut decision = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches(req) {
                continue;
            }
            matched[i] += 1;
            let n = matched[i];
            if decision.is_none() && rule.when.fires(self.seed, i, n) {
                decision = Some(Decision {
                    rule: i,
                    n,
                    fault: rule.fault.clone(),
                });
            }
        }
        decision
    }

    /// A built-in name (`mixed`) or a path to a TOML file.
    pub fn load(name_or_path: &str) -> Result<Self, ProfileError> {
        crate::profiles::source::load("fault", name_or_path, BUILTIN, Self::parse)
    }

    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Self, ProfileError> {
        let invalid = |reason: String| ProfileError::invalid("fault", origin, reason);
        let raw: raw::RawProfile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        raw.validate().map_err(invalid)
    }
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// The request's kind.
    pub kind: RequestKind,
    /// Its number among requests of that kind (1-based).
    pub request: u64,
    /// Index of the rule that fired.
    pub rule: usize,
    /// [`Fault::label`].
    pub fault: String,
    /// Path and query of the request.
    pub path: String,
}

/// The most events a summary keeps (the counters keep counting past it).
pub const MAX_EVENTS: usize = 10_000;

/// What a server with a fault profile has done so far.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FaultSummary {
    /// Profile name.
    pub profile: String,
    /// Seed in use.
    pub seed: u64,
    /// GET requests seen per kind (`token`, `manifest`, `blob`, `cdn-blob`).
    pub requests: BTreeMap<String, u64>,
    /// Faults injected per label (`reset`, `status-429`, `status-503`, `stall`,
    /// `truncate`, `corrupt`, `slow-token`).
    pub injected: BTreeMap<String, u64>,
    /// Sum of `injected`.
    pub total_injected: u64,
    /// The injected faults in order (the first [`MAX_EVENTS`]).
    pub events: Vec<FaultEvent>,
}

#[cfg(test)]
mod tests;
