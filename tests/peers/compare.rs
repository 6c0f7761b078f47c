//! `compare --puller`: pullers in rotating order, their records in report, diff,
//! gates and calibrate --from-records, and the simulator fed by the fit.

use std::process::Command;

use super::checks::*;
use super::daemons;
use crate::common::{Registry, pulltime, run};

#[test]
fn compare_rotates_pullers_and_its_records_report_and_diff() {
    let test = "peers::compare";
    let daemon = match daemons::containerd() {
        Ok(d) => d,
        Err(e) => return super::skip(test, &e),
    };
    let reg = Registry::start();
    let tagged = synthetic(&reg);
    // By digest, as CI pipelines pin images (containerd's between-run clean-up
    // must cope with a reference that has no tag).
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}", tagged.reference),
    ]));
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(raw.as_bytes()))
    );
    let source = Source {
        reference: reg.reference(&format!("synthetic/app@{digest}")),
        layers: tagged.layers,
    };
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out");
    let assert = pulltime(home.path())
        .args(["compare", "--puller", "containerd,pulltime,skopeo-umoci"])
        .arg(&source.reference)
        .args(["--runs", "3", "--containerd-address"])
        .arg(&daemon.socket)
        .arg("--records")
        .arg(&out)
        .arg("--waterfalls")
        .arg(&out)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let order: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("round "))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "containerd",
            "pulltime",
            "skopeo-umoci",
            "pulltime",
            "skopeo-umoci",
            "containerd",
            "skopeo-umoci",
            "containerd",
            "pulltime"
        ],
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    for name in ["containerd", "pulltime", "skopeo-umoci"] {
        assert!(stdout.contains(name), "{stdout}");
        let record =
            pulltime::report::json::read_record(&out.join(format!("{name}.json"))).unwrap();
        assert_eq!(record.runs.len(), 3, "{name}");
        assert_eq!(record.puller.name, name);
        let svg = std::fs::read_to_string(out.join(format!("{name}.svg"))).unwrap();
        assert_eq!(svg.matches("class=\"layer\"").count(), 3, "{name}");
    }
    // report and diff read them; diff says what one side could not observe.
    pulltime(home.path())
        .arg("report")
        .arg(out.join("containerd.json"))
        .assert()
        .success()
        .stdout(predicates::str::contains("decompress_s not observed"));
    pulltime(home.path())
        .arg("diff")
        .arg(out.join("pulltime.json"))
        .arg(out.join("containerd.json"))
        .assert()
        .success()
        .stdout(predicates::str::contains("not compared"));
    // containerd's own costs fitted from its records go into the host profile
    // (under pullers.containerd) and drive the simulator's containerd policy.
    let profile = home.path().join("ctd.toml");
    pulltime(home.path())
        .args(["calibrate", "--puller", "containerd", "--from-records"])
        .arg(out.join("containerd.json"))
        .arg("--out")
        .arg(&profile)
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "snapshot_prepare_s of containerd/overlayfs",
        ));
    let host = pulltime::profiles::host::HostProfile::load(&profile).unwrap();
    let costs = &host.pullers["containerd"];
    // An unpack cost that grows with the layer: per byte written, per byte of
    // blob, per file or per directory. On one image these move together across
    // its layers, so which of them the fit picks depends on the noise (under
    // load it has put it all on files): their sum is what must be there.
    assert!(
        costs.unpack_per_byte_s
            + costs.unpack_per_compressed_byte_s
            + costs.unpack_per_file_s
            + costs.unpack_per_dir_s
            > 0.0,
        "{costs:?}"
    );
    assert_eq!(
        costs.fitted_from.split(' ').next(),
        Some("containerd/overlayfs")
    );
    pulltime(home.path())
        .args(["simulate"])
        .arg(out.join("containerd.json"))
        .args(["--policy", "containerd", "--network", "loopback", "--host"])
        .arg(&profile)
        .assert()
        .success();
    // A gate on a phase one side cannot see is refused, not passed.
    pulltime(home.path())
        .arg("diff")
        .arg(out.join("pulltime.json"))
        .arg(out.join("containerd.json"))
        .args(["--fail-on-regression=decompress", "--significance", "0.2"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("cannot gate on decompress"));
}
