//! Layers applied by several threads at once (`apply_layers`, concurrency forced
//! on: every index is known from the start, and the lowest layer ends with
//! thousands of files, so the layers above run while it is still being applied)
//! give the tree that applying them one after another gives: the layer rules
//! (whiteouts, opaque directories, file <-> directory changes, hard links into
//! lower layers, symlinks on the way) whatever the interleaving.

use std::os::unix::fs::MetadataExt;

use super::case::case;
use super::rawtar::Tar;
use crate::common::{self, metadata, snapshot};
use pulltime::layer::{ApplyOptions, apply_layer_limited, apply_layers};
use pulltime::limits::Limits;

const THREADS: usize = 4;

fn rootless() -> ApplyOptions {
    ApplyOptions {
        same_owner: false,
        devices: false,
    }
}

/// Adds enough files to a low layer that the layers above start while it is
/// still being applied.
fn pad(low: &mut Tar) -> &mut Tar {
    low.dir("pad", 0o755);
    files(low, "pad/f", 3000)
}

/// Adds `n` one-byte files named `{prefix}{i}`: time for other threads to run.
fn files<'a>(tar: &'a mut Tar, prefix: &str, n: usize) -> &'a mut Tar {
    for i in 0..n {
        tar.file(format!("{prefix}{i}"), 0o644, b"p");
    }
    tar
}

fn padded(low: &mut Tar) -> Vec<u8> {
    pad(low).finish()
}

/// Runs `run` (which says which layers went ahead) up to five times, until
/// `went` holds: whether layers really ran beside the ones below depends on
/// the scheduler. Returns the last result.
fn tries(mut run: impl FnMut() -> Vec<bool>, went: impl Fn(&[bool]) -> bool) -> Vec<bool> {
    let mut ahead = run();
    for _ in 1..5 {
        if went(&ahead) {
            break;
        }
        ahead = run();
    }
    ahead
}

/// Applies `layers` in order and with [`THREADS`] threads into two roots and
/// asserts the trees are the same. Returns which layers went ahead.
#[track_caller]
fn same_as_in_order(layers: &[Vec<u8>]) -> Vec<bool> {
    same_as_in_order_over(&[], layers)
}

/// [`same_as_in_order`] over roots that already hold `base` (layers applied
/// before, in order).
#[track_caller]
fn same_as_in_order_over(base: &[u8], layers: &[Vec<u8>]) -> Vec<bool> {
    let (seq, conc) = (case(), case());
    if !base.is_empty() {
        for root in [&seq.root, &conc.root] {
            apply_layer_limited(base, root, &rootless(), &Limits::DEFAULT).unwrap();
        }
    }
    for layer in layers {
        apply_layer_limited(&layer[..], &seq.root, &rootless(), &Limits::DEFAULT).unwrap();
    }
    let slices: Vec<&[u8]> = layers.iter().map(|l| &l[..]).collect();
    let applied = apply_layers(&slices, &conc.root, &rootless(), &Limits::DEFAULT, THREADS)
        .unwrap_or_else(|(i, e)| panic!("layer {i}: {e}"));
    let (want, have) = (snapshot(&seq.root), snapshot(&conc.root));
    assert!(
        want == have,
        "trees differ:\n{}",
        common::diff(&want, &have)
    );
    let (want, have) = (metadata(&seq.root), metadata(&conc.root));
    assert!(
        want == have,
        "owners, mtimes or hard links differ:\n{}",
        common::diff_metadata(&want, &have)
    );
    applied.iter().map(|a| a.ahead).collect()
}

