//! Each test here failed before the fix it guards (issue 18).

use std::time::{Duration, Instant};

use crate::common;
use common::pulltime;
use predicates::prelude::*;

fn synth_layout(dir: &std::path::Path) {
    pulltime::synth::synthesize(
        &pulltime::synth::ImageProfile::load("sn-text-filter-multistage").unwrap(),
        pulltime::synth::SynthOptions {
            scale: 0.002,
            compression: pulltime::oci::media_type::Compression::Gzip,
        },
        dir,
        "v1",
    )
    .unwrap();
}

/// `simulate vp-transcode-original --scale 0.01 --json PATH`: a small record.
fn simulated_record(home: &std::path::Path, path: &std::path::Path) {
    pulltime(home)
        .args([
            "simulate",
            "vp-transcode-original",
            "--scale",
            "0.01",
            "--json",
        ])
        .arg(path)
        .assert()
        .success();
}

#[test]
fn a_misspelled_file_is_an_error_naming_it_not_a_pull() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        vec!["simulate", "nosuch.json"],
        vec!["simulate", "./nosuch.json"],
        vec!["simulate", "./nosuch"],
        vec!["simulate", "nosuch.toml"],
        vec!["simulate", "record:gone.json"],
        vec!["compare", "vp-transcode-original", "nosuch.json"],
    ] {
        let started = Instant::now();
        pulltime(home.path()).args(&args).assert().code(2).stderr(
            predicate::str::contains("nosuch")
                .or(predicate::str::contains("gone.json"))
                .and(predicate::str::contains("docker.io").not())
                .and(predicate::str::contains("unreachable").not()),
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{args:?} went to a network"
        );
    }
    // Explicit prefixes: a profile by name, and a layout.
    let layout = tempfile::tempdir().unwrap();
    synth_layout(layout.path());
    pulltime(home.path())
        .args([
            "simulate",
            "profile:vp-transcode-original",
            "--scale",
            "0.01",
        ])
        .assert()
        .success();
    pulltime(home.path())
        .args(["simulate", &format!("oci:{}:v1", layout.path().display())])
        .assert()
        .success();
}

#[test]
fn flags_that_do_not_apply_are_refused_naming_why() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let rec = work.path().join("sim.json");
    simulated_record(home.path(), &rec);
    let rec = rec.to_str().unwrap();
    for (args, says) in [
        (
            vec!["simulate", rec, "--scale", "2"],
            "--scale applies to image profiles only",
        ),
        (
            vec!["simulate", rec, "--compression", "zstd"],
            "--compression applies to image profiles only",
        ),
        (
            vec!["simulate", rec, "--platform", "linux/arm64"],
            "--platform",
        ),
        (vec!["simulate", rec, "--egress", "1Gbit"], "add --fleet N"),
        (
            vec!["simulate", rec, "--fleet-spread", "3"],
            "add --fleet N",
        ),
        (
            vec!["simulate", rec, "--fleet-cached-fraction", "0.5"],
            "add --fleet N",
        ),
        (
            vec!["simulate", rec, "--fleet", "4", "--merge-layers"],
            "does not apply with --fleet",
        ),
        (
            vec!["simulate", rec, "--fleet", "4", "--bandwidth", "1Gbit"],
            "does not apply with --fleet",
        ),
    ] {
        pulltime(home.path())
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
    }
    // What does apply still works.
    pulltime(home.path())
        .args(["simulate", rec, "--fleet", "4", "--egress", "1Gbit"])
        .assert()
        .success();
}

#[test]
fn streaming_only_pull_flags_are_refused_with_staged_mode() {
    let home = tempfile::tempdir().unwrap();
    for flag in ["--decoders", "--appliers"] {
        // Refused before any request: nothing listens on port 1.
        pulltime(home.path())
            .args([
                "pull",
                "-q",
                "127.0.0.1:1/app:v1",
                "--mode",
                "staged",
                flag,
                "2",
            ])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "{flag} applies to --mode streaming only"
            )));
    }
}

#[test]
fn diff_refuses_empty_records_and_says_when_a_side_is_simulated() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let sim = work.path().join("sim.json");
    simulated_record(home.path(), &sim);
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&sim).unwrap()).unwrap();
    doc["runs"] = serde_json::json!([]);
    let empty = work.path().join("empty.json");
    std::fs::write(&empty, doc.to_string()).unwrap();
    pulltime(home.path())
        .args(["diff"])
        .arg(&sim)
        .arg(&empty)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no runs"));
    pulltime(home.path())
        .args(["diff"])
        .arg(&sim)
        .arg(&sim)
        .assert()
        .success()
        .stderr(predicate::str::contains("is simulated"))
        .stdout(
            predicate::str::contains("image not compared")
                .and(predicate::str::contains("manifest  ->").not()),
        );
}

