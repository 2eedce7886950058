//! `cairn compile`: Dockerfile → AST or IR, printed as text, JSON, MessagePack or dot.

#[derive(clap::Args, Debug)]
pub struct CompileArgs {}

pub fn run(_args: CompileArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cairn compile` is not implemented yet")
}
