//! `pulltime calibrate --from-records`: the fit, its residuals, and the profile.

use std::fmt::Write as _;

use pulltime::calibrate::fitted_profile::fitted_profile;
use pulltime::calibrate::from_records::{PhaseFit, fit_records, rms_and_worst};
use pulltime::calibrate::stream_factor::{StreamFactorFit, WallFit, fit_stream_factor};
use pulltime::oci::record::PullRecord;
use pulltime::pipeline::measure::machine_id;
use pulltime::report::table::render;

use super::calibrate::CalibrateArgs;

/// Fits, reports on stderr, writes the profile to `--out` or stdout.
pub fn run(args: &CalibrateArgs) -> anyhow::Result<()> {
    if args.dest.is_some() || args.quick || args.no_pull_probe {
        anyhow::bail!(
            "--dest, --quick and --no-pull-probe are for the probes; --from-records probes nothing"
        );
    }
    let mut records: Vec<(String, PullRecord)> = Vec::new();
    for path in &args.from_records {
        let r = pulltime::report::json::read_record(path)?;
        records.push((path.display().to_string(), r));
    }
    let base = super::model::load_host(args.base.as_deref())?;
    let fits = fit_records(&records, machine_id().as_deref(), &base)?;
    eprint!("{}", render_fits(&fits, &base.name));
    let pullers: Vec<&str> = {
        let mut v: Vec<&str> = fits.iter().map(|f| f.puller.as_str()).collect();
        v.sort();
        v.dedup();
        v
    };
    // A puller's groups: `containerd` covers `containerd/native` and the like,
    // `pulltime` its modes.
    let of = |name: &str| -> Vec<&str> {
        pullers
            .iter()
            .copied()
            .filter(|p| *p == name || p.starts_with(&format!("{name}/")))
            .collect()
    };
    let wanted = match &args.puller {
        Some(k) => k.as_str(),
        None if !of("pulltime").is_empty() => "pulltime",
        None if pullers.len() == 1 => pullers[0].split('/').next().unwrap_or(pullers[0]),
        None => anyhow::bail!(
            "records of several pullers ({}): name the one whose costs go into the profile with --puller",
            pullers.join(", ")
        ),
    };
    if !matches!(
        wanted,
        "pulltime" | "docker" | "containerd" | "podman" | "skopeo-umoci"
    ) {
        anyhow::bail!(
            "the simulator has no {wanted} policy, so its costs (shown above) have no place in a host profile; use --puller pulltime, docker, containerd, podman or skopeo-umoci"
        );
    }
    let puller = match of(wanted).as_slice() {
        [one] => *one,
        [] => anyhow::bail!("no records of {wanted} among the ones given"),
        many => anyhow::bail!(
            "records of {wanted} in several modes or snapshotters ({}): give one kind's records",
            many.join(", ")
        ),
    };
    let filesystems: Vec<&str> = {
        let mut v: Vec<&str> = fits
            .iter()
            .filter(|f| f.puller == puller)
            .map(|f| f.filesystem.as_str())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let [filesystem] = filesystems.as_slice() else {
        anyhow::bail!(
            "records of {puller} on several filesystems ({}): a profile describes one; give one filesystem's records",
            filesystems.join(", ")
        );
    };
    let filesystem = filesystem.to_string();
    let mut profile = fitted_profile(&base, &fits, puller, &filesystem);
    if let Some(network) = &args.network {
        if puller != "pulltime/streaming" {
            anyhow::bail!(
                "--network fits pulltime's streaming CPU factor; the profile is {puller}'s, which has none"
            );
        }
        let network = pulltime::profiles::network::NetworkProfile::load(network)?;
        let fit = fit_stream_factor(&records, &profile, &network, args.registry_on_host)?;
        eprint!("{}", render_factor(&fit, &network.name));
        profile.pull.stream_cpu_factor = fit.factor;
    } else if args.registry_on_host {
        anyhow::bail!("--registry-on-host goes with --network");
    }
    profile.name = args.name.clone();
    let observations: usize = fits
        .iter()
        .filter(|f| f.puller == puller)
        .map(|f| f.residuals.len())
        .max()
        .unwrap_or(0);
    profile.description = format!(
        "fitted by pulltime calibrate --from-records {} to {observations} layer observations of {puller} pulls on {filesystem}; costs the records did not identify are those of {}",
        env!("CARGO_PKG_VERSION"),
        base.name
    );
    super::calibrate::write_profile(&profile, args.out.as_deref())
}

/// The streaming factor's fit for people: every record's wall time, measured,
/// at factor 1 and at the fitted factor.
fn render_factor(fit: &StreamFactorFit, network: &str) -> String {
    let rel = |f: &dyn Fn(&WallFit) -> f64| {
        let e: Vec<f64> = fit
            .walls
            .iter()
            .map(|w| (f(w) - w.measured_s) / w.measured_s)
            .collect();
        rms_and_worst(&e)
    };
    let mut out = format!(
        "stream_cpu_factor, fitted to the wall times of {} streaming pull record(s) over {network}: {:.2}; {} at the fitted factor, {} at 1\n",
        fit.walls.len(),
        fit.factor,
        pct(rel(&|w| w.fitted_s)),
        pct(rel(&|w| w.unfitted_s)),
    );
    let rows: Vec<Vec<String>> = fit
        .walls
        .iter()
        .map(|w| {
            vec![
                w.source.clone(),
                format!("{:.3} s", w.measured_s),
                format!("{:.3} s", w.fitted_s),
                format!("{:.3} s", w.unfitted_s),
            ]
        })
        .collect();
    for line in render(&["record", "median wall", "fit", "at 1"], &rows, 2).lines() {
        let _ = writeln!(out, "  {line}");
    }
    out.push('\n');
    out
}

fn cost(name: &str, v: f64) -> String {
    if name.contains("byte") {
        if v > 0.0 {
            format!("{:.3} ns/byte ({:.0} MB/s)", v * 1e9, 1e-6 / v)
        } else {
            "0".into()
        }
    } else if v >= 1e-3 {
        format!("{:.1} ms", v * 1e3)
    } else {
        format!("{:.1} us", v * 1e6)
    }
}

fn pct(v: Option<(f64, f64)>) -> String {
    v.map_or_else(
        || "-".into(),
        |(rms, max)| format!("rms {:.1}%, worst {:.1}%", rms * 100.0, max * 100.0),
    )
}

/// The fits for people: costs, errors of the fit and of the base profile, and
/// every observation.
pub fn render_fits(fits: &[PhaseFit], base: &str) -> String {
    let mut out = String::new();
    for f in fits {
        let identified = f.terms.iter().filter(|t| t.identified).count();
        let _ = writeln!(
            out,
            "{} of {} on {}: {} observations of {} distinct layers",
            f.phase,
            f.puller,
            f.filesystem,
            f.residuals.len(),
            f.distinct_layers
        );
        let terms: Vec<String> = f
            .terms
            .iter()
            .map(|t| {
                if t.identified {
                    format!("{} {}", t.name, cost(t.name, t.value))
                } else {
                    format!("{} - (none in these layers)", t.name)
                }
            })
            .collect();
        let _ = writeln!(out, "  {}", terms.join("; "));
        let _ = writeln!(
            out,
            "  fit: {}; base profile {base}: {}",
            pct(f.errors(|r| Some(r.fitted))),
            pct(f.errors(|r| r.base))
        );
        if !f.converged {
            let _ = writeln!(
                out,
                "  the solver did not converge: these costs are its last estimate (costs that move together, as files and directories in real trees, are not separable)"
            );
        }
        if f.distinct_layers < identified {
            let _ = writeln!(
                out,
                "  underdetermined: {} distinct layers for {identified} costs, so this is one fit of many; add images with other shapes",
                f.distinct_layers
            );
        }
        let rows: Vec<Vec<String>> = f
            .residuals
            .iter()
            .map(|r| {
                vec![
                    r.source.clone(),
                    // Start-up and finish are per pull, not per layer.
                    if f.term("per_pull_s").is_some() {
                        "-".into()
                    } else {
                        format!("#{}", r.layer)
                    },
                    format!("{:.3} s", r.measured),
                    format!("{:.3} s", r.fitted),
                    r.base.map_or_else(|| "-".into(), |b| format!("{b:.3} s")),
                ]
            })
            .collect();
        for line in render(&["record", "layer", "measured", "fit", "base"], &rows, 2).lines() {
            let _ = writeln!(out, "  {line}");
        }
        out.push('\n');
    }
    out
}
