//! Where a profile's TOML comes from: a name built into the binary, or a file.
//! Network and image profiles share this lookup.

/// The text of a profile.
pub enum Source {
    /// Built in (shipped in `profiles/`).
    Builtin(&'static str),
    /// Read from a file.
    File(String),
    /// Neither a built-in name nor a file; carries the built-in names for the error.
    Unknown(String),
}

/// Looks `name_or_path` up among `builtins`, then on disk. A file that exists but
/// cannot be read is an error with its reason.
pub fn lookup(
    name_or_path: &str,
    builtins: &[(&'static str, &'static str)],
) -> Result<Source, String> {
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
