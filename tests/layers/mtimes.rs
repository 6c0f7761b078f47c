//! Mtimes across layers, as umoci leaves them: a directory a layer describes
//! gets its entry's mtime; one whose entries a layer changes without describing
//! it (files rewritten in place, added, removed, linked, an opaque marker)
//! keeps the mtime the layers below gave it, not the time of the pull; FIFOs
//! and device nodes get their entry's mtime.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::case::case;
use super::rawtar::{H, MTIME, Tar};
use pulltime::layer::{ApplyOptions, apply_layer_limited};
use pulltime::limits::Limits;

const BELOW: u64 = 1_600_000_000;
const DESCRIBED: u64 = 1_650_000_000;

fn mtime(path: &Path) -> (i64, i64) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.mtime(), m.mtime_nsec())
}

#[test]
fn a_directory_changed_but_not_described_keeps_the_mtime_from_below() {
    let c = case();
    let mut low = Tar::new();
    low.dir_at("d", 0o755, BELOW)
        .file("d/a", 0o644, b"a")
        .file("d/b", 0o644, b"b")
        .file("d/gone", 0o644, b"gone")
        .dir_at("o", 0o755, BELOW)
        .file("o/old", 0o644, b"old")
        .dir_at("e", 0o755, BELOW)
        .file("e/x", 0o644, b"x");
    c.apply(&low).unwrap();
    let mut up = Tar::new();
    // No entry for `d` or `o`; `e` is described.
    up.file("d/a", 0o644, b"rewritten")
        .file("d/new", 0o644, b"new")
        .file("d/.wh.gone", 0o644, b"")
        .hardlink("d/hl", "d/b")
        .symlink("d/s", "a")
        .file("o/.wh..wh..opq", 0o644, b"")
        .dir_at("e", 0o755, DESCRIBED)
        .file("e/y", 0o644, b"y");
    c.apply(&up).unwrap();
    // The changes happened...
    assert_eq!(std::fs::read(c.root.join("d/a")).unwrap(), b"rewritten");
    assert!(!c.root.join("d/gone").exists() && !c.root.join("o/old").exists());
    assert!(c.root.join("d/hl").exists() && c.root.join("d/s").is_symlink());
    // ... and the directories say what the layers say.
    assert_eq!(mtime(&c.root.join("d")), (BELOW as i64, 0));
    assert_eq!(mtime(&c.root.join("o")), (BELOW as i64, 0));
    assert_eq!(mtime(&c.root.join("e")), (DESCRIBED as i64, 0));
    // Entries keep their own: the rewritten file has its entry's.
    assert_eq!(mtime(&c.root.join("d/a")), (MTIME as i64, 0));
}

#[test]
fn a_directory_described_after_its_entries_changed_gets_its_entrys_mtime() {
    let c = case();
    c.apply(
        Tar::new()
            .dir_at("d", 0o755, BELOW)
            .file("d/a", 0o644, b"a"),
    )
    .unwrap();
    c.apply(
        Tar::new()
            .file("d/a", 0o644, b"rewritten")
            .dir_at("d", 0o755, DESCRIBED),
    )
    .unwrap();
    assert_eq!(mtime(&c.root.join("d")), (DESCRIBED as i64, 0));
}

#[test]
fn fifos_and_device_nodes_get_their_entrys_mtime() {
    let c = case();
    let mut fifo = H::new("pipe", b'6', 0o640);
    fifo.mtime = BELOW;
    let mut null = H::new("null", b'3', 0o666);
    null.dev = (1, 3);
    null.mtime = BELOW;
    let mut tar = Tar::new();
    tar.raw(&fifo, &[]).raw(&null, &[]);
    // Device nodes need root; without it they are skipped (and counted).
    let root = unsafe { libc::geteuid() } == 0;
    let options = ApplyOptions {
        same_owner: false,
        devices: root,
    };
    let stats =
        apply_layer_limited(&tar.finish()[..], &c.root, &options, &Limits::DEFAULT).unwrap();
    assert_eq!(mtime(&c.root.join("pipe")), (BELOW as i64, 0));
    if root && stats.skipped_devices == 0 {
        assert_eq!(mtime(&c.root.join("null")), (BELOW as i64, 0));
    } else {
        assert!(!c.root.join("null").exists());
    }
}
