//! Shared test harness: a real CNCF distribution registry on a free loopback port,
//! layer tars built entry by entry (including hostile ones), pushing with the
//! project's own push code, and root filesystem snapshots for oracle comparisons.
#![allow(dead_code)]

pub mod connect_proxy;
mod meta;
pub mod pki;
mod throttle;
mod token_server;

// Not every test binary that includes `common` uses them (as `dead_code` above).
#[allow(unused_imports)]
pub use meta::{Meta, diff_metadata, metadata, xattrs};
#[allow(unused_imports)]
pub use throttle::Throttle;
#[allow(unused_imports)]
pub use token_server::{Policy, TokenRequest, TokenServer};

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pulltime::oci::image::BuiltImage;
use pulltime::oci::media_type::Compression;
use pulltime::oci::platform::Platform;
use pulltime::oci::reference::Reference;
use pulltime::registry::transport::RunClock;
use pulltime::registry::{ClientOptions, RegistryClient, Scheme};
use sha2::{Digest, Sha256};

/// A `docker-registry serve` child process with its own storage, stopped on drop.
pub struct Registry {
    child: Child,
    /// A static file server playing the CDN that blob GETs are redirected to.
    cdn: Option<Child>,
    /// `127.0.0.1:PORT` of that CDN.
    pub cdn_addr: Option<String>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The registry's storage root (tests corrupt blobs in it on purpose).
    pub storage: PathBuf,
    _dir: tempfile::TempDir,
}

/// Optional Basic auth for the registry.
pub struct Htpasswd<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

/// How to start a registry beyond the defaults.
#[derive(Default)]
pub struct Setup<'a> {
    /// Basic auth.
    pub htpasswd: Option<Htpasswd<'a>>,
    /// Blob GETs redirected to a static file server (see `start_with_cdn`).
    pub cdn: bool,
    /// YAML lines under `http:`, indented by two spaces (a `tls:` block).
    pub http_extra: String,
    /// Top-level YAML (an `auth: token:` block; not with `htpasswd`).
    pub top_extra: String,
}

impl Registry {
    /// Starts an open registry.
    pub fn start() -> Registry {
        Self::start_with(None)
    }

    /// Starts a registry, with htpasswd auth when given.
    pub fn start_with(auth: Option<Htpasswd<'_>>) -> Registry {
        Self::start_setup(Setup {
            htpasswd: auth,
            ..Setup::default()
        })
    }

    /// Starts a registry whose blob GETs answer 307 to a second host, as Docker
    /// Hub's do: distribution's `redirect` storage middleware pointing at a plain
    /// static file server (`python3 -m http.server`) over the registry's storage.
    pub fn start_with_cdn() -> Registry {
        Self::start_setup(Setup {
            cdn: true,
            ..Setup::default()
        })
    }

    /// Starts a registry as `setup` says.
    pub fn start_setup(setup: Setup<'_>) -> Registry {
        let Setup {
            htpasswd: auth,
            cdn,
            http_extra,
            top_extra,
        } = setup;
        let bin = which("docker-registry").expect(
            "docker-registry not found: install the Debian package (apt-get install -y docker-registry)",
        );
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let auth_cfg = match auth {
            Some(h) => {
                let hash = bcrypt::hash(h.password, 4).unwrap();
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{}:{hash}\n", h.user)).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                    path.display()
                )
            }
            None => String::new(),
        };
        let cdn_addr = cdn.then(|| format!("127.0.0.1:{}", free_port()));
        let redirect_cfg = match &cdn_addr {
            Some(a) => format!(
                "middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: http://{a}/\n"
            ),
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{http_extra}{auth_cfg}{top_extra}{redirect_cfg}",
            storage.display()
        );
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let cdn = cdn_addr.as_ref().map(|a| {
            std::fs::create_dir_all(&storage).unwrap();
            Command::new("python3")
                .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
                .arg(&storage)
                .arg(a.rsplit(':').next().unwrap())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        });
        let reg = Registry {
            child,
            cdn,
            cdn_addr,
            addr,
            storage,
            _dir: dir,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let up = |a: &str| std::net::TcpStream::connect(a).is_ok();
        while Instant::now() < deadline {
            if up(&self.addr) && self.cdn_addr.as_deref().is_none_or(up) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log =
            std::fs::read_to_string(self._dir.path().join("registry.log")).unwrap_or_default();
        panic!("docker-registry did not start on {}: {log}", self.addr);
    }

    /// The registry's own temporary directory (config, logs, certificates).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// `127.0.0.1:PORT/repo:tag`.
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.addr)
    }

    /// Path of a blob's data file in the registry's storage.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.child).chain(self.cdn.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Full path of a program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Pushes `image` to `reference` with pulltime's own push code.
