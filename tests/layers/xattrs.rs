//! Extended attributes from pax `SCHILY.xattr.` records: set on files,
//! directories and FIFOs where the process may; a file capability survives the
//! owner change before it (the kernel drops it on a chown); what the process
//! may not set is skipped and counted; a malformed one fails the layer, named.

use std::os::unix::fs::MetadataExt;

use super::case::case;
use super::rawtar::{H, Tar};
use crate::common::xattrs;
use pulltime::layer::{ApplyOptions, apply_layer_limited};
use pulltime::limits::Limits;

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn user_attributes_land_on_files_and_directories_and_are_counted_where_refused() {
    let c = case();
    let mut t = Tar::new();
    t.pax(b'x', &[("SCHILY.xattr.user.kind", b"dir")])
        .dir("d", 0o755)
        .pax(
            b'x',
            &[
                ("SCHILY.xattr.user.kind", b"file"),
                ("SCHILY.xattr.user.blob", &[0, 1, 2, 255]),
            ],
        )
        .file("d/f", 0o644, b"data")
        // The kernel allows user.* on files and directories only.
        .pax(b'x', &[("SCHILY.xattr.user.kind", b"fifo")])
        .raw(&H::new("d/pipe", b'6', 0o644), &[])
        .file("d/plain", 0o644, b"no attributes");
    let stats = c.apply(&t).unwrap();
    let dir = xattrs(&c.root.join("d"));
    let file = xattrs(&c.root.join("d/f"));
    assert_eq!(dir["user.kind"], b"dir");
    assert_eq!(file["user.kind"], b"file");
    assert_eq!(file["user.blob"], [0, 1, 2, 255]);
    assert!(xattrs(&c.root.join("d/plain")).is_empty());
    assert!(xattrs(&c.root.join("d/pipe")).is_empty());
    assert_eq!(stats.skipped_xattrs, 1, "{stats:?}");
    assert_eq!(std::fs::read(c.root.join("d/f")).unwrap(), b"data");
}

#[test]
fn a_file_capability_survives_the_owner_change_or_is_skipped_without_privilege() {
    let c = case();
    // cap_net_raw, effective and permitted (VFS_CAP_REVISION_2).
    let cap: [u8; 20] = [
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let mut ping = H::new("ping", b'0', 0o755);
    ping.owner = (1000, 1000);
    let mut t = Tar::new();
    t.pax(b'x', &[("SCHILY.xattr.security.capability", &cap)])
        .raw(&ping, b"binary");
    let root = is_root();
    let options = ApplyOptions {
        same_owner: root,
        devices: false,
    };
    let stats = apply_layer_limited(&t.finish()[..], &c.root, &options, &Limits::DEFAULT).unwrap();
    let got = xattrs(&c.root.join("ping"));
    if root {
        let m = std::fs::metadata(c.root.join("ping")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1000));
        assert_eq!(
            got.get("security.capability").map(|v| &v[..]),
            Some(&cap[..])
        );
        assert_eq!(stats.skipped_xattrs, 0);
    } else {
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(stats.skipped_xattrs, 1);
    }
}

#[test]
fn a_malformed_acl_fails_the_layer_naming_the_attribute() {
    let c = case();
    let mut t = Tar::new();
    t.pax(
        b'x',
        &[("SCHILY.xattr.system.posix_acl_access", b"not an ACL")],
    )
    .file("f", 0o644, b"x");
    match c.apply(&t) {
        Err(e) => {
            let text = format!("{e}: {:?}", std::error::Error::source(&e));
            assert!(
                text.contains("tar entry \"f\"") && text.contains("system.posix_acl_access"),
                "{text}"
            );
        }
        // A filesystem without ACLs refuses the namespace itself: skipped.
        Ok(stats) => assert_eq!(stats.skipped_xattrs, 1, "{stats:?}"),
    }
}

#[test]
fn files_below_a_directory_given_a_default_acl_by_a_lower_layer_keep_their_mode() {
    let c = case();
    // A default ACL (version 2; user_obj rwx, group_obj r-x, other ---): new
    // files below inherit it, which narrows a 0644 to 0640 unless chmodded.
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm) in [(0x01u16, 7u16), (0x04, 5), (0x20, 0)] {
        acl.extend(tag.to_le_bytes());
        acl.extend(perm.to_le_bytes());
        acl.extend(u32::MAX.to_le_bytes());
    }
    let mut low = Tar::new();
    low.pax(b'x', &[("SCHILY.xattr.system.posix_acl_default", &acl)])
        .dir("d", 0o755);
    if c.apply(&low).unwrap().skipped_xattrs > 0 {
        return; // a filesystem without ACLs: nothing to inherit
    }
    assert!(xattrs(&c.root.join("d")).contains_key("system.posix_acl_default"));
    // The layer above is applied on its own, as the next layer of a pull is.
    c.apply(Tar::new().file("d/f", 0o644, b"f")).unwrap();
    let mode = std::fs::metadata(c.root.join("d/f")).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o644);
}
