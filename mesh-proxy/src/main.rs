//! `mesh`: meshwork's command line.
//!
//! - `mesh validate PATH...` checks Istio networking YAML the way Istio's admission does.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use mesh_config::{ConfigStore, LoadOptions, Severity, load_paths};

#[derive(Debug, Parser)]
#[command(
    name = "mesh",
    version,
    about = "meshwork: Istio traffic management, in your process or as a proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check Istio networking YAML (VirtualService, DestinationRule, Gateway, ServiceEntry,
    /// WorkloadEntry) as Istio would before admitting it.
    #[command(after_help = VALIDATE_HELP)]
    Validate {
        /// Files or directories (directories are searched for *.yaml / *.yml).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Namespace for resources that do not set metadata.namespace.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Print errors only (no warnings, no "unsupported" notes).
        #[arg(short, long)]
        quiet: bool,
        /// Treat warnings as errors (exit 1 when there are any).
        #[arg(long)]
        strict: bool,
    },
}

const VALIDATE_HELP: &str = "\
Each problem prints as one line:
  FILE:LINE: KIND NAMESPACE/NAME: field.path: message
Warnings are prefixed `warning:`; fields meshwork reads but does not act on yet are
prefixed `unsupported:`. Documents of other kinds (Deployments, Services, Gateway API
routes) are skipped.

Exit status: 0 when every resource is valid (warnings allowed), 1 when any resource or
file is invalid, 2 on usage errors (such as a path that does not exist).

Examples:
  mesh validate samples/bookinfo/networking/
  mesh validate -n bookinfo reviews.yaml ratings.yaml";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mesh: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate {
            paths,
            namespace,
            quiet,
            strict,
        } => validate(&paths, namespace, quiet, strict),
    }
}

fn validate(paths: &[PathBuf], namespace: String, quiet: bool, strict: bool) -> Result<ExitCode> {
    for p in paths {
        if !p.exists() {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    let options = LoadOptions {
        default_namespace: namespace,
        ..LoadOptions::default()
    };
    let loaded = load_paths(paths, &options);
    let documents = loaded.resources.len() + loaded.skipped.len();
    let mut store = ConfigStore::default();
    let report = store.apply(loaded);

    for f in &report.failed_files {
        println!("{f}");
    }
    let mut errors = 0;
    let mut warnings = 0;
    for d in &report.diagnostics {
        match d.severity {
            Severity::Error => errors += 1,
            Severity::Warning | Severity::Unsupported => warnings += 1,
        }
        if d.severity == Severity::Error || !quiet {
            println!("{d}");
        }
    }
    let invalid = report.rejected.len() + report.kept_last_good.len();
    eprintln!(
        "{} valid, {invalid} invalid, {} skipped (other kinds); {errors} errors, {warnings} warnings{}",
        store.resources().len(),
        report.skipped.len(),
        if report.failed_files.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable files", report.failed_files.len())
        }
    );
    if documents == 0 && report.failed_files.is_empty() && errors == 0 {
        eprintln!("note: no resources found");
    }
    let failed = errors > 0 || !report.failed_files.is_empty() || (strict && warnings > 0);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
