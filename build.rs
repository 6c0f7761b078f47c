//! Build script: with the `gzip-isal` feature (the default), it looks for the
//! system's ISA-L (libisal, with pkg-config). Found: it compiles the small C
//! shim that owns its inflate state (src/pipeline/igzip_shim.c), links libisal
//! and sets `cfg(pulltime_isal)`, which makes igzip the pull's gzip backend.
//! Not found: a build warning, and the pure-Rust zlib-rs backend that the
//! feature also brings, so a plain `cargo build` works on any machine; every
//! record names the backend it was made with (`tool.gzip_backend`).
//! `PULLTIME_REQUIRE_ISAL=1` makes a missing libisal an error instead (CI).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(pulltime_isal)");
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
        println!("cargo:rerun-if-env-changed=PULLTIME_REQUIRE_ISAL");
        let required = std::env::var_os("PULLTIME_REQUIRE_ISAL").is_some_and(|v| v == "1");
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
            Err(e) if required => panic!(
                "PULLTIME_REQUIRE_ISAL=1: ISA-L {MIN_VERSION} or newer was not found with \
                 pkg-config as `libisal` (Debian and Ubuntu: apt-get install libisal-dev \
                 pkg-config)\n{e}"
            ),
            Err(e) => {
                let why: String = e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                let why: String = why.chars().take(160).collect();
                println!(
                    "cargo:warning=ISA-L {MIN_VERSION}+ (libisal) not found with pkg-config \
                     ({why}): building with the zlib-rs gzip backend. For ISA-L's faster \
                     one: apt-get install libisal-dev pkg-config"
                );
                return;
            }
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
        println!("cargo:rustc-cfg=pulltime_isal");
    }
}
