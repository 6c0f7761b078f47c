//! The model's commands end to end: calibrate, simulate, report and compare.

mod simulate;
