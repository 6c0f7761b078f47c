//! `pulltime`: measure and explain OCI image pull time. The work lives in the
//! library; this binary parses arguments, runs, and prints errors.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = cli::run(cli) {
        eprintln!("Error: {}", message(&e));
        // 128 + SIGINT, as shells report a process stopped by Ctrl-C.
        let code = if e.downcast_ref::<cli::interrupt::Interrupted>().is_some() {
            130
        } else {
            1
        };
        std::process::exit(code);
    }
}

/// The error and its causes, each cause once: library errors often quote their
/// cause in their own message already, so a cause whose text the message before it
/// contains is not repeated.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut previous = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !previous.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        previous = text;
    }
    out
}
