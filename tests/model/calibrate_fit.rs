//! `calibrate --from-records`: a host profile fitted to measured pulls, its
//! residuals shown, records of other machines and simulations refused.

use pulltime::oci::media_type::Compression;
use pulltime::profiles::host::HostProfile;

use crate::common::{Registry, build_and_push, many_files_layer, pulltime};

#[test]
fn a_profile_is_fitted_to_measured_pulls_and_foreign_records_are_refused() {
    let reg = Registry::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Two images of different shapes: many small files, a few large ones.
    let shapes = [
        (
            "fit/small:v1",
            vec![
                many_files_layer(21, 600, 800),
                many_files_layer(22, 200, 2_000),
            ],
        ),
        (
            "fit/large:v1",
            vec![
                many_files_layer(23, 8, 400_000),
                many_files_layer(24, 40, 20_000),
            ],
        ),
    ];
    let mut records = Vec::new();
    for (name, layers) in &shapes {
        let reference = reg.reference(name);
        build_and_push(&reference, layers, Compression::Gzip);
        let json = h.join(format!("{}.json", name.replace(['/', ':'], "-")));
        pulltime(h)
            .args(["pull", &reference, "--runs", "2", "-q", "--json"])
            .arg(&json)
            .assert()
            .success();
        records.push(json);
    }
    let profile = h.join("fitted.toml");
    let assert = pulltime(h)
        .arg("calibrate")
        .arg("--from-records")
        .args(&records)
        .arg("--out")
        .arg(&profile)
        .args(["--name", "fitted-here"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    for phase in [
        "extract_s of pulltime",
        "decompress_s (gzip) of pulltime",
        "verify_s of pulltime",
        "as modelled) of pulltime/streaming",
    ] {
        assert!(stderr.contains(phase), "{stderr}");
    }
    // Every observation is listed: 2 records x 2 runs x 2 layers, per phase (the
    // extraction twice: every entry kind, and as modelled).
    assert_eq!(stderr.matches(".json run ").count(), 4 * 8, "{stderr}");
    let fitted = HostProfile::load(&profile).unwrap();
    assert_eq!(fitted.name, "fitted-here");
    assert!(
        fitted
            .description
            .contains("fitted by pulltime calibrate --from-records")
    );
    assert!(
        fitted.extract_per_file_s > 0.0 && fitted.extract_per_file_s < 0.01,
        "{fitted:?}"
    );
    assert!(fitted.gzip_bps > 1e6, "{fitted:?}");
    // Its stage costs come from real streaming pulls: no extra streaming factor.
    assert_eq!(fitted.pull.stream_cpu_factor, 1.0);
    // Told the network they were pulled over, the fit simulates every record and
    // fits the streaming factor to their wall times, and says how close each is.
    let with_factor = h.join("factor.toml");
    let assert = pulltime(h)
        .arg("calibrate")
        .arg("--from-records")
        .args(&records)
        .args(["--network", "loopback", "--out"])
        .arg(&with_factor)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("stream_cpu_factor, fitted to the wall times of 2 "))
        .unwrap_or_else(|| panic!("{stderr}"));
    let factor = HostProfile::load(&with_factor)
        .unwrap()
        .pull
        .stream_cpu_factor;
    assert!(
        line.contains(&format!(": {factor:.2};")),
        "{line} vs {factor}"
    );
    for r in &records {
        assert!(
            stderr.lines().any(|l| l.contains(&*r.display().to_string())
                && !l.contains(".json run ")
                && l.matches(" s").count() == 3),
            "{stderr}"
        );
    }
    pulltime(h)
        .arg("calibrate")
        .arg("--from-records")
        .args(&records)
        .arg("--registry-on-host")
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "--registry-on-host goes with --network",
        ));

    // Another machine's record, one without a machine, a simulation: refused.
    let text = std::fs::read_to_string(&records[0]).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["host"]["machine"] = "0123456789abcdef".into();
    let foreign = h.join("foreign.json");
    std::fs::write(&foreign, v.to_string()).unwrap();
    pulltime(h)
        .arg("calibrate")
        .arg("--from-records")
        .arg(&records[1])
        .arg(&foreign)
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "foreign.json was measured on another machine",
        ));
    v["host"].as_object_mut().unwrap().remove("machine");
    std::fs::write(&foreign, v.to_string()).unwrap();
    pulltime(h)
        .arg("calibrate")
        .arg("--from-records")
        .arg(&foreign)
        .assert()
        .failure()
        .stderr(predicates::str::contains("does not say which machine"));
    let simulated = h.join("sim.json");
    pulltime(h)
        .args([
            "simulate",
            "sn-compose-post-original",
            "--scale",
            "0.01",
            "--json",
        ])
        .arg(&simulated)
        .assert()
        .success();
    pulltime(h)
        .arg("calibrate")
        .arg("--from-records")
        .arg(&simulated)
        .assert()
        .failure()
        .stderr(predicates::str::contains("is a simulated record"));
    pulltime(h)
        .args(["calibrate", "--base", "x.toml"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("--base goes with --from-records"));
}
