//! Image layout profiles (`profiles/images/*.toml`): the layers of an image, each
//! with a size, a file count, a directory depth and a compressibility mix, so
//! synthetic images compress and extract like real ones.

use serde::{Deserialize, Serialize};

use super::source::ProfileError;

/// The image profiles shipped with pulltime, embedded so the binary needs no files.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "sn-compose-post-original",
        include_str!("../../profiles/images/sn-compose-post-original.toml"),
    ),
    (
        "sn-compose-post-multistage",
        include_str!("../../profiles/images/sn-compose-post-multistage.toml"),
    ),
    (
        "ml-object-detection-original",
        include_str!("../../profiles/images/ml-object-detection-original.toml"),
    ),
    (
        "ml-object-detection-multistage",
        include_str!("../../profiles/images/ml-object-detection-multistage.toml"),
    ),
    (
        "sn-text-filter-original",
        include_str!("../../profiles/images/sn-text-filter-original.toml"),
    ),
    (
        "sn-text-filter-multistage",
        include_str!("../../profiles/images/sn-text-filter-multistage.toml"),
    ),
    (
        "vp-transcode-original",
        include_str!("../../profiles/images/vp-transcode-original.toml"),
    ),
    (
        "vp-transcode-multistage",
        include_str!("../../profiles/images/vp-transcode-multistage.toml"),
    ),
    (
        "many-small-files",
        include_str!("../../profiles/images/many-small-files.toml"),
    ),
    (
        "one-gigabyte-layer",
        include_str!("../../profiles/images/one-gigabyte-layer.toml"),
    ),
];

/// An image profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageProfile {
    /// Unique name (also the default tag).
    pub name: String,
    /// What it models.
    #[serde(default)]
    pub description: String,
    /// Where the numbers come from: which are the study's, which are estimates.
    #[serde(default)]
    pub source: String,
    /// Function this image belongs to (pairs share it).
    #[serde(default)]
    pub pair: String,
    /// `original` or `multi-stage`.
    #[serde(default)]
    pub variant: String,
    /// Seed: the same seed gives the same bytes and digests.
    #[serde(default = "one")]
    pub seed: u64,
    /// Layers, bottom first.
    pub layers: Vec<LayerProfile>,
}

fn one() -> u64 {
    1
}

/// One layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerProfile {
    /// What it stands for (`debian base`, `build packages`).
    pub name: String,
    /// Directory its files go under.
    #[serde(default)]
    pub path: String,
    /// Total bytes of file content, e.g. `"125MB"`.
    #[serde(default, with = "size_str")]
    pub size: u64,
    /// Number of regular files.
    #[serde(default)]
    pub files: u64,
    /// Deepest directory level below `path`.
    #[serde(default = "default_depth")]
    pub depth: u32,
    /// Spread of file sizes (sigma of a log-normal); 0 = all files equal.
    #[serde(default = "default_sigma")]
    pub size_sigma: f64,
    /// Shares of content kinds by bytes.
    #[serde(default)]
    pub mix: Mix,
    /// Symbolic links to this layer's files.
    #[serde(default)]
    pub symlinks: u64,
    /// Paths from earlier layers this layer deletes (whiteouts).
    #[serde(default)]
    pub delete: Vec<String>,
}

fn default_depth() -> u32 {
    3
}

fn default_sigma() -> f64 {
    1.5
}

/// Byte shares of content kinds; normalised when used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    /// Source, text, scripts: gzip ~3-4x.
    #[serde(default)]
    pub text: f64,
    /// Executables, libraries, numeric data: gzip ~2x.
    #[serde(default)]
    pub binary: f64,
    /// Already compressed (archives, media, packed weights): incompressible.
    #[serde(default)]
    pub compressed: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            text: 0.4,
            binary: 0.5,
            compressed: 0.1,
        }
    }
}

impl ImageProfile {
    /// A built-in name or a TOML file.
    pub fn load(name_or_path: &str) -> Result<Self, ProfileError> {
        crate::profiles::source::load("image", name_or_path, BUILTIN, Self::parse)
    }

