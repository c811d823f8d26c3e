//! `mesh validate`: Istio networking YAML checked as Istio's admission would, every problem on one
//! line (or as one JSON object), and a summary. With `--kubernetes`, the cluster's resources too:
//! one list of each kind (no watch), each object decoded and validated alone; a problem in an
//! object read from the API server prints as `KIND NAMESPACE/NAME: field.path: message` (no
//! file, no line).

use std::io::Write;

use mesh_config::{ConfigStore, LoadOptions, Severity, load_paths};

use super::{Error, Outcome, UsageError, ValidateArgs};

/// Check the files `args` names; the problems go to `out` (text or JSON), the summary to `err`.
/// [`Outcome::Invalid`] when a resource or a file is invalid (or, with `--strict`, any warning).
pub fn validate(args: &ValidateArgs, out: &mut impl Write, err: &mut impl Write) -> Result<Outcome, Error> {
    let ValidateArgs { paths, kube, namespace, quiet, strict, output, status, gateway_class } = args;
    let (quiet, strict, json) = (*quiet, *strict, output == "json");
    for p in paths {
        if !p.exists() {
            return Err(UsageError::NoSuchPath(p.clone()).into());
        }
    }
    let options = LoadOptions { default_namespace: namespace.clone(), ..LoadOptions::default() };
    let loaded = if kube.kubernetes {
        let mut sources = mesh_config::store::Sources::new();
        sources.set_files(load_paths(paths, &options));
        for note in list_cluster(kube, &mut sources)? {
            writeln!(err, "note: {note}")?;
        }
        sources.merged()
    } else {
        load_paths(paths, &options)
    };
    let documents = loaded.resources.len() + loaded.skipped.len();
    let mut store = ConfigStore::new(mesh_config::CompileOptions {
        gateway_class: gateway_class.clone(),
        ..mesh_config::CompileOptions::default()
    });
    let report = store.apply(loaded);

    if !json {
        for f in &report.failed_files {
            writeln!(out, "{f}")?;
        }
    }
    let mut errors = 0;
    let mut warnings = 0;
    let mut shown = Vec::new();
    for d in &report.diagnostics {
        match d.severity {
            Severity::Error => errors += 1,
            Severity::Warning | Severity::Unsupported => warnings += 1,
        }
        if d.severity == Severity::Error || !quiet {
            shown.push(d);
        }
    }
    let failed = errors > 0 || !report.failed_files.is_empty() || (strict && warnings > 0);
    if json {
        let mut diagnostics: Vec<DiagnosticJson<'_>> =
            report.failed_files.iter().map(DiagnosticJson::of_file).collect();
        diagnostics.extend(shown.iter().map(|d| DiagnosticJson::of(d)));
        let gateway_api = status.then(|| store.compiled_gateway_api());
        writeln!(out, "{}", serde_json::to_string_pretty(&ValidateJson { valid: !failed, diagnostics, gateway_api })?)?;
    } else {
        for d in shown {
            writeln!(out, "{}", mesh_config::store::diagnostic_line(d))?;
        }
        if *status {
            status_lines(store.compiled_gateway_api(), out)?;
        }
    }
    out.flush()?;
    let invalid = report.rejected.len() + report.kept_last_good.len();
    writeln!(
        err,
        "{} valid, {invalid} invalid, {} skipped (other kinds); {errors} errors, {warnings} warnings{}",
        store.resources().len(),
        report.skipped.len(),
        if report.failed_files.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable files", report.failed_files.len())
        }
    )?;
    if documents == 0 && report.failed_files.is_empty() && errors == 0 {
        writeln!(err, "note: no resources found")?;
    }
    Ok(if failed { Outcome::Invalid } else { Outcome::Success })
}

