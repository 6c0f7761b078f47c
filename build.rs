//! Build script: only with the `gzip-isal` feature, it finds the system's ISA-L
//! (libisal, with pkg-config) and compiles the small C shim that owns its inflate
//! state (src/pipeline/igzip_shim.c). Without the feature it does nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "gzip-isal")]
    isal::build();
}

#[cfg(feature = "gzip-isal")]
mod isal {
    const SHIM: &str = "src/pipeline/igzip_shim.c";

    /// The oldest libisal accepted. The shim needs `isal_inflate` to parse gzip
    /// headers and check trailers itself (`crc_flag = ISAL_GZIP`); it has been
    /// tested with 2.30 (Debian bookworm's) only, and the tests in
    /// src/pipeline/gzip.rs are what would show an older release falling short.
    const MIN_VERSION: &str = "2.25";

    pub fn build() {
        println!("cargo:rerun-if-changed={SHIM}");
        // Link flags are printed after the shim's, below: the shim is a static
        // library that needs libisal, so libisal must come after it on the linker's
        // command line (with --as-needed a shared library named first is dropped).
        // pkg-config still says which of its environment variables to rerun on.
        let lib = match pkg_config::Config::new()
            .atleast_version(MIN_VERSION)
            .cargo_metadata(false)
            .probe("libisal")
        {
            Ok(lib) => lib,
            Err(e) => panic!(
                "the gzip-isal feature needs ISA-L {MIN_VERSION} or newer, found with \
                 pkg-config as `libisal` (Debian and Ubuntu: apt-get install libisal-dev). \
                 To build without it, with the pure-Rust zlib-rs: \
                 cargo build --no-default-features --features gzip-zlib-rs\n{e}"
            ),
        };
        cc::Build::new()
            .file(SHIM)
            .includes(&lib.include_paths)
            .warnings(true)
            .extra_warnings(true)
            .compile("pulltime_igzip_shim");
        for dir in &lib.link_paths {
            println!("cargo:rustc-link-search=native={}", dir.display());
        }
        for name in &lib.libs {
            println!("cargo:rustc-link-lib={name}");
        }
    }
}
