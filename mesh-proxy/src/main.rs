//! `mesh`: meshwork's command line.
//!
//! - `mesh validate PATH...` checks Istio networking YAML the way Istio's admission does.
//! - `mesh explain -f PATH... URL` says what that configuration does with one request.
//! - `mesh proxy -f PATH... --listen ADDR [--admin ADDR] [--gateway NS/NAME]` runs the same layers
//!   as a standalone proxy (a client's outbound proxy, or a Gateway).
//!
//! The commands are [`mesh_proxy::app`]; this shell parses the arguments, sets up logging and
//! turns the outcome into the exit status (0, 1 when `mesh validate` finds the configuration
//! invalid, 2 on an error).

use std::process::ExitCode;

use clap::Parser;
use mesh_proxy::app::{self, Cli, Command, Outcome};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The proxy logs meshwork's events at info; the per-request span (`meshwork::request`) stays
    // off unless RUST_LOG asks for it: a formatting subscriber renders every enabled span's fields
    // for each request (~5,000 instructions, a third of what the whole mesh adds per request).
    let default_filter =
        if matches!(cli.command, Command::Proxy(_)) { "meshwork=info,meshwork::request=warn" } else { "off" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colours only for a terminal: logs redirected to a file or a collector stay plain text.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match app::run(cli.command, std::io::stdout(), std::io::stderr()) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Invalid) => ExitCode::from(1),
        Err(e) => {
            // The error and its sources on one line, as `mesh: ERROR: SOURCE`.
            eprintln!("mesh: {:#}", anyhow::Error::new(e));
            ExitCode::from(2)
        }
    }
}
