//! The simulator: predicts a pull's timeline for networks, hosts, compression and
//! layer layouts the user does not have, from the same network profiles `serve`
//! uses and a host profile from `calibrate`. Its output is a [`PullRecord`] with
//! `"simulated": true`, so every report reads measured and simulated pulls alike.

pub mod bounds;
pub mod cpu;
mod error;
pub mod explain;

pub use explain::bounding_phase;
pub mod fleet;
pub mod input;
pub mod model;
pub mod whatif;

use serde::{Deserialize, Serialize};

use crate::oci::media_type::Compression;
use crate::oci::record::{
    HostInfo, ImageInfo, LayerInfo, LayerRun, PullRecord, PullerInfo, RequestRecord, RunRecord,
    SCHEMA_VERSION, Settings, Summary, ToolInfo,
};
use crate::profiles::host::{HostProfile, PullerCosts};
use crate::profiles::network::NetworkProfile;
pub use error::{SimError, SimLoop};
pub use model::{Flow, SimRun, simulate};

/// How a puller schedules its stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Docker: downloads in parallel, each layer extracted after its download, one
    /// layer at a time, in order.
    Docker,
    /// containerd (classic): all downloads first, then unpack layer by layer.
    Containerd,
    /// podman (containers/image): downloads in parallel, each to a temporary
    /// file, and each layer applied once it and every layer below it are, in order.
    Podman,
    /// skopeo copy into an OCI layout (downloads in parallel), then umoci unpack,
    /// layer by layer.
    #[serde(rename = "skopeo-umoci")]
    SkopeoUmoci,
    /// pulltime streaming: decompression and extraction overlap the download.
    Pulltime,
    /// pulltime --mode staged.
    Staged,
}

impl Policy {
    /// Lower-case name, the puller's (`--puller`) for other pullers.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Docker => "docker",
            Policy::Containerd => "containerd",
            Policy::Podman => "podman",
            Policy::SkopeoUmoci => "skopeo-umoci",
            Policy::Pulltime => "pulltime",
            Policy::Staged => "staged",
        }
    }

    /// Downloads in flight at once by default: docker's and containerd's 3,
    /// containers/image's 6 (podman, skopeo), pulltime's 3.
    pub fn default_downloads(self) -> usize {
        match self {
            Policy::Podman | Policy::SkopeoUmoci => 6,
            Policy::Docker | Policy::Containerd | Policy::Pulltime | Policy::Staged => 3,
        }
    }

    /// True for pulltime's own pipelines; false for the other pullers, whose
    /// unpacking costs are fitted from their pulls (`[pullers.NAME]`).
    pub fn is_pulltime(self) -> bool {
        matches!(self, Policy::Pulltime | Policy::Staged)
    }

    /// This policy's puller's own fitted costs in `host` (`[pullers.NAME]`),
    /// if it is another puller and the profile has them.
    pub fn own_costs(self, host: &HostProfile) -> Option<&PullerCosts> {
        host.pullers
            .get(self.as_str())
            .filter(|_| !self.is_pulltime())
    }
}

/// One layer as the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimLayer {
    /// Blob digest (or a label for synthetic layers).
    pub digest: String,
    /// Media type.
    pub media_type: String,
    /// Blob bytes.
    pub compressed: u64,
    /// Tar stream bytes.
    pub uncompressed: u64,
    /// Bytes of regular-file content.
    pub file_bytes: u64,
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// How it is compressed.
    pub compression: Compression,
    /// Already on the node: not downloaded, not extracted.
    #[serde(default)]
    pub cached: bool,
}

/// An image as the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimImage {
    /// Where it came from (a reference, a layout, a record, a profile).
    pub name: String,
    /// Layers, bottom first.
    pub layers: Vec<SimLayer>,
    /// Manifest size.
    pub manifest_bytes: u64,
    /// Config size.
    pub config_bytes: u64,
    /// Which numbers are estimates, if any.
    #[serde(default)]
    pub estimated: Vec<String>,
}

/// The inputs of a simulation, kept in its record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimulationInfo {
    /// The image as simulated (after what-ifs).
    pub image: SimImage,
    /// Registry network.
    pub network: NetworkProfile,
    /// Host.
    pub host: HostProfile,
    /// Policy.
    pub policy: Policy,
    /// Docker Hub flow (token, redirect to a CDN).
    pub dockerhub_flow: bool,
    /// The registry ran on the simulated host.
    #[serde(default)]
    pub registry_on_host: bool,
    /// What-ifs applied, in words.
    pub what_if: Vec<String>,
}

