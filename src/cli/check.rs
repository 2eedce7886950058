//! `cairn check [--repair]`: verify every blob and packed layer of the store against its
//! digest (see `cairn_runtime::image::check_store` for what is verified when).

use anyhow::bail;
use cairn_runtime::image::check_store;
use cairn_runtime::store::{default_root, Store};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Drop damaged blobs and layers, so the next build makes them again
    #[arg(long)]
    pub repair: bool,
}

/// Prints one line per damaged entry and a summary; fails (exit 1) when something is
/// damaged and was not repaired.
pub fn run(a: CheckArgs) -> anyhow::Result<()> {
    let root = default_root();
    let store =
        Store::open(&root).map_err(|e| anyhow::anyhow!("Cannot open the store at `{}`: {e}", root.display()))?;
    let r = check_store(&store, a.repair).map_err(|e| anyhow::anyhow!("Cannot check the store: {e}"))?;
    for d in &r.damaged {
        println!("damaged: {d}");
    }
    for d in &r.repaired {
        println!("repaired: {d}");
    }
    println!(
        "{} blobs and {} layers checked ({} layers never packed, nothing to compare with): {} damaged",
        r.blobs_checked,
        r.layers_checked,
        r.layers_unverified,
        r.damaged.len()
    );
    if !r.damaged.is_empty() && !a.repair {
        bail!("The store has {} damaged entries: run `cairn check --repair`, then build again", r.damaged.len());
    }
    Ok(())
}
