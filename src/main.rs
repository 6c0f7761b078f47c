//! `pulltime`: measure and explain OCI image pull time. The work lives in the
//! library; this binary parses arguments, runs, and prints errors.

mod cli;

use clap::Parser;

fn main() {
    // SIGPIPE stays ignored (a closed socket must not kill a pull); stdout's
    // closed reader is handled by pulltime::report::stdout.
    let cli = cli::Cli::parse();
    if let Err(e) = cli::run(cli) {
        eprintln!("Error: {}", message(&e));
        std::process::exit(cli::exit::code(&e));
    }
}

/// The error and its causes, joined as `what failed: why: why`. Each error's text
/// says what failed in its own words and leaves its cause to `source()`.
fn message(e: &anyhow::Error) -> String {
    e.chain()
        .map(|cause| cause.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
