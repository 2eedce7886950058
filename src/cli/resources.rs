//! The flags that set what every RUN step may use and see: `--ulimit`, `--shm-size`,
//! `--add-host`, `--cgroup-parent` (as buildx spells them), and cairn's `--pids-limit` and
//! `--memory`.

use anyhow::{bail, Context};
use cairn_runtime::process::{StepResources, Ulimit};

/// Default most processes and threads of one step: a fork bomb stops there.
pub const DEFAULT_PIDS_LIMIT: u64 = 16384;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ResourceArgs {
    /// A resource limit of RUN steps, `NAME=SOFT[:HARD]` (`nofile=1024:2048`, `core=0`,
    /// `nproc`, `memlock`, `stack`…; `-1` is unlimited); repeatable
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
    /// Size of `/dev/shm` in RUN steps (`64m`, `1g`, bytes; default 64m)
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// An `/etc/hosts` entry for RUN steps, `HOST:IP`; repeatable
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_hosts: Vec<String>,
    /// Most processes and threads one RUN step may have (a cgroup limit; default 16384)
    #[arg(long = "pids-limit", value_name = "N")]
    pub pids_limit: Option<u64>,
    /// Most memory one RUN step may use (`512m`, `2g`, bytes; a cgroup limit; default: none)
    #[arg(long = "memory", value_name = "SIZE")]
    pub memory: Option<String>,
    /// The cgroup RUN steps' cgroups are made in, a path from the cgroup tree's root
    /// (`/ci/builds`); it must exist and be writable
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// `auto`: as root, RUN steps run in a user namespace whose root is one of root's
    /// subordinate ids (/etc/subuid); `host` (the default): they do not
    #[arg(long = "userns", value_name = "auto|host", value_parser = ["auto", "host"])]
    pub userns: Option<String>,
}

/// `64m`, `1g`, `512k`, `100` (bytes), as docker reads sizes.
pub fn parse_size(flag: &str, s: &str) -> anyhow::Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = num.parse().with_context(|| format!("Invalid `{flag} {s}`: expected a size such as 64m or 1g"))?;
    n.checked_mul(mult).with_context(|| format!("Invalid `{flag} {s}`: too large"))
}

fn parse_ulimit(s: &str) -> anyhow::Result<Ulimit> {
    let (name, values) =
        s.split_once('=').with_context(|| format!("Invalid `--ulimit {s}`: expected NAME=SOFT[:HARD]"))?;
    if cairn_runtime::sandbox::ulimit_known(name).is_none() {
        bail!("Invalid `--ulimit {s}`: unknown limit `{name}` (core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)");
    }
    let num = |v: &str| -> anyhow::Result<u64> {
        if v == "-1" {
            return Ok(u64::MAX);
        }
        v.parse().with_context(|| format!("Invalid `--ulimit {s}`: `{v}` is not a number"))
    };
    let (soft, hard) = match values.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(values)?, num(values)?),
    };
    if soft > hard {
        bail!("Invalid `--ulimit {s}`: the soft limit is above the hard one");
    }
    Ok(Ulimit { name: name.to_string(), soft, hard })
}

impl ResourceArgs {
    pub fn resources(&self) -> anyhow::Result<StepResources> {
        let mut extra_hosts = Vec::new();
        for h in &self.add_hosts {
            // `host:ip`, where an IPv6 address has colons of its own (buildx also takes `=`).
            let (name, addr) = h
                .split_once('=')
                .or_else(|| h.split_once(':'))
                .with_context(|| format!("Invalid `--add-host {h}`: expected HOST:IP"))?;
            if addr.parse::<std::net::IpAddr>().is_err() && addr != "host-gateway" {
                bail!("Invalid `--add-host {h}`: `{addr}` is not an IP address");
            }
            extra_hosts.push((name.to_string(), addr.to_string()));
        }
        Ok(StepResources {
            ulimits: self.ulimits.iter().map(|u| parse_ulimit(u)).collect::<anyhow::Result<_>>()?,
            shm_size: self.shm_size.as_deref().map(|s| parse_size("--shm-size", s)).transpose()?,
            extra_hosts,
            pids_max: Some(self.pids_limit.unwrap_or(DEFAULT_PIDS_LIMIT)),
            memory_max: self.memory.as_deref().map(|s| parse_size("--memory", s)).transpose()?,
            cgroup_parent: match &self.cgroup_parent {
                Some(p) => {
                    cairn_runtime::sandbox::check_cgroup_parent(p).map_err(anyhow::Error::msg)?;
                    Some(p.clone())
                }
                None => None,
            },
            userns: self.userns.as_deref() == Some("auto"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_as_docker_spells_them() {
        assert_eq!(parse_size("--shm-size", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("--shm-size", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("--shm-size", "100").unwrap(), 100);
        assert!(parse_size("--shm-size", "lots").unwrap_err().to_string().contains("`--shm-size lots`"));
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        assert_eq!(parse_ulimit("core=-1").unwrap().hard, u64::MAX);
        assert!(parse_ulimit("bogus=1").unwrap_err().to_string().contains("unknown limit `bogus`"));
        assert!(parse_ulimit("nofile=9:3").unwrap_err().to_string().contains("soft limit is above"));
        let a = ResourceArgs { add_hosts: vec!["db:10.0.0.5".into(), "v6=::1".into()], ..Default::default() };
        let r = a.resources().unwrap();
        assert_eq!(r.extra_hosts, vec![("db".into(), "10.0.0.5".into()), ("v6".into(), "::1".into())]);
        assert_eq!(r.pids_max, Some(DEFAULT_PIDS_LIMIT));
        let bad = ResourceArgs { add_hosts: vec!["db:nowhere".into()], ..Default::default() };
        assert!(bad.resources().is_err());
    }
}
