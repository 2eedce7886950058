//! `Build`: the outputs of a build (a state, its platform and image config each) and the
//! source files their locations point into; from it, the raw [`Graph`] or the
//! [`Definition`].
//!
//! Two walks over the nodes, both without recursion:
//! - [`Build::graph`] lists every node the outputs reach, once per node (two equal
//!   vertices made separately stay two), in the order they were made: the raw lowering an
//!   optimizer starts from.
//! - [`Build::definition`] lists them inputs first, depth-first from the outputs in order,
//!   so the Definition depends only on the states (not on the order a program happened to
//!   make them in), and then merges equal vertices by digest.

use std::collections::{HashMap, HashSet};

use cairn_ir::{Definition, ImageConfig, Op, Platform, SourceFile, SourceOp, VertexMeta};

use crate::error::{Error, ErrorKind};
use crate::graph::{Graph, GraphOutput, Node as GraphNode, Ref};
use crate::node::{Node, Out};
use crate::State;

/// The outputs of a build under construction.
#[derive(Debug, Clone, Default)]
pub struct Build {
    outputs: Vec<(Platform, Out, ImageConfig)>,
    sources: Vec<SourceFile>,
}

impl Build {
    pub fn new() -> Build {
        Build::default()
    }

    /// Adds `state` as an output for its platform (the host's when it has none).
    pub fn output(&mut self, state: &State, config: ImageConfig) -> &mut Build {
        let platform = state.get_platform().cloned().unwrap_or_else(Platform::host);
        self.output_for(platform, state, config)
    }

    /// Adds `state` as the output for `platform` (an empty tree becomes a scratch vertex).
    pub fn output_for(&mut self, platform: Platform, state: &State, config: ImageConfig) -> &mut Build {
        let out = match &state.out {
            Some(o) => o.clone(),
            None => Out::new(Op::Source(SourceOp::Scratch), Vec::new(), VertexMeta::default()),
        };
        self.outputs.push((platform, out, config));
        self
    }

    /// Adds a source file (a Dockerfile, a spec); the index is what a vertex's
    /// `SourceLocation::source` names.
    pub fn source(&mut self, path: &str, text: &str) -> u32 {
        self.sources.push(SourceFile { path: path.to_string(), text: text.to_string() });
        self.sources.len() as u32 - 1
    }

    fn roots(&self) -> impl Iterator<Item = &Out> {
        self.outputs.iter().map(|(_, o, _)| o)
    }

    /// The graph of `order` (every node the outputs reach, inputs before their users).
    fn graph_of(&self, order: Vec<&Node>) -> Graph {
        let pos: HashMap<usize, usize> =
            order.iter().enumerate().map(|(i, n)| (*n as *const Node as usize, i)).collect();
        let r = |o: &Out| Ref { node: pos[&o.key()], index: o.index };
        Graph {
            nodes: order
                .iter()
                .map(|n| GraphNode { op: n.op.clone(), inputs: n.inputs.iter().map(r).collect(), meta: n.meta.clone() })
                .collect(),
            outputs: self
                .outputs
                .iter()
                .map(|(p, o, c)| GraphOutput { platform: p.clone(), root: r(o), config: c.clone() })
                .collect(),
            sources: self.sources.clone(),
        }
    }

    /// The raw graph: every node the outputs reach, once, in the order they were made;
    /// equal vertices made separately are separate nodes (an optimizer merges them).
    pub fn graph(&self) -> Graph {
        let mut seen: HashSet<usize> = HashSet::new();
        let mut order: Vec<&Node> = Vec::new();
        let mut stack: Vec<&Out> = self.roots().collect();
        while let Some(o) = stack.pop() {
            if seen.insert(o.key()) {
                order.push(&o.node);
                stack.extend(o.node.inputs.iter());
            }
        }
        order.sort_by_key(|n| n.seq);
        self.graph_of(order)
    }

    /// The Definition: vertices inputs first, depth-first from the outputs in order,
    /// equal vertices merged by digest (the first one's description, every location).
    /// A location naming a source file that was not added is an error.
    pub fn definition(&self) -> Result<Definition, Error> {
        let mut done: HashSet<usize> = HashSet::new();
        let mut order: Vec<&Node> = Vec::new();
        for root in self.roots() {
            // (node, whether its inputs were pushed already)
            let mut stack: Vec<(&Out, bool)> = vec![(root, false)];
            while let Some((o, expanded)) = stack.pop() {
                if done.contains(&o.key()) {
                    continue;
                }
                if expanded {
                    done.insert(o.key());
                    order.push(&o.node);
                    continue;
                }
                stack.push((o, true));
                stack.extend(o.node.inputs.iter().rev().map(|i| (i, false)));
            }
        }
        let def = self.graph_of(order).to_definition();
        cairn_ir::validate(&def).map_err(|e| Error::new(ErrorKind::Definition, format!("Invalid definition: {e}")))?;
        Ok(def)
    }
}