/// The Gateway API status as text: one line per Gateway, listener and route parent.
fn status_lines(status: &mesh_config::gateway_api::Status, out: &mut impl Write) -> Result<(), Error> {
    let conditions = |c: &[mesh_config::gateway_api::Condition]| {
        c.iter().map(|c| format!("{}={} ({})", c.kind, c.status, c.reason)).collect::<Vec<_>>().join(", ")
    };
    for g in &status.gateways {
        writeln!(out, "Gateway {}/{}: {}", g.namespace, g.name, conditions(&g.conditions))?;
        for l in &g.listeners {
            writeln!(
                out,
                "  listener {}: attachedRoutes={}, {}",
                l.name,
                l.attached_routes,
                conditions(&l.conditions)
            )?;
        }
    }
    for r in &status.routes {
        for p in &r.parents {
            let section = p.parent_ref.section_name.as_deref().map(|s| format!(" section {s}")).unwrap_or_default();
            writeln!(
                out,
                "{} {}/{} -> {} {}/{}{section}: {}",
                r.kind,
                r.namespace,
                r.name,
                p.parent_ref.kind,
                p.parent_ref.namespace,
                p.parent_ref.name,
                conditions(&p.conditions)
            )?;
        }
    }
    Ok(())
}

/// List the cluster once into `sources`; notes on kinds that could not be read (optional
/// ones, forbidden or not served).
#[cfg(feature = "kubernetes")]
fn list_cluster(kube: &super::KubernetesArgs, sources: &mut mesh_config::store::Sources) -> Result<Vec<String>, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let options = mesh_kube::WatchOptions { namespaces: kube.watch_namespaces.clone(), ..Default::default() };
    let (events, notes) = runtime.block_on(async {
        let client = mesh_kube::client(kube.kubeconfig.as_deref()).await?;
        mesh_kube::list_once(&client, &options).await
    })?;
    for event in events {
        sources.apply(event);
    }
    Ok(notes)
}

#[cfg(not(feature = "kubernetes"))]
fn list_cluster(_: &super::KubernetesArgs, _: &mut mesh_config::store::Sources) -> Result<Vec<String>, Error> {
    Err(UsageError::KubernetesDisabled.into())
}

/// `mesh validate -o json`: the whole answer, for scripts.
#[derive(serde::Serialize)]
struct ValidateJson<'a> {
    valid: bool,
    diagnostics: Vec<DiagnosticJson<'a>>,
    /// With `--status`: the keys `gateways` and `routes`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    gateway_api: Option<&'a mesh_config::gateway_api::Status>,
}

/// One problem in `mesh validate -o json` (every key present, null when unknown).
#[derive(serde::Serialize)]
struct DiagnosticJson<'a> {
    severity: &'static str,
    code: Option<&'static str>,
    file: Option<&'a str>,
    line: Option<u32>,
    kind: Option<&'a str>,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    path: &'a str,
    message: String,
}

impl<'a> DiagnosticJson<'a> {
    fn of(d: &'a mesh_config::Diagnostic) -> Self {
        let r = d.resource.as_ref();
        DiagnosticJson {
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Unsupported => "unsupported",
            },
            code: d.code.map(|c| c.as_str()),
            file: d.file.as_deref(),
            line: Some(d.line),
            kind: r.map(|r| &*r.kind),
            namespace: r.map(|r| &*r.namespace),
            name: r.map(|r| &*r.name),
            path: &d.path,
            message: d.message.clone(),
        }
    }

    /// A file that could not be read or parsed: an error with no resource.
    fn of_file(e: &'a mesh_config::LoadError) -> Self {
        let (line, message) = match e {
            mesh_config::LoadError::Io { message, .. } => (None, message.clone()),
            mesh_config::LoadError::Yaml { error, .. } => {
                (Some(error.line), format!("not valid YAML: {}", error.message))
            }
        };
        DiagnosticJson {
            severity: "error",
            code: None,
            file: Some(e.file()),
            line,
            kind: None,
            namespace: None,
            name: None,
            path: "",
            message,
        }
    }
}
