//! Network profiles (`profiles/network/*.toml`): bandwidth per connection and per
//! link, round-trip time per request and per new connection, jitter. `pulltime
//! serve` shapes its responses with them; the simulator reads the same files.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::source::ProfileError;

/// The profiles shipped with pulltime, embedded so the binary needs no files.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "loopback",
        include_str!("../../profiles/network/loopback.toml"),
    ),
    ("lan-1g", include_str!("../../profiles/network/lan-1g.toml")),
    (
        "datacenter-10g",
        include_str!("../../profiles/network/datacenter-10g.toml"),
    ),
    (
        "dockerhub-100m",
        include_str!("../../profiles/network/dockerhub-100m.toml"),
    ),
    (
        "home-50m",
        include_str!("../../profiles/network/home-50m.toml"),
    ),
    (
        "edge-20m",
        include_str!("../../profiles/network/edge-20m.toml"),
    ),
    (
        "mobile-10m",
        include_str!("../../profiles/network/mobile-10m.toml"),
    ),
];

/// A network between a client and a registry (or its CDN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkProfile {
    /// Short name.
    pub name: String,
    /// What it models.
    #[serde(default)]
    pub description: String,
    /// Where the numbers come from.
    #[serde(default)]
    pub source: String,
    /// Round-trip time added to every request (milliseconds).
    #[serde(default)]
    pub rtt_ms: f64,
    /// Uniform jitter, plus or minus, on each added delay (milliseconds).
    #[serde(default)]
    pub jitter_ms: f64,
    /// Round trips to open a new connection before any TLS (TCP's handshake: 1).
    #[serde(default)]
    pub connect_rtts: f64,
    /// TLS on new connections, `"1.3"` (one more round trip) or `"1.2"` (two);
    /// absent: plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsVersion>,
    /// Bandwidth of one connection, e.g. `"100Mbit"`; absent = unlimited.
    #[serde(default, with = "bandwidth_opt")]
    pub connection_bandwidth: Option<f64>,
    /// Bandwidth of the whole link, shared by all connections; absent = unlimited.
    #[serde(default, with = "bandwidth_opt")]
    pub link_bandwidth: Option<f64>,
    /// The CDN that Docker Hub emulation redirects blobs to; absent = same as above.
    #[serde(default)]
    pub cdn: Option<Box<NetworkProfile>>,
}

/// A TLS version, by the round trips its full handshake adds to a new
/// connection (no session resumption: every run is cold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2: ClientHello..ServerHelloDone, then ClientKeyExchange..Finished.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3: ClientHello, ServerHello..Finished; the request follows the
    /// client's Finished.
    #[serde(rename = "1.3")]
    Tls13,
}

impl TlsVersion {
    /// Round trips of the handshake before the first request can be sent.
    pub fn round_trips(self) -> f64 {
        match self {
            TlsVersion::Tls12 => 2.0,
            TlsVersion::Tls13 => 1.0,
        }
    }

    /// `1.2` / `1.3`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }
}

impl NetworkProfile {
    /// Round trips before a new connection can carry its first request: TCP
    /// (`connect_rtts`) and the TLS handshake.
    pub fn setup_rtts(&self) -> f64 {
        self.connect_rtts + self.tls_rtts()
    }

    /// The TLS handshake's round trips (0 over plain HTTP).
    pub fn tls_rtts(&self) -> f64 {
        self.tls.map_or(0.0, TlsVersion::round_trips)
    }

    /// The same network with TLS `tls` on every connection, the CDN's included.
    pub fn with_tls(&self, tls: Option<TlsVersion>) -> NetworkProfile {
        NetworkProfile {
            tls,
            cdn: self.cdn.as_ref().map(|c| Box::new(c.with_tls(tls))),
            ..self.clone()
        }
    }

    /// No shaping at all.
    pub fn unshaped() -> Self {
        NetworkProfile::parse("loopback", BUILTIN[0].1).expect("built-in profile parses")
    }

    /// No delay and no bandwidth limit: the registry is on this host (loopback).
    pub fn is_unshaped(&self) -> bool {
        self.rtt_ms == 0.0 && self.connection_bandwidth.is_none() && self.link_bandwidth.is_none()
    }

    /// A built-in name (`dockerhub-100m`) or a path to a TOML file.
    pub fn load(name_or_path: &str) -> Result<Self, ProfileError> {
        crate::profiles::source::load("network", name_or_path, BUILTIN, Self::parse)
    }

    /// Parses TOML text.
    pub fn parse(origin: &str, text: &str) -> Result<Self, ProfileError> {
        let invalid = |reason: String| ProfileError::invalid("network", origin, reason);
        let p: NetworkProfile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        p.validate().map_err(invalid)?;
        Ok(p)
    }

