//! Credentials as docker keeps them: `config.json` in the docker config directory (`auths`
//! entries with a base64 `auth` or `username`/`password`, `identitytoken`,
//! `registrytoken`), and `credsStore`/`credHelpers` naming `docker-credential-NAME`
//! programs spoken to over stdin/stdout (`get`, `store`, `erase`).
//!
//! Writing keeps every other key of `config.json` and goes through a temporary file renamed
//! over the real one (the real one's target when it is a symlink), with mode 0600.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::reference::{auth_key, host_of_auth_key};
use crate::{Credential, RegistryConfig, RegistryError};

/// The username credential helpers answer with when the secret is an identity token.
const TOKEN_USERNAME: &str = "<token>";

/// `config.json` as a JSON object; a missing file is an empty object.
fn read_config(path: &Path) -> Result<Map<String, Value>, RegistryError> {
    let err = |message: String| RegistryError::Config { path: path.display().to_string(), message };
    match std::fs::read(path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(b) => match serde_json::from_slice::<Value>(&b).map_err(|e| err(e.to_string()))? {
            Value::Object(m) => Ok(m),
            _ => Err(err("expected a JSON object".into())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(err(e.to_string())),
    }
}

/// The helper configured for `registry`: its `credHelpers` entry, else `credsStore`.
fn helper_for(config: &Map<String, Value>, registry: &str) -> Option<String> {
    let specific = config.get("credHelpers").and_then(Value::as_object).and_then(|m| {
        m.iter().find(|(k, _)| host_of_auth_key(k) == host_of_auth_key(registry)).and_then(|(_, v)| v.as_str())
    });
    specific.or_else(|| config.get("credsStore").and_then(Value::as_str)).filter(|s| !s.is_empty()).map(str::to_string)
}

/// The credential for `registry` (a registry name as in references: `docker.io`,
/// `127.0.0.1:5000`), or `None` for anonymous access.
pub(crate) fn lookup(cfg: &RegistryConfig, registry: &str) -> Result<Option<Credential>, RegistryError> {
    let path = cfg.config_json();
    let config = read_config(&path)?;
    if let Some(helper) = helper_for(&config, registry) {
        if let Some(c) = helper_get(cfg, &helper, &auth_key(registry))? {
            return Ok(Some(c));
        }
    }
    let Some(auths) = config.get("auths").and_then(Value::as_object) else { return Ok(None) };
    let want = host_of_auth_key(registry);
    let Some((_, entry)) = auths.iter().find(|(k, _)| host_of_auth_key(k) == want) else { return Ok(None) };
    let field = |k: &str| entry.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let Some(t) = field("identitytoken") {
        return Ok(Some(Credential::IdentityToken(t.to_string())));
    }
    if let Some(t) = field("registrytoken") {
        return Ok(Some(Credential::RegistryToken(t.to_string())));
    }
    if let Some(a) = field("auth") {
        let bad = || RegistryError::Config {
            path: path.display().to_string(),
            message: format!("the `auth` of `{want}` is not base64 of `user:password`"),
        };
        let decoded = base64::engine::general_purpose::STANDARD.decode(a.trim()).map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (u, p) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credential::basic(u, p)));
    }
    match (field("username"), field("password")) {
        (Some(u), Some(p)) => Ok(Some(Credential::basic(u, p))),
        _ => Ok(None),
    }
}

/// Stores `username`/`password` for `registry` as docker does: through the configured
/// helper's `store`, else base64 in `auths`.
pub(crate) fn store(cfg: &RegistryConfig, registry: &str, username: &str, password: &str) -> Result<(), RegistryError> {
    let path = cfg.config_json();
    let mut config = read_config(&path)?;
    let key = auth_key(registry);
    if let Some(helper) = helper_for(&config, registry) {
        let input = serde_json::json!({"ServerURL": key, "Username": username, "Secret": password}).to_string();
        run_helper(cfg, &helper, "store", &input)?;
        return Ok(());
    }
    let auths = config.entry("auths").or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auths = auths.as_object_mut().expect("made an object above");
    let want = host_of_auth_key(registry);
    auths.retain(|k, _| host_of_auth_key(k) != want);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    auths.insert(key, serde_json::json!({ "auth": auth }));
    write_config(&path, &config)
}

