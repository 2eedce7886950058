//! Appending one target's compiled graph to the bake's graph.
//!
//! Nodes are copied with their input references and source locations shifted; nothing is
//! merged here: the optimizer's dedup (by digest) merges what two targets share, so the
//! rule for "the same step" stays the one every build uses.

use cairn_compiler::graph::{Graph, GraphOutput, Ref};
use cairn_ir::{Op, Platform, SourceOp};

/// Appends `g` to `into` and adds its output for each of `platforms` as more outputs of
/// `into`; returns their indexes. `context` renames the main build context's local source
/// (a bake of several context directories gives each its own name).
pub fn append(into: &mut Graph, g: &Graph, platforms: &[Platform], context: &str) -> anyhow::Result<Vec<usize>> {
    let offset = into.nodes.len();
    // A source file both graphs hold (the same Dockerfile) is kept once.
    let sources: Vec<u32> = g
        .sources
        .iter()
        .map(|s| match into.sources.iter().position(|x| x == s) {
            Some(i) => i as u32,
            None => {
                into.sources.push(s.clone());
                (into.sources.len() - 1) as u32
            }
        })
        .collect();
    for n in &g.nodes {
        let mut n = n.clone();
        for r in &mut n.inputs {
            r.node += offset;
        }
        for l in &mut n.meta.locations {
            l.source = sources.get(l.source as usize).copied().unwrap_or(l.source);
        }
        if let Op::Source(SourceOp::Local { name, .. }) = &mut n.op {
            if name == "context" {
                *name = context.to_string();
            }
        }
        into.nodes.push(n);
    }
    let mut indexes = Vec::new();
    for platform in platforms {
        let out = match g.outputs.iter().find(|o| o.platform.same_as(platform)) {
            Some(o) => o,
            None if g.outputs.len() == 1 => &g.outputs[0],
            None => anyhow::bail!("the compiled graph has no output for platform `{platform}`"),
        };
        into.outputs.push(GraphOutput {
            platform: out.platform.clone(),
            root: Ref { node: out.root.node + offset, index: out.root.index },
            config: out.config.clone(),
        });
        indexes.push(into.outputs.len() - 1);
    }
    Ok(indexes)
}
