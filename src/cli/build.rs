//! `cairn build`: compile (or load `--ir`), execute with the runtime, export.

#[derive(clap::Args, Debug)]
pub struct BuildArgs {}

pub fn run(_args: BuildArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cairn build` is not implemented yet")
}