#[test]
fn a_directory_changed_ahead_without_being_described_gets_the_mtime_the_layer_below_gives_it() {
    // The base gives `d` one mtime, the layer below another; the upper layer
    // adds to `d` and rewrites a file in it without describing it, beside the
    // layer below: `d` must end with the mtime the layer below gave it, as in
    // order, not the one the upper layer saw first.
    let base = Tar::new()
        .dir_at("d", 0o755, 1_600_000_000)
        .file("d/x", 0o644, b"x")
        .finish();
    let mut l0 = Tar::new();
    l0.dir_at("d", 0o755, 1_650_000_000)
        .file("d/low", 0o644, b"low");
    let l0 = padded(&mut l0);
    let l1 = Tar::new()
        .file("d/high", 0o644, b"high")
        .file("d/x", 0o644, b"rewritten")
        .finish();
    let ahead = tries(
        || same_as_in_order_over(&base, &[l0.clone(), l1.clone()]),
        |a| a[1],
    );
    assert!(ahead[1], "the upper layer did not go ahead: {ahead:?}");
    let c = case();
    for layer in [&base, &l0, &l1] {
        apply_layer_limited(&layer[..], &c.root, &rootless(), &Limits::DEFAULT).unwrap();
    }
    let m = std::fs::metadata(c.root.join("d")).unwrap();
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_650_000_000, 0));
}

#[test]
fn a_directory_an_upper_layer_changed_first_gets_back_its_mtime_from_before_both() {
    // The upper layer adds to `d` ahead of the layer below, which changes `d`
    // only after its padding, describing it in neither: both must set back
    // the mtime `d` had before either, not the time the upper layer left.
    let base = Tar::new()
        .dir_at("d", 0o755, 1_600_000_000)
        .file("d/x", 0o644, b"x")
        .finish();
    let mut l0 = Tar::new();
    pad(&mut l0).file("d/low", 0o644, b"low");
    let l0 = l0.finish();
    let l1 = Tar::new().file("d/high", 0o644, b"high").finish();
    let ahead = tries(
        || same_as_in_order_over(&base, &[l0.clone(), l1.clone()]),
        |a| a[1],
    );
    assert!(ahead[1], "the upper layer did not go ahead: {ahead:?}");
}

#[test]
fn an_entry_with_extended_attributes_that_would_be_set_aside_goes_in_order() {
    // `e/f` interacts with the layer below: set aside, it would lose its
    // attribute (a set-aside entry keeps its path and link only).
    let mut l0 = Tar::new();
    l0.dir("e", 0o755).file("e/f", 0o644, b"low");
    let l0 = padded(&mut l0);
    let l1 = Tar::new()
        .file("g/other", 0o644, b"goes ahead")
        .pax(b'x', &[("SCHILY.xattr.user.kind", b"high")])
        .file("e/f", 0o644, b"high")
        .finish();
    let ahead = tries(|| same_as_in_order(&[l0.clone(), l1.clone()]), |a| a[1]);
    assert!(ahead[1], "the upper layer did not go ahead: {ahead:?}");
}

#[test]
fn independent_layers_go_ahead_and_merge_directories_upper_metadata_last() {
    let mut l0 = Tar::new();
    l0.dir("usr", 0o755)
        .dir("usr/bin", 0o755)
        .file("usr/bin/a", 0o755, b"a");
    l0.dir("shared", 0o700).file("shared/low", 0o644, b"low");
    let l0 = padded(&mut l0);
    let l1 = Tar::new()
        .dir("usr", 0o755)
        .dir("usr/bin", 0o755)
        .file("usr/bin/b", 0o755, b"b")
        .dir("shared", 0o750)
        .file("shared/high", 0o600, b"high")
        .symlink("usr/bin/c", "b")
        .finish();
    let l2 = Tar::new().file("opt/new/file", 0o644, b"new").finish();
    // Whether the layers above really ran beside the first depends on the
    // scheduler: a few tries.
    let ahead = tries(
        || same_as_in_order(&[l0.clone(), l1.clone(), l2.clone()]),
        |a| a[1] && a[2],
    );
    assert!(!ahead[0], "the lowest layer has nothing below it");
    assert!(ahead[1] && ahead[2], "nothing went ahead: {ahead:?}");
    // The directory both layers name has the upper layer's mode.
    let c = case();
    let slices = [&l0[..], &l1[..], &l2[..]];
    apply_layers(&slices, &c.root, &rootless(), &Limits::DEFAULT, THREADS).unwrap();
    let mode = std::fs::metadata(c.root.join("shared")).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o750);
}

