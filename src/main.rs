//! `pulltime`: measure and explain OCI image pull time. The work lives in the
//! library; this binary parses arguments, runs, and prints errors.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = cli::run(cli) {
        eprintln!("Error: {e:#}");
        // 128 + SIGINT, as shells report a process stopped by Ctrl-C.
        let code = if pulltime::interrupt::requested() {
            130
        } else {
            1
        };
        std::process::exit(code);
    }
}
