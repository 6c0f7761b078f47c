//! The fidelity table's own logic: which networks, and what the report prints.

use super::*;

fn case(measured_s: f64, simulated_s: f64) -> CaseResult {
    CaseResult {
        image: "sn-compose-post-original",
        scale: 0.1,
        network: NETWORKS[3],
        runs: 5,
        measured_s,
        simulated_s,
        calibrations: (0, 1),
        steal: 0.012,
    }
}

#[test]
fn networks_are_chosen_in_order_and_quick_takes_two() {
    let names = |v: Vec<FidelityNetwork>| v.iter().map(|n| n.name).collect::<Vec<_>>();
    assert_eq!(select_networks(&[], false).len(), NETWORKS.len());
    assert_eq!(
        names(select_networks(&["loopback", "home-50m"], false)),
        ["home-50m", "loopback"]
    );
    assert_eq!(
        names(select_networks(&[], true)),
        ["dockerhub-100m", "home-50m"]
    );
    assert_eq!(names(select_networks(&["edge-20m"], true)), ["edge-20m"]);
}

#[test]
fn the_table_has_each_case_and_the_summary() {
    let report = FidelityReport {
        cases: vec![case(0.5, 0.52), case(1.0, 0.8), case(0.25, 0.27)],
        speed: SimulatorSpeed {
            layers: 7,
            per_pull_s: 12.34e-6,
            fleet_s: 0.1234,
        },
        calibrations: vec![],
    };
    assert_eq!(report.within(0.10), 2);
    assert_eq!(
        report.render(),
        "| image | network | policy | measured (median of runs) | simulated | error | CPU stolen |\n\
         |---|---|---|---|---|---|---|\n\
         | sn-compose-post-original (scale 0.1) | lan-1g | pulltime streaming | 0.500 s (5 runs) | 0.520 s | +4.0% | 1.2% |\n\
         | sn-compose-post-original (scale 0.1) | lan-1g | pulltime streaming | 1.000 s (5 runs) | 0.800 s | -20.0% | 1.2% |\n\
         | sn-compose-post-original (scale 0.1) | lan-1g | pulltime streaming | 0.250 s (5 runs) | 0.270 s | +8.0% | 1.2% |\n\
         \n\
         2 of 3 cases within 10%; median error 8.0%, worst 20.0%\n\
         one simulated pull of a 7-layer image, record included: 12.3 us\n\
         a 10,000-node burst of the same image (10 Gbit/s egress, 2 s spread): 0.123 s\n"
    );
}