#[test]
fn whiteouts_and_opaque_directories_wait_for_what_they_hide() {
    let mut l0 = Tar::new();
    l0.file("a", 0o644, b"a")
        .dir("d", 0o755)
        .file("d/x", 0o644, b"x");
    l0.dir("o", 0o755)
        .file("o/old", 0o644, b"old")
        .file("keep", 0o644, b"k");
    let l0 = padded(&mut l0);
    let l1 = Tar::new()
        .file("unrelated", 0o644, b"u")
        .file(".wh.a", 0o644, b"")
        .file(".wh.d", 0o644, b"")
        .file("o/.wh..wh..opq", 0o644, b"")
        .file("o/new", 0o644, b"new")
        .file("pad/.wh.f2999", 0o644, b"")
        .finish();
    // A whiteout of a layer below that a layer above recreates.
    let l2 = Tar::new()
        .file("d/again", 0o644, b"again")
        .file("a", 0o600, b"A")
        .finish();
    same_as_in_order(&[l0, l1, l2]);
}

#[test]
fn files_and_directories_replace_each_other_in_layer_order() {
    let mut l0 = Tar::new();
    l0.file("x", 0o644, b"file")
        .dir("d", 0o755)
        .file("d/z", 0o644, b"z");
    let l0 = padded(&mut l0);
    let l1 = Tar::new()
        .dir("x", 0o755)
        .file("x/y", 0o644, b"y")
        .file("d", 0o644, b"now a file")
        .file("pad", 0o644, b"the padding, replaced")
        .finish();
    let l2 = Tar::new().file("x", 0o644, b"a file again").finish();
    same_as_in_order(&[l0, l1, l2]);
}

#[test]
fn hard_links_into_lower_layers_see_the_lower_file() {
    let mut l0 = Tar::new();
    l0.file("t", 0o644, b"old target").dir("bin", 0o755);
    let l0 = padded(&mut l0);
    // Links the file of the layer below, before the layer above replaces it.
    let l1 = Tar::new()
        .hardlink("bin/l", "t")
        .hardlink("bin/p", "pad/f2999")
        .finish();
    let l2 = Tar::new().file("t", 0o644, b"new target").finish();
    same_as_in_order(&[l0.clone(), l1.clone(), l2.clone()]);
    let c = case();
    apply_layers(
        &[&l0, &l1, &l2],
        &c.root,
        &rootless(),
        &Limits::DEFAULT,
        THREADS,
    )
    .unwrap();
    assert_eq!(std::fs::read(c.root.join("bin/l")).unwrap(), b"old target");
    assert_eq!(std::fs::read(c.root.join("t")).unwrap(), b"new target");
}

#[test]
fn symlinks_on_the_way_are_followed_as_in_order() {
    // The lowest layer makes `lib` a symlink late in its stream; a layer above
    // writes through it by that name, another by the name it leads to.
    let mut l0 = Tar::new();
    l0.dir("usr", 0o755).dir("usr/lib", 0o755);
    let l0 = pad(&mut l0).symlink("lib", "usr/lib").finish();
    let l1 = Tar::new().file("lib/libfoo.so", 0o644, b"via lib").finish();
    let l2 = Tar::new()
        .file("usr/lib/libfoo.so", 0o644, b"via usr/lib")
        .finish();
    same_as_in_order(&[l0.clone(), l1.clone(), l2.clone()]);
    // And a symlink already in the root, replaced by a directory above.
    let base = Tar::new()
        .dir("usr", 0o755)
        .dir("usr/lib", 0o755)
        .symlink("lib", "usr/lib")
        .finish();
    let mut l1 = Tar::new();
    l1.dir("lib", 0o755)
        .file("lib/real", 0o644, b"real dir now");
    let l1 = padded(&mut l1);
    let l2 = Tar::new()
        .file("usr/lib/real", 0o644, b"under usr")
        .finish();
    let l3 = Tar::new()
        .file("lib/later", 0o644, b"in the new lib")
        .finish();
    same_as_in_order(&[base, l1, l2, l3]);
}

