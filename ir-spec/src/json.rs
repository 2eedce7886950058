//! The JSON form of a Definition (SPEC.md §4.1): what `cairn build --ir` reads besides
//! MessagePack, and what a frontend sends back over the frontend protocol (§11).
//!
//! It has the fields of the canonical form, with two relaxations, so that a frontend in
//! any language needs neither MessagePack nor the canonical encoding to write one: an
//! entry's `digest` may be left out (the reader computes it), and an input — a vertex's
//! or an output's `root` — may name an earlier vertex by its position,
//! `{"vertex": 3, "index": 0}`, instead of by digest. Both are resolved first, then the
//! Definition is validated exactly as a MessagePack one ([`crate::validate`]), so the
//! loaded value, digests included, is the same whichever form carried it.

use serde::Deserialize;

use crate::{Definition, Digest, Input, LoadError, Op, Output, Platform, SourceFile, Vertex, VertexEntry, VertexMeta};

/// Decodes an IR file in either form: JSON when its first non-blank byte is `{` (a
/// MessagePack Definition starts with a map marker, never with that byte), else
/// MessagePack.
pub fn decode_definition_auto(bytes: &[u8]) -> Result<Definition, LoadError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => decode_definition_json(bytes),
        _ => crate::decode_definition(bytes),
    }
}

/// Decodes and validates the JSON form of a Definition.
pub fn decode_definition_json(bytes: &[u8]) -> Result<Definition, LoadError> {
    let j: JsonDefinition = serde_json::from_slice(bytes).map_err(|e| LoadError::Malformed(format!("JSON: {e}")))?;
    from_json(j)
}

/// The JSON form of `def` (digests given, inputs by digest): the form `cairn compile
/// --format json` prints, which this module reads back unchanged.
pub fn encode_definition_json(def: &Definition) -> Vec<u8> {
    serde_json::to_vec(def).expect("IR values always serialize")
}

/// A Definition as JSON may spell it (see the module doc).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonDefinition {
    pub version: u32,
    pub vertices: Vec<JsonEntry>,
    pub outputs: Vec<JsonOutput>,
    #[serde(default)]
    pub sources: Vec<SourceFile>,
    /// Shared environment nodes (SPEC §4.2); an exec's `env` may also be a plain array.
    #[serde(default)]
    pub envs: Vec<crate::EnvEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonEntry {
    #[serde(default)]
    pub digest: Option<Digest>,
    pub vertex: JsonVertex,
    #[serde(default)]
    pub meta: JsonMeta,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonVertex {
    pub inputs: Vec<JsonInput>,
    pub op: Op,
}

/// [`VertexMeta`] with every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonMeta {
    pub description: String,
    pub group: Option<crate::ProgressGroup>,
    pub locations: Vec<crate::SourceLocation>,
    pub ignore_cache: bool,
}

/// An input by `digest` or by the position of an earlier `vertex`; exactly one of them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonInput {
    #[serde(default)]
    pub digest: Option<Digest>,
    #[serde(default)]
    pub vertex: Option<u64>,
    pub index: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonOutput {
    pub platform: Platform,
    pub root: JsonInput,
    pub config: crate::ImageConfig,
}

/// Resolves positions and missing digests, then validates.
pub fn from_json(j: JsonDefinition) -> Result<Definition, LoadError> {
    check_order(&j.vertices)?;
    let mut vertices: Vec<VertexEntry> = Vec::with_capacity(j.vertices.len());
    for (index, e) in j.vertices.into_iter().enumerate() {
        let inputs = e.vertex.inputs.iter().map(|i| resolve(i, index, &vertices)).collect::<Result<Vec<_>, _>>()?;
        let vertex = Vertex { inputs, op: e.vertex.op };
        let digest = e.digest.unwrap_or_else(|| crate::vertex_digest(&vertex));
        let m = e.meta;
        let meta = VertexMeta {
            description: m.description,
            group: m.group,
            locations: m.locations,
            ignore_cache: m.ignore_cache,
        };
        vertices.push(VertexEntry { digest, vertex, meta });
    }
    crate::definition::resolve_envs(&j.envs, vertices.iter_mut().map(|e| &mut e.vertex))
        .map_err(LoadError::Malformed)?;
    let n = vertices.len();
    let outputs = j
        .outputs
        .into_iter()
        .map(|o| Ok(Output { platform: o.platform, root: resolve(&o.root, n, &vertices)?, config: o.config }))
        .collect::<Result<Vec<_>, LoadError>>()?;
    let def = Definition { version: j.version, vertices, outputs, sources: j.sources };
    crate::validate(&def)?;
    Ok(def)
}

/// The input `i` of entry `index` (`index` = the vertex count for an output's root) as a
/// digest; positions are below `index` here (`check_order` ran first).
fn resolve(i: &JsonInput, index: usize, earlier: &[VertexEntry]) -> Result<Input, LoadError> {
    match (i.digest, i.vertex) {
        (Some(digest), None) => Ok(Input { digest, index: i.index }),
        (None, Some(v)) => match earlier.get(v as usize) {
            Some(e) => Ok(Input { digest: e.digest, index: i.index }),
            None => Err(dangling(index, v, earlier.len())),
        },
        _ => Err(LoadError::Invalid {
            index,
            what: "an input must name either a `digest` or a `vertex` position, not both or neither".to_string(),
        }),
    }
}

