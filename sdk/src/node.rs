//! The vertices behind [`crate::State`]s: immutable, shared (`Arc`), each holding its op,
//! its inputs and its metadata, numbered in the order they were made.
//!
//! Why shared nodes rather than an arena: states are values that can be cloned, passed
//! around and combined (`merge`, a mount of another state) without a builder object
//! threaded through every call, as with BuildKit's `client/llb`. Two calls that make the
//! same vertex make two nodes; [`crate::Build::definition`] merges them by digest.
//!
//! Why a creation number: the raw graph ([`crate::Build::graph`]) lists nodes in the order
//! they were made, which is how a frontend's `--no-optimize` listing reads and which node's
//! description wins when the optimizer merges equal vertices.
//!
//! Chains can be deep (thousands of steps), so nothing here recurses: digests and walks are
//! computed by the graph code with explicit stacks, and dropping a chain unlinks it in a
//! loop ([`Drop for Node`](Node)).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_ir::{FileActionKind, Op, SourceOp, VertexMeta};

static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Node {
    /// Creation number: inputs are always made before the node, so this order is
    /// topological.
    pub(crate) seq: u64,
    pub(crate) op: Op,
    pub(crate) inputs: Vec<Out>,
    pub(crate) meta: VertexMeta,
}

/// Output `index` of a node.
#[derive(Clone)]
pub(crate) struct Out {
    pub(crate) node: Arc<Node>,
    pub(crate) index: u32,
}

impl Out {
    /// A new node's output 0. Without a description, it gets one saying what the op
    /// does, which progress shows.
    pub(crate) fn new(op: Op, inputs: Vec<Out>, mut meta: VertexMeta) -> Out {
        if meta.description.is_empty() {
            meta.description = describe(&op);
        }
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        Out { node: Arc::new(Node { seq, op, inputs, meta }), index: 0 }
    }

    /// The same output of the same node (not merely an equal one).
    pub(crate) fn same(&self, other: &Out) -> bool {
        Arc::ptr_eq(&self.node, &other.node) && self.index == other.index
    }

    pub(crate) fn key(&self) -> usize {
        Arc::as_ptr(&self.node) as usize
    }
}

/// What an op does, in a few words: `image docker.io/library/busybox:latest`, the argv of
/// an exec, `mkdir /app, mkfile /app/a`.
fn describe(op: &Op) -> String {
    match op {
        Op::Source(SourceOp::Scratch) => "scratch".into(),
        Op::Source(SourceOp::Image { reference, .. }) => format!("image {reference}"),
        Op::Source(SourceOp::Local { name, .. }) => format!("local {name}"),
        Op::Source(SourceOp::Http { url, .. }) => format!("http {url}"),
        Op::Source(SourceOp::Git { remote, reference, .. }) => format!("git {remote} {reference}").trim_end().into(),
        Op::Exec(e) => e.meta.args.join(" "),
        Op::File(f) => {
            let one = |k: &FileActionKind| match k {
                FileActionKind::Copy(c) => format!("copy {} {}", c.src_paths.join(" "), c.dest),
                FileActionKind::Mkdir { path, .. } => format!("mkdir {path}"),
                FileActionKind::Mkfile { path, .. } => format!("mkfile {path}"),
                FileActionKind::Rm { path, .. } => format!("rm {path}"),
                FileActionKind::Symlink { target, link_path, .. } => format!("symlink {link_path} -> {target}"),
            };
            f.actions.iter().map(|a| one(&a.kind)).collect::<Vec<_>>().join(", ")
        }
        Op::Merge(_) => "merge".into(),
        Op::Diff(_) => "diff".into(),
    }
}

impl fmt::Debug for Out {
    /// One line, never the whole chain below.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{}.{} ({:?})", self.node.op.kind(), self.node.seq, self.index, self.node.meta.description)
    }
}

impl Drop for Node {
    /// Unlinks the chain below in a loop: the default drop would recurse once per node.
    fn drop(&mut self) {
        let mut stack: Vec<Arc<Node>> = self.inputs.drain(..).map(|o| o.node).collect();
        while let Some(n) = stack.pop() {
            if let Some(mut last) = Arc::into_inner(n) {
                stack.extend(last.inputs.drain(..).map(|o| o.node));
            }
        }
    }
}
