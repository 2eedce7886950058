//! Optimizer passes: plain functions `Graph -> Graph`.
//!
//! **Invariant:** a pass never changes what the outputs contain — only how many vertices
//! it takes to produce them. Each pass has a before/after snapshot test
//! (`compiler/test_data/passes/`), and the digest-property tests check the invariant by
//! comparing output digests where the pass must leave them alone.

use std::collections::HashMap;

use cairn_ir::{FileAction, FileActionKind, FileOp, FileRef, Op, SourceOp};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::Dfs;

use crate::graph::{rebuild, Graph, Node, Ref};

/// Runs every pass in the order that lets each one see the others' results.
pub fn optimize(g: &Graph) -> Graph {
    let g = remove_noop_file_actions(g);
    let g = dedup(&g);
    prune_unreachable(&g)
}

/// Drops the nodes no output reaches (stages nobody builds, inputs a rewrite orphaned).
pub fn prune_unreachable(g: &Graph) -> Graph {
    let mut dg: DiGraph<(), ()> = DiGraph::with_capacity(g.nodes.len() + 1, g.nodes.len());
    let idx: Vec<NodeIndex> = g.nodes.iter().map(|_| dg.add_node(())).collect();
    for (i, n) in g.nodes.iter().enumerate() {
        for r in &n.inputs {
            dg.add_edge(idx[i], idx[r.node], ());
        }
    }
    let start = dg.add_node(());
    for o in &g.outputs {
        dg.add_edge(start, idx[o.root.node], ());
    }
    let mut keep = vec![false; g.nodes.len()];
    let mut dfs = Dfs::new(&dg, start);
    while let Some(nx) = dfs.next(&dg) {
        if nx != start {
            keep[nx.index()] = true;
        }
    }
    rebuild(g, &keep, &|r| r)
}

/// Merges vertices that do the same thing on the same inputs (within and across stages
/// and platforms): bottom-up hash-consing on (op, inputs after merging). The merged node
/// keeps the first description and every source location.
pub fn dedup(g: &Graph) -> Graph {
    let mut canon: Vec<usize> = Vec::with_capacity(g.nodes.len());
    let mut seen: HashMap<(&Op, Vec<Ref>), usize> = HashMap::new();
    let mut locations: HashMap<usize, Vec<cairn_ir::SourceLocation>> = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let inputs: Vec<Ref> = n.inputs.iter().map(|r| Ref { node: canon[r.node], index: r.index }).collect();
        match seen.get(&(&n.op, inputs.clone())) {
            Some(&first) => {
                canon.push(first);
                locations.entry(first).or_default().extend(n.meta.locations.iter().cloned());
            }
            None => {
                seen.insert((&n.op, inputs), i);
                canon.push(i);
            }
        }
    }
    let keep: Vec<bool> = (0..g.nodes.len()).map(|i| canon[i] == i).collect();
    let mut out = rebuild(g, &keep, &|r| Ref { node: canon[r.node], index: r.index });
    // Attach the merged locations (node ids shifted by the removed ones).
    let mut new_id = 0;
    for (i, k) in keep.iter().enumerate() {
        if !k {
            continue;
        }
        if let Some(extra) = locations.get(&i) {
            let locs = &mut out.nodes[new_id].meta.locations;
            for l in extra {
                if !locs.contains(l) {
                    locs.push(l.clone());
                }
            }
            locs.sort();
        }
        new_id += 1;
    }
    out
}

/// Is this action known to leave its base tree unchanged?
fn is_noop(a: &FileAction, earlier: &[FileAction]) -> bool {
    match &a.kind {
        // The root always exists; mkdir of an existing directory changes nothing.
        FileActionKind::Mkdir { path, .. } if path.trim_end_matches('/').is_empty() => true,
        // Removing from the empty tree, where missing paths are allowed.
        FileActionKind::Rm { allow_not_found: true, .. } => matches!(a.base, FileRef::Scratch),
        // The same mkdir as the action it builds on.
        FileActionKind::Mkdir { .. } => match a.base {
            FileRef::Action(j) => earlier.get(j as usize).is_some_and(|b| b.kind == a.kind),
            _ => false,
        },
        _ => false,
    }
}

