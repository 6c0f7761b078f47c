//! Command-line interface: one file per subcommand.

/// `print!` to [`pulltime::report::stdout::Stdout`]: a closed reader ends the
/// process by SIGPIPE, as it ends `cat`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(pulltime::report::stdout::Stdout, $($arg)*) {
            panic!("failed printing to stdout: {e}");
        }
    }};
}

/// `println!` to [`pulltime::report::stdout::Stdout`].
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(pulltime::report::stdout::Stdout, $($arg)*) {
            panic!("failed printing to stdout: {e}");
        }
    }};
}

mod aggregate;
mod calibrate;
mod calibrate_fit;
mod choices;
mod compare;
mod compare_pullers;
mod demo;
mod diff;
pub mod exit;
mod export;
mod inputs;
pub mod interrupt;
mod limits;
mod model;
mod progress;
mod pull;
mod puller;
mod registry_args;
mod report;
mod serve;
mod simulate;
mod synth;

use clap::{Parser, Subcommand};

/// Measure where an OCI image pull's time goes.
#[derive(Debug, Parser)]
#[command(name = "pulltime", version, about, long_about = None, after_help = exit::EXIT_CODES)]
pub struct Cli {
    /// More log output on stderr (-v: info, -vv: debug). Secrets are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Merge records from many machines into one summary (p50/p95/p99 per phase).
    Aggregate(aggregate::AggregateArgs),
    /// Measure this host (hashing, decompression, extraction) into a host profile.
    Calibrate(calibrate::CalibrateArgs),
    /// Two or more images side by side: sizes, files, layers, pull time per phase,
    /// and a bandwidth sweep.
    Compare(compare::CompareArgs),
    /// The study on one machine: synthesise original and multi-stage images, serve them
    /// as Docker Hub would over a shaped network, pull each cold, compare.
    Demo(demo::DemoArgs),
    /// Compare two pull records phase by phase (criterion-style statistics).
    Diff(diff::DiffArgs),
    /// Pull an image natively and time every layer and phase.
    Pull(pull::PullArgs),
    /// Table, waterfall SVG, CSV and Markdown of a measured or simulated record.
    Report(report::ReportArgs),
    /// Run an embedded OCI registry with network shaping and Docker Hub emulation.
    Serve(serve::ServeArgs),
    /// Predict a pull for networks, hosts, policies and layouts you do not have.
    Simulate(simulate::SimulateArgs),
    /// Build deterministic synthetic images from image layout profiles.
    Synth(synth::SynthArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    init_logging(cli.verbose);
    pulltime::report::table::set_wrap_width(output_width());
    match cli.command {
        Command::Aggregate(args) => aggregate::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Demo(args) => demo::run_demo(args),
        Command::Diff(args) => diff::run(args),
        Command::Pull(args) => pull::run(args),
        Command::Report(args) => report::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Synth(args) => synth::run(args),
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PULLTIME_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("pulltime={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in captured logs.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The width people read this output at: the terminal's when stdout is one,
/// else `$COLUMNS` when set; `None` (piped, for programs): no wrapping.
fn output_width() -> Option<usize> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        // SAFETY: TIOCGWINSZ fills a winsize we own, on stdout's descriptor.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0
            && ws.ws_col > 0
        {
            return Some(ws.ws_col as usize);
        }
        return Some(pulltime::report::table::MAX_WIDTH);
    }
    std::env::var("COLUMNS").ok()?.trim().parse().ok()
}
