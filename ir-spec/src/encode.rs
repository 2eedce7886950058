//! Canonical MessagePack encoding, vertex digests, and loading with validation.
//!
//! Canonical form: `rmp_serde` with named struct fields (a map whose keys appear in the
//! field order of the Rust types, which is the order SPEC.md lists), enums as a one-entry
//! map `{variant: content}` (unit variants as the bare string), no unordered maps anywhere.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::{Definition, Digest, FileRef, Input, Op, Vertex, FORMAT_VERSION, OLDEST_FORMAT_VERSION};

/// The canonical bytes of any IR value.
pub fn to_canonical<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail: no I/O and no non-string map keys.
    rmp_serde::to_vec_named(value).expect("IR values always serialize")
}

/// The digest of a vertex: sha256 over its canonical encoding.
pub fn vertex_digest(v: &Vertex) -> Digest {
    vertex_digest_of(&v.inputs, &v.op)
}

/// [`vertex_digest`] of `Vertex { inputs, op }` without building the vertex (a frontend
/// computing digests of its graph need not clone every op). Same fields in the same
/// order, so the same bytes.
pub fn vertex_digest_of(inputs: &[Input], op: &Op) -> Digest {
    #[derive(Serialize)]
    struct VertexView<'a> {
        inputs: &'a [Input],
        op: &'a Op,
    }
    Digest::of(&to_canonical(&VertexView { inputs, op }))
}

/// Encodes a whole Definition (the `.cairn` IR file format: the canonical encoding of
/// [`Definition`]).
pub fn encode_definition(def: &Definition) -> Vec<u8> {
    to_canonical(def)
}

/// Why an IR file was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes are not a MessagePack-encoded Definition (truncated, wrong type, ...).
    Malformed(String),
    /// A version this implementation does not understand.
    Version { found: u32, supported: u32 },
    /// The stored digest of vertex `index` does not match its content.
    DigestMismatch { index: usize, stored: Digest, computed: Digest },
    /// Two entries with the same digest.
    Duplicate { index: usize, digest: Digest },
    /// Vertex `index` refers to a digest that is not defined before it (missing or a cycle).
    UnknownInput { index: usize, input: Digest },
    /// An output index, mount input, file ref or output root is out of range.
    OutOfRange { index: usize, what: String },
    /// A structural rule of SPEC.md is broken (e.g. exec without a root mount).
    Invalid { index: usize, what: String },
    /// Vertices that name each other's positions in a circle (JSON form only: by digest,
    /// a cycle cannot even be written down).
    Cycle { vertices: Vec<usize> },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Malformed(m) => write!(f, "Malformed IR file: {m}"),
            LoadError::Version { found, supported } => {
                write!(f, "Unsupported IR format version {found} (this cairn reads versions {OLDEST_FORMAT_VERSION} to {supported})")
            }
            LoadError::DigestMismatch { index, stored, computed } => {
                write!(f, "Vertex {index}: stored digest `{stored}` does not match its content (`{computed}`)")
            }
            LoadError::Duplicate { index, digest } => {
                write!(f, "Vertex {index}: digest `{digest}` appears twice")
            }
            LoadError::UnknownInput { index, input } => {
                write!(f, "Vertex {index}: input `{input}` is not defined before it (missing vertex or a cycle)")
            }
            LoadError::OutOfRange { index, what } => write!(f, "Vertex {index}: {what}"),
            LoadError::Invalid { index, what } => write!(f, "Vertex {index}: {what}"),
            LoadError::Cycle { vertices } => {
                let path: Vec<String> = vertices.iter().chain(vertices.first()).map(|v| v.to_string()).collect();
                write!(f, "The Definition has a cycle: vertex {}", path.join(" → "))
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Decodes and validates an IR file.
pub fn decode_definition(bytes: &[u8]) -> Result<Definition, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Malformed("the file is empty".to_string()));
    }
    let def: Definition = rmp_serde::from_slice(bytes)
        .map_err(|e| LoadError::Malformed(format!("{e} (is the file truncated or not a cairn IR file?)")))?;
    validate(&def)?;
    Ok(def)
}

