//! The pull model's unit tests: hand-computed timelines on small networks and
//! hosts whose costs are round numbers.

use super::*;
use crate::oci::media_type::Compression;
use crate::sim::{SimError, SimLayer, SimLoop};

fn net(rtt_ms: f64, connect_rtts: f64, per_conn: Option<f64>, link: Option<f64>) -> NetworkProfile {
    NetworkProfile {
        rtt_ms,
        connect_rtts,
        connection_bandwidth: per_conn,
        link_bandwidth: link,
        ..NetworkProfile::unshaped()
    }
}

/// A host whose CPU stages cost nothing unless per-file costs are set (the
/// fleet's tests use it too).
pub(crate) fn instant_host(per_file_s: f64) -> HostProfile {
    HostProfile {
        name: "t".into(),
        description: String::new(),
        cpus: 2,
        filesystem: String::new(),
        sha256_bps: 1e30,
        gzip_bps: 1e30,
        zstd_bps: 1e30,
        extract_bps: 1e30,
        extract_per_file_s: per_file_s,
        extract_per_dir_s: 0.0,
        pull: Default::default(),
        pullers: Default::default(),
    }
}

fn layer(name: &str, bytes: u64, files: u64) -> SimLayer {
    SimLayer {
        digest: name.into(),
        media_type: String::new(),
        compressed: bytes,
        uncompressed: bytes,
        file_bytes: bytes,
        files,
        dirs: 0,
        compression: Compression::Gzip,
        cached: false,
    }
}

fn image(layers: Vec<SimLayer>) -> SimImage {
    SimImage {
        name: "t".into(),
        layers,
        manifest_bytes: 0,
        config_bytes: 0,
        estimated: vec![],
    }
}

