//! The model's commands end to end: calibrate, simulate, report and compare.

mod calibrate_fit;
mod simulate;
