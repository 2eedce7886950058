//! The compiler's working graph: vertices whose inputs name other *nodes* by index, so a
//! frontend can emit freely and the optimizer passes can rewrite without recomputing
//! digests at every step.
//!
//! Why not passes over a [`Definition`] directly: a Definition may not hold two entries
//! with one digest (SPEC.md §4), so the raw lowering — which does emit the same image
//! source once per stage — could not be represented, and `--no-optimize` could not show it.
//! [`Graph::to_definition`] computes the digests; identical vertices that are still present
//! at that point are merged there because the format demands it.
//!
//! Frontends build nodes through small helpers in the spirit of BuildKit's `client/llb`
//! ([`Graph::image`], [`Graph::exec`], [`Graph::mkdir`], [`Graph::mkfile`],
//! [`Graph::merge`], …) rather than op literals.

use std::collections::HashMap;

use cairn_ir::{
    encode, Definition, Digest, ExecOp, FileAction, FileActionKind, FileOp, FileRef, ImageConfig, Input, MergeOp, Op,
    Output, Owner, Platform, SourceFile, SourceOp, Vertex, VertexEntry, VertexMeta, FORMAT_VERSION,
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

    /// `FROM scratch`: the empty tree.
    pub fn scratch(&mut self, meta: VertexMeta) -> Ref {
        self.add(Op::Source(SourceOp::Scratch), vec![], meta)
    }

    /// An image's root filesystem (`reference` normalized).
    pub fn image(&mut self, reference: &str, platform: &Platform, meta: VertexMeta) -> Ref {
        let op = SourceOp::Image { reference: reference.to_string(), platform: platform.clone() };
        self.add(Op::Source(op), vec![], meta)
    }

    /// A local directory the caller names (`context`, a `--build-context`).
    pub fn local(&mut self, name: &str, exclude: Vec<String>, meta: VertexMeta) -> Ref {
        self.add(Op::Source(SourceOp::Local { name: name.to_string(), include: Vec::new(), exclude }), vec![], meta)
    }

    /// A source without inputs that is not scratch, an image or a local directory (git,
    /// http).
    pub fn source(&mut self, op: SourceOp, meta: VertexMeta) -> Ref {
        self.add(Op::Source(op), vec![], meta)
    }

    /// A process over `inputs` (mount inputs name them by position).
    pub fn exec(&mut self, exec: ExecOp, inputs: Vec<Ref>, meta: VertexMeta) -> Ref {
        self.add(Op::Exec(exec), inputs, meta)
    }

    /// File actions over `inputs` (actions name them by position).
    pub fn file(&mut self, actions: Vec<FileAction>, inputs: Vec<Ref>, meta: VertexMeta) -> Ref {
        self.add(Op::File(FileOp { actions }), inputs, meta)
    }

    /// `mkdir -p -m 0755 path` on `base`, owned by `owner` (root when `None`).
    pub fn mkdir(&mut self, base: Ref, path: &str, owner: Option<Owner>, meta: VertexMeta) -> Ref {
        let kind =
            FileActionKind::Mkdir { path: path.to_string(), mode: 0o755, make_parents: true, owner, timestamp: None };
        self.file(vec![FileAction { base: FileRef::Input(0), kind }], vec![base], meta)
    }

    /// A tree holding one file, `path` with `mode` and `data`, owned by root.
    pub fn mkfile(&mut self, path: &str, mode: u32, data: Vec<u8>, meta: VertexMeta) -> Ref {
        let kind = FileActionKind::Mkfile { path: path.to_string(), mode, data, owner: None, timestamp: None };
        self.file(vec![FileAction { base: FileRef::Scratch, kind }], vec![], meta)
    }

    /// `inputs` stacked in order, later ones over earlier ones.
    pub fn merge(&mut self, inputs: Vec<Ref>, meta: VertexMeta) -> Ref {
        self.add(Op::Merge(MergeOp {}), inputs, meta)
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