/// Everything a simulation needs besides the image.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Registry network.
    pub network: NetworkProfile,
    /// Host.
    pub host: HostProfile,
    /// Policy.
    pub policy: Policy,
    /// Downloads in flight.
    pub max_concurrent_downloads: usize,
    /// Docker Hub flow: token before the manifest, blobs via 307 to the CDN.
    pub dockerhub_flow: bool,
    /// The tag names an index.
    pub index: bool,
    /// The registry runs on this host (`pulltime serve`, as when validating
    /// against the lab): its serving CPU shares the pull's cores. An unshaped
    /// network (loopback) implies it.
    pub registry_on_host: bool,
}

impl Scenario {
    /// The request flow the model follows.
    pub fn flow(&self) -> Flow {
        Flow {
            registry: self.network.clone(),
            blobs: if self.dockerhub_flow {
                self.network.cdn_profile()
            } else {
                self.network.clone()
            },
            token: self.dockerhub_flow,
            redirect: self.dockerhub_flow,
            index: self.index,
            registry_on_host: self.registry_on_host || self.network.is_unshaped(),
        }
    }
}

/// Simulates `image` under `scenario` and returns a record shaped like a measured one.
pub fn simulate_record(
    image: &SimImage,
    scenario: &Scenario,
    what_if: Vec<String>,
) -> Result<PullRecord, SimError> {
    let run = simulate(
        image,
        &scenario.flow(),
        &scenario.host,
        scenario.policy,
        scenario.max_concurrent_downloads,
    )?;
    Ok(to_record(image, scenario, &run, what_if))
}

/// [`simulate_record`] with the scenario's network at another bandwidth
/// (`bytes_per_s`), as the bandwidth sweeps of `simulate` and `compare` ask.
pub fn simulate_at_bandwidth(
    image: &SimImage,
    scenario: &Scenario,
    bytes_per_s: f64,
    what_if: Vec<String>,
) -> Result<PullRecord, SimError> {
    let at = Scenario {
        network: whatif::with_bandwidth(&scenario.network, bytes_per_s),
        ..scenario.clone()
    };
    simulate_record(image, &at, what_if)
}

/// A simulated `record` again at `bytes_per_s`, with the image and host it was
/// simulated with (what-ifs applied: recompressed, cached, merged or split
/// layers, a faster CPU) and the rest of `scenario`: a what-if scenario's point
/// of a bandwidth sweep. `None` for a record without simulation inputs (a
/// measured one).
pub fn resimulate_at_bandwidth(
    record: &PullRecord,
    scenario: &Scenario,
    bytes_per_s: f64,
) -> Option<Result<PullRecord, SimError>> {
    let info: SimulationInfo = serde_json::from_value(record.simulation.clone()?).ok()?;
    let at = Scenario {
        host: info.host,
        ..scenario.clone()
    };
    Some(simulate_at_bandwidth(
        &info.image,
        &at,
        bytes_per_s,
        info.what_if,
    ))
}

