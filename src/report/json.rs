//! The JSON record on disk (`--json FILE`, `-` for stdout). Files are written to a
//! temporary sibling and renamed, so a reader never sees half a record.

use std::io::Write;
use std::path::Path;

use crate::oci::record::{PullRecord, READS_SCHEMA_VERSIONS};

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
    write_json(record, path)
}

/// Writes any JSON document as [`write_record`] writes a record: whole or not at
/// all, `-` for stdout.
pub fn write_json<T: serde::Serialize>(value: &T, path: &Path) -> Result<(), RecordError> {
    let io = |source| RecordError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut text = serde_json::to_vec_pretty(value).expect("plain data serialises");
    text.push(b'\n');
    if path.as_os_str() == "-" {
        return super::stdout::Stdout.write_all(&text).map_err(io);
    }
    write_whole(path, &text).map_err(io)
}

/// Writes `bytes` to `path` whole or not at all (a temporary file beside it,
/// renamed over it), with the mode any new file gets (0666 less the umask), so
/// JSON, CSV and SVG outputs all look alike.
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".pulltime-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
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
        Some(v) if READS_SCHEMA_VERSIONS.iter().any(|&r| u64::from(r) == v) => {}
        Some(v) => {
            return Err(invalid(format!(
                "schema_version {v}, this build reads {READS_SCHEMA_VERSIONS:?}"
            )));
        }
        None => return Err(invalid("no schema_version".into())),
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 1 record (every phase a number, no `puller`, no `unobserved`) as
    /// pulltime 0.1 wrote it, trimmed to one layer.
    const V1: &str = r#"{"schema_version":1,"simulated":false,
      "tool":{"name":"pulltime","version":"0.1.0"},"created":"2026-11-01T00:00:00Z",
      "host":{"os":"linux","arch":"x86_64","cpus":2},
      "image":{"reference":"127.0.0.1:5000/a:v1","manifest_digest":"sha256:m","manifest_media_type":"m",
        "platform_manifest_digest":"sha256:m","platform":"linux/amd64","config_digest":"sha256:c",
        "layers":[],"compressed_bytes":10,"uncompressed_bytes":20},
      "settings":{"mode":"streaming","max_concurrent_downloads":3,"runs":1,"warmup":0,"platform":"linux/amd64","scheme":"http"},
      "runs":[{"index":0,"wall_s":1.0,"resolve_s":0.1,"requests":[],"connections":[],
        "layers":[{"index":0,"digest":"sha256:l","compressed_bytes":10,"uncompressed_bytes":20,
          "files":1,"dirs":1,"symlinks":0,"hardlinks":0,"whiteouts":0,"skipped_devices":0,
          "start_s":0.1,"end_s":1.0,"download_s":0.5,"ttfb_s":0.01,"redirect_s":0,
          "throughput_bps":20,"verify_s":0.02,"decompress_s":0.2,"extract_s":0.3,
          "stall_s":0,"queued_s":0}]}],
      "summary":{"runs":1,"wall_s":{"n":1,"min":1,"median":1,"mean":1,"p95":1,"max":1,"stddev":0},"resolve_s":{"n":1,"min":1,"median":1,"mean":1,"p95":1,"max":1,"stddev":0},"download_s":{"n":1,"min":1,"median":1,"mean":1,"p95":1,"max":1,"stddev":0},"verify_s":{"n":1,"min":1,"median":1,"mean":1,"p95":1,"max":1,"stddev":0},
        "decompress_s":{"n":1,"min":1,"median":1,"mean":1,"p95":1,"max":1,"stddev":0},"extract_s":{"n":1,"min":1,"median":1,"mean":1,"p95":1,"max":1,"stddev":0},"layers":[]}}"#;

    #[test]
    fn version_1_records_read_as_pulltime_with_every_phase_observed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.json");
        std::fs::write(&path, V1).unwrap();
        let r = read_record(&path).unwrap();
        assert_eq!(r.puller.name, "pulltime");
        let l = &r.runs[0].layers[0];
        assert_eq!((l.decompress_s, l.extract_s), (Some(0.2), Some(0.3)));
        assert!(r.runs[0].unobserved.is_empty());
        assert!(r.summary.decompress_s.is_some());
    }

    #[test]
    fn unknown_versions_are_refused_by_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v9.json");
        std::fs::write(
            &path,
            V1.replace("\"schema_version\":1", "\"schema_version\":9"),
        )
        .unwrap();
        let e = read_record(&path).unwrap_err().to_string();
        assert!(e.contains("schema_version 9"), "{e}");
    }
}
