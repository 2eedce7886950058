//! `cairn pull`, `push`, `tag`, `login`, `logout`, and the registry flags `build` shares.

use std::io::Read;
use std::sync::Arc;

use anyhow::{bail, Context};
use cairn_ir::Platform;
use cairn_runtime::registry::Registry;
use cairn_runtime::store::{self, Store};

/// Registry flags of every command that talks to a registry.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// A registry (`HOST[:PORT]`) that may be reached over plain HTTP or unverified TLS;
    /// repeatable. Registries are also configured in `$CAIRN_REGISTRIES_CONFIG`,
    /// `~/.config/cairn/registries.json` or `/etc/cairn/registries.json`
    /// (`{"insecure": ["HOST"], "mirrors": {"docker.io": ["HOST"]}}`); credentials come
    /// from docker's `config.json` (`$DOCKER_CONFIG`, `~/.docker`)
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
}

impl RegistryArgs {
    pub fn registry(&self) -> anyhow::Result<Arc<Registry>> {
        Ok(Arc::new(Registry::from_env(&self.insecure).context("Cannot set up the registry client")?))
    }
}

fn open_store() -> anyhow::Result<Arc<Store>> {
    let root = store::default_root();
    let s = Store::open(&root).with_context(|| format!("Cannot open the store at `{}`", root.display()))?;
    Ok(Arc::new(s))
}

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// The image to pull (`debian:bookworm`, `host:5000/x@sha256:…`)
    pub reference: String,
    /// The platform to pull from a multi-platform image (default: this machine's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Stores the image's manifest and config; layers download when a build needs them.
pub fn pull(a: PullArgs) -> anyhow::Result<()> {
    let platform = match &a.platform {
        None => Platform::host(),
        Some(p) => Platform::parse(p).with_context(|| format!("Invalid `--platform {p}`"))?,
    };
    let st = open_store()?;
    let r = a.registry.registry()?;
    st.set_fetcher(r.clone());
    let pulled = r.pull(&st, &a.reference, &platform).with_context(|| format!("Cannot pull `{}`", a.reference))?;
    println!("{}", pulled.pinned);
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// The image in the local store (`name[:tag]`)
    pub image: String,
    /// Where to push it (default: the same name)
    pub destination: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Uploads what the registry lacks, then the manifest; prints the pushed digest.
pub fn push(a: PushArgs) -> anyhow::Result<()> {
    let st = open_store()?;
    let rec = st
        .get_image(&a.image)
        .map_err(anyhow::Error::from)?
        .with_context(|| format!("Image `{}` is not in the local store", a.image))?;
    let dest = a.destination.as_deref().unwrap_or(&a.image);
    let r = a.registry.registry()?;
    st.set_fetcher(r.clone());
    let d = r.push(&st, &rec, dest, &|line| eprintln!("{line}")).with_context(|| format!("Cannot push `{dest}`"))?;
    println!("{dest}@{d}");
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct TagArgs {
    /// An image in the local store
    pub source: String,
    /// The new name (`name[:tag]`)
    pub target: String,
}

pub fn tag(a: TagArgs) -> anyhow::Result<()> {
    let st = open_store()?;
    let rec = st
        .get_image(&a.source)
        .map_err(anyhow::Error::from)?
        .with_context(|| format!("Image `{}` is not in the local store", a.source))?;
    st.tag_image(&a.target, &rec).map_err(anyhow::Error::from)?;
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The registry (`HOST[:PORT]`; default: Docker Hub)
    pub server: Option<String>,
    #[arg(short = 'u', long = "username")]
    pub username: String,
    /// The password (prefer `--password-stdin`: arguments are visible to other users)
    #[arg(short = 'p', long = "password")]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Checks the credentials against the registry, then stores them as docker does.
pub fn login(a: LoginArgs) -> anyhow::Result<()> {
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => bail!("`--password` and `--password-stdin` cannot be used together"),
        (Some(p), false) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("Cannot read the password from stdin")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("Give the password with `--password-stdin` (or `--password`)"),
    };
    let server = a.server.unwrap_or_else(|| cairn_runtime::registry::DOCKER_HUB.to_string());
    let r = a.registry.registry()?;
    r.client().login(&server, &a.username, &password).with_context(|| format!("Cannot log in to `{server}`"))?;
    eprintln!("Login Succeeded");
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub)
    pub server: Option<String>,
}

pub fn logout(a: LogoutArgs) -> anyhow::Result<()> {
    let server = a.server.unwrap_or_else(|| cairn_runtime::registry::DOCKER_HUB.to_string());
    let r = Registry::from_env(&[]).context("Cannot set up the registry client")?;
    if r.client().logout(&server).with_context(|| format!("Cannot log out of `{server}`"))? {
        eprintln!("Removing login credentials for {server}");
    } else {
        eprintln!("Not logged in to {server}");
    }
    Ok(())
}
