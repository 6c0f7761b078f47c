//! What the embedded registry serves: OCI image layouts given with `--layout
//! NAME=DIR` (read-only) and pushed content in a storage directory. Blobs are
//! content-addressed files; which repository may see which blob and manifest, and
//! the tags, are kept in memory and in small files under the storage directory so a
//! reused `--storage` keeps its images.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::oci::digest::validate_digest;
use crate::oci::layout::write_atomically;
use crate::oci::media_type::{OCI_INDEX, OCI_MANIFEST};

/// A repository's view.
#[derive(Debug, Default, Clone)]
struct Repo {
    /// tag -> manifest digest.
    tags: BTreeMap<String, String>,
    /// manifest digest -> media type.
    manifests: HashMap<String, String>,
    /// Blobs this repository may serve.
    blobs: HashSet<String>,
    /// An OCI layout whose blobs back this repository.
    layout: Option<PathBuf>,
}

/// Problems loading layouts or storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A layout directory is not a valid OCI layout.
    #[error("OCI layout {path}: {reason}")]
    Layout {
        /// Directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// I/O on the storage directory.
    #[error("storage {path}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Layouts plus pushed content.
#[derive(Debug)]
pub struct Store {
    storage: PathBuf,
    repos: RwLock<HashMap<String, Repo>>,
}

impl Store {
    /// Opens (creating) `storage` and loads what earlier pushes left there.
    pub fn open(storage: &Path) -> Result<Store, StoreError> {
        let io_err = |source| StoreError::Io {
            path: storage.display().to_string(),
            source,
        };
        for sub in ["blobs/sha256", "uploads", "repos"] {
            std::fs::create_dir_all(storage.join(sub)).map_err(io_err)?;
        }
        let store = Store {
            storage: storage.to_path_buf(),
            repos: RwLock::new(HashMap::new()),
        };
        store.load_pushed().map_err(io_err)?;
        Ok(store)
    }

    /// Serves the OCI layout at `dir` as repository `name`.
    pub fn add_layout(&self, name: &str, dir: &Path) -> Result<Vec<String>, StoreError> {
        let bad = |reason: String| StoreError::Layout {
            path: dir.display().to_string(),
            reason,
        };
        crate::oci::reference::validate_repository(name)
            .map_err(|e| bad(format!("repository name: {e}")))?;
        let index_text =
            std::fs::read(dir.join("index.json")).map_err(|e| bad(format!("index.json: {e}")))?;
        let index: serde_json::Value =
            serde_json::from_slice(&index_text).map_err(|e| bad(format!("index.json: {e}")))?;
        let mut repo = Repo {
            layout: Some(dir.to_path_buf()),
            ..Repo::default()
        };
        let entries = index["manifests"].as_array().cloned().unwrap_or_default();
        let mut tags = Vec::new();
        for entry in &entries {
            let digest = entry["digest"].as_str().unwrap_or("").to_string();
            validate_digest(&digest).map_err(|e| bad(format!("index.json: {e}")))?;
            if let Some(tag) = entry["annotations"]["org.opencontainers.image.ref.name"].as_str() {
                repo.tags.insert(tag.to_string(), digest.clone());
                tags.push(tag.to_string());
            }
            self.register_layout_manifest(dir, &mut repo, &digest, 0)
                .map_err(bad)?;
        }
        if tags.is_empty() {
            return Err(bad(
                "no manifest in index.json has an org.opencontainers.image.ref.name annotation (a tag)".into(),
            ));
        }
        self.repos
            .write()
            .expect("repos lock")
            .insert(name.to_string(), repo);
        Ok(tags)
    }

    fn register_layout_manifest(
        &self,
        dir: &Path,
        repo: &mut Repo,
        digest: &str,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 4 {
            return Err("indexes nested more than 4 deep".into());
        }
        let path = layout_blob(dir, digest);
        let body = std::fs::read(&path).map_err(|e| format!("manifest {digest}: {e}"))?;
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("manifest {digest}: {e}"))?;
        let media_type = media_type_of(&doc);
        repo.manifests.insert(digest.to_string(), media_type);
        repo.blobs.insert(digest.to_string());
        if let Some(children) = doc["manifests"].as_array() {
            for c in children {
                let d = c["digest"].as_str().unwrap_or("");
                validate_digest(d).map_err(|e| format!("manifest {digest}: {e}"))?;
                if layout_blob(dir, d).is_file() {
                    self.register_layout_manifest(dir, repo, d, depth + 1)?;
                }
            }
        }
        for d in
            std::iter::once(&doc["config"]).chain(doc["layers"].as_array().into_iter().flatten())
        {
            if let Some(d) = d["digest"].as_str() {
                validate_digest(d).map_err(|e| format!("manifest {digest}: {e}"))?;
                repo.blobs.insert(d.to_string());
            }
        }
        Ok(())
    }

    /// Path of a blob `repo` may serve, if any.
    pub fn blob_path(&self, repo: &str, digest: &str) -> Option<PathBuf> {
        let repos = self.repos.read().expect("repos lock");
        let r = repos.get(repo)?;
        if !r.blobs.contains(digest) {
            return None;
        }
        self.find_blob(r, digest)
    }

    /// Path of a blob in any repository (the CDN serves by digest after checking a
    /// signature).
    pub fn any_blob_path(&self, digest: &str) -> Option<PathBuf> {
        let repos = self.repos.read().expect("repos lock");
        repos
            .values()
            .filter(|r| r.blobs.contains(digest))
            .find_map(|r| self.find_blob(r, digest))
    }

    fn find_blob(&self, r: &Repo, digest: &str) -> Option<PathBuf> {
        let pushed = self.pushed_blob(digest);
        if pushed.is_file() {
            return Some(pushed);
        }
        r.layout
            .as_ref()
            .map(|l| layout_blob(l, digest))
            .filter(|p| p.is_file())
    }

    /// Where a pushed blob lives (digest must be validated).
    pub fn pushed_blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.storage.join("blobs/sha256").join(hex)
    }

    /// Resolves a tag or digest to (digest, media type, path).
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<(String, String, PathBuf)> {
        let repos = self.repos.read().expect("repos lock");
        let r = repos.get(repo)?;
        let digest = if reference.contains(':') {
            reference.to_string()
        } else {
            r.tags.get(reference)?.clone()
        };
        let media_type = r.manifests.get(&digest)?.clone();
        let path = self.find_blob(r, &digest)?;
        Some((digest, media_type, path))
    }

    /// Whether the repository exists at all.
    pub fn has_repo(&self, repo: &str) -> bool {
        self.repos.read().expect("repos lock").contains_key(repo)
    }

    /// Whether `repo` may serve manifest `digest`.
    pub fn has_manifest(&self, repo: &str, digest: &str) -> bool {
        self.repos
            .read()
            .expect("repos lock")
            .get(repo)
            .is_some_and(|r| r.manifests.contains_key(digest))
    }

    /// Tags of a repository, sorted.
    pub fn tags(&self, repo: &str) -> Option<Vec<String>> {
        self.repos
            .read()
            .expect("repos lock")
            .get(repo)
            .map(|r| r.tags.keys().cloned().collect())
    }

    /// A cross-repository mount: `repo` gets `from`'s blob `digest`. A blob that
    /// lives only in `from`'s OCI layout is first linked (or, across
    /// filesystems, copied) into storage, where every repository finds it.
    /// False when `from` has no such blob (the client then uploads it).
    pub fn mount_blob(&self, from: &str, repo: &str, digest: &str) -> io::Result<bool> {
        let Some(source) = self.blob_path(from, digest) else {
            return Ok(false);
        };
        let stored = self.pushed_blob(digest);
        if source != stored && !stored.is_file() {
            if let Some(dir) = stored.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // Under a temporary name first, so that a half-copied blob is never
            // served.
            let tmp = tempfile::NamedTempFile::new_in(self.uploads_dir())?.into_temp_path();
            std::fs::remove_file(&tmp)?;
            if std::fs::hard_link(&source, &tmp).is_err() {
                std::fs::copy(&source, &tmp)?;
            }
            tmp.persist(&stored).map_err(|e| e.error)?;
        }
        self.link_blob(repo, digest)?;
        Ok(true)
    }

    /// Records that `repo` holds the pushed blob `digest` (already in storage).
    pub fn link_blob(&self, repo: &str, digest: &str) -> io::Result<()> {
        self.journal(repo, &format!("blob {digest}"))?;
        self.repos
            .write()
            .expect("repos lock")
            .entry(repo.to_string())
            .or_default()
            .blobs
            .insert(digest.to_string());
        Ok(())
    }

    /// Stores a pushed manifest (its bytes already checked) and tags it.
    pub fn put_manifest(
        &self,
        repo: &str,
        tag: Option<&str>,
        digest: &str,
        media_type: &str,
        body: &[u8],
    ) -> io::Result<()> {
        let path = self.pushed_blob(digest);
        if !path.is_file() {
            write_atomically(&self.storage.join("uploads"), &path, body)?;
        }
        self.journal(repo, &format!("manifest {digest} {media_type}"))?;
        if let Some(t) = tag {
            self.journal(repo, &format!("tag {t} {digest}"))?;
        }
        let mut repos = self.repos.write().expect("repos lock");
        let r = repos.entry(repo.to_string()).or_default();
        r.manifests
            .insert(digest.to_string(), media_type.to_string());
        r.blobs.insert(digest.to_string());
        if let Some(t) = tag {
            r.tags.insert(t.to_string(), digest.to_string());
        }
        Ok(())
    }

    /// Removes `digest` from what `repo` may serve (the file stays: other
    /// repositories may share it).
    pub fn unlink_blob(&self, repo: &str, digest: &str) -> io::Result<bool> {
        let removed = self
            .repos
            .write()
            .expect("repos lock")
            .get_mut(repo)
            .is_some_and(|r| r.blobs.remove(digest));
        if removed {
            self.journal(repo, &format!("unlink {digest}"))?;
        }
        Ok(removed)
    }

    /// Removes a manifest and the tags that point at it.
    pub fn delete_manifest(&self, repo: &str, digest: &str) -> io::Result<bool> {
        let mut repos = self.repos.write().expect("repos lock");
        let Some(r) = repos.get_mut(repo) else {
            return Ok(false);
        };
        if r.manifests.remove(digest).is_none() {
            return Ok(false);
        }
        r.tags.retain(|_, d| d != digest);
        drop(repos);
        self.journal(repo, &format!("delete {digest}"))?;
        Ok(true)
    }

    /// Directory for upload sessions.
    pub fn uploads_dir(&self) -> PathBuf {
        self.storage.join("uploads")
    }

    /// Appends one operation to `repos/<repo>/journal`; replayed in order on open.
    fn journal(&self, repo: &str, line: &str) -> io::Result<()> {
        use std::io::Write;
        let dir = self.storage.join("repos").join(repo);
        std::fs::create_dir_all(&dir)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("journal"))?;
        writeln!(f, "{line}")
    }

    fn load_pushed(&self) -> io::Result<()> {
        let root = self.storage.join("repos");
        let mut stack = vec![root.clone()];
        let mut repos = self.repos.write().expect("repos lock");
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir)? {
                let e = e?;
                if e.file_type()?.is_dir() {
                    stack.push(e.path());
                }
            }
            let Ok(journal) = std::fs::read_to_string(dir.join("journal")) else {
                continue;
            };
            let name = dir
                .strip_prefix(&root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if crate::oci::reference::validate_repository(&name).is_err() {
                continue;
            }
            let r = repos.entry(name).or_default();
            for line in journal.lines() {
                let f: Vec<&str> = line.split(' ').collect();
                match f.as_slice() {
                    ["blob", d] => {
                        r.blobs.insert((*d).into());
                    }
                    ["unlink", d] => {
                        r.blobs.remove(*d);
                    }
                    ["manifest", d, mt] => {
                        r.manifests.insert((*d).into(), (*mt).into());
                        r.blobs.insert((*d).into());
                    }
                    ["tag", t, d] => {
                        r.tags.insert((*t).into(), (*d).into());
                    }
                    ["delete", d] => {
                        r.manifests.remove(*d);
                        r.tags.retain(|_, v| v != d);
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

fn layout_blob(dir: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    dir.join("blobs").join(alg).join(hex)
}

/// The media type a manifest document declares, or what its shape says.
pub fn media_type_of(doc: &serde_json::Value) -> String {
    match doc["mediaType"].as_str() {
        Some(m) if !m.is_empty() => m.to_string(),
        _ if doc.get("manifests").is_some() => OCI_INDEX.into(),
        _ => OCI_MANIFEST.into(),
    }
}
