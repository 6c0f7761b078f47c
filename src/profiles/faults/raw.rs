//! The TOML form of a fault profile and its validation into [`FaultProfile`]:
//! every rule is a flat table, and fields that do not apply to its fault are
//! errors rather than silently ignored.

use serde::Deserialize;

use super::{Cut, Fault, FaultProfile, Rule, Schedule, Target};

/// Statuses a `status` fault may send.
const STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "default_seed")]
    seed: u64,
    #[serde(default)]
    rule: Vec<RawRule>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum FaultName {
    Reset,
    Status,
    Stall,
    Truncate,
    Corrupt,
    SlowToken,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    kind: Target,
    repository: Option<String>,
    path_contains: Option<String>,
    fault: FaultName,
    after_bytes: Option<u64>,
    fraction: Option<f64>,
    status: Option<u16>,
    retry_after: Option<u64>,
    seconds: Option<f64>,
    probability: Option<f64>,
    #[serde(default)]
    nth: Vec<u64>,
    every: Option<u64>,
    first: Option<u64>,
}

impl RawProfile {
    pub(super) fn validate(self) -> Result<FaultProfile, String> {
        if self.rule.is_empty() {
            return Err("no [[rule]] tables: a fault profile needs at least one rule".into());
        }
        let rules = self
            .rule
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.validate().map_err(|e| format!("rule {}: {e}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FaultProfile {
            name: self.name,
            description: self.description,
            seed: self.seed,
            rules,
        })
    }
}

impl RawRule {
    fn validate(self) -> Result<Rule, String> {
        let fault = self.fault()?;
        if self.kind == Target::CdnBlob && self.repository.is_some() {
            return Err(
                "repository cannot match cdn-blob requests (CDN URLs name only the digest); use path_contains".into(),
            );
        }
        if let Some(p) = self.probability
            && !(p.is_finite() && (0.0..=1.0).contains(&p))
        {
            return Err(format!("probability {p} must be between 0 and 1"));
        }
        if self.every == Some(0) || self.nth.contains(&0) {
            return Err("every and nth count requests from 1".into());
        }
        let when = Schedule {
            probability: self.probability.unwrap_or(0.0),
            nth: self.nth,
            every: self.every,
            first: self.first.unwrap_or(0),
        };
        if when.probability == 0.0 && when.nth.is_empty() && when.every.is_none() && when.first == 0
        {
            return Err(
                "say when it fires: probability, nth = [..], every = k or first = k".into(),
            );
        }
        Ok(Rule {
            kind: self.kind,
            repository: self.repository,
            path_contains: self.path_contains,
            fault,
            when,
        })
    }

    fn fault(&self) -> Result<Fault, String> {
        let name = match self.fault {
            FaultName::Reset => "reset",
            FaultName::Status => "status",
            FaultName::Stall => "stall",
            FaultName::Truncate => "truncate",
            FaultName::Corrupt => "corrupt",
            FaultName::SlowToken => "slow-token",
        };
        let allowed: &[&str] = match self.fault {
            FaultName::Reset | FaultName::Truncate => &["after_bytes", "fraction"],
            FaultName::Status => &["status", "retry_after"],
            FaultName::Stall => &["seconds", "after_bytes"],
            FaultName::Corrupt => &[],
            FaultName::SlowToken => &["seconds"],
        };
        let given = [
            ("after_bytes", self.after_bytes.is_some()),
            ("fraction", self.fraction.is_some()),
            ("status", self.status.is_some()),
            ("retry_after", self.retry_after.is_some()),
            ("seconds", self.seconds.is_some()),
        ];
        for (field, present) in given {
            if present && !allowed.contains(&field) {
                return Err(format!("{field} does not apply to fault {name:?}"));
            }
        }
        let seconds = || match self.seconds {
            Some(s) if s.is_finite() && s > 0.0 => Ok(s),
            Some(s) => Err(format!("seconds {s} must be a positive number")),
            None => Err(format!("fault {name:?} needs seconds")),
        };
        let cut = || match (self.after_bytes, self.fraction) {
            (Some(n), None) => Ok(Cut::Bytes(n)),
            (None, Some(f)) if f.is_finite() && (0.0..1.0).contains(&f) => Ok(Cut::Fraction(f)),
            (None, Some(f)) => Err(format!("fraction {f} must be at least 0 and below 1")),
            _ => Err(format!(
                "fault {name:?} needs exactly one of after_bytes or fraction"
            )),
        };
        Ok(match self.fault {
            FaultName::Reset => Fault::Reset { after: cut()? },
            FaultName::Truncate => Fault::Truncate { after: cut()? },
            FaultName::Corrupt => Fault::Corrupt,
            FaultName::Stall => Fault::Stall {
                seconds: seconds()?,
                after_bytes: self.after_bytes,
            },
            FaultName::SlowToken => {
                if self.kind != Target::Token {
                    return Err("fault \"slow-token\" needs kind = \"token\"".into());
                }
                Fault::SlowToken {
                    seconds: seconds()?,
                }
            }
            FaultName::Status => {
                let code = self.status.ok_or_else(|| {
                    format!("fault \"status\" needs status = one of {STATUSES:?}")
                })?;
                if !STATUSES.contains(&code) {
                    return Err(format!("status {code} is not one of {STATUSES:?}"));
                }
                if code == 429 && self.retry_after.is_none() {
                    return Err("status 429 needs retry_after (seconds)".into());
                }
                Fault::Status {
                    code,
                    retry_after: self.retry_after,
                }
            }
        })
    }
}
