//! The sandbox every hostile-layer case runs in: a root inside a work directory
//! that also holds what an escape would hit, checked unchanged when the case ends.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::rawtar::Tar;
use crate::common::{self, Node, snapshot};
use pulltime::layer::{ApplyOptions, LayerError, LayerStats, apply_layer_limited};
use pulltime::limits::{LimitError, Limits};
use sha2::{Digest, Sha256};

/// A root inside a work directory that also holds what an escape would hit.
pub struct Case {
    _dir: tempfile::TempDir,
    pub work: PathBuf,
    pub root: PathBuf,
    before: BTreeMap<String, Node>,
}

pub fn outside(work: &std::path::Path) -> BTreeMap<String, Node> {
    snapshot(work)
        .into_iter()
        .filter(|(k, _)| k != "root" && !k.starts_with("root/"))
        .collect()
}

pub fn case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().to_path_buf();
    let root = work.join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir_all(work.join("sentinel/dir")).unwrap();
    std::fs::create_dir_all(work.join("etc")).unwrap();
    std::fs::write(work.join("sentinel/victim"), "precious").unwrap();
    std::fs::write(work.join("sentinel/dir/file"), "precious").unwrap();
    std::fs::write(work.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    let before = outside(&work);
    assert_eq!(before.len(), 6);
    Case {
        _dir: dir,
        work,
        root,
        before,
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let after = outside(&self.work);
        assert_eq!(
            after,
            self.before,
            "something outside the root changed:\n{}",
            common::diff(&self.before, &after)
        );
    }
}

impl Case {
    pub fn apply(&self, tar: &Tar) -> Result<LayerStats, LayerError> {
        self.apply_with(tar, &Limits::DEFAULT)
    }

    pub fn apply_with(&self, tar: &Tar, limits: &Limits) -> Result<LayerStats, LayerError> {
        self.apply_bytes(&tar.finish(), limits)
    }

    pub fn apply_bytes(&self, bytes: &[u8], limits: &Limits) -> Result<LayerStats, LayerError> {
        let rootless = ApplyOptions {
            same_owner: false,
            devices: false,
        };
        apply_layer_limited(bytes, &self.root, &rootless, limits)
    }

    /// `work/sentinel` as an absolute path.
    pub fn sentinel(&self) -> String {
        self.work.join("sentinel").to_string_lossy().into_owned()
    }

    pub fn assert_tree(&self, want: &[(&str, Node)]) {
        let want: BTreeMap<String, Node> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let have = snapshot(&self.root);
        assert_eq!(have, want, "tree differs:\n{}", common::diff(&want, &have));
    }
}

pub fn file(mode: u32, data: &[u8]) -> Node {
    Node::File {
        mode,
        size: data.len() as u64,
        sha256: hex::encode(Sha256::digest(data)),
    }
}

pub fn dir(mode: u32) -> Node {
    Node::Dir { mode }
}

pub fn link(target: &str) -> Node {
    Node::Symlink {
        target: target.into(),
    }
}

#[track_caller]
pub fn refused(r: Result<LayerStats, LayerError>, entry: &str, reason: &str) {
    match r {
        Err(LayerError::Unsafe {
            entry: e,
            reason: why,
        }) => {
            assert_eq!(e, entry);
            assert!(why.contains(reason), "reason {why:?} lacks {reason:?}");
        }
        other => panic!("expected {entry:?} refused ({reason}), got {other:?}"),
    }
}

#[track_caller]
pub fn over_limit(r: Result<LayerStats, LayerError>) -> LimitError {
    match r {
        Err(LayerError::Limit(l)) => l,
        other => panic!("expected a limit error, got {other:?}"),
    }
}