#[test]
fn a_failing_layer_fails_the_whole_and_is_named() {
    let mut l0 = Tar::new();
    l0.file("a", 0o644, b"a");
    let l0 = padded(&mut l0);
    let l1 = Tar::new().file("../escape", 0o644, b"no").finish();
    let l2 = Tar::new().file("b", 0o644, b"b").finish();
    let c = case();
    let r = apply_layers(
        &[&l0, &l1, &l2],
        &c.root,
        &rootless(),
        &Limits::DEFAULT,
        THREADS,
    );
    match r {
        Err((1, e)) => assert!(e.to_string().contains("escape"), "{e}"),
        other => panic!("expected layer 1 refused, got {other:?}"),
    }
}

#[test]
fn entries_that_interact_are_set_aside_and_the_rest_goes_ahead() {
    // As a package manager's layers: each rewrites files of the layers below
    // (its database, a cache) early in its stream, and adds files of its own.
    let mut l0 = Tar::new();
    l0.dir("etc", 0o755)
        .file("etc/ld.so.cache", 0o644, b"cache 0");
    l0.dir("var", 0o755).file("var/status", 0o644, b"status 0");
    l0.file("a", 0o644, b"a 0").file("long", 0o644, b"long 0");
    l0.dir("x", 0o755).file("x/old", 0o644, b"old");
    // A name longer than a tar header holds (a GNU long-name record).
    let long = format!("deep/{}/file", "n".repeat(150));
    l0.gnu_long(b'L', long.as_bytes())
        .file("deep/x", 0o644, b"long 0");
    let l0 = padded(&mut l0);
    let l1 = Tar::new()
        .file("etc/ld.so.cache", 0o644, b"cache 1")
        .file("etc/new.conf", 0o644, b"new")
        // Set aside (it replaces a file below), then replaced within the layer by
        // a directory: that must wait for it.
        .file("a", 0o600, b"a 1")
        .dir("a", 0o755)
        .file("a/b", 0o644, b"b")
        // A file over a directory below (set aside), then a directory again and
        // a file in it: neither touches the layer below as it is, but each must
        // wait for the file, which empties the directory.
        .file("x", 0o644, b"x 1")
        .dir("x", 0o700)
        .file("x/new", 0o644, b"new")
        // A hard link to an entry set aside, and one to a file of its own.
        .hardlink("cache-link", "etc/ld.so.cache")
        .file("own", 0o644, b"own")
        .hardlink("own-link", "own")
        .gnu_long(b'L', long.as_bytes())
        .file("deep/x", 0o644, b"a long name, set aside")
        .symlink("long", "deep/../etc/new.conf")
        .file("var/status", 0o644, b"status 1")
        .finish();
    let l2 = Tar::new()
        .file("var/status", 0o644, b"status 2")
        .file("usr/bin/tool", 0o755, b"tool")
        .finish();
    let ahead = tries(
        || same_as_in_order(&[l0.clone(), l1.clone(), l2.clone()]),
        |a| a[1] && a[2],
    );
    assert!(ahead[1] && ahead[2], "nothing went ahead: {ahead:?}");
}

#[test]
fn symlink_chains_count_every_link_on_the_way() {
    // `a -> b -> c`; a layer below replaces `b` (late in its stream), a layer
    // above writes through `a`, and the one above that writes where `b` then
    // leads: each must see the others as in order.
    let l0 = Tar::new()
        .dir("c", 0o755)
        .dir("d", 0o755)
        .symlink("b", "c")
        .symlink("a", "b")
        .finish();
    let l1 = pad(&mut Tar::new()).symlink("b", "d").finish();
    let l2 = Tar::new().file("a/f", 0o644, b"through a").finish();
    let l3 = Tar::new().file("d/f", 0o644, b"straight to d").finish();
    for _ in 0..2 {
        same_as_in_order(&[l0.clone(), l1.clone(), l2.clone(), l3.clone()]);
    }
}