#[test]
fn outputs_are_checked_before_the_pull() {
    // Nothing listens at the registry: had pulltime pulled first, it would have
    // failed as unreachable (exit 1), not on the output path (exit 2).
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let bad = work.path().join("nodir/out.json");
    let unreachable = format!("127.0.0.1:{}/app:v1", common::free_port());
    pulltime(home.path())
        .args(["pull", &unreachable, "--runs", "3", "--json"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("does not exist")
                .and(predicate::str::contains("--json"))
                .and(predicate::str::contains("unreachable").not()),
        );
    let file = work.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    pulltime(home.path())
        .args([
            "pull",
            &unreachable,
            "--save-baseline",
            "b",
            "--baseline-dir",
        ])
        .arg(file.join("sub"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--baseline-dir"));
    for args in [
        vec![
            "simulate",
            "vp-transcode-original",
            "--csv",
            bad.to_str().unwrap(),
        ],
        vec![
            "simulate",
            "vp-transcode-original",
            "--svg",
            work.path().to_str().unwrap(),
        ],
        vec![
            "compare",
            "vp-transcode-original",
            "vp-transcode-multistage",
            "--svg",
            bad.to_str().unwrap(),
        ],
    ] {
        pulltime(home.path()).args(&args).assert().code(2);
    }
}

#[test]
fn exit_codes_tell_a_regression_from_a_failure_and_are_documented() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let slow = work.path().join("slow.json");
    let fast = work.path().join("fast.json");
    for (path, net) in [(&fast, "datacenter-10g"), (&slow, "mobile-10m")] {
        pulltime(home.path())
            .args([
                "simulate",
                "vp-transcode-original",
                "--scale",
                "0.01",
                "--network",
                net,
                "--json",
            ])
            .arg(path)
            .assert()
            .success();
    }
    pulltime(home.path())
        .args(["diff"])
        .arg(&fast)
        .arg(&slow)
        .arg("--fail-on-regression")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("regressed"))
        .stdout(predicate::str::contains("none (1 run)"));
    pulltime(home.path())
        .args(["diff"])
        .arg(&slow)
        .arg(&fast)
        .arg("--fail-on-regression")
        .assert()
        .success();
    pulltime(home.path())
        .args(["pull", "127.0.0.1:1/x:y", "--retries", "1"])
        .assert()
        .code(1);
    pulltime(home.path())
        .args(["pull", "--runs", "0", "x"])
        .assert()
        .code(2);
    pulltime(home.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Exit status:")
                .and(predicate::str::contains("3    regression"))
                .and(predicate::str::contains("130  interrupted")),
        );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for code in ["`0`", "`1`", "`2`", "`3`", "`130`"] {
        assert!(
            readme.contains(code),
            "README does not document exit status {code}"
        );
    }
}

const SUBCOMMANDS: [&str; 10] = [
    "aggregate",
    "calibrate",
    "compare",
    "demo",
    "diff",
    "pull",
    "report",
    "serve",
    "simulate",
    "synth",
];

#[test]
fn help_fits_80_columns_groups_options_and_ends_with_examples() {
    let home = tempfile::tempdir().unwrap();
    for sub in SUBCOMMANDS {
        for flag in ["-h", "--help"] {
            let out = pulltime(home.path())
                .args([sub, flag])
                .env("COLUMNS", "80")
                .output()
                .unwrap();
            assert!(out.status.success(), "{sub} {flag}");
            let text = String::from_utf8(out.stdout).unwrap();
            for line in text.lines() {
                assert!(
                    line.chars().count() <= 80,
                    "{sub} {flag}: {} columns: {line:?}",
                    line.chars().count()
                );
            }
            let examples = text
                .split("Examples:")
                .nth(1)
                .unwrap_or_else(|| panic!("{sub} {flag}: no examples"));
            let n = examples
                .lines()
                .filter(|l| l.trim_start().starts_with("pulltime "))
                .count();
            assert!((2..=4).contains(&n), "{sub} {flag}: {n} examples");
            // Every example uses flags that exist: with --help appended, clap
            // checks them and prints help instead of running.
            for example in examples
                .lines()
                .filter(|l| l.trim_start().starts_with("pulltime "))
            {
                let words: Vec<&str> = example
                    .split('<')
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .skip(1)
                    .collect();
                let out = pulltime(home.path())
                    .args(&words)
                    .arg("--help")
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{example}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    let pull = String::from_utf8(
        pulltime(home.path())
            .args(["pull", "--help"])
            .env("COLUMNS", "80")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for heading in ["Registry:", "Output:", "Baselines and gates:", "Limits:"] {
        assert!(pull.contains(heading), "pull --help has no {heading}");
    }
    // -h is the short form.
    let short = pulltime(home.path())
        .args(["pull", "-h"])
        .output()
        .unwrap()
        .stdout;
    assert!(short.len() < pull.len());
}

#[test]
fn names_are_the_same_everywhere() {
    let home = tempfile::tempdir().unwrap();
    let help = |sub: &str| {
        String::from_utf8(
            pulltime(home.path())
                .args([sub, "--help"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    // The SVG flag is --svg wherever a picture is drawn (report keeps -o).
    for sub in ["report", "simulate", "compare"] {
        assert!(help(sub).contains("--svg <SVG>"), "{sub}");
    }
    assert!(help("report").contains("-o, --svg"));
    // Progress can be silenced wherever there is progress.
    for sub in ["pull", "demo", "compare", "calibrate"] {
        assert!(help(sub).contains("-q, --quiet"), "{sub}");
    }
    // compare reaches registries as pull does.
    let compare = help("compare");
    for flag in [
        "--platform",
        "--plain-http",
        "--user",
        "--password-stdin",
        "--authfile",
        "--ca-cert",
    ] {
        assert!(compare.contains(flag), "compare has no {flag}");
        assert!(help("pull").contains(flag), "pull has no {flag}");
    }
    // demo lists its pairs and checks them before anything starts.
    assert!(help("demo").contains("sn-text-filter"));
    let started = Instant::now();
    pulltime(home.path())
        .args(["demo", "--pairs", "nonesuch"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("sn-text-filter"))
        .stdout(predicate::str::is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Every cell of a numeric column (by its header's unit) is a number or empty.
fn assert_numeric_csv(path: &std::path::Path) -> usize {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let numeric = |h: &str| {
        ["_s", "_bytes", "_pct", "_bit_per_s"]
            .iter()
            .any(|u| h.ends_with(u))
            || ["files", "layers", "runs", "run", "layer"].contains(&h)
    };
    assert!(headers.iter().any(|h| numeric(h)), "{headers:?}");
    let mut rows = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        assert_eq!(rec.len(), headers.len(), "{rec:?}");
        for (h, cell) in headers.iter().zip(rec.iter()) {
            if numeric(h) && !cell.is_empty() {
                assert!(
                    cell.parse::<f64>().is_ok(),
                    "{}: {h} = {cell:?}",
                    path.display()
                );
            }
            assert_eq!(cell, cell.trim(), "padded cell in {h}");
        }
        rows += 1;
    }
    rows
}

#[test]
fn every_exported_csv_is_raw_numbers_with_units_in_the_headers() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let p = |n: &str| work.path().join(n);
    pulltime(home.path())
        .args(["simulate", "vp-transcode-original", "--scale", "0.01"])
        .args(["--merge-layers", "--bandwidth", "10Mbit,1Gbit", "--csv"])
        .arg(p("sim.csv"))
        .arg("--json")
        .arg(p("sim.json"))
        .assert()
        .success();
    assert_eq!(
        assert_numeric_csv(&p("sim.csv")),
        4,
        "as is, merged, two bandwidths"
    );
    let sim = std::fs::read_to_string(p("sim.csv")).unwrap();
    assert!(
        sim.contains(",10000000,") && sim.contains(",1000000000,"),
        "{sim}"
    );
    pulltime(home.path())
        .args([
            "compare",
            "vp-transcode-original",
            "vp-transcode-multistage",
            "--scale",
            "0.01",
        ])
        .arg("--csv")
        .arg(p("cmp.csv"))
        .arg("--sweep-csv")
        .arg(p("sweep.csv"))
        .arg("--json")
        .arg(p("cmp.json"))
        .assert()
        .success();
    assert_eq!(
        assert_numeric_csv(&p("cmp.csv")),
        2,
        "one row per image, no change rows"
    );
    assert!(assert_numeric_csv(&p("sweep.csv")) >= 20);
    let cmp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p("cmp.json")).unwrap()).unwrap();
    assert_eq!(cmp["images"].as_array().unwrap().len(), 2);
    assert!(
        cmp["sweep"][0]["pull_s"]["vp-transcode-original"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    pulltime(home.path())
        .args(["report"])
        .arg(p("sim.json"))
        .arg("--csv")
        .arg(p("layers.csv"))
        .assert()
        .success();
    assert!(assert_numeric_csv(&p("layers.csv")) > 0);
    assert!(
        std::fs::read_to_string(p("layers.csv"))
            .unwrap()
            .starts_with("run,layer,")
    );
}

#[test]
fn output_piped_into_head_ends_quietly() {
    use std::io::{BufRead, BufReader};
    let home = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("pulltime");
    // About 400 kB of output, far more than a pipe holds (64 kB): the writer
    // must meet the closed pipe, whatever the timing.
    let sweep: Vec<String> = (1..=1500).map(|i| format!("{i}Mbit")).collect();
    let mut child = std::process::Command::new(bin)
        .env("HOME", home.path())
        .args([
            "simulate",
            "ml-object-detection-original",
            "--scale",
            "0.01",
        ])
        .args(["--bandwidth", &sweep.join(",")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone, as with `| head -1`.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(first.starts_with("simulated"), "{first}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}

#[test]
fn a_closed_socket_cannot_kill_the_process() {
    // TLS records go out through writev(2), which has no MSG_NOSIGNAL: with
    // SIGPIPE at its default action, a registry that closes the connection (a
    // refused client certificate) killed a pull with no message. The process
    // must keep SIGPIPE ignored; stdout's closed reader is handled by the writer
    // (output_piped_into_head_ends_quietly).
    use std::io::{BufRead, BufReader};
    let home = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pulltime"))
        .env("HOME", home.path())
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("listening"), "{first}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let ignored = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
        .unwrap();
    assert_ne!(ignored & (1 << (libc::SIGPIPE - 1)), 0, "{status}");
}

#[test]
fn output_fits_100_columns_and_says_counts_in_words() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let rec = work.path().join("s.json");
    let outputs = [
        vec![
            "simulate",
            "vp-transcode-original",
            "--scale",
            "0.01",
            "--merge-layers",
            "--recompress",
            "zstd",
            "--bandwidth",
            "10Mbit,1Gbit",
            "--json",
            rec.to_str().unwrap(),
        ],
        vec![
            "compare",
            "vp-transcode-original",
            "vp-transcode-multistage",
            "ml-object-detection-original",
            "--scale",
            "0.01",
        ],
        vec!["synth", "--list"],
        vec!["report", rec.to_str().unwrap()],
    ];
    for args in outputs {
        // As a person at a 100-column terminal reads it.
        let out = pulltime(home.path())
            .args(&args)
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "{args:?}: {line:?}");
        }
        assert!(
            !text.contains(" 1 files") && !text.contains(" 1 layers"),
            "{text}"
        );
    }
    // Every profile shipped in profiles/images/ is listed.
    let list = String::from_utf8(
        pulltime(home.path())
            .args(["synth", "--list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/images");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().path();
        let stem = name.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(list.contains(&stem), "synth --list misses {stem}");
    }
    assert!(list.contains("--scale 1 (the default)"));
}

#[test]
fn json_csv_and_svg_files_get_the_same_mode() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let p = |n: &str| work.path().join(n);
    pulltime(home.path())
        .args([
            "simulate",
            "vp-transcode-original",
            "--scale",
            "0.01",
            "--bandwidth",
            "10Mbit,1Gbit",
        ])
        .arg("--json")
        .arg(p("a.json"))
        .arg("--csv")
        .arg(p("a.csv"))
        .arg("--markdown")
        .arg(p("a.md"))
        .arg("--svg")
        .arg(p("a.svg"))
        .assert()
        .success();
    let mode = |n: &str| std::fs::metadata(p(n)).unwrap().permissions().mode() & 0o777;
    let json = mode("a.json");
    assert_eq!(
        json & 0o644,
        0o644,
        "{json:o}: readable by others, as a plain file"
    );
    for n in ["a.csv", "a.md", "a.svg"] {
        assert_eq!(mode(n), json, "{n}");
    }
    // No temporary file is left beside them.
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 4);
}

#[test]
fn compare_warns_when_records_were_measured_in_different_conditions() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let sim = work.path().join("sim.json");
    simulated_record(home.path(), &sim);
    // Two "measured" records of the image, from different machines.
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&sim).unwrap()).unwrap();
    doc["simulated"] = serde_json::json!(false);
    let (a, b) = (work.path().join("a.json"), work.path().join("b.json"));
    doc["host"]["machine"] = serde_json::json!("laptop");
    std::fs::write(&a, doc.to_string()).unwrap();
    doc["host"]["machine"] = serde_json::json!("ci-runner");
    std::fs::write(&b, doc.to_string()).unwrap();
    pulltime(home.path())
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .assert()
        .success()
        .stderr(
            predicate::str::contains("measured on different hosts")
                .and(predicate::str::contains("laptop"))
                .and(predicate::str::contains("ci-runner")),
        );
    pulltime(home.path())
        .arg("compare")
        .arg(&a)
        .arg(&a)
        .assert()
        .success()
        .stderr(predicate::str::contains("different").not());
}