fn to_record(
    image: &SimImage,
    scenario: &Scenario,
    run: &SimRun,
    what_if: Vec<String>,
) -> PullRecord {
    let layers: Vec<LayerRun> = image
        .layers
        .iter()
        .zip(&run.layers)
        .enumerate()
        .map(|(i, (l, r))| {
            let download = if r.cached {
                0.0
            } else {
                r.download_end_s - r.start_s
            };
            let transfer = download - r.ttfb_s;
            LayerRun {
                index: i,
                digest: l.digest.clone(),
                compressed_bytes: if r.cached { 0 } else { l.compressed },
                uncompressed_bytes: l.uncompressed,
                files: l.files,
                dirs: l.dirs,
                start_s: r.start_s,
                end_s: r.end_s,
                download_s: Some(download),
                ttfb_s: Some(r.ttfb_s),
                redirect_s: Some(r.redirect_s),
                throughput_bps: Some(if transfer > 0.0 {
                    l.compressed as f64 / transfer
                } else {
                    0.0
                }),
                verify_s: Some(r.verify_s),
                decompress_s: Some(r.decompress_s),
                extract_s: Some(r.extract_s),
                ..LayerRun::default()
            }
        })
        .collect();
    let runs = vec![RunRecord {
        index: 0,
        wall_s: run.wall_s,
        resolve_s: run.resolve_s,
        layers,
        requests: run
            .requests
            .iter()
            .map(|q| RequestRecord {
                kind: q.kind.as_str().into(),
                method: "GET".into(),
                host: q.host.as_str().into(),
                path: String::new(),
                status: 0,
                start_s: q.start_s,
                ttfb_s: q.ttfb_s,
                body_s: q.body_s,
                bytes: q.bytes,
                connection: None,
            })
            .collect(),
        connections: run
            .connections
            .iter()
            .enumerate()
            .map(|(id, c)| crate::oci::record::ConnectionRecord {
                id,
                target: c.target.as_str().into(),
                host: c.target.as_str().into(),
                start_s: c.start_s,
                connect_s: c.setup_s,
                dns_s: None,
                tcp_s: c.tcp_s,
                tls_s: c.tls_s,
                protocol: String::new(),
                peer: None,
                proxy: None,
            })
            .collect(),
        ratelimit: None,
        ..RunRecord::default()
    }];
    let info_layers: Vec<LayerInfo> = image
        .layers
        .iter()
        .map(|l| LayerInfo {
            digest: l.digest.clone(),
            media_type: l.media_type.clone(),
            compressed_bytes: l.compressed,
            uncompressed_bytes: l.uncompressed,
            diff_id: String::new(),
            entries: l.files + l.dirs,
        })
        .collect();
    PullRecord {
        schema_version: SCHEMA_VERSION,
        simulated: true,
        tool: ToolInfo::this_build(crate::pipeline::gzip::gzip_backend()),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        host: HostInfo {
            os: String::new(),
            arch: String::new(),
            cpus: scenario.host.cpus,
            dest_filesystem: Some(scenario.host.filesystem.clone()),
            dest_journal: None,
            machine: None,
        },
        image: ImageInfo {
            reference: image.name.clone(),
            manifest_digest: String::new(),
            manifest_media_type: String::new(),
            platform_manifest_digest: String::new(),
            platform: String::new(),
            config_digest: String::new(),
            compressed_bytes: info_layers.iter().map(|l| l.compressed_bytes).sum(),
            uncompressed_bytes: info_layers.iter().map(|l| l.uncompressed_bytes).sum(),
            layers: info_layers,
        },
        puller: PullerInfo {
            name: match scenario.policy {
                Policy::Staged => "pulltime".into(),
                p => p.as_str().into(),
            },
            version: "model".into(),
            settings: [("policy".to_string(), scenario.policy.as_str().to_string())].into(),
        },
        settings: Settings {
            mode: scenario.policy.as_str().into(),
            max_concurrent_downloads: scenario.max_concurrent_downloads,
            runs: 1,
            warmup: 0,
            platform: String::new(),
            scheme: String::new(),
            decoders: None,
            appliers: None,
            stopped: None,
        },
        summary: Summary::of(&runs),
        runs,
        simulation: Some(
            serde_json::to_value(SimulationInfo {
                image: image.clone(),
                network: scenario.network.clone(),
                host: scenario.host.clone(),
                policy: scenario.policy,
                dockerhub_flow: scenario.dockerhub_flow,
                registry_on_host: scenario.flow().registry_on_host,
                what_if,
            })
            .expect("simulation inputs are plain data with string keys"),
        ),
    }
}

#[cfg(test)]
mod resimulate_tests {
    use super::*;

    #[test]
    fn a_what_if_record_is_swept_with_its_own_image_and_host() {
        let profile = crate::synth::ImageProfile::load("sn-compose-post-original").unwrap();
        let image = input::from_profile(&profile, 0.05, Compression::Gzip);
        let scenario = Scenario {
            network: NetworkProfile::load("lan-1g").unwrap(),
            host: HostProfile::builtin(),
            policy: Policy::Pulltime,
            max_concurrent_downloads: 3,
            dockerhub_flow: false,
            index: false,
            registry_on_host: false,
        };
        let bps = 1.25e9;
        let as_is = simulate_record(&image, &scenario, vec![]).unwrap();
        let faster = Scenario {
            host: scenario.host.with_cpu_speed(4.0),
            ..scenario.clone()
        };
        let fast_cpu = simulate_record(&image, &faster, vec!["CPU".into()]).unwrap();
        let merged = simulate_record(&whatif::merge(&image), &scenario, vec![]).unwrap();
        let wall = |r: &PullRecord| {
            resimulate_at_bandwidth(r, &scenario, bps)
                .unwrap()
                .unwrap()
                .runs[0]
                .wall_s
        };
        let direct = simulate_at_bandwidth(&image, &scenario, bps, vec![]).unwrap();
        assert_eq!(wall(&as_is), direct.runs[0].wall_s);
        let direct = simulate_at_bandwidth(&image, &faster, bps, vec![]).unwrap();
        assert_eq!(wall(&fast_cpu), direct.runs[0].wall_s);
        assert!(wall(&fast_cpu) < wall(&as_is));
        let direct = simulate_at_bandwidth(&whatif::merge(&image), &scenario, bps, vec![]);
        assert_eq!(wall(&merged), direct.unwrap().runs[0].wall_s);
        let mut measured = as_is.clone();
        measured.simulation = None;
        assert!(resimulate_at_bandwidth(&measured, &scenario, bps).is_none());
    }
}
