//! `cairn plan`: the optimized graph of a build before it runs, each step predicted cached
//! or run from the store (its cache index and the last build of each step, as `--explain`
//! says why), as text, or as a Graphviz picture (`--format dot`, `-o FILE.svg`).
//!
//! The prediction is the build's own solve in a dry-run mode (`solve::dry_run`): keys are
//! computed as the build computes them, so a predicted hit is a hit; once a step is
//! predicted to run, the steps after it are too (their keys depend on its result).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use cairn_runtime::solve::record::StepRecord;

use super::frontend::{self, parse_build_args, parse_build_context, ContextSpec, FrontendArgs, StoreResolver};

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub frontend: FrontendArgs,
    /// Predict as `cairn build --no-cache` would run
    #[arg(long)]
    pub no_cache: bool,
    /// `text` (the default), `json` or `dot` (with `-o FILE.svg|.png|.pdf`: rendered by Graphviz)
    #[arg(long, default_value = "text", value_parser = ["text", "json", "dot"])]
    pub format: String,
    /// Write to FILE instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(a: PlanArgs) -> anyhow::Result<()> {
    let fe = &a.frontend;
    let dockerfile = fe.dockerfile();
    let named = fe.build_contexts.iter().map(|c| parse_build_context(c)).collect::<anyhow::Result<Vec<_>>>()?;
    let build_args = parse_build_args(&fe.build_args, |k| std::env::var(k).ok())?;
    let platforms = frontend::parse_platforms(fe.platform.as_deref())?;
    let platform = platforms.first().cloned().unwrap_or_else(cairn_ir::Platform::host);
    let input = frontend::FrontendInput::from_args(fe, &dockerfile, &build_args, vec![platform.clone()], &named);
    let st = Arc::new(super::inspect::open()?);
    let resolver = StoreResolver::new(st.clone(), None, false);
    let compiled = frontend::compile(&input, &resolver)?;
    let def = cairn_compiler::passes::optimize(&compiled.graph).to_definition();
    let mut contexts = HashMap::new();
    contexts.insert("context".to_string(), fe.context.clone());
    for (name, spec) in &named {
        if let ContextSpec::Dir(d) = spec {
            contexts.insert(name.clone(), d.clone());
        }
    }
    let steps = cairn_runtime::build::plan(&st, &def, &platform, contexts, a.no_cache)?;
    let bytes = match a.format.as_str() {
        "json" => format!("{}\n", serde_json::to_string_pretty(&steps)?).into_bytes(),
        "dot" => super::compile::dot_output(dot(&def, &steps), a.output.as_deref())?,
        _ => text(&platform, &steps).into_bytes(),
    };
    match &a.output {
        Some(path) => cairn_runtime::output::write_file(path, &bytes).map_err(anyhow::Error::from),
        None => std::io::stdout().write_all(&bytes).context("Cannot write to stdout"),
    }
}

/// One line per step, `CACHED` or `RUN`, and the reasons of each step predicted to run.
pub fn text(platform: &cairn_ir::Platform, steps: &[StepRecord]) -> String {
    let runs = steps.iter().filter(|s| !s.cached).count();
    let mut out = format!("Plan for {platform}: {runs} of {} steps would run\n", steps.len());
    for s in steps {
        let _ = writeln!(out, "{:<7}{}", if s.cached { "CACHED" } else { "RUN" }, s.name);
        for r in &s.reasons {
            let _ = writeln!(out, "         {r}");
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The Definition's vertices as a graph: steps filled by their prediction (green cached,
/// orange run, with the first reason), other vertices (contexts, merges) grey.
pub fn dot(def: &cairn_ir::Definition, steps: &[StepRecord]) -> String {
    let by_vertex: HashMap<usize, &StepRecord> = steps.iter().map(|s| (s.vertex, s)).collect();
    let mut out = String::from("digraph plan {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\", fontsize=10];\n");
    for (i, v) in def.vertices.iter().enumerate() {
        let (label, color, class) = match by_vertex.get(&i) {
            Some(s) if s.cached => (format!("{}\\nCACHED", esc(&s.name)), "#b7e1b0", "cached"),
            Some(s) => {
                let why = s.reasons.first().map(|r| format!("\\n{}", esc(r))).unwrap_or_default();
                (format!("{}\\nRUN{why}", esc(&s.name)), "#f7c58f", "run")
            }
            None => {
                let name = if v.meta.description.is_empty() { v.vertex.op.kind() } else { v.meta.description.as_str() };
                (esc(name), "#e0e0e0", "other")
            }
        };
        let _ = writeln!(out, "  v{i} [label=\"{label}\", fillcolor=\"{color}\", class=\"{class}\"];");
    }
    let index: HashMap<_, _> = def.vertices.iter().enumerate().map(|(i, v)| (v.digest, i)).collect();
    for (i, v) in def.vertices.iter().enumerate() {
        for inp in &v.vertex.inputs {
            if let Some(j) = index.get(&inp.digest) {
                let _ = writeln!(out, "  v{j} -> v{i};");
            }
        }
    }
    out.push_str("}\n");
    out
}

/// Fails clearly when a flag cannot apply.
pub fn check(a: &PlanArgs) -> anyhow::Result<()> {
    if a.frontend.file.as_deref() == Some(std::path::Path::new("-")) {
        bail!("`cairn plan` reads the Dockerfile from a file: `-f -` is not supported");
    }
    Ok(())
}
