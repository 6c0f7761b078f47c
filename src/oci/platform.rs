//! Platforms (`os/arch[/variant]`) and choosing a manifest from an index.

use std::fmt;

/// An image platform as an index describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// GOARCH names: `amd64`, `arm64`, `arm`, `386`, ...
    pub architecture: String,
    /// `v7`, `v8`, ... when the architecture has variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// `--platform` was not `os/arch[/variant]`.
#[derive(Debug, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7")]
pub struct PlatformParseError(pub String);

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self, PlatformParseError> {
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformParseError(s.to_string()));
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: normalize_arch(parts[1]),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }

    /// The platform of this machine, variant included (as docker's default).
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// Whether an index entry with platform `candidate` can run here.
    /// `arm64` with no variant and `arm64/v8` are the same, as in containerd.
    fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != normalize_arch(&candidate.architecture) {
            return false;
        }
        match &self.variant {
            None => true,
            Some(want) => {
                let have = candidate
                    .variant
                    .clone()
                    .or_else(|| default_variant(&self.architecture).map(str::to_string));
                have.as_deref() == Some(want.as_str())
            }
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "i386" => "386".into(),
        other => other.into(),
    }
}

fn default_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        _ => None,
    }
}

/// Picks the entry of an index for `want`: exact variant first; when `want` has a
/// variant that no entry lists, an entry of the same os/arch with no variant.
/// Returns the position in `entries`.
pub fn select(want: &Platform, entries: &[Option<Platform>]) -> Option<usize> {
    let exact = entries
        .iter()
        .position(|e| e.as_ref().is_some_and(|p| want.matches(p)));
    exact.or_else(|| {
        let loose = Platform {
            variant: None,
            ..want.clone()
        };
        entries.iter().position(|e| {
            e.as_ref()
                .is_some_and(|p| p.variant.is_none() && loose.matches(p))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(pf("linux/arm/v7").to_string(), "linux/arm/v7");
        assert_eq!(pf("linux/x86_64").to_string(), "linux/amd64");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn selects_the_requested_platform_with_variants() {
        let entries = vec![
            Some(pf("linux/amd64")),
            Some(pf("linux/arm/v6")),
            Some(pf("linux/arm/v7")),
            Some(pf("linux/arm64/v8")),
            Some(pf("unknown/unknown")),
            None,
        ];
        assert_eq!(select(&pf("linux/amd64"), &entries), Some(0));
        assert_eq!(select(&pf("linux/arm/v7"), &entries), Some(2));
        assert_eq!(select(&pf("linux/arm/v6"), &entries), Some(1));
        assert_eq!(select(&pf("linux/arm64"), &entries), Some(3));
        assert_eq!(select(&pf("linux/arm64/v8"), &entries), Some(3));
        assert_eq!(select(&pf("linux/arm/v5"), &entries), None);
        assert_eq!(select(&pf("windows/amd64"), &entries), None);
        assert_eq!(select(&pf("linux/s390x"), &entries), None);
    }

    #[test]
    fn arm64_without_variant_in_index_matches_v8_request() {
        let entries = vec![Some(pf("linux/amd64")), Some(pf("linux/arm64"))];
        assert_eq!(select(&pf("linux/arm64/v8"), &entries), Some(1));
    }

    #[test]
    fn variant_requested_falls_back_to_entry_without_variant() {
        let entries = vec![Some(pf("linux/arm"))];
        assert_eq!(select(&pf("linux/arm/v7"), &entries), Some(0));
    }

    #[test]
    fn host_platform_is_linux_here() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        assert!(!h.architecture.is_empty());
    }
}
