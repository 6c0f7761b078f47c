//! Shared harness for the layer fuzz targets: split the input into two layers, apply
//! them in sequence into a fresh root, and check that nothing outside that root was
//! touched.
//!
//! Layout of one iteration, under `$PULLTIME_FUZZ_DIR` (default
//! `$TMPDIR/pulltime-fuzz-layer`):
//!
//! ```text
//! <base>/p<pid>/root/             the root the layers are applied to (fresh each time)
//! <base>/p<pid>/sentinel          a file next to the root
//! <base>/p<pid>/outside/canary    a directory next to the root, with a file in it
//! ```
//!
//! After each layer the harness checks that `p<pid>` holds exactly `root`,
//! `sentinel` and `outside/canary` with their original contents, and that `<base>`
//! holds nothing but `p*` directories. An entry (or a symlink it follows) that
//! escapes the root through `..` lands in `p<pid>`; one that escapes through an
//! absolute path aimed at `<base>` lands there: both panic, which libFuzzer reports
//! as a crash.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pulltime::layer::{ApplyOptions, apply_layer};
use pulltime::pipeline::readers::decoder;
use pulltime::oci::media_type::Compression;

const SENTINEL: &[u8] = b"sentinel: must never change\n";
const CANARY: &[u8] = b"canary: must never change\n";

/// Splits `data` into two layers: the first four bytes (little endian) give the
/// length of the first layer, clipped to what is there; the rest is the second.
pub fn split_layers(data: &[u8]) -> (&[u8], &[u8]) {
    if data.len() < 4 {
        return (data, &[]);
    }
    let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    let n = n.min(rest.len());
    rest.split_at(n)
}

/// The per-process directory holding the root, the sentinel and the canary.
fn parent_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::var_os("PULLTIME_FUZZ_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("pulltime-fuzz-layer"));
        let dir = base.join(format!("p{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("outside")).expect("create fuzz parent dir");
        fs::write(dir.join("sentinel"), SENTINEL).expect("write sentinel");
        fs::write(dir.join("outside/canary"), CANARY).expect("write canary");
        dir
    })
}

/// Panics unless the parent holds exactly root, sentinel and outside/canary, as
/// created, and the base directory holds only per-process `p*` directories.
fn check_outside_untouched(parent: &Path, when: &str) {
    let mut names: Vec<String> = fs::read_dir(parent)
        .expect("read parent")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["outside", "root", "sentinel"],
        "{when}: something was created or removed next to the root"
    );
    for (rel, want) in [("sentinel", SENTINEL), ("outside/canary", CANARY)] {
        let p = parent.join(rel);
        let meta = fs::symlink_metadata(&p).expect("stat sentinel");
        assert!(meta.is_file(), "{when}: {rel} is no longer a regular file");
        assert_eq!(fs::read(&p).unwrap(), want, "{when}: {rel} was modified");
    }
    let outside: Vec<_> = fs::read_dir(parent.join("outside"))
        .expect("read outside")
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, ["canary"], "{when}: outside/ was changed");
    assert!(
        fs::symlink_metadata(parent.join("root"))
            .unwrap()
            .file_type()
            .is_dir(),
        "{when}: the root is no longer a directory"
    );
    let base = parent.parent().unwrap();
    for e in fs::read_dir(base).expect("read base") {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            name.starts_with('p') && e.file_type().unwrap().is_dir(),
            "{when}: {name:?} appeared in the fuzz base directory {}",
            base.display()
        );
    }
}

/// Applies the two layers of `data` (each decompressed with `compression`) into a
/// fresh root and checks the invariants after each. Errors from `apply_layer` are
/// expected (most inputs are not valid tars); panics and escapes are not.
pub fn apply_two_layers(data: &[u8], compression: Compression) {
    let parent = parent_dir();
    let root = parent.join("root");
    if fs::symlink_metadata(&root).is_ok() {
        // Entries may leave directories without write permission: restore it first.
        make_writable(&root);
        fs::remove_dir_all(&root).expect("remove previous root");
    }
    fs::create_dir(&root).expect("create root");
    let options = ApplyOptions {
        same_owner: false,
        devices: false,
    };
    let (first, second) = split_layers(data);
    for (i, layer) in [first, second].into_iter().enumerate() {
        let mut layer = layer.to_vec();
        if compression == Compression::None {
            fix_checksums(&mut layer);
        }
        if let Some(dir) = std::env::var_os("PULLTIME_FUZZ_DUMP") {
            // Replaying a crash: keep the exact bytes apply_layer sees, for a test.
            fs::write(Path::new(&dir).join(format!("layer{}.tar", i + 1)), &layer)
                .expect("dump layer");
        }
        let reader: Box<dyn Read + '_> = match decoder(compression, &layer[..]) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let _ = apply_layer(reader, &root, &options);
        check_outside_untouched(parent, &format!("after layer {}", i + 1));
    }
}

/// Rewrites the checksum of every header block of a tar stream, walking it as a tar
/// reader does (header, then its content rounded up to 512 bytes). Random mutations
/// nearly always break a checksum, and the tar reader would stop at the first one;
/// fixing them lets the fuzzer reach the code that applies entries.
pub fn fix_checksums(tar: &mut [u8]) {
    let mut off = 0;
    while off + 512 <= tar.len() {
        let block = &mut tar[off..off + 512];
        if block.iter().all(|b| *b == 0) {
            off += 512;
            continue;
        }
        let size = parse_size(&block[124..136]);
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let blocks = size.div_ceil(512);
        off = blocks
            .checked_mul(512)
            .and_then(|n| n.checked_add(off as u64 + 512))
            .map_or(tar.len(), |n| n.min(tar.len() as u64) as usize);
    }
}

/// A tar size field: octal text, or base-256 when the top bit of the first byte is set.
fn parse_size(field: &[u8]) -> u64 {
    if field[0] & 0x80 != 0 {
        return field[1..].iter().fold(0u64, |n, b| {
            n.saturating_mul(256).saturating_add(u64::from(*b))
        });
    }
    field
        .iter()
        .skip_while(|b| **b == b' ' || **b == 0)
        .take_while(|b| (b'0'..=b'7').contains(*b))
        .fold(0u64, |n, b| {
            n.saturating_mul(8).saturating_add(u64::from(b - b'0'))
        })
}

/// Gives the owner rwx on every directory under `dir` (without following symlinks).
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            make_writable(&e.path());
        }
    }
}
