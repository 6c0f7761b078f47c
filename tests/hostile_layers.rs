//! The hostile-layer corpus, applied with the library's `apply_layer_limited` as a
//! rootless puller would (no owners, no device nodes). Every layer is generated here
//! byte by byte (tests/hostile/rawtar.rs). Each case asserts the exact outcome, a
//! named refusal or the exact resulting tree, and (in `Case`'s drop) that nothing
//! next to the root changed: a sentinel directory, a fake `etc/passwd`, the root's
//! parent. docs/limits.md lists these cases; keep the two in sync.

mod common;
#[path = "hostile/rawtar.rs"]
mod rawtar;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{Node, snapshot};
use pulltime::layer::{ApplyOptions, LayerError, LayerStats, apply_layer_limited};
use pulltime::limits::{LimitError, Limits};
use rawtar::{H, Tar};
use sha2::{Digest, Sha256};

/// A root inside a work directory that also holds what an escape would hit.
struct Case {
    _dir: tempfile::TempDir,
    work: PathBuf,
    root: PathBuf,
    before: BTreeMap<String, Node>,
}

fn outside(work: &std::path::Path) -> BTreeMap<String, Node> {
    snapshot(work)
        .into_iter()
        .filter(|(k, _)| k != "root" && !k.starts_with("root/"))
        .collect()
}

fn case() -> Case {
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
    fn apply(&self, tar: &Tar) -> Result<LayerStats, LayerError> {
        self.apply_with(tar, &Limits::DEFAULT)
    }

    fn apply_with(&self, tar: &Tar, limits: &Limits) -> Result<LayerStats, LayerError> {
        self.apply_bytes(&tar.finish(), limits)
    }

    fn apply_bytes(&self, bytes: &[u8], limits: &Limits) -> Result<LayerStats, LayerError> {
        let rootless = ApplyOptions {
            same_owner: false,
            devices: false,
        };
        apply_layer_limited(bytes, &self.root, &rootless, limits)
    }

    /// `work/sentinel` as an absolute path.
    fn sentinel(&self) -> String {
        self.work.join("sentinel").to_string_lossy().into_owned()
    }

    fn assert_tree(&self, want: &[(&str, Node)]) {
        let want: BTreeMap<String, Node> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let have = snapshot(&self.root);
        assert_eq!(have, want, "tree differs:\n{}", common::diff(&want, &have));
    }
}

fn file(mode: u32, data: &[u8]) -> Node {
    Node::File {
        mode,
        size: data.len() as u64,
        sha256: hex::encode(Sha256::digest(data)),
    }
}

fn dir(mode: u32) -> Node {
    Node::Dir { mode }
}

fn link(target: &str) -> Node {
    Node::Symlink {
        target: target.into(),
    }
}

