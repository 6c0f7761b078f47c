//! Where baselines live, and the fractions the gate's flags take.

use std::path::{Path, PathBuf};

/// Where baseline `name` lives; names are plain file names.
pub fn baseline_path(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !ok {
        return Err(format!(
            "baseline name {name:?} must be 1-100 characters of [A-Za-z0-9._-], not starting with '.'"
        ));
    }
    Ok(dir.join(format!("{name}.json")))
}

/// Parses `5%` or `0.05`.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let v = match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .map_err(|_| format!("{s:?} is not a fraction like 0.05 or a percentage like 5%"))?;
    if !(0.0..1.0).contains(&v) {
        return Err(format!(
            "{s:?} must be at least 0 and below 1 (or at least 0% and below 100%)"
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_fractions() {
        let d = Path::new("/b");
        assert_eq!(
            baseline_path(d, "main-2024.1").unwrap(),
            Path::new("/b/main-2024.1.json")
        );
        for bad in ["", "../x", "a/b", ".hidden", "sp ace"] {
            assert!(baseline_path(d, bad).is_err(), "{bad}");
        }
        assert_eq!(parse_fraction("5%").unwrap(), 0.05);
        assert_eq!(parse_fraction("0.02").unwrap(), 0.02);
        assert!(parse_fraction("150%").is_err() && parse_fraction("x").is_err());
    }
}