    /// Parses TOML text.
    pub fn parse(origin: &str, text: &str) -> Result<Self, ProfileError> {
        let invalid = |reason: String| ProfileError::invalid("image", origin, reason);
        let p: ImageProfile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if p.layers.is_empty() {
            return Err(invalid("an image needs at least one layer".into()));
        }
        for l in &p.layers {
            let m = l.mix;
            let total = m.text + m.binary + m.compressed;
            if [m.text, m.binary, m.compressed]
                .iter()
                .any(|v| !v.is_finite() || *v < 0.0)
                || total <= 0.0
            {
                return Err(invalid(format!(
                    "layer {:?}: mix shares must be non-negative and not all zero",
                    l.name
                )));
            }
            if l.files == 0 && l.size > 0 {
                return Err(invalid(format!("layer {:?}: size without files", l.name)));
            }
            if !l.size_sigma.is_finite() || l.size_sigma < 0.0 || l.size_sigma > 4.0 {
                return Err(invalid(format!(
                    "layer {:?}: size_sigma must be within 0..=4",
                    l.name
                )));
            }
            for p in std::iter::once(&l.path).chain(&l.delete) {
                if p.split('/').any(|c| c == "..") || p.starts_with('/') {
                    return Err(invalid(format!(
                        "layer {:?}: path {p:?} must be relative and stay inside the image",
                        l.name
                    )));
                }
            }
        }
        Ok(p)
    }

    /// Bytes of file content over all layers.
    pub fn total_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Files over all layers.
    pub fn total_files(&self) -> u64 {
        self.layers.iter().map(|l| l.files).sum()
    }
}

/// Names of the built-in profiles.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// Parses `"125MB"`, `"1.5GB"`, `"800kB"`, `"4096"` (bytes, decimal units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("size {s:?}: expected a number with an optional unit"))?;
    let mult = match unit.trim() {
        "" | "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        u => {
            return Err(format!(
                "size {s:?}: unknown unit {u:?} (B, kB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    let bytes = v * mult;
    if !bytes.is_finite() || bytes < 0.0 {
        return Err(format!("size {s:?} must be non-negative"));
    }
    Ok(bytes.round() as u64)
}

mod size_str {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            N(u64),
            S(String),
        }
        match Either::deserialize(d)? {
            Either::N(n) => Ok(n),
            Either::S(s) => super::parse_size(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("125MB").unwrap(), 125_000_000);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert!(parse_size("big").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn builtins_parse_and_pair_up() {
        for (name, text) in BUILTIN {
            let p = ImageProfile::parse(name, text).unwrap();
            assert_eq!(&p.name, name);
            assert!(
                !p.source.is_empty(),
                "{name}: say where the numbers come from"
            );
            // The study's images come in pairs; the stress images stand alone.
            assert!(
                ["original", "multi-stage"].contains(&p.variant.as_str())
                    || (p.pair.is_empty() && p.variant.is_empty()),
                "{name}: variant {:?}, pair {:?}",
                p.variant,
                p.pair
            );
        }
        for pair in [
            "sn-compose-post",
            "ml-object-detection",
            "sn-text-filter",
            "vp-transcode",
        ] {
            let o = ImageProfile::load(&format!("{pair}-original")).unwrap();
            let m = ImageProfile::load(&format!("{pair}-multistage")).unwrap();
            assert_eq!((o.pair.as_str(), m.pair.as_str()), (pair, pair));
            assert!(m.total_size() < o.total_size());
        }
    }

    #[test]
    fn study_figures_are_kept() {
        let mb = |n: &str| ImageProfile::load(n).unwrap().total_size() as f64 / 1e6;
        assert!((mb("sn-compose-post-original") - 1510.0).abs() < 1.0);
        assert!((mb("sn-compose-post-multistage") - 352.64).abs() < 1.0);
        assert!((mb("ml-object-detection-original") - 2390.0).abs() < 1.0);
        assert!((mb("ml-object-detection-multistage") - 1400.0).abs() < 1.0);
    }

    #[test]
    fn bad_profiles() {
        let base = "name = \"x\"\n[[layers]]\nname = \"l\"\nsize = \"1MB\"\nfiles = 3\n";
        assert!(ImageProfile::parse("x", base).is_ok());
        assert!(ImageProfile::parse("x", "name = \"x\"\nlayers = []").is_err());
        assert!(ImageProfile::parse("x", &format!("{base}path = \"../up\"\n")).is_err());
        assert!(ImageProfile::parse("x", &format!("{base}mix = {{ text = 0 }}\n")).is_err());
        assert!(ImageProfile::parse("x", &format!("{base}bogus = 1\n")).is_err());
        assert!(
            ImageProfile::parse(
                "x",
                "name = \"x\"\n[[layers]]\nname = \"l\"\nsize = \"1MB\"\n"
            )
            .is_err()
        );
    }
}