pub fn push(
    reference: &str,
    image: &BuiltImage,
    credentials: Option<pulltime::registry::auth::Credentials>,
) -> String {
    with_push_client(reference, credentials, |client, tag| async move {
        pulltime::registry::push::push_image(&client, image, &tag)
            .await
            .unwrap()
    })
}

/// Pushes only a manifest or index (its blobs must be there already).
pub fn push_manifest(reference: &str, manifest: &pulltime::oci::image::Blob) -> String {
    with_push_client(reference, None, |client, tag| async move {
        pulltime::registry::push::push_manifest(&client, manifest, &tag)
            .await
            .unwrap()
    })
}

/// Pushes `image` to `reference` over a client set up as `options` says (TLS,
/// credentials).
pub fn push_with(reference: &str, image: &BuiltImage, options: ClientOptions) -> String {
    with_push_options(reference, options, |client, tag| async move {
        pulltime::registry::push::push_image(&client, image, &tag)
            .await
            .unwrap()
    })
}

fn with_push_client<'a, F, Fut>(
    reference: &str,
    credentials: Option<pulltime::registry::auth::Credentials>,
    f: F,
) -> String
where
    F: FnOnce(RegistryClient, String) -> Fut + 'a,
    Fut: std::future::Future<Output = String> + 'a,
{
    let opts = ClientOptions {
        scheme: Scheme::Http,
        credentials,
        ..Default::default()
    };
    with_push_options(reference, opts, f)
}

fn with_push_options<'a, F, Fut>(reference: &str, opts: ClientOptions, f: F) -> String
where
    F: FnOnce(RegistryClient, String) -> Fut + 'a,
    Fut: std::future::Future<Output = String> + 'a,
{
    let r = Reference::parse(reference).unwrap();
    let tag = r.tag.clone().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opts = ClientOptions {
            timeout: Duration::from_secs(30),
            ..opts
        };
        let client = RegistryClient::new(&r, &opts, RunClock::start(), true).unwrap();
        client.ping().await.unwrap();
        f(client, tag).await
    })
}

/// Builds and pushes an image from layer tars; returns the image.
pub fn build_and_push(reference: &str, layers: &[Vec<u8>], compression: Compression) -> BuiltImage {
    let image = pulltime::oci::image::build_image(layers, compression, &Platform::host()).unwrap();
    push(reference, &image, None);
    image
}

