//! How close is the simulator to measured pulls? For synthetic images and network
//! profiles, pull each image cold from `pulltime serve` with the profile (median of
//! several runs) and simulate the same image, network and policy with this host's
//! calibrated profile; print measured, simulated and the error.
//!
//! Run: `cargo bench --bench fidelity` (release build; `-- lan-1g loopback` for
//! some networks only, `-- --dest-dir DIR` to extract elsewhere). On tmpfs it
//! calibrates (`pulltime calibrate` on the same directory) before the first
//! network and after each network's pulls, and simulates each case with the two
//! calibrations that bracket its pulls (the mean of both predictions: this shared
//! machine's speed drifts from minute to minute); on a disk it measures
//! everything first and calibrates once at the end (nothing may be deleted before
//! the pulls). The images of a network are pulled in turn, run by run, so a burst
//! of load falls on all of them, and the table shows the share of CPU time the
//! hypervisor stole during each case's pulls. docs/model.md quotes its table.
//!
//! Pulls extract to tmpfs (`/dev/shm`) unless told otherwise: on this project's
//! ext4 without a journal, what a file costs to create depends on what was deleted
//! in the minutes before (and writeback of earlier pulls), which no calibration
//! taken at another moment can know; tmpfs keeps the host's costs steady so the
//! table measures the model. Fast networks pull the images at five times the scale
//! of slow ones, so that a pull lasts long enough (0.2-1 s) to time on a shared
//! machine.
//!
//! The measurement is `pulltime::calibrate::fidelity`; this program only reads its
//! arguments and prints the report.

use std::path::PathBuf;

use pulltime::calibrate::fidelity::{
    FidelityOptions, NETWORKS, default_dest_dir, run, select_networks,
};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let dest_dir = args
        .iter()
        .position(|a| a == "--dest-dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(default_dest_dir);
    // `cargo bench --bench fidelity -- lan-1g loopback` measures only those.
    let only: Vec<&str> = NETWORKS
        .iter()
        .map(|n| n.name)
        .filter(|n| args.iter().any(|a| a == n))
        .collect();
    let report = run(&FidelityOptions {
        dest_dir,
        networks: select_networks(&only, quick),
    })?;
    print!("{}", report.render());
    Ok(())
}
