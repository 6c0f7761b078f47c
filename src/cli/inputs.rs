//! What an image argument names. A name that looks like a file is a file, so a
//! misspelled record is an error that names it, not a pull from Docker Hub:
//! - explicit prefixes: `docker://REF`, `oci:DIR[:TAG]`, `record:FILE`,
//!   `profile:NAME|FILE`;
//! - otherwise a name ending in `.json` is a record, one ending in `.toml` an
//!   image profile, and one starting with `/`, `./` or `../` a file or layout
//!   directory; a built-in profile's name is that profile;
//! - anything else is a registry reference.

use std::path::{Path, PathBuf};

use super::exit::usage;

/// An image argument, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageInput {
    /// A registry reference (not yet parsed).
    Registry(String),
    /// An OCI layout directory and the tag in it.
    Layout {
        /// The directory.
        dir: PathBuf,
        /// The tag (`latest` when not given).
        tag: String,
    },
    /// A pull record (measured or simulated) that exists.
    Record(PathBuf),
    /// An image profile: a built-in name or a `.toml` file that exists.
    Profile(String),
}

impl ImageInput {
    /// Classifies `spec`; a file it names must exist.
    pub fn classify(spec: &str) -> anyhow::Result<ImageInput> {
        if let Some(r) = spec.strip_prefix("docker://") {
            return Ok(ImageInput::Registry(r.to_string()));
        }
        if let Some(rest) = spec.strip_prefix("oci:") {
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((d, t)) if Path::new(d).is_dir() => (d, t),
                _ => (rest, "latest"),
            };
            if !Path::new(dir).is_dir() {
                usage!("{spec}: no OCI layout directory {dir}");
            }
            return Ok(ImageInput::Layout {
                dir: dir.into(),
                tag: tag.into(),
            });
        }
        if let Some(file) = spec.strip_prefix("record:") {
            return existing(file, "record").map(ImageInput::Record);
        }
        if let Some(p) = spec.strip_prefix("profile:") {
            if p.ends_with(".toml") || p.contains('/') {
                existing(p, "image profile")?;
            } else if !pulltime::profiles::image::builtin_names().contains(&p) {
                usage!(
                    "{spec}: no built-in image profile {p:?} (built in: {})",
                    pulltime::profiles::image::builtin_names().join(", ")
                );
            }
            return Ok(ImageInput::Profile(p.to_string()));
        }
        if spec.ends_with(".json") {
            return existing(spec, "record").map(ImageInput::Record);
        }
        if spec.ends_with(".toml") {
            existing(spec, "image profile")?;
            return Ok(ImageInput::Profile(spec.to_string()));
        }
        if ["/", "./", "../"].iter().any(|p| spec.starts_with(p)) {
            let path = Path::new(spec);
            if path.join("index.json").is_file() {
                return Ok(ImageInput::Layout {
                    dir: path.into(),
                    tag: "latest".into(),
                });
            }
            if !path.exists() {
                usage!("no such file or directory: {spec}");
            }
            usage!(
                "{spec} is not a record (.json), an image profile (.toml) or an OCI layout directory (with index.json)"
            );
        }
        if pulltime::profiles::image::builtin_names().contains(&spec) {
            return Ok(ImageInput::Profile(spec.to_string()));
        }
        Ok(ImageInput::Registry(spec.to_string()))
    }

    /// Whether the image is an image profile (`--scale`, `--compression` apply).
    pub fn is_profile(&self) -> bool {
        matches!(self, ImageInput::Profile(_))
    }
}

fn existing(file: &str, what: &str) -> anyhow::Result<PathBuf> {
    let path = Path::new(file);
    if !path.is_file() {
        usage!("no such {what} file: {file}");
    }
    Ok(path.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_files_and_the_rest_are_references() {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("r.json");
        std::fs::write(&rec, "{}").unwrap();
        let rec_s = rec.to_str().unwrap();
        assert_eq!(
            ImageInput::classify(rec_s).unwrap(),
            ImageInput::Record(rec.clone())
        );
        assert_eq!(
            ImageInput::classify(&format!("record:{rec_s}")).unwrap(),
            ImageInput::Record(rec.clone())
        );
        for missing in [
            "nosuch.json",
            "./nosuch.json",
            "./nosuch",
            "/no/such",
            "x.toml",
        ] {
            let e = ImageInput::classify(missing).unwrap_err();
            assert!(
                e.downcast_ref::<super::super::exit::Usage>().is_some(),
                "{missing}"
            );
            assert!(
                e.to_string().contains("nosuch")
                    || e.to_string().contains("/no/such")
                    || e.to_string().contains("x.toml"),
                "{e}"
            );
        }
        assert_eq!(
            ImageInput::classify("python:3.9-slim").unwrap(),
            ImageInput::Registry("python:3.9-slim".into())
        );
        assert_eq!(
            ImageInput::classify("docker://nosuch.json").unwrap(),
            ImageInput::Registry("nosuch.json".into())
        );
        assert_eq!(
            ImageInput::classify("vp-transcode-original").unwrap(),
            ImageInput::Profile("vp-transcode-original".into())
        );
        assert!(ImageInput::classify("profile:nope").is_err());
        assert!(ImageInput::classify(&format!("oci:{}/nolayout", dir.path().display())).is_err());
    }
}