#[test]
fn a_link_replaced_on_a_lower_layers_way_cannot_lead_outside() {
    // `p -> r -> a`; a layer below writes a symlink out of the root through
    // `p`, late in its stream; the layer above replaces `r` and makes
    // directories and a fifo where `p/q` would lead if `r` changed first.
    for _ in 0..2 {
        let c = case();
        let l0 = Tar::new()
            .dir("a", 0o755)
            .symlink("r", "a")
            .symlink("p", "r")
            .finish();
        let mut l1 = Tar::new();
        pad(&mut l1).symlink("p/q", c.sentinel());
        files(&mut l1, "pad/g", 2000);
        let l1 = l1.finish();
        let mut l2 = Tar::new();
        l2.symlink("r", "c")
            .dir("c", 0o755)
            .dir("c/q", 0o755)
            .dir("c/q/dir", 0o700);
        l2.dir("s", 0o755);
        files(&mut l2, "s/f", 2000);
        let l2 = l2.device("c/q/victim", b'6', 0, 0).finish();
        let slices = [&l0[..], &l1[..], &l2[..]];
        apply_layers(&slices, &c.root, &rootless(), &Limits::DEFAULT, THREADS)
            .unwrap_or_else(|(i, e)| panic!("layer {i}: {e}"));
        // As in order: the link lands in `a`, the directories in `c`. The case
        // checks, when it ends, that nothing outside the root changed.
        let target = std::fs::read_link(c.root.join("a/q")).unwrap();
        assert_eq!(target.to_string_lossy(), c.sentinel());
        let dir = std::fs::symlink_metadata(c.root.join("c/q/dir")).unwrap();
        assert!(dir.is_dir() && dir.mode() & 0o7777 == 0o700);
        let fifo = std::fs::symlink_metadata(c.root.join("c/q/victim")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
    }
}

#[test]
fn a_layer_below_whose_own_symlink_moves_its_entries_keeps_the_others_in_order() {
    // The root has `lib -> usr/lib`; the layer below turns `usr/lib` into a
    // symlink and then writes through `lib`, the usr-merge pattern: its entries
    // land where none of their names says.
    let base = Tar::new()
        .dir("usr", 0o755)
        .symlink("lib", "usr/lib")
        .finish();
    let mut l0 = Tar::new();
    let l0 = pad(&mut l0)
        .symlink("usr/lib", "lib64")
        .file("lib/foo", 0o644, b"below")
        .finish();
    let l1 = Tar::new().file("usr/lib64/foo", 0o644, b"above").finish();
    for _ in 0..2 {
        same_as_in_order_over(&base, &[l0.clone(), l1.clone()]);
    }
}

#[test]
fn a_symlink_below_that_lands_through_the_root_keeps_the_others_in_order() {
    // `lib/x -> /y` is written through the root's `lib -> usr/lib`: a layer
    // above writing into `usr/lib/x`, and one above that making `y`, must see it.
    let base = Tar::new()
        .dir("usr", 0o755)
        .dir("usr/lib", 0o755)
        .symlink("lib", "usr/lib")
        .finish();
    let l0 = pad(&mut Tar::new()).symlink("lib/x", "/y").finish();
    let l1 = Tar::new().file("usr/lib/x/f", 0o644, b"L1").finish();
    let l2 = Tar::new().file("y/f", 0o644, b"L2").finish();
    for _ in 0..2 {
        same_as_in_order_over(&base, &[l0.clone(), l1.clone(), l2.clone()]);
    }
}

#[test]
fn entries_through_a_symlink_are_not_set_aside_past_its_change() {
    // Within one layer: an entry through `p -> q -> a`, then `q` replaced; an
    // entry through `s -> a`, then `s` made a directory.
    let base = Tar::new()
        .dir("a", 0o755)
        .symlink("q", "a")
        .symlink("p", "q")
        .symlink("s", "a")
        .finish();
    let mut l0 = Tar::new();
    let l0 = pad(&mut l0).file("a/b", 0o644, b"L0").finish();
    for l1 in [
        Tar::new()
            .file("p/b", 0o644, b"L1")
            .symlink("q", "c")
            .finish(),
        Tar::new()
            .file("s/b", 0o644, b"L1")
            .dir("s", 0o755)
            .finish(),
    ] {
        for _ in 0..2 {
            same_as_in_order_over(&base, &[l0.clone(), l1.clone()]);
        }
    }
}

#[test]
fn a_symlink_made_above_cannot_lead_a_lower_layers_entry_outside() {
    // Below: `lib/x -> /y` through the root's `lib -> usr/lib`, then entries
    // through `usr/lib/x`; above: `y` made a symlink out of the root. In order
    // the fifo lands in the root's `y`; it must not replace the file outside.
    for _ in 0..2 {
        let c = case();
        apply_layer_limited(
            &Tar::new()
                .dir("usr", 0o755)
                .dir("usr/lib", 0o755)
                .symlink("lib", "usr/lib")
                .finish()[..],
            &c.root,
            &rootless(),
            &Limits::DEFAULT,
        )
        .unwrap();
        let mut l0 = Tar::new();
        files(&mut l0, "pad0/f", 1000);
        let l0 = l0.symlink("lib/x", "/y").finish();
        let mut l1 = Tar::new();
        l1.file("usr/lib/x/f1", 0o644, b"x");
        files(&mut l1, "pad1/f", 8000);
        let l1 = l1.device("usr/lib/x/victim", b'6', 0, 0).finish();
        let mut l2 = Tar::new();
        files(&mut l2, "pad2/f", 4000);
        let l2 = l2.symlink("y", c.sentinel()).finish();
        let slices = [&l0[..], &l1[..], &l2[..]];
        apply_layers(&slices, &c.root, &rootless(), &Limits::DEFAULT, THREADS)
            .unwrap_or_else(|(i, e)| panic!("layer {i}: {e}"));
        // The case checks, when it ends, that nothing outside the root changed.
    }
}

#[test]
fn entries_below_a_link_a_layer_below_will_make_go_in_order() {
    // Usr-merge done by a layer: it removes `lib` and links it to `usr/lib`
    // late in its stream; the layer above names both paths of one file.
    let base = Tar::new()
        .dir("usr", 0o755)
        .dir("usr/lib", 0o755)
        .dir("lib", 0o755)
        .finish();
    let mut l0 = Tar::new();
    let l0 = pad(&mut l0)
        .file(".wh.lib", 0o644, b"")
        .symlink("lib", "usr/lib")
        .finish();
    let l1 = Tar::new()
        .file("lib/libz.so", 0o644, b"old")
        .file("usr/lib/libz.so", 0o644, b"new")
        .finish();
    // And a layer that writes below a link to be made, removes through it, and
    // then moves the link's target; or replaces the target by a file.
    let base2 = Tar::new()
        .dir("t", 0o755)
        .file("t/victim", 0o644, b"v")
        .finish();
    let mut m0 = Tar::new();
    let m0 = pad(&mut m0).symlink("a", "b").finish();
    let m1 = Tar::new()
        .file("a/x", 0o644, b"x")
        .file("a/.wh.victim", 0o644, b"")
        .symlink("b", "t")
        .finish();
    let m2 = Tar::new()
        .file("a/x", 0o644, b"x")
        .file("b", 0o644, b"file")
        .finish();
    for _ in 0..2 {
        same_as_in_order_over(&base, &[l0.clone(), l1.clone()]);
        same_as_in_order_over(&base2, &[m0.clone(), m1.clone()]);
        same_as_in_order_over(&base2, &[m0.clone(), m2.clone()]);
    }
}

#[test]
fn a_hard_link_through_a_loop_a_layer_below_undoes_goes_in_order() {
    // The root has a symlink loop `lp -> lp`; the layer below makes `lp` a
    // link to `d`; the layer above hard-links `lp/x`, which resolves only then.
    let base = Tar::new()
        .dir("d", 0o755)
        .file("d/x", 0o644, b"x")
        .symlink("lp", "lp")
        .finish();
    let mut l0 = Tar::new();
    let l0 = pad(&mut l0).symlink("lp", "d").finish();
    let l1 = Tar::new().hardlink("h", "lp/x").finish();
    for _ in 0..2 {
        same_as_in_order_over(&base, &[l0.clone(), l1.clone()]);
    }
}