/// Checks every structural rule of SPEC.md: version, digests, topological order (hence
/// acyclic), inputs exist, output indices and references in range.
pub fn validate(def: &Definition) -> Result<(), LoadError> {
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&def.version) {
        return Err(LoadError::Version { found: def.version, supported: FORMAT_VERSION });
    }
    let mut seen: HashMap<Digest, u32> = HashMap::new();
    for (index, entry) in def.vertices.iter().enumerate() {
        let computed = vertex_digest(&entry.vertex);
        if computed != entry.digest {
            return Err(LoadError::DigestMismatch { index, stored: entry.digest, computed });
        }
        for input in &entry.vertex.inputs {
            let Some(&outputs) = seen.get(&input.digest) else {
                return Err(LoadError::UnknownInput { index, input: input.digest });
            };
            if input.index >= outputs {
                return Err(LoadError::OutOfRange {
                    index,
                    what: format!(
                        "input `{}` output index {} out of range (it has {outputs})",
                        input.digest, input.index
                    ),
                });
            }
        }
        validate_op(index, &entry.vertex)?;
        if seen.insert(entry.digest, entry.vertex.op.output_count()).is_some() {
            return Err(LoadError::Duplicate { index, digest: entry.digest });
        }
    }
    for (i, out) in def.outputs.iter().enumerate() {
        match seen.get(&out.root.digest) {
            Some(&n) if out.root.index < n => {}
            _ => {
                return Err(LoadError::OutOfRange {
                    index: def.vertices.len(),
                    what: format!("output {i} refers to unknown root `{}`", out.root.digest),
                })
            }
        }
    }
    for entry in &def.vertices {
        for loc in &entry.meta.locations {
            if loc.source as usize >= def.sources.len() {
                return Err(LoadError::Malformed(format!(
                    "source location refers to source {} but there are {}",
                    loc.source,
                    def.sources.len()
                )));
            }
        }
    }
    Ok(())
}

fn validate_op(index: usize, v: &Vertex) -> Result<(), LoadError> {
    let n_inputs = v.inputs.len() as u32;
    let range = |what: String| LoadError::OutOfRange { index, what };
    let invalid = |what: &str| LoadError::Invalid { index, what: what.to_string() };
    match &v.op {
        Op::Source(_) => {
            if n_inputs != 0 {
                return Err(invalid("a source op has no inputs"));
            }
        }
        Op::Exec(e) => {
            if e.meta.args.is_empty() {
                return Err(invalid("exec op has no arguments"));
            }
            if e.meta.env.is_unresolved() {
                return Err(invalid("exec op names an env that is not in the Definition's `envs`"));
            }
            if !e.meta.cwd.starts_with('/') {
                return Err(LoadError::Invalid {
                    index,
                    what: format!("exec op working directory `{}` is not absolute (SPEC §7.2)", e.meta.cwd),
                });
            }
            match e.mounts.first() {
                Some(m) if m.target == "/" => {}
                _ => return Err(invalid("the first mount of an exec op must target `/`")),
            }
            let mut outputs = Vec::new();
            for m in &e.mounts {
                if let Some(i) = m.input {
                    if i >= n_inputs {
                        return Err(range(format!("mount `{}` input {i} out of range", m.target)));
                    }
                }
                if let Some(o) = m.output {
                    if outputs.contains(&o) {
                        return Err(invalid("two mounts share one output index"));
                    }
                    outputs.push(o);
                }
            }
            outputs.sort_unstable();
            if outputs.iter().enumerate().any(|(i, &o)| i as u32 != o) {
                return Err(invalid("mount output indices must be 0..n without gaps"));
            }
        }
        Op::File(f) => {
            if f.actions.is_empty() {
                return Err(invalid("file op has no actions"));
            }
            for (ai, a) in f.actions.iter().enumerate() {
                let mut refs = vec![a.base];
                if let crate::FileActionKind::Copy(c) = &a.kind {
                    refs.push(c.src);
                    if let Some(m) = &c.mode_str {
                        crate::chmod::SymbolicMode::parse(m)
                            .map_err(|e| LoadError::Invalid { index, what: format!("action {ai}: {e}") })?;
                    }
                }
                for r in refs {
                    match r {
                        FileRef::Scratch => {}
                        FileRef::Input(i) if i < n_inputs => {}
                        FileRef::Action(j) if (j as usize) < ai => {}
                        other => return Err(range(format!("action {ai} refers to {other:?}"))),
                    }
                }
            }
        }
        Op::Merge(_) => {
            if n_inputs == 0 {
                return Err(invalid("merge op needs at least one input"));
            }
        }
        Op::Diff(_) => {
            if n_inputs != 2 {
                return Err(invalid("diff op needs exactly two inputs (lower, upper)"));
            }
        }
    }
    Ok(())
}