/// One tar entry for a test layer. Names are written raw into the header, so
/// hostile names (`../x`, absolute paths) can be expressed.
#[derive(Clone, Debug)]
pub enum E {
    Dir(&'static str, u32),
    File(&'static str, u32, Vec<u8>),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
    Fifo(&'static str),
    CharDev(&'static str, u32, u32),
    /// A whiteout for a path: `dir/.wh.name`.
    Whiteout(&'static str),
    /// The opaque marker inside a directory.
    Opaque(&'static str),
    /// An extended attribute (name, value) of the next entry, as a pax
    /// `SCHILY.xattr.` record.
    Xattr(&'static str, &'static [u8]),
}

/// `n` bytes of deterministic content.
pub fn content(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly text-like so it compresses somewhat.
            b"abcdefghijklmnop qrstuvwxyz\n0123456789"[(x % 38) as usize]
        })
        .collect()
}

/// A layer tar from entries, in order.
pub fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    // The extended attributes for the next entry, written as one pax header.
    let mut xattrs: Vec<(String, &[u8])> = Vec::new();
    for e in entries {
        if !matches!(e, E::Xattr(..)) && !xattrs.is_empty() {
            let records = xattrs.iter().map(|(k, v)| (k.as_str(), *v));
            b.append_pax_extensions(records).unwrap();
            xattrs.clear();
        }
        match e {
            E::Dir(p, m) => raw(
                &mut b,
                p.as_bytes(),
                tar::EntryType::Directory,
                *m,
                b"",
                &[],
            ),
            E::File(p, m, data) => {
                raw(&mut b, p.as_bytes(), tar::EntryType::Regular, *m, b"", data)
            }
            E::Symlink(p, t) => raw(
                &mut b,
                p.as_bytes(),
                tar::EntryType::Symlink,
                0o777,
                t.as_bytes(),
                &[],
            ),
            E::Hardlink(p, t) => raw(
                &mut b,
                p.as_bytes(),
                tar::EntryType::Link,
                0o644,
                t.as_bytes(),
                &[],
            ),
            E::Fifo(p) => raw(&mut b, p.as_bytes(), tar::EntryType::Fifo, 0o644, b"", &[]),
            E::CharDev(p, ma, mi) => {
                let mut h = header(p.as_bytes(), tar::EntryType::Char, 0o600, b"", 0);
                h.set_device_major(*ma).unwrap();
                h.set_device_minor(*mi).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::Whiteout(p) => {
                let (dir, name) = match p.rsplit_once('/') {
                    Some((d, n)) => (format!("{d}/"), n),
                    None => (String::new(), *p),
                };
                let name = format!("{dir}.wh.{name}");
                raw(
                    &mut b,
                    name.as_bytes(),
                    tar::EntryType::Regular,
                    0o644,
                    b"",
                    &[],
                );
            }
            E::Opaque(d) => {
                let name = format!("{}/.wh..wh..opq", d.trim_end_matches('/'));
                raw(
                    &mut b,
                    name.as_bytes(),
                    tar::EntryType::Regular,
                    0o644,
                    b"",
                    &[],
                );
            }
            E::Xattr(name, value) => xattrs.push((format!("SCHILY.xattr.{name}"), value)),
        }
    }
    b.into_inner().unwrap()
}

fn header(name: &[u8], kind: tar::EntryType, mode: u32, link: &[u8], size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    assert!(
        name.len() <= 100 && link.len() <= 100,
        "test names must fit a ustar header"
    );
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    h
}

fn raw(
    b: &mut tar::Builder<Vec<u8>>,
    name: &[u8],
    kind: tar::EntryType,
    mode: u32,
    link: &[u8],
    data: &[u8],
) {
    let h = header(name, kind, mode, link, data.len() as u64);
    b.append(&h, data).unwrap();
}

/// What a test compares about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        size: u64,
        sha256: String,
    },
    Symlink {
        target: String,
    },
    Fifo {
        mode: u32,
    },
    Other,
}

/// Every path under `root` (relative) with type, mode, size, content hash, link target.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let m = std::fs::symlink_metadata(&path).unwrap();
        let mode = m.permissions().mode() & 0o7777;
        let ft = m.file_type();
        let node = if ft.is_dir() {
            walk(root, &path, out);
            Node::Dir { mode }
        } else if ft.is_symlink() {
            Node::Symlink {
                target: std::fs::read_link(&path)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            }
        } else if ft.is_file() {
            let mut data = Vec::new();
            std::fs::File::open(&path)
                .unwrap()
                .read_to_end(&mut data)
                .unwrap();
            Node::File {
                mode,
                size: m.size(),
                sha256: hex::encode(Sha256::digest(&data)),
            }
        } else if ft.is_fifo() {
            Node::Fifo { mode }
        } else {
            Node::Other
        };
        out.insert(rel, node);
    }
}

/// Describes the first differences between two snapshots.
pub fn diff(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>) -> String {
    let mut out = String::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push_str(&format!("only in left: {k} {v:?}\n")),
            Some(w) if w != v => out.push_str(&format!("differs: {k}: {v:?} vs {w:?}\n")),
            _ => {}
        }
    }
    for (k, v) in b {
        if !a.contains_key(k) {
            out.push_str(&format!("only in right: {k} {v:?}\n"));
        }
    }
    out
}

/// The pulltime binary, with a private HOME so no user config leaks in.
pub fn pulltime(home: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("pulltime").unwrap();
    // Tests do not wait out deletions (`--settle`); the test of the wait sets it.
    c.env("HOME", home)
        .env("PULLTIME_SETTLE", "0")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("PULLTIME_USER");
    c
}

/// Runs a program and panics with its output on failure.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A layer of `files` files of `size` bytes in a few directories, deterministic.
pub fn many_files_layer(seed: u64, files: usize, size: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dirs = 16;
    for d in 0..dirs {
        raw(
            &mut b,
            format!("data{seed}/d{d}/").as_bytes(),
            tar::EntryType::Directory,
            0o755,
            b"",
            &[],
        );
    }
    for i in 0..files {
        let name = format!("data{seed}/d{}/f{i}.txt", i % dirs);
        let data = content(seed * 1_000_003 + i as u64, size);
        raw(
            &mut b,
            name.as_bytes(),
            tar::EntryType::Regular,
            0o644,
            b"",
            &data,
        );
    }
    b.into_inner().unwrap()
}
