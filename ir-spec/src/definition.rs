//! `Definition`: a whole build graph, its outputs and everything outside the digests.

use serde::{Deserialize, Serialize};

use crate::{ImageConfig, Input, Platform, Vertex};

/// A compiled build: vertices in topological order (every input refers to an earlier
/// vertex), one output per target platform, and metadata that is not part of any digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// Must equal [`crate::FORMAT_VERSION`] for this crate to load it (see SPEC.md).
    pub version: u32,
    pub vertices: Vec<VertexEntry>,
    pub outputs: Vec<Output>,
    /// Source files the `source_map` entries point into.
    pub sources: Vec<SourceFile>,
}

/// A vertex with its digest and its (digest-free) metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VertexEntry {
    /// sha256 over the canonical encoding of `vertex`; checked on load.
    pub digest: crate::Digest,
    pub vertex: Vertex,
    pub meta: VertexMeta,
}

/// Human-facing facts about a vertex: never part of its digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexMeta {
    /// What the progress output shows, e.g. `RUN make`.
    pub description: String,
    /// Progress grouping, e.g. `[build 2/5]` is group `build`, step 2 of 5.
    pub group: Option<ProgressGroup>,
    /// Where in the sources the vertex came from (several after deduplication).
    pub locations: Vec<SourceLocation>,
    /// Ask the runtime to run this vertex even when a cache entry exists.
    pub ignore_cache: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressGroup {
    /// The stage; empty for a Dockerfile of one stage (BuildKit shows `[1/3]` then).
    pub name: String,
    pub step: u32,
    pub total: u32,
}

impl VertexMeta {
    /// What progress calls the step, as BuildKit does: `[build  7/24] RUN make` (the step
    /// right-aligned to the width of the total, the name left out when empty), the bare
    /// description without a group, or `None` when there is no description either.
    pub fn label(&self) -> Option<String> {
        match &self.group {
            Some(g) => {
                let w = g.total.to_string().len();
                let name = if g.name.is_empty() { String::new() } else { format!("{} ", g.name) };
                Some(format!("[{name}{:>w$}/{}] {}", g.step, g.total, self.description))
            }
            None if self.description.is_empty() => None,
            None => Some(self.description.clone()),
        }
    }
}

/// Index into [`Definition::sources`] and a 1-based inclusive line range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceLocation {
    pub source: u32,
    pub start_line: u32,
    pub end_line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Path as the user gave it, e.g. `Dockerfile`.
    pub path: String,
    /// The whole text, so a runtime can show the failing line without the file.
    pub text: String,
}

/// One result of the build: a filesystem tree and the image config that describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub platform: Platform,
    /// The final root filesystem.
    pub root: Input,
    pub config: ImageConfig,
}