/// Follows redirects of removed nodes (a removed node may point at another removed node).
fn redirect_of(redirect: &[Ref], keep: &[bool], mut r: Ref) -> Ref {
    while r.index == 0 && !keep[r.node] {
        r = redirect[r.node];
    }
    r
}

/// Removes file actions that cannot change their base tree (`mkdir /`, a repeated mkdir,
/// `rm` on the empty tree). A file vertex left with no action is replaced by its base:
/// consumers read that input directly (or a scratch source when the base was scratch).
pub fn remove_noop_file_actions(g: &Graph) -> Graph {
    let mut nodes: Vec<Node> = Vec::with_capacity(g.nodes.len());
    // Where each old node's output 0 now comes from.
    let mut redirect: Vec<Ref> = Vec::with_capacity(g.nodes.len());
    let mut keep = Vec::with_capacity(g.nodes.len());
    for (i, n) in g.nodes.iter().enumerate() {
        let Op::File(FileOp { actions }) = &n.op else {
            nodes.push(n.clone());
            redirect.push(Ref::new(i));
            keep.push(true);
            continue;
        };
        // New index of each old action; `None` = removed (its result is its base's).
        let mut new_of: Vec<Option<FileRef>> = Vec::with_capacity(actions.len());
        let mut kept: Vec<FileAction> = Vec::new();
        let map_ref = |r: FileRef, new_of: &[Option<FileRef>]| match r {
            FileRef::Action(j) => new_of[j as usize].expect("resolved"),
            other => other,
        };
        for (k, a) in actions.iter().enumerate() {
            if is_noop(a, &actions[..k]) {
                let b = map_ref(a.base, &new_of);
                new_of.push(Some(b));
                continue;
            }
            let mut a2 = a.clone();
            a2.base = map_ref(a.base, &new_of);
            if let FileActionKind::Copy(c) = &mut a2.kind {
                c.src = map_ref(c.src, &new_of);
            }
            new_of.push(Some(FileRef::Action(kept.len() as u32)));
            kept.push(a2);
        }
        // `mkdir X` over a tree that is itself the result of the same `mkdir X` (two
        // identical WORKDIRs in a row) changes nothing either.
        if let (Some(FileRef::Action(0)), [only]) = (new_of.last().copied().flatten(), kept.as_slice()) {
            if let (FileRef::Input(k), FileActionKind::Mkdir { .. }) = (only.base, &only.kind) {
                let below = redirect_of(&redirect, &keep, n.inputs[k as usize]);
                if below.index == 0 {
                    if let Op::File(FileOp { actions: b }) = &nodes[below.node].op {
                        if b.last().is_some_and(|l| l.kind == only.kind) {
                            nodes.push(n.clone());
                            redirect.push(n.inputs[k as usize]);
                            keep.push(false);
                            continue;
                        }
                    }
                }
            }
        }
        let last = new_of.last().copied().flatten();
        match last {
            Some(FileRef::Action(_)) if kept.len() == actions.len() => {
                nodes.push(n.clone());
                redirect.push(Ref::new(i));
                keep.push(true);
            }
            Some(FileRef::Action(j)) => {
                // The output is the result of action `j`; later kept actions fed only
                // the removed no-ops, so they go too (references only point backwards).
                kept.truncate(j as usize + 1);
                let mut m = n.clone();
                m.op = Op::File(FileOp { actions: kept });
                nodes.push(m);
                redirect.push(Ref::new(i));
                keep.push(true);
            }
            Some(FileRef::Input(k)) => {
                nodes.push(n.clone());
                redirect.push(n.inputs[k as usize]);
                keep.push(false);
            }
            Some(FileRef::Scratch) | None => {
                let mut m = n.clone();
                m.op = Op::Source(SourceOp::Scratch);
                m.inputs.clear();
                nodes.push(m);
                redirect.push(Ref::new(i));
                keep.push(true);
            }
        }
    }
    let resolve = |r: Ref| redirect_of(&redirect, &keep, r);
    let mut tmp = g.clone();
    tmp.nodes = nodes;
    rebuild(&tmp, &keep, &resolve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_ir::VertexMeta;

    fn mkdir(base: FileRef, path: &str) -> FileAction {
        FileAction {
            base,
            kind: FileActionKind::Mkdir {
                path: path.into(),
                mode: 0o755,
                make_parents: true,
                owner: None,
                timestamp: None,
            },
        }
    }

    #[test]
    fn noop_vertex_is_bypassed_and_chains_resolve() {
        let mut g = Graph::default();
        let s = g
            .add(
                Op::Source(SourceOp::Image { reference: "x".into(), platform: cairn_ir::Platform::host() }),
                vec![],
                VertexMeta::default(),
            )
            .unwrap();
        let a = g
            .add(Op::File(FileOp { actions: vec![mkdir(FileRef::Input(0), "/")] }), vec![s], VertexMeta::default())
            .unwrap();
        let b = g
            .add(Op::File(FileOp { actions: vec![mkdir(FileRef::Input(0), "/")] }), vec![a], VertexMeta::default())
            .unwrap();
        g.outputs.push(crate::graph::GraphOutput {
            platform: cairn_ir::Platform::host(),
            root: b,
            config: Default::default(),
        });
        let o = remove_noop_file_actions(&g);
        assert_eq!(o.nodes.len(), 1);
        assert_eq!(o.outputs[0].root, Ref::new(0));
    }

    #[test]
    fn prune_drops_what_no_output_reaches() {
        let mut g = Graph::default();
        let s = g.add(Op::Source(SourceOp::Scratch), vec![], VertexMeta::default()).unwrap();
        let _orphan = g
            .add(
                Op::File(FileOp { actions: vec![mkdir(FileRef::Input(0), "/orphan")] }),
                vec![s],
                VertexMeta::default(),
            )
            .unwrap();
        let used = g
            .add(Op::File(FileOp { actions: vec![mkdir(FileRef::Input(0), "/used")] }), vec![s], VertexMeta::default())
            .unwrap();
        g.outputs.push(crate::graph::GraphOutput {
            platform: cairn_ir::Platform::host(),
            root: used,
            config: Default::default(),
        });
        let before = g.digests()[used.node];
        let o = prune_unreachable(&g);
        assert_eq!(o.nodes.len(), 2);
        assert_eq!(o.digests()[o.outputs[0].root.node], before);
        assert!(crate::render::text(&o).contains("/used") && !crate::render::text(&o).contains("/orphan"));
    }

    #[test]
    fn repeated_mkdir_inside_one_op_is_dropped() {
        let mut g = Graph::default();
        let s = g.add(Op::Source(SourceOp::Scratch), vec![], VertexMeta::default()).unwrap();
        let a = g
            .add(
                Op::File(FileOp {
                    actions: vec![
                        mkdir(FileRef::Input(0), "/a"),
                        mkdir(FileRef::Action(0), "/a"),
                        mkdir(FileRef::Action(1), "/b"),
                    ],
                }),
                vec![s],
                VertexMeta::default(),
            )
            .unwrap();
        g.outputs.push(crate::graph::GraphOutput {
            platform: cairn_ir::Platform::host(),
            root: a,
            config: Default::default(),
        });
        let o = remove_noop_file_actions(&g);
        let Op::File(f) = &o.nodes[1].op else { panic!() };
        assert_eq!(f.actions.len(), 2);
        assert_eq!(f.actions[1].base, FileRef::Action(0));
    }
}
