//! Where a profile's TOML comes from: a name built into the binary, or a file.
//! Network, image and fault profiles share this lookup and its error.

/// A profile could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Not a built-in name, and no such file.
    #[error("unknown {kind} profile {name:?}: use one of {builtins} or a path to a TOML file")]
    Unknown {
        /// `network`, `image`, `fault`.
        kind: &'static str,
        /// What was asked for.
        name: String,
        /// The built-in names, comma-separated.
        builtins: String,
    },
    /// Unreadable, not TOML, or out of range.
    #[error("{kind} profile {path}: {reason}")]
    Invalid {
        /// `network`, `image`, `fault`.
        kind: &'static str,
        /// File or built-in name.
        path: String,
        /// Why.
        reason: String,
    },
}

impl ProfileError {
    /// The profile `path` of `kind` is unreadable or wrong, because of `reason`.
    pub fn invalid(kind: &'static str, path: &str, reason: impl Into<String>) -> Self {
        ProfileError::Invalid {
            kind,
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Finds the profile `name_or_path` of `kind` among `builtins`, then on disk, and
/// parses its text with `parse(origin, text)`.
pub fn load<T>(
    kind: &'static str,
    name_or_path: &str,
    builtins: &[(&'static str, &'static str)],
    parse: impl FnOnce(&str, &str) -> Result<T, ProfileError>,
) -> Result<T, ProfileError> {
    match lookup(name_or_path, builtins) {
        Ok(Source::Builtin(text)) => parse(name_or_path, text),
        Ok(Source::File(text)) => parse(name_or_path, &text),
        Ok(Source::Unknown(builtins)) => Err(ProfileError::Unknown {
            kind,
            name: name_or_path.into(),
            builtins,
        }),
        Err(reason) => Err(ProfileError::invalid(kind, name_or_path, reason)),
    }
}

/// The text of a profile.
enum Source {
    /// Built in (shipped in `profiles/`).
    Builtin(&'static str),
    /// Read from a file.
    File(String),
    /// Neither a built-in name nor a file; carries the built-in names for the error.
    Unknown(String),
}

/// Looks `name_or_path` up among `builtins`, then on disk. A file that exists but
/// cannot be read is an error with its reason.
fn lookup(name_or_path: &str, builtins: &[(&'static str, &'static str)]) -> Result<Source, String> {
    if let Some((_, text)) = builtins.iter().find(|(n, _)| *n == name_or_path) {
        return Ok(Source::Builtin(text));
    }
    let path = std::path::Path::new(name_or_path);
    if path.is_file() {
        return std::fs::read_to_string(path)
            .map(Source::File)
            .map_err(|e| e.to_string());
    }
    Ok(Source::Unknown(
        builtins
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", "),
    ))
}
