//! `cairn compile`: Dockerfile → AST or IR, printed as text, JSON, MessagePack or dot.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use cairn_compiler::{passes, render};

use super::frontend::{self, parse_build_args, parse_build_context, FrontendArgs};

#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    #[command(flatten)]
    pub frontend: FrontendArgs,
    /// What to print: the parsed `ast` or the compiled `ir`
    #[arg(long, default_value = "ir", value_parser = ["ast", "ir"])]
    pub emit: String,
    /// Output format: text, json, msgpack (IR only) or dot (IR only)
    #[arg(long, default_value = "text", value_parser = ["text", "json", "msgpack", "dot"])]
    pub format: String,
    /// Show the IR as lowered, before the optimizer passes
    #[arg(long = "no-optimize")]
    pub no_optimize: bool,
    /// Write to FILE instead of stdout (dot: `.svg`, `.png` or `.pdf` renders with Graphviz)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(a: CompileArgs) -> anyhow::Result<()> {
    let fe = &a.frontend;
    let dockerfile = fe.dockerfile();
    let bytes: Vec<u8> = if a.emit == "ast" {
        let text = frontend::read_dockerfile(&dockerfile)?;
        let df = cairn_grammar::parse(&dockerfile.display().to_string(), &text).map_err(|e| anyhow::anyhow!("{e}"))?;
        match a.format.as_str() {
            "json" => {
                let mut s = serde_json::to_string_pretty(&cairn_grammar::json::to_json(&df))?;
                s.push('\n');
                s.into_bytes()
            }
            "text" => format!("{df:#?}\n").into_bytes(),
            f => bail!("`--emit ast` supports `--format json` or `text`, not `{f}`"),
        }
    } else {
        let named = fe.build_contexts.iter().map(|c| parse_build_context(c)).collect::<anyhow::Result<Vec<_>>>()?;
        let build_args = parse_build_args(&fe.build_args, |k| std::env::var(k).ok())?;
        let platforms = frontend::parse_platforms(fe.platform.as_deref())?;
        let input = frontend::FrontendInput::from_args(fe, &dockerfile, &build_args, platforms, &named);
        let resolver = frontend::resolver();
        let compiled = frontend::compile(&input, &*resolver)?;
        for w in &compiled.warnings {
            eprintln!("warning: {w}");
        }
        let graph = if a.no_optimize { compiled.graph } else { passes::optimize(&compiled.graph) };
        match a.format.as_str() {
            "text" => render::text(&graph).into_bytes(),
            "json" => {
                let mut s = serde_json::to_string_pretty(&graph.to_definition())?;
                s.push('\n');
                s.into_bytes()
            }
            "msgpack" => cairn_ir::encode_definition(&graph.to_definition()),
            "dot" => dot_output(render::dot(&graph), a.output.as_deref())?,
            f => bail!("unknown format `{f}`"),
        }
    };
    match &a.output {
        Some(path) => cairn_runtime::output::write_file(path, &bytes).map_err(anyhow::Error::from),
        None => {
            if a.format == "msgpack" && is_terminal() {
                bail!("Refusing to write MessagePack to a terminal: use `-o FILE`");
            }
            std::io::stdout().write_all(&bytes).context("Cannot write to stdout")
        }
    }
}

fn is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}

/// Dot source as is, or rendered by Graphviz when `output` ends in `.svg`, `.png` or `.pdf`.
pub(crate) fn dot_output(src: String, output: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    match output.and_then(|o| o.extension()).and_then(|e| e.to_str()) {
        Some(ext @ ("svg" | "png" | "pdf")) => graphviz(&src, ext),
        _ => Ok(src.into_bytes()),
    }
}

/// Renders dot source with Graphviz's `dot -T<ext>`.
fn graphviz(src: &str, ext: &str) -> anyhow::Result<Vec<u8>> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("dot")
        .arg(format!("-T{ext}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("Cannot run Graphviz `dot` (install the `graphviz` package, or use `--format dot` without an image extension)")?;
    child.stdin.take().expect("piped").write_all(src.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("`dot -T{ext}` failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.stdout)
}
