//! Store management: `cairn images`, `rmi`, `prune`, `du`, `load`.

#[derive(clap::Args, Debug)]
pub struct ImagesArgs {}
#[derive(clap::Args, Debug)]
pub struct RmiArgs {}
#[derive(clap::Args, Debug)]
pub struct PruneArgs {}
#[derive(clap::Args, Debug)]
pub struct DuArgs {}
#[derive(clap::Args, Debug)]
pub struct LoadArgs {}

pub fn images(_a: ImagesArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
pub fn rmi(_a: RmiArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
pub fn prune(_a: PruneArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
pub fn du(_a: DuArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
pub fn load(_a: LoadArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
