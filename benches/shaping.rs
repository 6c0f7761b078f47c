//! Is the embedded registry's shaping honest? For each network profile, fetch a blob
//! over a fresh connection (one download, then three at once) and compare achieved
//! throughput and time to first byte with what the profile configures.
//!
//! Run: `cargo bench --bench shaping` (release build). Prints a Markdown table;
//! docs/network.md quotes it with the machine it ran on.

use std::time::{Duration, Instant};

use pulltime::oci::digest::sha256_digest;
use pulltime::profiles::network::{NetworkProfile, format_bandwidth};
use pulltime::server::{ServeOptions, ServerThread};

const PROFILES: &[&str] = &[
    "mobile-10m",
    "edge-20m",
    "home-50m",
    "dockerhub-100m",
    "lan-1g",
];

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| profile | configured per connection | achieved, 1 download | configured link | achieved, 3 downloads (sum) | configured first-byte time (new connection) | measured TTFB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for name in PROFILES {
        let profile = NetworkProfile::load(name).unwrap();
        let per_conn = profile.connection_bandwidth.unwrap_or(1e9);
        // About two seconds of transfer per download.
        let size = ((per_conn * 2.0) as usize).clamp(1 << 20, 256 << 20);
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let digest = sha256_digest(&data);
        let storage = tempfile::tempdir().unwrap();
        let server = ServerThread::spawn(ServeOptions {
            storage: Some(storage.path().to_path_buf()),
            network: profile.clone(),
            ..ServeOptions::default()
        })
        .unwrap();
        let base = format!("http://{}", server.addr);
        rt.block_on(async {
            let c = reqwest::Client::new();
            let r = c
                .post(format!("{base}/v2/bench/blobs/uploads/?digest={digest}"))
                .body(data.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        });
        let url = format!("{base}/v2/bench/blobs/{digest}");
        let (ttfb, one) = rt.block_on(fetch(&url));
        let three = rt.block_on(async {
            let t = Instant::now();
            let (a, b, c) = tokio::join!(fetch(&url), fetch(&url), fetch(&url));
            let _ = (a, b, c);
            3.0 * size as f64 / t.elapsed().as_secs_f64()
        });
        let expected_ttfb = (1.0 + profile.setup_rtts()) * profile.rtt_ms;
        println!(
            "| {name} | {} | {} ({:.0}%) | {} | {} ({:.0}%) | {expected_ttfb:.1} ms | {:.1} ms |",
            format_bandwidth(per_conn),
            format_bandwidth(one),
            100.0 * one / per_conn,
            profile
                .link_bandwidth
                .map_or("unlimited".into(), format_bandwidth),
            format_bandwidth(three),
            100.0 * three
                / profile
                    .link_bandwidth
                    .unwrap_or(f64::INFINITY)
                    .min(3.0 * per_conn),
            ttfb.as_secs_f64() * 1e3,
        );
    }
}

/// GET over a new client; returns (time to headers, bytes/s of the body).
async fn fetch(url: &str) -> (Duration, f64) {
    use futures_util::StreamExt;
    let client = reqwest::Client::new();
    let t = Instant::now();
    let resp = client.get(url).send().await.unwrap();
    let ttfb = t.elapsed();
    let body_start = Instant::now();
    let mut n = 0usize;
    let mut s = resp.bytes_stream();
    while let Some(c) = s.next().await {
        n += c.unwrap().len();
    }
    (ttfb, n as f64 / body_start.elapsed().as_secs_f64())
}
