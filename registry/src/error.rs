//! `RegistryError`: every way a registry operation fails, with messages that name the
//! registry, reference or blob involved and never a credential.

use std::fmt;
use std::io;

use cairn_ir::Digest;

/// Why a registry operation failed.
///
/// No variant ever holds a password, token or `Authorization` header: URLs lose their query
/// string (signed blob URLs carry secrets there) and registry error bodies are reduced to
/// the `errors[].message` strings of the distribution spec.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry refused the credentials (or asked for some and none were known).
    Unauthorized { registry: String },
    /// Authenticated, but not allowed to do this to `repository`.
    Denied { registry: String, repository: String },
    /// The manifest, tag or blob does not exist.
    NotFound { reference: String },
    /// A blob or manifest's bytes do not hash to the digest that names them.
    DigestMismatch { digest: Digest, got: Digest },
    /// The reference points to an index without a manifest for the wanted platform.
    NoMatchingPlatform { reference: String, platform: String, available: Vec<String> },
    /// An unexpected HTTP status. `url` has no query string; `message` is the registry's
    /// `errors[].message` (or the start of a non-JSON body).
    Http { status: u16, url: String, message: String },
    /// The registry could not be reached or the connection failed for good.
    Connection { registry: String, message: String },
    /// TLS setup or handshake failed (unknown CA, bad certificate file).
    Tls { registry: String, message: String },
    /// Reading or writing local data (the blob destination, an upload source, a file).
    Io { action: String, source: io::Error },
    /// A configuration file (`config.json`, the registry config) cannot be used.
    Config { path: String, message: String },
    /// A `docker-credential-*` helper failed. The message never contains its secret output.
    CredentialHelper { helper: String, message: String },
    /// Something the registry sent or the caller gave is malformed or unsupported.
    Invalid(String),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Unauthorized { registry } => {
                write!(f, "Authentication to registry `{registry}` failed: missing or wrong credentials")
            }
            RegistryError::Denied { registry, repository } => {
                write!(f, "Registry `{registry}` denied access to repository `{repository}`")
            }
            RegistryError::NotFound { reference } => write!(f, "`{reference}` not found in its registry"),
            RegistryError::DigestMismatch { digest, got } => {
                write!(f, "Blob `{digest}` failed verification: its content has digest `{got}`")
            }
            RegistryError::NoMatchingPlatform { reference, platform, available } => write!(
                f,
                "`{reference}` has no image for platform `{platform}` (available: {})",
                if available.is_empty() { "none".to_string() } else { available.join(", ") }
            ),
            RegistryError::Http { status, url, message } => {
                write!(f, "Registry answered HTTP {status} for `{url}`")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            RegistryError::Connection { registry, message } => {
                write!(f, "Cannot reach registry `{registry}`: {message}")
            }
            RegistryError::Tls { registry, message } => write!(f, "TLS with registry `{registry}` failed: {message}"),
            RegistryError::Io { action, source } => write!(f, "Cannot {action}: {source}"),
            RegistryError::Config { path, message } => write!(f, "Cannot use `{path}`: {message}"),
            RegistryError::CredentialHelper { helper, message } => {
                write!(f, "Credential helper `{helper}` failed: {message}")
            }
            RegistryError::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegistryError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `url` without its query string and fragment (signed URLs carry secrets there) and without
/// any `user:password@`.
pub(crate) fn redact_url(url: &str) -> String {
    let mut u = url.split(['?', '#']).next().unwrap_or("").to_string();
    if let Some(scheme_end) = u.find("://") {
        let rest = &u[scheme_end + 3..];
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            u = format!("{}{}", &u[..scheme_end + 3], &rest[at + 1..]);
        }
    }
    u
}

/// The registry's explanation from an error body: the `message` of each entry of the
/// spec's `{"errors":[{"code","message","detail"}]}`, else the first line of a text body.
pub(crate) fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        let parts: Vec<String> = e
            .errors
            .into_iter()
            .map(|e| if e.message.is_empty() { e.code } else { e.message })
            .filter(|m| !m.is_empty())
            .collect();
        return parts.join("; ");
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_queries_and_userinfo() {
        assert_eq!(redact_url("https://h/v2/x/blobs/sha256:1?X-Amz-Signature=s3cr3t"), "https://h/v2/x/blobs/sha256:1");
        assert_eq!(redact_url("https://u:pw@h:5000/v2/"), "https://h:5000/v2/");
        assert_eq!(redact_url("http://h/a#frag"), "http://h/a");
    }

    #[test]
    fn registry_error_bodies() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(error_message(body), "manifest unknown");
        assert_eq!(error_message(b"\n  404 page not found\nmore"), "404 page not found");
        assert_eq!(error_message(br#"{"errors":[{"code":"DENIED"}]}"#), "DENIED");
    }
}
