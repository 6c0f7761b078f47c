//! The hostile-layer corpus, part one: names, links, symlinks and whiteouts that try
//! to reach outside the root, applied with the library's `apply_layer_limited` as a
//! rootless puller would (no owners, no device nodes). Every layer is generated here
//! byte by byte (layers/rawtar.rs). Each case asserts the exact outcome, a
//! named refusal or the exact resulting tree, and (in `Case`'s drop,
//! tests/hostile/case.rs) that nothing next to the root changed: a sentinel
//! directory, a fake `etc/passwd`, the root's parent. Part two is
//! tests/hostile_headers.rs, part three tests/hostile_pulls.rs; docs/limits.md lists
//! every case and `docs_list_every_corpus_case` keeps the two in sync.

use crate::common;

use super::case::{case, dir, file, link, refused};
use super::rawtar::Tar;
use common::{Node, snapshot};
use pulltime::limits::Limits;

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
    for file in [
        "tests/layers/hostile_entries.rs",
        "tests/layers/hostile_headers.rs",
        "tests/pull/hostile.rs",
    ] {
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
