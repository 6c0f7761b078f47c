//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/sha256/...`):
//! written by image synthesis, read by the embedded registry and by pushing.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::digest::validate_digest;
use super::image::Blob;

/// The annotation that names a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A layout directory being written or read.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Creates (or opens) a layout at `dir`.
    pub fn create(dir: &Path) -> io::Result<Layout> {
        std::fs::create_dir_all(dir.join("blobs/sha256"))?;
        let marker = dir.join("oci-layout");
        if !marker.exists() {
            std::fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !dir.join("index.json").exists() {
            let empty = json!({"schemaVersion": 2, "mediaType": super::media_type::OCI_INDEX, "manifests": []});
            std::fs::write(dir.join("index.json"), serde_json::to_vec_pretty(&empty)?)?;
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    /// Opens an existing layout, checking its marker file.
    pub fn open(dir: &Path) -> io::Result<Layout> {
        if !dir.join("oci-layout").is_file() || !dir.join("index.json").is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is not an OCI image layout (no oci-layout or index.json)",
                    dir.display()
                ),
            ));
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a blob (the digest must be valid).
    pub fn blob_path(&self, digest: &str) -> io::Result<PathBuf> {
        validate_digest(digest).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let (alg, hex) = digest.split_once(':').expect("validated");
        Ok(self.dir.join("blobs").join(alg).join(hex))
    }

    /// A temporary file inside the layout for a blob being written.
    pub fn temp_blob(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(self.dir.join("blobs/sha256"))
    }

    /// Moves a finished temporary blob into place under its digest.
    pub fn commit_blob(&self, tmp: tempfile::NamedTempFile, digest: &str) -> io::Result<()> {
        let dest = self.blob_path(digest)?;
        tmp.persist(&dest).map_err(|e| e.error)?;
        Ok(())
    }

    /// Writes a small blob.
    pub fn put_blob(&self, blob: &Blob) -> io::Result<()> {
        let mut tmp = self.temp_blob()?;
        tmp.write_all(&blob.data)?;
        self.commit_blob(tmp, &blob.digest)
    }

    /// Points `tag` at `manifest` in `index.json` (replacing an earlier entry).
    pub fn tag(&self, manifest: &Blob, tag: &str) -> io::Result<()> {
        self.put_blob(manifest)?;
        let path = self.dir.join("index.json");
        let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let mut entries: Vec<serde_json::Value> =
            index["manifests"].as_array().cloned().unwrap_or_default();
        entries.retain(|e| e["annotations"][REF_NAME].as_str() != Some(tag));
        let mut d = manifest.descriptor();
        d["annotations"] = json!({ REF_NAME: tag });
        entries.push(d);
        index["manifests"] = json!(entries);
        let text = serde_json::to_vec_pretty(&index)?;
        write_atomically(&self.dir, &path, &text)
    }

    /// The manifest that `tag` names, with its media type.
    pub fn manifest_for(&self, tag: &str) -> io::Result<Blob> {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("index.json"))?)?;
        let entry = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["annotations"][REF_NAME].as_str() == Some(tag))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no tag {tag:?} in {}", self.dir.display()),
                )
            })?;
        let digest = entry["digest"].as_str().unwrap_or("");
        let media_type = entry["mediaType"]
            .as_str()
            .unwrap_or(super::media_type::OCI_MANIFEST);
        let data = std::fs::read(self.blob_path(digest)?)?;
        let blob = Blob::new(media_type, data);
        if blob.digest != digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob {digest} in {} is corrupt", self.dir.display()),
            ));
        }
        Ok(blob)
    }
}

/// Writes `data` to `dest` through a temporary file in `tmp_dir` and a rename.
pub fn write_atomically(tmp_dir: &Path, dest: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir)?;
    tmp.write_all(data)?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}
