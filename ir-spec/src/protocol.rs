//! The frontend protocol (SPEC.md §11): the messages cairn and a frontend executable
//! exchange, one JSON object per line, each with a `type`.
//!
//! cairn writes a [`BuildRequest`] on the frontend's stdin; the frontend writes zero or
//! more [`ResolveImageConfig`] queries on its stdout, each answered on stdin by an
//! [`ImageConfigAnswer`], and ends with one [`FrontendResult`]: a Definition in its JSON
//! form ([`crate::json`]) and diagnostics. The types live here, beside the IR, so that
//! both sides — cairn's host, an in-tree frontend, a Rust builder SDK — share one
//! definition of the wire format, and the JSON Schemas in `ir-spec/schema/` describe it
//! for everyone else.
//!
//! Line-delimited JSON over pipes rather than gRPC (BuildKit's gateway): any language has
//! a JSON library and can read and write lines, and a frontend is a plain executable that
//! can be tried by hand (`echo '{…}' | cairn-frontend-x`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ImageConfig, Platform};

/// The protocol version this crate speaks; a `BuildRequest` carries it and a result must
/// repeat it.
pub const PROTOCOL_VERSION: u32 = 1;

/// A line cairn writes on the frontend's stdin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostMessage {
    /// The first line: what to build.
    Request(BuildRequest),
    /// The answer to a [`ResolveImageConfig`] with the same `id`.
    ImageConfig(Box<ImageConfigAnswer>),
}

/// A line a frontend writes on its stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FrontendMessage {
    ResolveImageConfig(ResolveImageConfig),
    /// The last line: after it cairn reads nothing more.
    Result(FrontendResult),
}

/// What to build. Paths are absolute, on the frontend's own filesystem; the context and
/// the named context directories are read-only there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRequest {
    pub protocol: u32,
    /// The main build context directory (a `Local` source named `context` in the IR).
    pub context: String,
    /// The file the frontend reads (`-f`, or the file whose `# syntax=` chose it), when
    /// there is one.
    #[serde(default)]
    pub file: Option<String>,
    /// `--target`, when given.
    #[serde(default)]
    pub target: Option<String>,
    /// One output per platform, in this order.
    pub platforms: Vec<Platform>,
    /// `--build-arg` values.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// `--frontend-opt` values: options for the frontend itself.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// `--build-context` values, by name.
    #[serde(default)]
    pub named_contexts: BTreeMap<String, NamedContext>,
}

/// A named context: a directory (a `Local` source of that name in the IR) or an image
/// reference (an `Image` source).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedContext {
    Directory(String),
    Image(String),
}

/// A frontend asks for an image's config, as BuildKit's `ResolveImageConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveImageConfig {
    /// Chosen by the frontend; the answer repeats it.
    pub id: u64,
    /// An image reference as a Dockerfile's `FROM` takes it (`busybox`, `host/x:1@sha256:…`).
    pub reference: String,
    /// The platform to resolve for (default: the request's first platform).
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// cairn's answer: the config, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfigAnswer {
    pub id: u64,
    /// The normalized reference (`docker.io/library/busybox:latest`); pinned with
    /// `@sha256:…` when it was resolved against a registry during this build.
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The OCI image config (`config.Env`, `config.WorkingDir`, `config.User`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ImageConfig>,
    /// Set instead of `config` when the image cannot be resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The frontend's last message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontendResult {
    pub protocol: u32,
    /// The Definition in its JSON form; absent when the frontend failed (then at least
    /// one diagnostic is an error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<serde_json::Value>,
    #[serde(default)]
    pub diagnostics: Vec<Diagnostic>,
}

/// A message about the frontend's input, shown as cairn shows its own compile errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// The file it is about, absolute or relative to the context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_lines() {
        let m: FrontendMessage =
            serde_json::from_str(r#"{"type": "resolve_image_config", "id": 1, "reference": "busybox"}"#).unwrap();
        assert_eq!(
            m,
            FrontendMessage::ResolveImageConfig(ResolveImageConfig {
                id: 1,
                reference: "busybox".into(),
                platform: None
            })
        );
        let r = HostMessage::ImageConfig(Box::new(ImageConfigAnswer {
            id: 1,
            reference: "docker.io/library/busybox:latest".into(),
            digest: None,
            platform: None,
            config: None,
            error: Some("not found".into()),
        }));
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"type":"image_config","id":1,"reference":"docker.io/library/busybox:latest","error":"not found"}"#
        );
    }
}
