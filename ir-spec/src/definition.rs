//! `Definition`: a whole build graph, its outputs and everything outside the digests.

use std::collections::HashSet;

use serde::{Deserialize, Serialize, Serializer};

use crate::{EnvEntry, ImageConfig, Input, Platform, Vertex};

/// A compiled build: vertices in topological order (every input refers to an earlier
/// vertex), one output per target platform, and metadata that is not part of any digest.
///
/// The encoding has one more field, `envs` (since version 4): the table of the shared
/// environment nodes the execs name by digest ([`crate::Env`]). It is not stored here but
/// written from the execs' chains, and resolved into them when a Definition is read, so
/// a Definition in memory can never disagree with its table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "DefinitionRepr")]
pub struct Definition {
    /// Must equal [`crate::FORMAT_VERSION`] for this crate to load it (see SPEC.md).
    pub version: u32,
    pub vertices: Vec<VertexEntry>,
    pub outputs: Vec<Output>,
    /// Source files the `source_map` entries point into.
    pub sources: Vec<SourceFile>,
}

/// The Definition as read: its fields plus the `envs` table.
#[derive(Deserialize)]
struct DefinitionRepr {
    version: u32,
    vertices: Vec<VertexEntry>,
    outputs: Vec<Output>,
    sources: Vec<SourceFile>,
    #[serde(default)]
    envs: Vec<EnvEntry>,
}

/// The Definition as written (same fields, borrowed; `envs` omitted when empty, so a
/// Definition without chains encodes as in version 3).
#[derive(Serialize)]
struct DefinitionView<'a> {
    version: u32,
    vertices: &'a [VertexEntry],
    outputs: &'a [Output],
    sources: &'a [SourceFile],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    envs: Vec<EnvEntry>,
}

impl Definition {
    /// The `envs` table: every environment node an exec names, parents first, once each,
    /// in the order of the execs.
    pub fn env_entries(&self) -> Vec<EnvEntry> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for v in &self.vertices {
            if let crate::Op::Exec(e) = &v.vertex.op {
                e.meta.env.collect_entries(&mut seen, &mut out);
            }
        }
        out
    }
}

impl Serialize for Definition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DefinitionView {
            version: self.version,
            vertices: &self.vertices,
            outputs: &self.outputs,
            sources: &self.sources,
            envs: self.env_entries(),
        }
        .serialize(s)
    }
}

impl TryFrom<DefinitionRepr> for Definition {
    type Error = String;

    fn try_from(r: DefinitionRepr) -> Result<Definition, String> {
        let mut vertices = r.vertices;
        resolve_envs(&r.envs, vertices.iter_mut().map(|e| &mut e.vertex))?;
        Ok(Definition { version: r.version, vertices, outputs: r.outputs, sources: r.sources })
    }
}

/// Looks every exec's environment reference up in `entries` (checked first: digests,
/// parents before children). An error names the vertex by position.
pub(crate) fn resolve_envs<'a>(
    entries: &[EnvEntry],
    vertices: impl Iterator<Item = &'a mut crate::Vertex>,
) -> Result<(), String> {
    let table = crate::env::build_table(entries)?;
    for (i, v) in vertices.enumerate() {
        if let crate::Op::Exec(e) = &mut v.op {
            e.meta
                .env
                .resolve(&table)
                .map_err(|d| format!("vertex {i}: env `{d}` is not in the Definition's `envs`"))?;
        }
    }
    Ok(())
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
