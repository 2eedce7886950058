//! The raw graph: vertices whose inputs name other *nodes* by index, in the order they were
//! made, duplicates kept. It is what an optimizer rewrites (cairn's compiler runs its
//! passes over it) and what [`Graph::to_definition`] turns into a Definition.
//!
//! Why not work on a [`Definition`] directly: a Definition may not hold two entries with one
//! digest (SPEC.md §4), so a raw lowering that makes the same image source once per stage
//! could not be represented, and a frontend's `--no-optimize` could not show it.
//! [`Graph::to_definition`] computes the digests; identical vertices still present at that
//! point are merged there because the format demands it.
//!
//! The fields are public so that passes can rewrite a graph; a graph from
//! [`crate::Build::graph`], [`Graph::from_definition`] or [`Graph::add`] is well formed
//! (every input names an earlier node), and [`Graph::check`] tells for one made by hand.

use std::collections::HashMap;

use cairn_ir::{
    encode, Definition, Digest, ImageConfig, Input, Op, Output, Platform, SourceFile, Vertex, VertexEntry, VertexMeta,
    FORMAT_VERSION,
};

use crate::error::{Error, ErrorKind};

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
    /// Appends a node; an input that is not an earlier node is an error.
    pub fn add(&mut self, op: Op, inputs: Vec<Ref>, meta: VertexMeta) -> Result<Ref, Error> {
        let id = self.nodes.len();
        if let Some(r) = inputs.iter().find(|r| r.node >= id) {
            let message = format!("Node {id} names node {} as an input: inputs must be earlier nodes", r.node);
            return Err(Error::new(ErrorKind::Definition, message));
        }
        self.nodes.push(Node { op, inputs, meta });
        Ok(Ref::new(id))
    }

    /// Whether every input and output root names an earlier node (what
    /// [`Graph::to_definition`] needs).
    pub fn check(&self) -> Result<(), Error> {
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(r) = n.inputs.iter().find(|r| r.node >= i) {
                let message = format!("Node {i} names node {} as an input: inputs must be earlier nodes", r.node);
                return Err(Error::new(ErrorKind::Definition, message));
            }
        }
        if let Some(o) = self.outputs.iter().find(|o| o.root.node >= self.nodes.len()) {
            let message = format!("The output for `{}` names node {}, which does not exist", o.platform, o.root.node);
            return Err(Error::new(ErrorKind::Definition, message));
        }
        Ok(())
    }

    /// The sha256 digest of every node, in node order (SPEC.md §3).
    ///
    /// # Panics
    /// On a graph that fails [`Graph::check`] (only a graph made by hand can).
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
    ///
    /// # Panics
    /// On a graph that fails [`Graph::check`] (only a graph made by hand can).
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
    ///
    /// # Panics
    /// On a Definition that fails [`cairn_ir::validate`] (loaded ones never do).
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
}