/// Removes the credentials of `registry` from the helper and from `auths`; `false` when
/// there were none.
pub(crate) fn erase(cfg: &RegistryConfig, registry: &str) -> Result<bool, RegistryError> {
    let path = cfg.config_json();
    let mut config = read_config(&path)?;
    let mut removed = false;
    if let Some(helper) = helper_for(&config, registry) {
        removed |= run_helper(cfg, &helper, "erase", &auth_key(registry))?.is_some();
    }
    let want = host_of_auth_key(registry);
    if let Some(auths) = config.get_mut("auths").and_then(Value::as_object_mut) {
        let before = auths.len();
        auths.retain(|k, _| host_of_auth_key(k) != want);
        if auths.len() != before {
            removed = true;
            write_config(&path, &config)?;
        }
    }
    Ok(removed)
}

/// Writes `config` to `path` by temp-and-rename in the same directory, mode 0600. A
/// symlinked `config.json` stays a symlink: its target is replaced.
fn write_config(path: &Path, config: &Map<String, Value>) -> Result<(), RegistryError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    };
    let err = |e: std::io::Error| RegistryError::Config { path: target.display().to_string(), message: e.to_string() };
    let dir = target.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(err)?;
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("config.json");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut bytes = serde_json::to_vec_pretty(config).expect("a JSON map serializes");
    bytes.push(b'\n');
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// `docker-credential-NAME` in the configured helper directories, else on `$PATH`.
fn helper_path(cfg: &RegistryConfig, name: &str) -> Option<PathBuf> {
    let file = format!("docker-credential-{name}");
    let path_dirs = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    cfg.helper_dirs.iter().chain(path_dirs.iter()).map(|d| d.join(&file)).find(|p| p.is_file())
}

/// Runs `docker-credential-NAME ACTION` with `input` on stdin. `Ok(None)` when the helper
/// says it has no credentials for the server; `Ok(Some(stdout))` on success. Errors carry
/// the helper's exit status and its first line of output only when that is not JSON.
fn run_helper(cfg: &RegistryConfig, name: &str, action: &str, input: &str) -> Result<Option<Vec<u8>>, RegistryError> {
    let helper = format!("docker-credential-{name}");
    let err = |message: String| RegistryError::CredentialHelper { helper: helper.clone(), message };
    let path = helper_path(cfg, name).ok_or_else(|| err("not found in the helper directories or on `PATH`".into()))?;
    let mut child = Command::new(&path)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run `{}`: {e}", path.display())))?;
    let mut stdin = child.stdin.take().expect("piped");
    let written = stdin.write_all(input.as_bytes());
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    written.map_err(|e| err(format!("cannot write to its stdin: {e}")))?;
    if out.status.success() {
        return Ok(Some(out.stdout));
    }
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if text.contains("credentials not found") {
        return Ok(None);
    }
    let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('{')).unwrap_or("");
    let line: String = line.chars().take(200).collect();
    Err(err(format!(
        "`{action}` exited with {}{}",
        out.status,
        if line.is_empty() { String::new() } else { format!(": {line}") }
    )))
}

/// `docker-credential-NAME get` for `server`.
fn helper_get(cfg: &RegistryConfig, name: &str, server: &str) -> Result<Option<Credential>, RegistryError> {
    let Some(out) = run_helper(cfg, name, "get", server)? else { return Ok(None) };
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let a: Answer = serde_json::from_slice(&out).map_err(|_| RegistryError::CredentialHelper {
        helper: format!("docker-credential-{name}"),
        message: "`get` did not print a JSON object with `Username` and `Secret`".into(),
    })?;
    if a.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if a.username == TOKEN_USERNAME {
        Credential::IdentityToken(a.secret)
    } else {
        Credential::Basic { username: a.username, password: a.secret }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> RegistryConfig {
        RegistryConfig { docker_config_dir: dir.to_path_buf(), ..RegistryConfig::default() }
    }

    #[test]
    fn auths_forms_and_docker_hub_key() {
        let dir = std::env::temp_dir().join(format!("cairn-registry-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"YWxpY2U6cHc6d2l0aDpjb2xvbnM="},
                "r.lan":{"username":"bob","password":"x"},
                "http://t.lan/v1/":{"identitytoken":"idt"}}}"#,
        )
        .unwrap();
        let c = cfg(&dir);
        assert_eq!(lookup(&c, "docker.io").unwrap(), Some(Credential::basic("alice", "pw:with:colons")));
        assert_eq!(lookup(&c, "r.lan").unwrap(), Some(Credential::basic("bob", "x")));
        assert_eq!(lookup(&c, "t.lan").unwrap(), Some(Credential::IdentityToken("idt".into())));
        assert_eq!(lookup(&c, "other.lan").unwrap(), None);
        assert_eq!(lookup(&cfg(&dir.join("missing")), "r.lan").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
