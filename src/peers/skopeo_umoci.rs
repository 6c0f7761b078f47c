//! skopeo + umoci: `skopeo copy` of the image into a fresh OCI layout, then
//! `umoci raw unpack` of it into a root filesystem. umoci logs "unpack layer:
//! DIGEST" as it starts each layer and "... done" at the end, one layer after the
//! other, so each layer's unpack (decompression included) is the time between two
//! of those lines. Every run starts from an empty directory, so it is always cold.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::oci::record::{CpuUsage, PullerInfo};
use crate::registry::transport::RunClock;

use super::command::{self, Line};
use super::cpu;
use super::{Observed, PeerError, ProxiedImage, settings, unobserved};

/// skopeo and umoci, working under a directory of their own.
pub struct SkopeoUmoci {
    work: PathBuf,
    runs: usize,
}

impl SkopeoUmoci {
    /// Both tools on `PATH`, working under `work`.
    pub fn new(work: &Path) -> Result<SkopeoUmoci, PeerError> {
        for tool in ["skopeo", "umoci"] {
            if command::which(tool).is_none() {
                return Err(PeerError::Unreachable {
                    daemon: "skopeo-umoci",
                    address: "PATH".into(),
                    reason: format!("{tool} is not installed (apt-get install -y {tool})"),
                });
            }
        }
        Ok(SkopeoUmoci {
            work: work.to_path_buf(),
            runs: 0,
        })
    }

    /// Both versions.
    pub fn info(&self) -> Result<PullerInfo, PeerError> {
        let v = |tool: &str| -> Result<String, PeerError> {
            let out = command::output(
                Command::new(tool).arg("--version"),
                &format!("{tool} --version"),
            )?;
            Ok(out.split_whitespace().last().unwrap_or("").to_string())
        };
        let version = format!("skopeo {} + umoci {}", v("skopeo")?, v("umoci")?);
        let settings = settings([
            ("work_dir", self.work.display().to_string()),
            ("client", "skopeo copy, then umoci raw unpack".into()),
            (
                "max_concurrent_downloads",
                "6 (containers/image default)".into(),
            ),
        ]);
        Ok(PullerInfo {
            name: "skopeo-umoci".into(),
            version,
            settings,
        })
    }

    /// Where the next run's layout and root filesystem go.
    fn run_dirs(&self) -> (PathBuf, PathBuf) {
        let d = self.work.join(format!("run-{}", self.runs));
        (d.join("layout"), d.join("rootfs"))
    }

    /// Copies and unpacks `image` through the proxy.
    pub fn pull(&mut self, image: &ProxiedImage, clock: &RunClock) -> Result<Observed, PeerError> {
        let (layout, rootfs) = self.run_dirs();
        self.runs += 1;
        let parent = layout.parent().expect("run directory");
        std::fs::create_dir_all(parent).map_err(|source| PeerError::Io {
            what: format!("creating {}", parent.display()),
            source,
        })?;
        let target = format!("{}:{}", layout.display(), "pulled");
        let copy = command::run(
            Command::new("skopeo").args([
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{}", image.proxied_reference()),
                &format!("oci:{target}"),
            ]),
            clock,
        )?
        .check("skopeo copy")?;
        let unpack = command::run(
            Command::new("umoci")
                .args(["--log", "info", "raw", "unpack", "--image", &target])
                .arg(&rootfs),
            clock,
        )?
        .check("umoci raw unpack")?;
        let mut cpu_used = copy.cpu.clone();
        cpu::add(&mut cpu_used, &unpack.cpu);
        Ok(observe(
            image,
            &unpack.lines,
            (copy.window.0, unpack.window.1),
            Some(cpu_used),
        ))
    }

    /// Nothing to remove between runs: every run has its own directories, which
    /// go with the work directory at the end.
    pub fn remove(&self) {}
}

/// Each layer's unpack runs from its "unpack layer:" line to the next such line or
/// "... done".
pub fn observe(
    image: &ProxiedImage,
    lines: &[Line],
    window: (f64, f64),
    cpu: Option<CpuUsage>,
) -> Observed {
    let mut observed = Observed::new(image.layers.len(), window);
    observed.cpu = cpu;
    let marks: Vec<(Option<&str>, f64)> = lines
        .iter()
        .filter_map(|l| {
            let t = l
                .text
                .trim_start_matches(|c: char| c.is_whitespace() || c == '•')
                .trim();
            if let Some(d) = t.strip_prefix("unpack layer:") {
                Some((Some(d.trim()), l.at_s))
            } else if t.starts_with("... done") {
                Some((None, l.at_s))
            } else {
                None
            }
        })
        .collect();
    for (k, (digest, at)) in marks.iter().enumerate() {
        let (Some(digest), Some((_, end))) = (digest, marks.get(k + 1)) else {
            continue;
        };
        if let Some(i) = image.layers.iter().position(|d| d == digest) {
            observed.extract[i] = Some((*at, *end));
            observed.event(i, "unpack layer", *at);
        }
    }
    observed.unobserved = unobserved(&[
        (
            "verify_s",
            "skopeo hashes while downloading and umoci while unpacking",
        ),
        (
            "decompress_s",
            "umoci decompresses while unpacking; its time is inside extract_s",
        ),
        (
            "stall_s",
            "umoci starts only after skopeo copied every blob",
        ),
    ]);
    observed
}