#[track_caller]
fn refused(r: Result<LayerStats, LayerError>, entry: &str, reason: &str) {
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
fn over_limit(r: Result<LayerStats, LayerError>) -> LimitError {
    match r {
        Err(LayerError::Limit(l)) => l,
        other => panic!("expected a limit error, got {other:?}"),
    }
}

// ---- names that climb out, absolute names ----

#[test]
fn dotdot_name_is_refused() {
    let c = case();
    let r = c.apply(Tar::new().file("../sentinel/victim", 0o644, b"pwned"));
    refused(r, "../sentinel/victim", "escapes the root");
    c.assert_tree(&[]);
}

#[test]
fn dotdot_inside_a_name_is_refused() {
    let c = case();
    let r = c.apply(
        Tar::new()
            .dir("a", 0o755)
            .file("a/../../etc/passwd", 0o644, b"pwned"),
    );
    refused(r, "a/../../etc/passwd", "escapes the root");
}

#[test]
fn absolute_name_lands_inside_the_root() {
    let c = case();
    let name = format!("{}/victim", c.sentinel());
    c.apply(Tar::new().file(&name, 0o644, b"inside")).unwrap();
    let rel = name.trim_start_matches('/');
    let mut want: Vec<(String, Node)> = Vec::new();
    let mut acc = String::new();
    for comp in rel.split('/') {
        if !acc.is_empty() {
            want.push((acc.clone(), dir(0o755)));
            acc.push('/');
        }
        acc.push_str(comp);
    }
    want.push((acc, file(0o644, b"inside")));
    let want: Vec<(&str, Node)> = want.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    c.assert_tree(&want);
}

#[test]
fn gnu_longname_with_dotdot_is_refused() {
    let c = case();
    let name = format!("{}{}etc/passwd", "a/".repeat(60), "../".repeat(61));
    let mut t = Tar::new();
    t.gnu_long(b'L', name.as_bytes())
        .file("short", 0o644, b"pwned");
    refused(c.apply(&t), &name, "escapes the root");
}

#[test]
fn pax_path_with_nul_is_refused() {
    let c = case();
    let mut t = Tar::new();
    t.pax(b'x', &[("path", b"a\0/../../etc/passwd")])
        .file("a", 0o644, b"x");
    refused(c.apply(&t), "a\0/../../etc/passwd", "NUL");
}

// ---- hard links ----

#[test]
fn hardlink_to_dotdot_is_refused() {
    let c = case();
    let r = c.apply(Tar::new().hardlink("h", "../../etc/passwd"));
    refused(r, "h", "escapes the root");
    c.assert_tree(&[]);
}

#[test]
fn hardlink_to_absolute_host_path_is_refused_as_missing_in_the_root() {
    let c = case();
    let target = c.work.join("etc/passwd").to_string_lossy().into_owned();
    let r = c.apply(Tar::new().hardlink("h", &target));
    refused(r, "h", "does not exist in the root filesystem");
}

#[test]
fn hardlink_through_an_escaping_symlink_is_refused() {
    let c = case();
    let r = c.apply(
        Tar::new()
            .symlink("esc", "../sentinel")
            .hardlink("h", "esc/victim"),
    );
    refused(r, "h", "does not exist in the root filesystem");
    c.assert_tree(&[("esc", link("../sentinel"))]);
}

#[test]
fn hardlink_to_a_directory_is_refused() {
    let c = case();
    let r = c.apply(Tar::new().dir("d", 0o755).hardlink("h", "d"));
    refused(r, "h", "hard link to a directory");
}

#[test]
fn hardlink_to_an_escaping_symlink_links_the_symlink_and_a_later_write_replaces_it() {
    let c = case();
    let target = format!("{}/victim", c.sentinel());
    c.apply(
        Tar::new()
            .symlink("s", &target)
            .hardlink("h", "s")
            .file("h", 0o644, b"replaced"),
    )
    .unwrap();
    c.assert_tree(&[("h", file(0o644, b"replaced")), ("s", link(&target))]);
}

// ---- symlinks ----

#[test]
fn write_through_a_symlink_chain_stays_inside() {
    let c = case();
    let t = Tar::new()
        .symlink("a", "b")
        .symlink("b", "../../sentinel")
        .file("a/victim", 0o644, b"pwned")
        .finish();
    c.apply_bytes(&t, &Limits::DEFAULT).unwrap();
    c.assert_tree(&[
        ("a", link("b")),
        ("b", link("../../sentinel")),
        ("sentinel", dir(0o755)),
        ("sentinel/victim", file(0o644, b"pwned")),
    ]);
}

#[test]
fn write_through_an_absolute_symlink_stays_inside() {
    let c = case();
    let target = c.sentinel();
    c.apply(
        Tar::new()
            .symlink("d", &target)
            .file("d/victim", 0o600, b"pwned"),
    )
    .unwrap();
    let inner = format!("{}/victim", target.trim_start_matches('/'));
    let tree = snapshot(&c.root);
    assert_eq!(tree.get("d"), Some(&link(&target)));
    assert_eq!(tree.get(inner.as_str()), Some(&file(0o600, b"pwned")));
    assert_eq!(tree.len(), inner.split('/').count() + 1, "{tree:?}");
}

#[test]
fn symlink_loop_is_refused() {
    let c = case();
    let r = c.apply(
        Tar::new()
            .symlink("l1", "l2")
            .symlink("l2", "l1")
            .file("l1/x", 0o644, b"x"),
    );
    refused(r, "l1/x", "too many levels of symbolic links");
}

#[test]
fn symlinked_dir_replaced_by_a_real_dir_in_a_later_layer() {
    let c = case();
    c.apply(Tar::new().symlink("d", "../sentinel")).unwrap();
    c.apply(Tar::new().dir("d", 0o750).file("d/victim", 0o644, b"new"))
        .unwrap();
    c.assert_tree(&[("d", dir(0o750)), ("d/victim", file(0o644, b"new"))]);
}

#[test]
fn dir_replaced_by_an_escaping_symlink_then_written_through_stays_inside() {
    let c = case();
    c.apply(
        Tar::new()
            .dir("d", 0o755)
            .file("d/a", 0o644, b"a")
            .symlink("d", "../sentinel")
            .file("d/victim", 0o644, b"pwned"),
    )
    .unwrap();
    c.assert_tree(&[
        ("d", link("../sentinel")),
        ("sentinel", dir(0o755)),
        ("sentinel/victim", file(0o644, b"pwned")),
    ]);
}

#[test]
fn symlink_as_final_component_is_replaced_not_followed() {
    let c = case();
    let target = format!("{}/victim", c.sentinel());
    c.apply(Tar::new().symlink("v", &target)).unwrap();
    c.apply(Tar::new().file("v", 0o644, b"mine")).unwrap();
    c.assert_tree(&[("v", file(0o644, b"mine"))]);
}

#[test]
fn directory_mode_is_not_applied_through_a_later_symlink() {
    let c = case();
    let target = c.sentinel();
    c.apply(Tar::new().dir("d", 0o700).symlink("d", &target))
        .unwrap();
    c.assert_tree(&[("d", link(&target))]);
}

// ---- whiteouts ----

#[test]
fn whiteout_with_dotdot_is_refused() {
    let c = case();
    refused(
        c.apply(Tar::new().file("../.wh.sentinel", 0o644, b"")),
        "../.wh.sentinel",
        "escapes the root",
    );
}

#[test]
fn whiteout_naming_dotdot_is_refused() {
    let c = case();
    c.apply(Tar::new().dir("d", 0o755)).unwrap();
    refused(
        c.apply(Tar::new().file("d/.wh..", 0o644, b"")),
        "d/.wh..",
        "names no sibling",
    );
    c.assert_tree(&[("d", dir(0o755))]);
}

#[test]
fn whiteout_through_an_escaping_symlink_deletes_inside_only() {
    let c = case();
    c.apply(
        Tar::new()
            .symlink("esc", "../sentinel")
            .dir("sentinel", 0o755)
            .file("sentinel/victim", 0o644, b"lower"),
    )
    .unwrap();
    c.apply(Tar::new().file("esc/.wh.victim", 0o644, b""))
        .unwrap();
    c.assert_tree(&[("esc", link("../sentinel")), ("sentinel", dir(0o755))]);
}

#[test]
fn opaque_marker_in_a_symlinked_dir_clears_inside_only() {
    let c = case();
    let abs = c.sentinel();
    c.apply(
        Tar::new()
            .symlink("rel", "../sentinel")
            .symlink("abs", &abs)
            .dir("sentinel", 0o755)
            .file("sentinel/lower", 0o644, b"lower"),
    )
    .unwrap();
    let stats = c
        .apply(
            Tar::new()
                .file("abs/.wh..wh..opq", 0o644, b"")
                .file("rel/.wh..wh..opq", 0o644, b""),
        )
        .unwrap();
    assert_eq!(stats.whiteouts, 2);
    c.assert_tree(&[
        ("abs", link(&abs)),
        ("rel", link("../sentinel")),
        ("sentinel", dir(0o755)),
    ]);
}

// ---- headers that disagree, unusual headers ----

#[test]
fn pax_size_disagreeing_with_the_header_is_refused() {
    let c = case();
    let mut h = H::new("f", b'0', 0o644);
    h.size_field = Some(10);
    let mut t = Tar::new();
    t.pax(b'x', &[("size", b"1024")]).raw(&h, &[b'A'; 1024]);
    refused(
        c.apply(&t),
        "f",
        "header size 10 disagrees with the pax size record 1024",
    );
    c.assert_tree(&[]);
}

#[test]
fn pax_size_with_a_zero_header_field_is_honoured() {
    let c = case();
    let data = vec![b'z'; 5000];
    let mut h = H::new("big", b'0', 0o644);
    h.size_field = Some(0);
    let mut t = Tar::new();
    t.pax(b'x', &[("size", b"5000")])
        .raw(&h, &data)
        .file("after", 0o644, b"still in sync");
    c.apply(&t).unwrap();
    c.assert_tree(&[
        ("after", file(0o644, b"still in sync")),
        ("big", file(0o644, &data)),
    ]);
}

#[test]
fn pax_global_header_is_ignored() {
    let c = case();
    let mut t = Tar::new();
    t.pax(b'g', &[("comment", b"0123456789abcdef")])
        .file("f", 0o644, b"x");
    let stats = c.apply(&t).unwrap();
    assert_eq!((stats.entries, stats.files), (2, 1));
    c.assert_tree(&[("f", file(0o644, b"x"))]);
}

#[test]
fn gnu_longname_within_the_limit_is_applied() {
    let c = case();
    let dirs = format!("{}/", "d".repeat(50)).repeat(5);
    let name = format!("{dirs}file");
    assert!(name.len() > 100);
    let mut t = Tar::new();
    t.gnu_long(b'L', name.as_bytes())
        .file("short", 0o644, b"long");
    c.apply(&t).unwrap();
    let tree = snapshot(&c.root);
    assert_eq!(tree.get(name.as_str()), Some(&file(0o644, b"long")));
    assert_eq!(tree.len(), 6);
}

#[test]
fn unknown_entry_type_is_refused() {
    let c = case();
    refused(
        c.apply(Tar::new().raw(&H::new("odd", b'Z', 0o644), b"")),
        "odd",
        "unsupported tar entry type",
    );
}

#[test]
fn bad_header_checksum_is_a_read_error() {
    let c = case();
    let mut h = H::new("f", b'0', 0o644);
    h.break_checksum = true;
    match c.apply(Tar::new().raw(&h, b"x")) {
        Err(e @ LayerError::Read(_)) => assert!(e.to_string().contains("checksum"), "{e}"),
        other => panic!("{other:?}"),
    }
    c.assert_tree(&[]);
}

#[test]
fn truncated_stream_is_a_read_error() {
    let c = case();
    let mut t = Tar::new();
    t.file("f", 0o644, &[b'x'; 4096]);
    assert!(matches!(
        c.apply_bytes(&t.truncated(512 + 1000), &Limits::DEFAULT),
        Err(LayerError::Read(_))
    ));
}

// ---- duplicates ----

#[test]
fn duplicate_entries_the_last_one_wins() {
    let c = case();
    let stats = c
        .apply(
            Tar::new()
                .file("f", 0o644, b"one")
                .hardlink("h", "f")
                .file("f", 0o600, b"two")
                .dir("d", 0o755)
                .file("d/a", 0o644, b"a")
                .file("d", 0o644, b"now a file")
                .file("e", 0o644, b"then a dir")
                .dir("e", 0o711),
        )
        .unwrap();
    assert_eq!((stats.files, stats.dirs, stats.hardlinks), (5, 2, 1));
    c.assert_tree(&[
        ("d", file(0o644, b"now a file")),
        ("e", dir(0o711)),
        ("f", file(0o600, b"two")),
        ("h", file(0o644, b"one")),
    ]);
}

// ---- privileges ----

#[test]
fn devices_are_skipped_and_fifos_made_when_not_root() {
    let c = case();
    let stats = c
        .apply(
            Tar::new()
                .device("cdev", b'3', 1, 3)
                .device("bdev", b'4', 8, 0)
                .raw(&H::new("fifo", b'6', 0o640), b""),
        )
        .unwrap();
    assert_eq!(stats.skipped_devices, 2);
    c.assert_tree(&[("fifo", Node::Fifo { mode: 0o640 })]);
}

#[test]
fn setid_bits_are_dropped_from_files_when_owners_are_not_kept() {
    let c = case();
    c.apply(
        Tar::new()
            .file("bin/su", 0o4755, b"su")
            .file("bin/wall", 0o2755, b"wall")
            .dir("shared", 0o2775),
    )
    .unwrap();
    c.assert_tree(&[
        ("bin", dir(0o755)),
        ("bin/su", file(0o755, b"su")),
        ("bin/wall", file(0o755, b"wall")),
        ("shared", dir(0o2775)),
    ]);
}

// ---- limits enforced while applying ----

#[test]
fn path_longer_than_path_max_is_refused() {
    let c = case();
    let name = format!("{}/", "p".repeat(99)).repeat(50);
    let mut t = Tar::new();
    t.pax(b'x', &[("path", name.as_bytes())])
        .file("x", 0o644, b"");
    match over_limit(c.apply(&t)) {
        LimitError::PathLength {
            what: "name",
            len: 5000,
            limit: 4096,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    c.assert_tree(&[]);
}

#[test]
fn symlink_target_longer_than_path_max_is_refused() {
    let c = case();
    let target = "../".repeat(2000);
    let mut t = Tar::new();
    t.pax(b'x', &[("linkpath", target.as_bytes())])
        .symlink("s", "x");
    let e = over_limit(c.apply(&t));
    assert_eq!(
        e,
        LimitError::PathLength {
            entry: "s".into(),
            what: "link target",
            len: 6000,
            limit: 4096
        }
    );
    assert!(e.to_string().ends_with("(--max-path-length)"), "{e}");
}

#[test]
fn path_deeper_than_the_limit_is_refused() {
    let c = case();
    let name = format!("{}f", "d/".repeat(300));
    let mut t = Tar::new();
    t.pax(b'x', &[("path", name.as_bytes())])
        .file("x", 0o644, b"");
    match over_limit(c.apply(&t)) {
        LimitError::PathDepth {
            depth: 301,
            limit: 256,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn more_entries_than_the_limit_are_refused_and_the_limit_itself_passes() {
    let c = case();
    let limits = Limits {
        max_entries: 10,
        ..Limits::DEFAULT
    };
    let mut t = Tar::new();
    for i in 0..10 {
        t.file(format!("f{i}"), 0o644, b"");
    }
    assert_eq!(c.apply_with(&t, &limits).unwrap().entries, 10);
    t.file("f10", 0o644, b"");
    assert_eq!(
        over_limit(c.apply_with(&t, &limits)),
        LimitError::Entries { limit: 10 }
    );
}

#[test]
fn huge_gnu_longname_is_refused_before_it_is_buffered() {
    let c = case();
    let name = "n".repeat(64 << 20);
    let mut t = Tar::new();
    t.gnu_long(b'L', name.as_bytes()).file("short", 0o644, b"x");
    let e = over_limit(c.apply(&t));
    assert_eq!(
        e,
        LimitError::EntryHeaders {
            limit: (1 << 20) + 8192
        }
    );
    assert!(
        e.to_string().ends_with("(raised with --max-path-length)"),
        "{e}"
    );
    c.assert_tree(&[]);
}

#[test]
fn pax_records_within_the_header_budget_pass_and_beyond_it_are_refused() {
    let c = case();
    let mut t = Tar::new();
    let small = vec![b'v'; 512 << 10];
    t.pax(b'x', &[("SCHILY.xattr.user.big", &small)])
        .file("ok", 0o644, b"x");
    let big = vec![b'v'; 2 << 20];
    c.apply(&t).unwrap();
    t.pax(b'x', &[("SCHILY.xattr.user.big", &big)])
        .file("too-big", 0o644, b"x");
    assert!(matches!(
        over_limit(c.apply(&t)),
        LimitError::EntryHeaders { .. }
    ));
    // The first entry was applied before the second one's headers were refused.
    c.assert_tree(&[("ok", file(0o644, b"x"))]);
}

#[test]
fn sparse_file_is_expanded_exactly() {
    let c = case();
    let mut h = H::new("sparse", b'S', 0o644);
    h.sparse = Some((vec![(4096, 512), (8192, 0)], 8192));
    c.apply(Tar::new().raw(&h, &[b'x'; 512])).unwrap();
    let mut want = vec![0u8; 8192];
    want[4096..4608].fill(b'x');
    c.assert_tree(&[("sparse", file(0o644, &want))]);
}

#[test]
fn sparse_bomb_is_refused_before_writing() {
    let c = case();
    let limits = Limits {
        max_layer_bytes: 1 << 30,
        ..Limits::DEFAULT
    };
    let mut h = H::new("bomb", b'S', 0o644);
    h.sparse = Some((vec![(0, 512), (4 << 30, 0)], 4 << 30));
    let e = over_limit(c.apply_with(Tar::new().raw(&h, &[b'x'; 512]), &limits));
    assert_eq!(
        e,
        LimitError::FileBytes {
            entry: "bomb".into(),
            total: 4 << 30,
            limit: 1 << 30
        }
    );
    assert!(
        e.to_string().ends_with("more than 1GiB (--max-layer-size)"),
        "{e}"
    );
    c.assert_tree(&[]);
}

// ---- the corpus table in docs/limits.md ----

#[test]
fn docs_list_every_corpus_case() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(dir.join("docs/limits.md")).unwrap();
    let table: Vec<&str> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name))
        .filter(|name| name.contains('_'))
        .collect();
    let mut tests = Vec::new();
    for file in ["tests/hostile_layers.rs", "tests/hostile_pulls.rs"] {
        let src = std::fs::read_to_string(dir.join(file)).unwrap();
        let mut lines = src.lines();
        while let Some(l) = lines.next() {
            if l.trim() == "#[test]" {
                let f = lines.next().unwrap().trim();
                let name = f.strip_prefix("fn ").unwrap().split('(').next().unwrap();
                tests.push(name.to_string());
            }
        }
    }
    tests.retain(|t| t != "docs_list_every_corpus_case");
    assert!(tests.len() >= 25, "{}", tests.len());
    for t in &tests {
        assert!(
            table.contains(&t.as_str()),
            "docs/limits.md does not list {t}"
        );
    }
    for row in &table {
        assert!(
            tests.iter().any(|t| t == row),
            "docs/limits.md lists {row}, no such test"
        );
    }
}