fn dangling(index: usize, v: u64, n: usize) -> LoadError {
    LoadError::OutOfRange { index, what: format!("input names vertex {v}, and there are only {n}") }
}

/// Positional inputs must name earlier vertices. One that does not is dangling (no such
/// vertex), part of a cycle (reported with the whole cycle), or merely out of order.
fn check_order(vertices: &[JsonEntry]) -> Result<(), LoadError> {
    let n = vertices.len();
    let edges = |i: usize| vertices[i].vertex.inputs.iter().filter_map(|x| x.vertex);
    for (index, e) in vertices.iter().enumerate() {
        for v in e.vertex.inputs.iter().filter_map(|x| x.vertex) {
            if v as usize >= n {
                return Err(dangling(index, v, n));
            }
            if v as usize >= index {
                if let Some(cycle) = find_cycle(index, &edges) {
                    return Err(LoadError::Cycle { vertices: cycle });
                }
                return Err(LoadError::Invalid {
                    index,
                    what: format!(
                        "input names vertex {v}, which comes after it: vertices are listed in topological order (inputs first)"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// A cycle through `start` over positional inputs, as the list of vertices on it
/// (`start` first), if there is one. Depth-first with an explicit stack: a hostile file
/// must not overflow the stack.
fn find_cycle<I: Iterator<Item = u64>>(start: usize, edges: &dyn Fn(usize) -> I) -> Option<Vec<usize>> {
    let mut parent: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut stack = vec![start];
    while let Some(at) = stack.pop() {
        for next in edges(at).map(|v| v as usize) {
            if next == start {
                let mut path = vec![at];
                while let Some(&p) = parent.get(path.last().expect("non-empty")) {
                    path.push(p);
                }
                path.reverse();
                return Some(path);
            }
            if next != at && !parent.contains_key(&next) && next != start {
                parent.insert(next, at);
                stack.push(next);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRATCH: &str = r#"{"inputs": [], "op": {"Source": "Scratch"}}"#;

    fn def(vertices: &[&str], root: &str) -> String {
        let entries: Vec<String> = vertices.iter().map(|v| format!(r#"{{"vertex": {v}}}"#)).collect();
        format!(
            r#"{{"version": 2, "vertices": [{}], "outputs": [{{"platform": {{"os": "linux", "architecture": "amd64", "variant": ""}}, "root": {root}, "config": {{"architecture": "amd64", "os": "linux"}}}}]}}"#,
            entries.join(",")
        )
    }

    fn mkdir_on(v: &str) -> String {
        format!(
            r#"{{"inputs": [{v}], "op": {{"File": {{"actions": [{{"base": {{"Input": 0}}, "kind": {{"Mkdir": {{"path": "/x", "mode": 493, "make_parents": true, "owner": null, "timestamp": null}}}}}}]}}}}}}"#
        )
    }

    #[test]
    fn positions_and_missing_digests_resolve_to_the_canonical_definition() {
        let text = def(&[SCRATCH, &mkdir_on(r#"{"vertex": 0, "index": 0}"#)], r#"{"vertex": 1, "index": 0}"#);
        let d = decode_definition_auto(text.as_bytes()).unwrap();
        assert_eq!(d.vertices[1].vertex.inputs[0].digest, d.vertices[0].digest);
        assert_eq!(d.outputs[0].root.digest, d.vertices[1].digest);
        // The digest form of the same Definition reads back equal, and so does MessagePack.
        let again = decode_definition_auto(&encode_definition_json(&d)).unwrap();
        assert_eq!(again, d);
        assert_eq!(decode_definition_auto(&crate::encode_definition(&d)).unwrap(), d);
    }

    #[test]
    fn cycles_dangling_and_order_errors_name_the_vertices() {
        let a = mkdir_on(r#"{"vertex": 1, "index": 0}"#);
        let b = mkdir_on(r#"{"vertex": 0, "index": 0}"#);
        let e = decode_definition_json(def(&[&a, &b], r#"{"vertex": 1, "index": 0}"#).as_bytes()).unwrap_err();
        assert_eq!(e, LoadError::Cycle { vertices: vec![0, 1] });
        assert_eq!(e.to_string(), "The Definition has a cycle: vertex 0 → 1 → 0");
        let e = decode_definition_json(
            def(&[&mkdir_on(r#"{"vertex": 7, "index": 0}"#)], r#"{"vertex": 0, "index": 0}"#).as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "Vertex 0: input names vertex 7, and there are only 1");
        let e = decode_definition_json(def(&[SCRATCH], r#"{"vertex": 3, "index": 0}"#).as_bytes()).unwrap_err();
        assert_eq!(e.to_string(), "Vertex 1: input names vertex 3, and there are only 1");
        let e = decode_definition_json(def(&[&b], r#"{"vertex": 0, "index": 0}"#).as_bytes()).unwrap_err();
        assert_eq!(e.to_string(), "The Definition has a cycle: vertex 0 → 0");
        let e = decode_definition_json(def(&[&a, SCRATCH], r#"{"vertex": 0, "index": 0}"#).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("input names vertex 1, which comes after it"), "{e}");
        let e = decode_definition_json(b"{\"version\": 2, \"vertices\": [").unwrap_err();
        assert!(matches!(e, LoadError::Malformed(_)), "{e}");
    }
}