    fn validate(&self) -> Result<(), String> {
        let finite = |v: f64, what: &str| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{what} must be a non-negative number"))
            }
        };
        finite(self.rtt_ms, "rtt_ms")?;
        finite(self.jitter_ms, "jitter_ms")?;
        finite(self.connect_rtts, "connect_rtts")?;
        if self.jitter_ms > self.rtt_ms {
            return Err("jitter_ms must not exceed rtt_ms".into());
        }
        if let Some(cdn) = &self.cdn {
            cdn.validate()?;
        }
        Ok(())
    }

    /// The profile the CDN listener uses.
    pub fn cdn_profile(&self) -> NetworkProfile {
        match &self.cdn {
            Some(c) => (**c).clone(),
            None => NetworkProfile {
                cdn: None,
                ..self.clone()
            },
        }
    }
}

/// Parses `"100Mbit"`, `"1Gbit"`, `"12.5MB"`, `"800kbit"`, `"unlimited"` into bytes
/// per second (decimal units, as link speeds are quoted).
pub fn parse_bandwidth(s: &str) -> Result<Option<f64>, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") || t.is_empty() {
        return Ok(None);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("bandwidth {s:?}: expected a number followed by a unit"))?;
    let unit = unit.trim().trim_end_matches("/s").trim_end_matches("ps");
    let bytes = match unit {
        "bit" | "b" => value / 8.0,
        "kbit" | "Kbit" | "kb" => value * 1e3 / 8.0,
        "Mbit" | "mbit" | "Mb" => value * 1e6 / 8.0,
        "Gbit" | "gbit" | "Gb" => value * 1e9 / 8.0,
        "B" => value,
        "kB" | "KB" => value * 1e3,
        "MB" => value * 1e6,
        "GB" => value * 1e9,
        _ => {
            return Err(format!(
                "bandwidth {s:?}: unknown unit {unit:?} (use bit, kbit, Mbit, Gbit, B, kB, MB, GB)"
            ));
        }
    };
    if bytes <= 0.0 || !bytes.is_finite() {
        return Err(format!("bandwidth {s:?} must be positive"));
    }
    Ok(Some(bytes))
}

/// Formats bytes/s as link speed: `100 Mbit/s`.
pub fn format_bandwidth(bytes_per_s: f64) -> String {
    let bits = bytes_per_s * 8.0;
    if bits >= 1e9 {
        format!("{:.3} Gbit/s", bits / 1e9)
    } else if bits >= 1e6 {
        format!("{:.1} Mbit/s", bits / 1e6)
    } else {
        format!("{:.1} kbit/s", bits / 1e3)
    }
}

mod bandwidth_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&format!("{}bit", b * 8.0)),
            None => s.serialize_none(),
        }
    }

    /// A rate string, or null (as JSON records write an unlimited one).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => super::parse_bandwidth(&s).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// The profile files shipped in the repository (for docs and tests).
pub fn profile_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/network"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_units() {
        assert_eq!(parse_bandwidth("100Mbit").unwrap(), Some(12.5e6));
        assert_eq!(parse_bandwidth("1Gbit/s").unwrap(), Some(125e6));
        assert_eq!(parse_bandwidth("12.5MB").unwrap(), Some(12.5e6));
        assert_eq!(parse_bandwidth("unlimited").unwrap(), None);
        assert!(parse_bandwidth("fast").is_err());
        assert!(parse_bandwidth("10 furlongs").is_err());
        assert!(parse_bandwidth("0Mbit").is_err());
        assert_eq!(format_bandwidth(12.5e6), "100.0 Mbit/s");
    }

    #[test]
    fn an_unshaped_profile_survives_a_json_round_trip() {
        // Simulated records carry their network; loopback's has no bandwidth.
        let p = NetworkProfile::unshaped();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["link_bandwidth"], serde_json::Value::Null);
        let back: NetworkProfile = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        let hub = NetworkProfile::load("dockerhub-100m").unwrap();
        let back: NetworkProfile =
            serde_json::from_value(serde_json::to_value(&hub).unwrap()).unwrap();
        assert_eq!(back.link_bandwidth, hub.link_bandwidth);
    }

    #[test]
    fn every_builtin_parses_and_says_where_it_comes_from() {
        for (name, text) in BUILTIN {
            let p = NetworkProfile::parse(name, text).unwrap();
            assert_eq!(&p.name, name);
            assert!(
                !p.source.is_empty(),
                "{name} must say where its numbers come from"
            );
            let on_disk =
                std::fs::read_to_string(profile_dir().join(format!("{name}.toml"))).unwrap();
            assert_eq!(&on_disk, text);
        }
        let hub = NetworkProfile::load("dockerhub-100m").unwrap();
        assert_eq!(hub.rtt_ms, 30.0);
        assert_eq!(hub.link_bandwidth, Some(12.5e6));
        assert!(hub.cdn.is_some());
        assert_eq!(NetworkProfile::unshaped().connection_bandwidth, None);
    }

    #[test]
    fn unknown_and_invalid_profiles() {
        let e = NetworkProfile::load("warp-speed").unwrap_err().to_string();
        assert!(e.contains("dockerhub-100m"), "{e}");
        assert!(NetworkProfile::parse("x", "name = \"x\"\nrtt_ms = -1").is_err());
        assert!(NetworkProfile::parse("x", "name = \"x\"\nbogus = 1").is_err());
        assert!(
            NetworkProfile::parse("x", "name = \"x\"\nlink_bandwidth = \"9 parsecs\"").is_err()
        );
    }
}
