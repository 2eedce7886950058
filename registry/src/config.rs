//! `RegistryConfig`: which registries may use plain HTTP, where per-registry CAs live,
//! mirrors, and where Docker's `config.json` and credential helpers are found.
//!
//! The registry config file is JSON, every key optional:
//!
//! ```json
//! {"insecure": ["127.0.0.1:5000", "registry.lan"],
//!  "mirrors": {"docker.io": ["mirror.lan:5000", "http://10.0.0.2:5000"]}}
//! ```
//!
//! `insecure` hosts (`host` or `host:port`, as they appear in references) may be reached
//! over TLS without verification or over plain HTTP. `mirrors` maps a registry name to
//! hosts tried in order before it when pulling; an `http://` mirror is insecure too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::RegistryError;

/// Everything about registries that comes from the user's setup rather than a reference.
///
/// `RegistryConfig::default()` reads only the environment: `$DOCKER_CONFIG` (else
/// `~/.docker`) for credentials, the standard certs.d roots, the system CA bundle, no
/// insecure registries and no mirrors. Loopback registries are not implicitly insecure:
/// list `localhost:5000` or `127.0.0.1:5000` to use plain HTTP with them.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Hosts (`host[:port]`) allowed unverified TLS or plain HTTP. For such a host the
    /// client tries HTTPS without verification first and falls back to plain HTTP when the
    /// TLS connection cannot be made, as docker does; the scheme that worked is remembered.
    pub insecure: Vec<String>,
    /// Registry name (`docker.io`) → mirror hosts tried in order when pulling from it.
    pub mirrors: BTreeMap<String, Vec<String>>,
    /// Directories holding `HOST/*.crt` CA files for a registry (`HOST` with its port):
    /// default `/etc/docker/certs.d` and `/etc/containers/certs.d`.
    pub certs_dirs: Vec<PathBuf>,
    /// The PEM bundle of system roots. `None`: the first of `$SSL_CERT_FILE`,
    /// `/etc/ssl/certs/ca-certificates.crt` (Debian, which includes
    /// `/usr/local/share/ca-certificates` after `update-ca-certificates`) and
    /// `/etc/pki/tls/certs/ca-bundle.crt` that exists, else the built-in webpki roots.
    pub ca_bundle: Option<PathBuf>,
    /// Docker's config directory (`config.json`): `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config_dir: PathBuf,
    /// Directories searched for `docker-credential-NAME` before `$PATH`.
    pub helper_dirs: Vec<PathBuf>,
}

impl Default for RegistryConfig {
    fn default() -> RegistryConfig {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let docker_config_dir = env("DOCKER_CONFIG")
            .or_else(|| env("HOME").map(|h| h.join(".docker")))
            .unwrap_or_else(|| PathBuf::from("/root/.docker"));
        RegistryConfig {
            insecure: Vec::new(),
            mirrors: BTreeMap::new(),
            certs_dirs: vec![PathBuf::from("/etc/docker/certs.d"), PathBuf::from("/etc/containers/certs.d")],
            ca_bundle: None,
            docker_config_dir,
            helper_dirs: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    insecure: Vec<String>,
    #[serde(default)]
    mirrors: BTreeMap<String, Vec<String>>,
}

impl RegistryConfig {
    /// Adds the insecure hosts and mirrors of the JSON file at `path` (format in the module
    /// doc) to this configuration.
    pub fn load_file(&mut self, path: &Path) -> Result<(), RegistryError> {
        let err = |message: String| RegistryError::Config { path: path.display().to_string(), message };
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let f: FileFormat = serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
        self.insecure.extend(f.insecure);
        for (registry, hosts) in f.mirrors {
            self.mirrors.entry(registry).or_default().extend(hosts);
        }
        Ok(())
    }

    /// Whether `host` (`host[:port]`) was named insecure, directly or as an `http://` mirror.
    pub fn is_insecure(&self, host: &str) -> bool {
        self.insecure.iter().any(|h| strip_scheme(h) == host)
            || self.mirrors.values().flatten().any(|m| m.starts_with("http://") && strip_scheme(m) == host)
    }

    /// The mirror hosts for `registry`, in order, without scheme or trailing slash.
    pub(crate) fn mirrors_of(&self, registry: &str) -> Vec<String> {
        self.mirrors.get(registry).map(|m| m.iter().map(|h| strip_scheme(h).to_string()).collect()).unwrap_or_default()
    }

    pub(crate) fn config_json(&self) -> PathBuf {
        self.docker_config_dir.join("config.json")
    }
}

fn strip_scheme(h: &str) -> &str {
    let h = h.strip_prefix("https://").or_else(|| h.strip_prefix("http://")).unwrap_or(h);
    h.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_adds_insecure_hosts_and_mirrors() {
        let dir = std::env::temp_dir().join(format!("cairn-registry-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("registries.json");
        std::fs::write(&p, r#"{"insecure":["127.0.0.1:5000"],"mirrors":{"docker.io":["http://m.lan:5000/","n.lan"]}}"#)
            .unwrap();
        let mut c = RegistryConfig { insecure: vec!["a:1".into()], ..RegistryConfig::default() };
        c.load_file(&p).unwrap();
        assert!(c.is_insecure("a:1") && c.is_insecure("127.0.0.1:5000") && c.is_insecure("m.lan:5000"));
        assert!(!c.is_insecure("n.lan") && !c.is_insecure("localhost:5000"));
        assert_eq!(c.mirrors_of("docker.io"), ["m.lan:5000", "n.lan"]);
        std::fs::write(&p, r#"{"insecur":[]}"#).unwrap();
        let e = c.load_file(&p).unwrap_err().to_string();
        assert!(e.starts_with(&format!("Cannot use `{}`: unknown field `insecur`", p.display())), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
