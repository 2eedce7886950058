//! Human views of a graph: the text listing (`cairn compile` default) and Graphviz dot.
//!
//! Text: one line per vertex — `#index`, digest prefix, op kind, a summary, its inputs
//! (`<- #2 #5.1`) and the source lines it came from; then one line per output.

use std::fmt::Write;

use cairn_ir::{FileActionKind, FileRef, MountKind, Op, SourceOp};

use crate::graph::{Graph, Ref};

fn shorten(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', "\\n");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// A one-line description of an op.
pub fn summary(op: &Op) -> String {
    match op {
        Op::Source(SourceOp::Scratch) => "scratch".into(),
        Op::Source(SourceOp::Image { reference, platform }) => format!("image {reference} ({platform})"),
        Op::Source(SourceOp::Local { name, include, exclude }) => {
            let mut s = format!("local {name}");
            if !include.is_empty() {
                s.push_str(&format!(" include={}", include.join(",")));
            }
            if !exclude.is_empty() {
                s.push_str(&format!(" exclude={}", exclude.join(",")));
            }
            s
        }
        Op::Source(SourceOp::Http { url, checksum, .. }) => match checksum {
            Some(c) => format!("http {url} checksum={}", c.short(12)),
            None => format!("http {url}"),
        },
        Op::Source(SourceOp::Git { remote, reference, subdir, .. }) => {
            let mut s = format!("git {remote}");
            if !reference.is_empty() {
                s.push_str(&format!("#{reference}"));
            }
            if !subdir.is_empty() {
                s.push_str(&format!(":{subdir}"));
            }
            s
        }
        Op::Exec(e) => {
            let mut s = shorten(&e.meta.args.join(" "), 60);
            for m in e.mounts.iter().skip(1) {
                let k = match &m.kind {
                    MountKind::Bind => "bind",
                    MountKind::Cache { .. } => "cache",
                    MountKind::Tmpfs { .. } => "tmpfs",
                    MountKind::Secret { .. } => "secret",
                    MountKind::Ssh { .. } => "ssh",
                };
                s.push_str(&format!(" +{k}:{}", m.target));
            }
            s
        }
        Op::File(f) => {
            let parts: Vec<String> = f
                .actions
                .iter()
                .map(|a| match &a.kind {
                    FileActionKind::Copy(c) => {
                        let from = match c.src {
                            FileRef::Input(i) => format!("in{i}:"),
                            FileRef::Action(j) => format!("a{j}:"),
                            FileRef::Scratch => String::new(),
                        };
                        format!("copy {from}{} -> {}", c.src_paths.join(","), c.dest)
                    }
                    FileActionKind::Mkdir { path, .. } => format!("mkdir {path}"),
                    FileActionKind::Mkfile { path, data, .. } => format!("mkfile {path} ({} bytes)", data.len()),
                    FileActionKind::Rm { path, .. } => format!("rm {path}"),
                    FileActionKind::Symlink { target, link_path, .. } => format!("symlink {link_path} -> {target}"),
                })
                .collect();
            shorten(&parts.join("; "), 90)
        }
        Op::Merge(_) => "merge".into(),
        Op::Diff(_) => "diff".into(),
    }
}

fn input_name(r: &Ref) -> String {
    if r.index == 0 {
        format!("#{}", r.node)
    } else {
        format!("#{}.{}", r.node, r.index)
    }
}

/// The text listing.
pub fn text(g: &Graph) -> String {
    let digests = g.digests();
    let mut out = String::new();
    for (i, (n, d)) in g.nodes.iter().zip(&digests).enumerate() {
        let _ = write!(out, "#{i:<3} {} {:<6} {}", d.short(12), n.op.kind(), summary(&n.op));
        if !n.inputs.is_empty() {
            let ins: Vec<String> = n.inputs.iter().map(input_name).collect();
            let _ = write!(out, " <- {}", ins.join(" "));
        }
        let locs: Vec<String> = n
            .meta
            .locations
            .iter()
            .map(|l| {
                let file = g.sources.get(l.source as usize).map_or("?", |s| s.path.as_str());
                if l.start_line == l.end_line {
                    format!("{file}:{}", l.start_line)
                } else {
                    format!("{file}:{}-{}", l.start_line, l.end_line)
                }
            })
            .collect();
        if !locs.is_empty() {
            let _ = write!(out, "  ({})", locs.join(", "));
        }
        out.push('\n');
    }
    for o in &g.outputs {
        let _ = writeln!(out, "output {}: {} {}", o.platform, input_name(&o.root), digests[o.root.node].short(12));
    }
    out
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz dot source: one box per vertex (kind, description), edges from input to user.
pub fn dot(g: &Graph) -> String {
    let digests = g.digests();
    let mut out =
        String::from("digraph cairn {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    for (i, (n, d)) in g.nodes.iter().zip(&digests).enumerate() {
        let label = if n.meta.description.is_empty() { summary(&n.op) } else { n.meta.description.clone() };
        let _ =
            writeln!(out, "  n{i} [label=\"{} {}\\n{}\"];", n.op.kind(), d.short(12), dot_escape(&shorten(&label, 60)));
        for r in &n.inputs {
            let _ = writeln!(out, "  n{} -> n{i};", r.node);
        }
    }
    for (k, o) in g.outputs.iter().enumerate() {
        let _ = writeln!(out, "  out{k} [shape=oval, label=\"{}\"];\n  n{} -> out{k};", o.platform, o.root.node);
    }
    out.push_str("}\n");
    out
}
