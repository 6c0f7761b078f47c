//! The pullers people run (docker, containerd, podman, skopeo+umoci), measured by
//! `pulltime pull --puller` and `compare --puller` against the CNCF registry, with
//! the daemons started here, each in a temporary directory.
//!
//! A test whose daemon does not start on this machine says so on stderr and in
//! `$CARGO_TARGET_TMPDIR/skipped-tests.txt` (which `.ci/run` prints), and returns.

mod checks;
mod compare;
mod daemons;
mod pullers;
mod records;

use std::io::Write;
use std::path::PathBuf;

/// Records that `test` could not run here, and why.
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{test}: {why}");
    }
}

/// The real Debian-built image (`benches/images/build.sh small`), if it was built.
pub fn debian_image() -> Option<PathBuf> {
    let cache = std::env::var_os("PULLTIME_IMAGE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/pulltime-images"));
    let layout = cache.join("debian-small");
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap_or_default();
    index.contains("\"v1\"").then_some(layout)
}
