//! The compiler's working graph is the SDK's raw graph ([`cairn_sdk::graph`]): the
//! Dockerfile lowering builds [`cairn_sdk::State`]s, [`cairn_sdk::Build::graph`] lists
//! every vertex it made in order (duplicates kept, so `--no-optimize` shows the raw
//! lowering), the optimizer [`crate::passes`] rewrite that graph, and
//! [`Graph::to_definition`] computes the digests and merges what is still equal.
//!
//! What stays here is what only the passes need: rebuilding a graph without some nodes.

pub use cairn_sdk::graph::{Graph, GraphOutput, Node, NodeId, Ref};

/// Keeps the nodes of `g` for which `keep[i]` holds, in order, remapping references with
/// `map` first (a removed node must not be referenced after mapping).
pub(crate) fn rebuild(g: &Graph, keep: &[bool], map: &dyn Fn(Ref) -> Ref) -> Graph {
    let mut new_id = vec![usize::MAX; g.nodes.len()];
    let mut nodes = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
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
    let outputs = g
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
    Graph { nodes, outputs, sources: g.sources.clone() }
}
