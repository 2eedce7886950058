//! The compiler's working graph: vertices whose inputs name other *nodes* by index, so a
//! frontend can emit freely and the optimizer passes can rewrite without recomputing
//! digests at every step.
//!
//! Why not passes over a [`Definition`] directly: a Definition may not hold two entries
//! with one digest (SPEC.md §4), so the raw lowering — which does emit the same image
//! source once per stage — could not be represented, and `--no-optimize` could not show it.
//! [`Graph::to_definition`] computes the digests; identical vertices that are still present
//! at that point are merged there because the format demands it.

use std::collections::HashMap;

use cairn_ir::{
    encode, Definition, Digest, ImageConfig, Input, Op, Output, Platform, SourceFile, Vertex, VertexEntry, VertexMeta,
    FORMAT_VERSION,
};

/// Index of a node in [`Graph::nodes`].
pub type NodeId = usize;

/// Output `index` of node `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ref {
    pub node: NodeId,
    pub index: u32,
}

impl Ref {
    pub fn new(node: NodeId) -> Ref {
        Ref { node, index: 0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub op: Op,
    /// Every input is an earlier node: the node list is always in topological order.
    pub inputs: Vec<Ref>,
    pub meta: VertexMeta,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphOutput {
    pub platform: Platform,
    pub root: Ref,
    pub config: ImageConfig,
}

/// A build graph under construction or optimization.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub outputs: Vec<GraphOutput>,
    pub sources: Vec<SourceFile>,
}

impl Graph {
    /// Appends a node. Panics only on a frontend bug (an input that is not earlier).
    pub fn add(&mut self, op: Op, inputs: Vec<Ref>, meta: VertexMeta) -> Ref {
        let id = self.nodes.len();
        assert!(inputs.iter().all(|r| r.node < id), "inputs must be earlier nodes");
        self.nodes.push(Node { op, inputs, meta });
        Ref::new(id)
    }

    /// The sha256 digest of every node, in node order (SPEC.md §3).
    pub fn digests(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let inputs: Vec<Input> = n.inputs.iter().map(|r| Input { digest: out[r.node], index: r.index }).collect();
            out.push(encode::vertex_digest_of(&inputs, &n.op));
        }
        out
    }

    /// The IR Definition of this graph. Nodes with equal digests become one entry (the
    /// first one's description and group, every location).
    pub fn to_definition(&self) -> Definition {
        let digests = self.digests();
        let mut index: HashMap<Digest, usize> = HashMap::new();
        let mut vertices: Vec<VertexEntry> = Vec::new();
        for (n, d) in self.nodes.iter().zip(&digests) {
            if let Some(&i) = index.get(d) {
                let locs = &mut vertices[i].meta.locations;
                for l in &n.meta.locations {
                    if !locs.contains(l) {
                        locs.push(l.clone());
                    }
                }
                locs.sort();
                continue;
            }
            index.insert(*d, vertices.len());
            vertices.push(VertexEntry {
                digest: *d,
                vertex: Vertex {
                    inputs: n.inputs.iter().map(|r| Input { digest: digests[r.node], index: r.index }).collect(),
                    op: n.op.clone(),
                },
                meta: n.meta.clone(),
            });
        }
        Definition {
            version: FORMAT_VERSION,
            vertices,
            outputs: self
                .outputs
                .iter()
                .map(|o| Output {
                    platform: o.platform.clone(),
                    root: Input { digest: digests[o.root.node], index: o.root.index },
                    config: o.config.clone(),
                })
                .collect(),
            sources: self.sources.clone(),
        }
    }

    /// The graph of a Definition (one node per entry), so passes can run on loaded IR.
    pub fn from_definition(def: &Definition) -> Graph {
        let pos: HashMap<Digest, usize> = def.vertices.iter().enumerate().map(|(i, v)| (v.digest, i)).collect();
        let r = |i: &Input| Ref { node: pos[&i.digest], index: i.index };
        Graph {
            nodes: def
                .vertices
                .iter()
                .map(|v| Node {
                    op: v.vertex.op.clone(),
                    inputs: v.vertex.inputs.iter().map(r).collect(),
                    meta: v.meta.clone(),
                })
                .collect(),
            outputs: def
                .outputs
                .iter()
                .map(|o| GraphOutput { platform: o.platform.clone(), root: r(&o.root), config: o.config.clone() })
                .collect(),
            sources: def.sources.clone(),
        }
    }

    /// Keeps the nodes for which `keep[i]` holds, in order, remapping references with
    /// `map` first (a removed node must not be referenced after mapping).
    pub(crate) fn rebuild(&self, keep: &[bool], map: &dyn Fn(Ref) -> Ref) -> Graph {
        let mut new_id = vec![usize::MAX; self.nodes.len()];
        let mut nodes = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            new_id[i] = nodes.len();
            let inputs = n
                .inputs
                .iter()
                .map(|r| {
                    let m = map(*r);
                    Ref { node: new_id[m.node], index: m.index }
                })
                .collect();
            nodes.push(Node { op: n.op.clone(), inputs, meta: n.meta.clone() });
        }
        let outputs = self
            .outputs
            .iter()
            .map(|o| {
                let m = map(o.root);
                GraphOutput {
                    platform: o.platform.clone(),
                    root: Ref { node: new_id[m.node], index: m.index },
                    config: o.config.clone(),
                }
            })
            .collect();
        Graph { nodes, outputs, sources: self.sources.clone() }
    }
}