fn plain(n: NetworkProfile) -> Flow {
    Flow {
        registry: n.clone(),
        blobs: n,
        token: false,
        redirect: false,
        index: false,
        registry_on_host: false,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn start_up_request_processing_and_loopback_ceiling() {
    // pulltime starts requests after 5 ms of set-up; each request adds 1 ms of
    // processing: ping 1 (handshake) + 1 + 1 ms... on an unshaped network the
    // handshake and round trips are free, so ping, manifest and config take
    // 1 ms each: resolve ends at 8 ms. The blob's first byte comes 1 ms later,
    // and 1 MB at loopback's 100 MB/s takes 10 ms.
    let mut host = instant_host(0.0);
    host.pull.startup_s = 0.005;
    host.pull.request_s = 0.001;
    host.pull.loopback_bps = 1e8;
    let img = image(vec![layer("a", 1_000_000, 1)]);
    let run = simulate(
        &img,
        &plain(NetworkProfile::unshaped()),
        &host,
        Policy::Pulltime,
        3,
    )
    .unwrap();
    assert!(
        close(run.requests[0].start_s, 0.005),
        "{:?}",
        run.requests[0]
    );
    assert!(close(run.resolve_s, 0.008), "{}", run.resolve_s);
    assert!(
        close(run.layers[0].download_end_s, 0.019),
        "{}",
        run.layers[0].download_end_s
    );
    // A daemon has no set-up of its own.
    let docker = simulate(
        &img,
        &plain(NetworkProfile::unshaped()),
        &host,
        Policy::Docker,
        3,
    )
    .unwrap();
    assert!(close(docker.resolve_s, 0.003), "{}", docker.resolve_s);
}

#[test]
fn a_registry_on_the_host_slows_a_cpu_bound_pull() {
    // 1 s of decoding on one core over a 1 s transfer: alone, decoding keeps up
    // and ends with the last byte; with serving costing a full core for that
    // second, serving runs first (up to nine tenths of the core, the rest
    // waiting until it can run) and the core does 2 s of work in all: the
    // pull ends at 2 s.
    let mut host = instant_host(0.0);
    host.cpus = 1;
    host.gzip_bps = 1e6;
    host.pull.serve_cpu_s_per_byte = 1e-6;
    let img = image(vec![layer("a", 1_000_000, 0)]);
    let n = net(0.0, 0.0, Some(1e6), None);
    let remote = simulate(&img, &plain(n.clone()), &host, Policy::Pulltime, 3).unwrap();
    let mut here = plain(n);
    here.registry_on_host = true;
    let local = simulate(&img, &here, &host, Policy::Pulltime, 3).unwrap();
    assert!(close(remote.wall_s, 1.0), "{}", remote.wall_s);
    assert!(close(local.wall_s, 2.0), "{}", local.wall_s);
}

#[test]
fn streaming_cpu_factor_scales_the_stages_work() {
    // 1 MB gzip layer decoded at 1 MB/s on one core: 1 s of decoding, which
    // ends 1 s after the (instantaneous, loopback) download. A factor of 1.5
    // makes it 1.5 s, and the layer reports the scaled decompression; docker's
    // sequential policy is not pulltime's pipeline and stays at 1 s.
    let mut host = instant_host(0.0);
    host.cpus = 1;
    host.gzip_bps = 1e6;
    let img = image(vec![layer("a", 1_000_000, 0)]);
    let flow = plain(net(0.0, 0.0, None, None));
    let base = simulate(&img, &flow, &host, Policy::Pulltime, 3).unwrap();
    host.pull.stream_cpu_factor = 1.5;
    let scaled = simulate(&img, &flow, &host, Policy::Pulltime, 3).unwrap();
    let docker = simulate(&img, &flow, &host, Policy::Docker, 3).unwrap();
    assert!(close(base.wall_s, 1.0), "{}", base.wall_s);
    assert!(close(scaled.wall_s, 1.5), "{}", scaled.wall_s);
    assert!(close(scaled.layers[0].decompress_s, 1.5));
    assert!(close(docker.wall_s, 1.0), "{}", docker.wall_s);
}

#[test]
fn one_layer_known_bandwidth_and_rtt() {
    // ping: handshake 10 ms + 10 ms; manifest 10 ms; config 10 ms (reused
    // connection, empty body): resolve = 40 ms. Blob: 10 ms + 1 MB at 1 MB/s.
    let n = net(10.0, 1.0, Some(1e6), None);
    let run = simulate(
        &image(vec![layer("a", 1_000_000, 1)]),
        &plain(n),
        &instant_host(0.0),
        Policy::Pulltime,
        3,
    )
    .unwrap();
    assert!(close(run.resolve_s, 0.040), "{}", run.resolve_s);
    assert!(close(run.layers[0].ttfb_s, 0.010));
    assert!(
        close(run.layers[0].download_end_s, 1.050),
        "{}",
        run.layers[0].download_end_s
    );
    assert!(close(run.wall_s, 1.050), "{}", run.wall_s);
    assert_eq!(
        run.connections.len(),
        1,
        "the blob reuses the resolve connection"
    );
}

#[test]
fn tls_versions_cost_their_handshake_round_trips() {
    // RTT 10 ms, TCP 1 RTT. A new connection costs 10 ms of TCP, then 10 ms of
    // TLS 1.3 or 20 ms of TLS 1.2, before its first request's 10 ms round trip.
    // Resolve: ping on a new connection (setup + 10), manifest 10, config 10.
    // The blob then reuses the connection: 10 ms, and 1 MB at 1 MB/s.
    //   plain:   10 + 10 + 10 + 10 = 40 ms resolve, wall 1.050 s
    //   TLS 1.3: 20 + 10 + 10 + 10 = 50 ms resolve, wall 1.060 s
    //   TLS 1.2: 30 + 10 + 10 + 10 = 60 ms resolve, wall 1.070 s
    use crate::profiles::network::TlsVersion;
    let img = image(vec![layer("a", 1_000_000, 1)]);
    for (tls, resolve, wall, tls_s) in [
        (None, 0.040, 1.050, None),
        (Some(TlsVersion::Tls13), 0.050, 1.060, Some(0.010)),
        (Some(TlsVersion::Tls12), 0.060, 1.070, Some(0.020)),
    ] {
        let n = NetworkProfile {
            tls,
            ..net(10.0, 1.0, Some(1e6), None)
        };
        let run = simulate(&img, &plain(n), &instant_host(0.0), Policy::Pulltime, 3).unwrap();
        assert!(close(run.resolve_s, resolve), "{tls:?}: {}", run.resolve_s);
        assert!(close(run.wall_s, wall), "{tls:?}: {}", run.wall_s);
        assert_eq!(run.connections.len(), 1, "{tls:?}");
        let c = run.connections[0];
        assert!(close(c.tcp_s, 0.010), "{c:?}");
        assert_eq!(c.tls_s.is_some(), tls_s.is_some(), "{c:?}");
        if let (Some(got), Some(want)) = (c.tls_s, tls_s) {
            assert!(close(got, want), "{c:?}");
        }
        assert!(close(c.setup_s, c.tcp_s + c.tls_s.unwrap_or(0.0)), "{c:?}");
    }
}

#[test]
fn concurrent_downloads_share_the_link() {
    // Two 1 MB blobs over a 1 MB/s link: the second needs a new connection
    // (10 ms more); 2 MB leave the link 2 s after the first byte at 50 ms.
    let n = net(10.0, 1.0, None, Some(1e6));
    let run = simulate(
        &image(vec![layer("a", 1_000_000, 1), layer("b", 1_000_000, 1)]),
        &plain(n),
        &instant_host(0.0),
        Policy::Pulltime,
        3,
    )
    .unwrap();
    assert!(
        close(run.layers[0].download_end_s, 0.040 + 0.010 + 0.010 + 1.98),
        "{:?}",
        run.layers
    );
    assert!(
        close(run.layers[1].download_end_s, 0.050 + 2.0),
        "{:?}",
        run.layers
    );
    assert_eq!(run.connections.len(), 2);
    // One download at a time: strictly sequential.
    let run = simulate(
        &image(vec![layer("a", 1_000_000, 1), layer("b", 1_000_000, 1)]),
        &plain(net(10.0, 1.0, None, Some(1e6))),
        &instant_host(0.0),
        Policy::Pulltime,
        1,
    )
    .unwrap();
    assert!(
        close(
            run.layers[1].download_end_s,
            0.040 + 0.010 + 1.0 + 0.010 + 1.0
        ),
        "{:?}",
        run.layers
    );
}

#[test]
fn docker_extracts_in_order_after_each_download() {
    // Layer a is big (slow to download) with 100 files; b is tiny. Docker
    // extracts b only after a, although b arrived first.
    let n = net(0.0, 0.0, Some(1e6), None);
    let img = image(vec![layer("a", 1_000_000, 100), layer("b", 1_000, 10)]);
    let host = instant_host(0.001);
    let run = simulate(&img, &plain(n.clone()), &host, Policy::Docker, 3).unwrap();
    let (a, b) = (&run.layers[0], &run.layers[1]);
    assert!(b.download_end_s < a.download_end_s);
    assert!(close(a.end_s, a.download_end_s + 0.100));
    assert!(close(b.end_s, a.end_s + 0.010));
    // containerd waits for every download before unpacking anything.
    let run = simulate(&img, &plain(n), &host, Policy::Containerd, 3).unwrap();
    assert!(close(
        run.layers[0].end_s,
        run.layers[0]
            .download_end_s
            .max(run.layers[1].download_end_s)
            + 0.100
    ));
}

#[test]
fn pulltime_decodes_ahead_on_other_cores_and_extracts_in_order() {
    // A fast network (both 2 MB layers arrive within 20 ms), gzip at 2 MB/s
    // (1 s of decoding per layer) and 1 s of extraction per layer (1000 files).
    let n = net(0.0, 0.0, Some(1e9), None);
    let img = image(vec![
        layer("a", 2_000_000, 1000),
        layer("b", 2_000_000, 1000),
    ]);
    let mut host = instant_host(0.001);
    host.gzip_bps = 2e6;
    let run = simulate(&img, &plain(n.clone()), &host, Policy::Pulltime, 3).unwrap();
    let (a, b) = (&run.layers[0], &run.layers[1]);
    // Two decoders (a and b) and the extractor (tailing a) share 2 cores at 2/3
    // each: a is decoded and extracted 1.5 s after its bytes start.
    let near = |x: f64, y: f64| (x - y).abs() < 0.005;
    assert!(near(a.end_s, a.start_s + a.ttfb_s + 1.5), "{}", a.end_s);
    // b was decoded alongside a, so only its extraction remains, on one core:
    // in-order extraction keeps the pull above 4 s of CPU over 2 cores.
    assert!(close(b.end_s, a.end_s + 1.0), "{} vs {}", b.end_s, a.end_s);
    // One core: the decoders queue behind each other and share with extraction.
    host.cpus = 1;
    let one = simulate(&img, &plain(n), &host, Policy::Pulltime, 3).unwrap();
    assert!(one.wall_s >= 4.0 - 1e-6, "{}", one.wall_s);
}

#[test]
fn cached_layers_cost_nothing() {
    let n = net(10.0, 1.0, Some(1e6), None);
    let mut l = layer("a", 1_000_000, 1);
    l.cached = true;
    let run = simulate(
        &image(vec![l, layer("b", 500_000, 1)]),
        &plain(n),
        &instant_host(0.0),
        Policy::Pulltime,
        3,
    )
    .unwrap();
    assert!(close(run.wall_s, 0.040 + 0.010 + 0.5), "{}", run.wall_s);
}

#[test]
fn dockerhub_flow_adds_token_and_redirect_hops() {
    let mut n = net(30.0, 2.0, Some(1e7), Some(1e7));
    n.cdn = Some(Box::new(net(10.0, 2.0, Some(1e7), Some(1e7))));
    let flow = Flow {
        registry: n.clone(),
        blobs: n.cdn_profile(),
        token: true,
        redirect: true,
        index: false,
        registry_on_host: false,
    };
    let run = simulate(
        &image(vec![layer("a", 0, 0)]),
        &flow,
        &instant_host(0.0),
        Policy::Pulltime,
        3,
    )
    .unwrap();
    // ping 90 + token 30 + manifest 30 + config (30 + CDN 20 + 10) = 210 ms.
    assert!(close(run.resolve_s, 0.210), "{}", run.resolve_s);
    // The blob: registry 30 ms (reused) + CDN 10 ms (reused connection).
    assert!(close(run.layers[0].ttfb_s, 0.040), "{:?}", run.layers[0]);
    assert!(close(run.layers[0].redirect_s, 0.030));
}

#[test]
fn a_download_loop_out_of_budget_is_an_error() {
    // Two layers' bodies start at 20 ms and end at 1.02 s: one step only sends
    // the requests and reaches the bodies' start.
    let img = image(vec![layer("a", 1_000_000, 1), layer("b", 1_000_000, 1)]);
    let flow = plain(net(10.0, 1.0, Some(1e6), None));
    let host = instant_host(0.0);
    let mut client = network::Client::new(&flow, &host);
    let err = download::run_within(&img, &mut client, 0.0, 3, 1).unwrap_err();
    assert_eq!(
        err,
        SimError::EventBudget {
            stage: SimLoop::Download,
            budget: 1,
            done: 0,
            total: 2
        }
    );
}

#[test]
fn a_pullers_own_costs_and_snapshot_copies_replace_pulltimes() {
    // containerd with its own fitted costs: unpacking 1 s per MB, nothing per
    // file; the native snapshotter copies 1 ms per entry below before each
    // layer. Three 1 MB layers of 100 files each: copies of 0, 100 and 200
    // entries, so 1 + 1.1 + 1.2 s after the (instantaneous) downloads, with
    // pulltime's own (slow) gzip not counted at all.
    let mut host = instant_host(0.0);
    host.gzip_bps = 1e3;
    host.pullers.insert(
        "containerd".into(),
        crate::profiles::host::PullerCosts {
            unpack_per_byte_s: 1e-6,
            snapshot_copy_per_entry_s: 1e-3,
            ..Default::default()
        },
    );
    let img = image(vec![
        layer("a", 1_000_000, 100),
        layer("b", 1_000_000, 100),
        layer("c", 1_000_000, 100),
    ]);
    let flow = plain(net(0.0, 0.0, None, None));
    let run = simulate(&img, &flow, &host, Policy::Containerd, 3).unwrap();
    assert!(close(run.wall_s, 3.3), "{}", run.wall_s);
    assert!(close(run.layers[2].extract_s, 1.2), "{:?}", run.layers[2]);
    assert_eq!(run.layers[2].decompress_s, 0.0);
    // docker has no costs of its own here: pulltime's gzip rate applies.
    let docker = simulate(&img, &flow, &host, Policy::Docker, 3).unwrap();
    assert!(docker.wall_s > 1000.0, "{}", docker.wall_s);
}
