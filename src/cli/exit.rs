//! Exit statuses, for scripts and CI: what each one means is in `--help` and in
//! the README.

/// Printed at the end of `pulltime --help`.
pub const EXIT_CODES: &str = "\
Exit status:
  0    success
  1    failure (unreachable registry, bad image, I/O, ...)
  2    usage: bad arguments or input files
  3    regression: --fail-on-regression found one
  130  interrupted (Ctrl-C); completed runs are kept";

/// The command was used wrongly (a flag that does not apply, a bad value, a
/// missing input file): exit 2, as clap does for what it checks itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A gated comparison found a regression: exit 3, so that CI can tell it from
/// a failure to measure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Regressed(pub String);

/// `Err(Usage(format!(...)))`.
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err($crate::cli::exit::Usage(format!($($arg)*)).into())
    };
}
pub(crate) use usage;

/// The exit status for an error.
pub fn code(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<super::interrupt::Interrupted>().is_some() {
        130
    } else if e.downcast_ref::<Regressed>().is_some() {
        3
    } else if e.downcast_ref::<Usage>().is_some() {
        2
    } else {
        1
    }
}
