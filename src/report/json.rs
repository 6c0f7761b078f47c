//! The JSON record on disk (`--json FILE`, `-` for stdout). Files are written to a
//! temporary sibling and renamed, so a reader never sees half a record.

use std::io::Write;
use std::path::Path;

use crate::oci::record::{PullRecord, SCHEMA_VERSION};

/// Errors reading or writing records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// I/O.
    #[error("{path}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a pulltime record.
    #[error("{path} is not a pulltime record: {reason}")]
    Invalid {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Writes `record` to `path`, or to stdout when `path` is `-`.
pub fn write_record(record: &PullRecord, path: &Path) -> Result<(), RecordError> {
    let io = |source| RecordError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut text = serde_json::to_vec_pretty(record).expect("records serialise");
    text.push(b'\n');
    if path.as_os_str() == "-" {
        return std::io::stdout().write_all(&text).map_err(io);
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(&text).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Reads a record, checking its schema version.
pub fn read_record(path: &Path) -> Result<PullRecord, RecordError> {
    let text = std::fs::read(path).map_err(|source| RecordError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let invalid = |reason: String| RecordError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(invalid(format!(
                "schema_version {v}, this build reads {SCHEMA_VERSION}"
            )));
        }
        None => return Err(invalid("no schema_version".into())),
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}
