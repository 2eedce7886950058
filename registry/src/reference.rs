//! `Reference`: an image reference split into registry, repository, tag and digest, with
//! Docker Hub's naming (`debian` → `docker.io/library/debian`, API host
//! `registry-1.docker.io`, credentials key `https://index.docker.io/v1/`).

use std::fmt;
use std::str::FromStr;

use cairn_ir::Digest;

use crate::RegistryError;

/// The registry name Docker Hub images carry in normalized references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's distribution API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key Docker Hub credentials have in `config.json` and credential helpers.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A parsed, normalized image reference (`cairn_ir::reference::normalize` rules).
///
/// A reference with neither tag nor digest gets the tag `latest`; `name:tag@digest` keeps
/// both and the digest wins when resolving.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`…
    pub registry: String,
    /// The repository path inside the registry: `library/debian`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes `s` (`debian`, `localhost:5000/x:1`, `alpine@sha256:…`).
    pub fn parse(s: &str) -> Result<Reference, RegistryError> {
        let norm = cairn_ir::reference::normalize(s)
            .map_err(|m| RegistryError::Invalid(format!("Invalid image reference `{s}`: {m}")))?;
        let (name_tag, digest) = match norm.split_once('@') {
            Some((n, d)) => (n, Some(d.parse::<Digest>().map_err(|e| RegistryError::Invalid(e.to_string()))?)),
            None => (norm.as_str(), None),
        };
        let last_slash = name_tag.rfind('/').expect("normalized references have a registry");
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (&name_tag[..last_slash + i], Some(name_tag[last_slash + i + 1..].to_string())),
            None => (name_tag, None),
        };
        let (registry, repository) = name.split_once('/').expect("normalized references have a registry");
        Ok(Reference { registry: registry.to_string(), repository: repository.to_string(), tag, digest })
    }

    /// The same repository with another tag or digest: `with_digest` for pinning.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { digest: Some(digest), ..self.clone() }
    }

    /// The same repository, tag `tag`, no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { tag: Some(tag.to_string()), digest: None, ..self.clone() }
    }

    /// What to put after `/manifests/`: the digest if there is one, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Reference, RegistryError> {
        Reference::parse(s)
    }
}

/// The host that serves the API for `registry` (Docker Hub's differs from its name).
pub(crate) fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB || registry == "index.docker.io" {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// The key credentials for `host` (a registry name or API host) have in `config.json`.
pub(crate) fn auth_key(host: &str) -> String {
    match host {
        DOCKER_HUB | DOCKER_HUB_API | "index.docker.io" => DOCKER_HUB_AUTH_KEY.to_string(),
        h => h.to_string(),
    }
}

/// A `config.json` `auths` key reduced to the host it names: docker writes
/// `https://index.docker.io/v1/`, older files have `http://host/v1/` or `https://host`.
pub(crate) fn host_of_auth_key(key: &str) -> String {
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | DOCKER_HUB_API | DOCKER_HUB => DOCKER_HUB.to_string(),
        h => h.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_naming() {
        let r = Reference::parse("debian").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "library/debian", Some("latest"))
        );
        assert_eq!(api_host(&r.registry), "registry-1.docker.io");
        assert_eq!(auth_key(&r.registry), "https://index.docker.io/v1/");
        assert_eq!(host_of_auth_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(host_of_auth_key("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(r.to_string(), "docker.io/library/debian:latest");
    }

    #[test]
    fn registries_tags_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("127.0.0.1:5000/a/b:v1@{d}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.manifest_ref(), d);
        assert_eq!(api_host(&r.registry), "127.0.0.1:5000");
        let r = Reference::parse("localhost:5000/x").unwrap();
        assert_eq!((r.registry.as_str(), r.manifest_ref().as_str()), ("localhost:5000", "latest"));
        assert!(Reference::parse("Upper/Case").is_err());
    }
}
