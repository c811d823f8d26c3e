//! The `mesh` command line as a library: its arguments ([`Cli`], clap types) and what each
//! subcommand does, so that the binary is a thin shell (parse, set up logging, [`run`], exit
//! status) and another binary can run the same commands.
//!
//! - [`validate()`]: `mesh validate`, Istio's admission checks over files and directories.
//! - [`explain()`]: `mesh explain`, what the configuration does with one request;
//!   [`explain_inbound()`]: `mesh explain --inbound`, one request arriving at a workload.
//! - [`proxy()`] / [`serve_proxy`]: `mesh proxy`, the configuration source, listeners, admin
//!   server, reloads and signals wired together.
//!
//! What a command prints for its user goes to the writers it is given (the binary passes
//! standard output and standard error); logs go through `tracing`. Failures are [`Error`]s,
//! an invalid configuration is [`Outcome::Invalid`]:
//!
//! ```no_run
//! use clap::Parser;
//! use mesh_proxy::app::{self, Cli, Outcome};
//!
//! let cli = Cli::parse_from(["mesh", "validate", "istio/"]);
//! match app::run(cli.command, std::io::stdout(), std::io::stderr()) {
//!     Ok(Outcome::Success) => {}
//!     Ok(Outcome::Invalid) => eprintln!("invalid configuration"),
//!     Err(e) => eprintln!("mesh: {e}"),
//! }
//! ```

mod cli;
mod error;
mod explain;
mod explain_inbound;
mod proxy;
mod validate;

use std::io::Write;

pub use cli::{
    Cli, Command, ExplainArgs, InboundExplainArgs, KubernetesArgs, MeshSettings, ProxyArgs, ValidateArgs, WorkloadArgs,
};
pub use error::{Error, UsageError};
pub use explain::explain;
pub use explain_inbound::{explain_inbound, inbound_json};
pub use proxy::{DEFAULT_LISTEN, proxy, runtime, serve_proxy};
pub use validate::validate;

/// How a command that did its work ended (`mesh` exits with 0 or 1; with 2 on an [`Error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done: the configuration is valid (warnings allowed), explained, or served until stopped.
    Success,
    /// `mesh validate` found an invalid resource or file (or, with `--strict`, a warning).
    Invalid,
}

/// Run `command` as `mesh` does: `mesh proxy` on a runtime of its own ([`proxy()`]), until
/// SIGTERM or Ctrl-C. What the command prints for its user goes to `out` (results, `listening
/// on` lines) and `err` (summaries, configuration problems).
pub fn run(command: Command, mut out: impl Write, mut err: impl Write) -> Result<Outcome, Error> {
    match command {
        Command::Validate(args) => validate(&args, &mut out, &mut err),
        Command::Explain(args) if args.inbound.inbound => explain_inbound(&args, &mut out, &mut err),
        Command::Explain(args) => explain(&args, &mut out, &mut err).map(|()| Outcome::Success),
        Command::Proxy(args) => proxy(args, out).map(|()| Outcome::Success),
    }
}
