//! The image config: the OCI image configuration plus Docker's extensions (Healthcheck,
//! OnBuild, Shell, StopSignal, ArgsEscaped). Field names are the JSON names of the OCI
//! image spec, so a runtime serializes this with serde_json and adds `rootfs.diff_ids`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `BTreeMap` keeps keys sorted: deterministic JSON and MessagePack.
pub type Set = BTreeMap<String, EmptyObject>;

/// `{}` in JSON: the value type of OCI's ExposedPorts and Volumes sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyObject {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: ContainerConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

impl ImageConfig {
    /// The platform the image says it is for (`os`, `architecture`, `variant`).
    pub fn platform(&self) -> crate::Platform {
        crate::Platform::new(&self.os, &self.architecture, self.variant.as_deref().unwrap_or(""))
    }
}

/// The runtime defaults of a container started from the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exposed_ports: Option<Set>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub env: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub volumes: Option<Set>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub args_escaped: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub on_build: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shell: Option<Vec<String>>,
}

/// Docker's healthcheck; durations in nanoseconds, 0 = inherit the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub start_interval: i64,
    #[serde(skip_serializing_if = "is_zero_u", default)]
    pub retries: u64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}
fn is_zero_u(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    /// Filled in by the runtime when it exports the image; empty in a Definition except
    /// for layers inherited from a base image.
    pub diff_ids: Vec<String>,
}

impl Default for RootFs {
    fn default() -> RootFs {
        RootFs { kind: "layers".to_string(), diff_ids: Vec::new() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub empty_layer: bool,
}
