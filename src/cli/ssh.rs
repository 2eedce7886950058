//! `--ssh default|ID[=SOCKET|KEYFILE[,KEYFILE]]`: SSH agents for `RUN --mount=type=ssh`,
//! as buildx spells the flag. A socket is used as it is (`default` alone means
//! `$SSH_AUTH_SOCK`); key files are loaded into an `ssh-agent` cairn starts for the build
//! and stops when the build ends.

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct SshArgs {
    /// An SSH agent for `RUN --mount=type=ssh`: `default` (`$SSH_AUTH_SOCK`), `ID=SOCKET`,
    /// or `ID=KEYFILE[,KEYFILE]` (loaded into an agent started for the build); repeatable
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET|KEYFILE]")]
    pub ssh: Vec<String>,
}

/// The agents of one build; agents cairn started are stopped on drop.
#[derive(Default)]
pub struct Agents {
    pub sockets: BTreeMap<String, PathBuf>,
    started: Vec<(Child, PathBuf)>,
}

impl Drop for Agents {
    fn drop(&mut self) {
        for (child, dir) in &mut self.started {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn is_socket(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

impl SshArgs {
    pub fn agents(&self) -> anyhow::Result<Agents> {
        let mut out = Agents::default();
        for spec in &self.ssh {
            let (id, value) = match spec.split_once('=') {
                Some((id, v)) => (id.to_string(), Some(v.to_string())),
                None => (spec.clone(), None),
            };
            if id.is_empty() {
                bail!("Invalid `--ssh {spec}`: the id is empty");
            }
            let paths: Vec<PathBuf> = match value {
                Some(v) => v.split(',').map(PathBuf::from).collect(),
                None => {
                    let sock = std::env::var_os("SSH_AUTH_SOCK").with_context(|| {
                        format!("`--ssh {spec}`: SSH_AUTH_SOCK is not set (give `--ssh {id}=SOCKET|KEYFILE`)")
                    })?;
                    vec![PathBuf::from(sock)]
                }
            };
            let socket = if paths.len() == 1 && is_socket(&paths[0]) {
                paths[0].clone()
            } else {
                for p in &paths {
                    if !p.is_file() {
                        bail!("`--ssh {spec}`: `{}` is neither an agent socket nor a key file", p.display());
                    }
                }
                out.start_agent(spec, &paths)?
            };
            out.sockets.insert(id, socket);
        }
        Ok(out)
    }
}

impl Agents {
    /// Starts `ssh-agent` on a private socket and adds `keys` to it.
    fn start_agent(&mut self, spec: &str, keys: &[PathBuf]) -> anyhow::Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!("cairn-ssh-{}-{}", std::process::id(), self.started.len()));
        std::fs::create_dir_all(&dir).with_context(|| format!("Cannot create `{}`", dir.display()))?;
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("`--ssh {spec}`: cannot start `ssh-agent` (install Debian's `openssh-client`)"))?;
        self.started.push((child, dir));
        let start = std::time::Instant::now();
        while !is_socket(&sock) {
            if start.elapsed() > std::time::Duration::from_secs(10) {
                bail!("`--ssh {spec}`: `ssh-agent` did not create its socket");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for k in keys {
            let out = Command::new("ssh-add")
                .arg(k)
                .env("SSH_AUTH_SOCK", &sock)
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("`--ssh {spec}`: cannot run `ssh-add`"))?;
            if !out.status.success() {
                bail!(
                    "`--ssh {spec}`: cannot load `{}` into the agent: {}",
                    k.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        Ok(sock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let a = SshArgs { ssh: vec!["=x".into()] };
        assert!(a.agents().err().unwrap().to_string().contains("the id is empty"));
        let a = SshArgs { ssh: vec!["k=/definitely/not/here".into()] };
        assert!(a.agents().err().unwrap().to_string().contains("neither an agent socket nor a key file"));
        assert!(SshArgs::default().agents().unwrap().sockets.is_empty());
    }
}
