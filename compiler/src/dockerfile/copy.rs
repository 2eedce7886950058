//! COPY and ADD: one file vertex per instruction, one copy action per source.
//!
//! Sources come from the build context (a local source), `--from` (a stage, a named
//! context or an image), heredocs (a `mkfile` on scratch, its own vertex), and for
//! ADD also URLs (an http source) and git repositories (a git source). Files from the
//! context, heredocs and downloads are owned by root unless `--chown` says otherwise, as in
//! Docker; files from another stage or image keep their owners. `--link` copies onto scratch
//! and merges the result over the stage, so the layer does not depend on what is below it.

use cairn_grammar::ast::{Args, Instruction};
use cairn_ir::{
    CopyAction, Digest, FileAction, FileActionKind, FileOp, FileRef, IdOrName, MergeOp, Op, Owner, SourceOp,
};

use super::{clean_path, join_path, parse_owner, Lowerer, PlatformCtx, State};
use crate::error::CompileError;
use crate::graph::Ref;

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// `git@host:repo`, `git://…`, `ssh://…`, or an http(s) URL ending in `.git` (optionally
/// with `#ref[:subdir]`).
fn is_git(s: &str) -> bool {
    let base = s.split('#').next().unwrap_or(s);
    s.starts_with("git@") || s.starts_with("git://") || s.starts_with("ssh://") || (is_url(s) && base.ends_with(".git"))
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands heredoc content: `$v` and `${…}` substitute, quotes stay as written, the escape
/// character before `$` gives a literal `$` (BuildKit expands COPY heredocs this way).
fn expand_heredoc(lw: &Lowerer, st: &State, text: &str, ins: &Instruction) -> Result<String, CompileError> {
    let esc = lw.df.escape;
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == esc && chars.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        let start = i;
        let end = match chars.get(i + 1) {
            Some('{') => {
                let mut depth = 0;
                let mut j = i + 1;
                while j < chars.len() {
                    match chars[j] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                (j + 1).min(chars.len())
            }
            Some(c) if c.is_ascii_alphanumeric() || *c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                j
            }
            _ => {
                out.push('$');
                i += 1;
                continue;
            }
        };
        let seg: String = chars[start..end].iter().collect();
        out.push_str(&lw.expand(st, &seg, ins.span)?);
        i = end;
    }
    Ok(out)
}

pub(super) fn dispatch_copy(
    lw: &mut Lowerer,
    pc: &mut PlatformCtx,
    st: &mut State,
    ins: &Instruction,
    written: &str,
) -> Result<(), CompileError> {
    let kw = ins.keyword.as_str();
    let is_add = kw == "ADD";
    let words: Vec<(String, cairn_grammar::ast::Span)> = match &ins.args {
        Args::Words(w) => w.iter().map(|w| (w.node.clone(), w.span)).collect(),
        Args::Exec(v) => v.iter().map(|w| (w.clone(), ins.span)).collect(),
        _ => return Err(lw.err(ins.span, format!("{kw} expects sources and a destination"))),
    };
    if words.len() < 2 {
        return Err(lw.err(ins.span, format!("{kw} requires at least two arguments: a source and a destination")));
    }
    let mut from: Option<String> = None;
    let mut chown: Option<String> = None;
    let mut chmod: Option<u32> = None;
    let mut link = false;
    let mut parents = false;
    let mut excludes = Vec::new();
    let mut checksum: Option<Digest> = None;
    let mut keep_git_dir = false;
    for f in &ins.flags {
        let raw = f.value.as_deref();
        let value = || lw.expand(st, raw.unwrap_or(""), f.span);
        let boolean = |v: Option<&str>| match v {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(o) => Err(lw.err(f.span, format!("`--{}={o}`: expected true or false", f.name))),
        };
        match f.name.as_str() {
            "from" => from = Some(value()?),
            "chown" => chown = Some(value()?),
            "chmod" => {
                let v = value()?;
                chmod = Some(
                    u32::from_str_radix(&v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| lw.err(f.span, format!("`--chmod={v}`: expected an octal mode such as 0755")))?,
                )
            }
            "link" => link = boolean(raw)?,
            "parents" => parents = boolean(raw)?,
            "exclude" => excludes.push(value()?),
            "checksum" if is_add => {
                let v = value()?;
                checksum = Some(v.parse::<Digest>().map_err(|_| {
                    lw.err(f.span, format!("`--checksum={v}`: expected `sha256:` followed by 64 hex digits"))
                })?)
            }
            "keep-git-dir" if is_add => keep_git_dir = boolean(raw)?,
            other => return Err(lw.err(f.span, format!("Unknown flag `--{other}` for `{kw}`"))),
        }
    }
    let (dest_raw, dest_span) = words.last().cloned().expect("two words");
    let dest_x = lw.expand(st, &dest_raw, dest_span)?;
    let srcs = &words[..words.len() - 1];
    let wd = st.workdir();
    let dest_is_dir = dest_x.ends_with('/') || dest_x == "." || dest_x.ends_with("/.") || dest_x == "..";
    let mut dest = clean_path(&join_path(&wd, &dest_x));
    if dest_is_dir && !dest.ends_with('/') {
        dest.push('/');
    }
    if srcs.len() > 1 && !dest.ends_with('/') {
        return Err(lw.err(
            dest_span,
            format!(
                "When using {kw} with more than one source file, the destination must be a directory and end with a /"
            ),
        ));
    }
    let owner: Option<Owner> = match &chown {
        Some(c) => Some(parse_owner(c).ok_or_else(|| lw.err(ins.span, "`--chown` needs a user"))?),
        None => None,
    };
    let root_owner = Some(Owner { user: IdOrName::Id(0), group: Some(IdOrName::Id(0)) });
    let from_tree = match &from {
        Some(name) => Some(lw.resolve_from(pc, st, name, ins.span)?),
        None => None,
    };
    // Inputs: 0 is the stage (unless --link), then each distinct source tree.
    let mut inputs: Vec<Ref> = Vec::new();
    if !link {
        inputs.push(st.root);
    }
    let mut actions: Vec<FileAction> = Vec::new();
    let mut copies: Vec<CopyAction> = Vec::new();
    let mut heredoc_i = 0;
    let mut context_input: Option<u32> = None;
    for (word, span) in srcs {
        let base = CopyAction {
            src: FileRef::Scratch,
            src_paths: Vec::new(),
            dest: dest.clone(),
            owner: owner.clone(),
            mode: chmod,
            follow_symlinks: true,
            dir_contents_only: true,
            allow_wildcard: false,
            allow_empty_wildcard: true,
            include: Vec::new(),
            exclude: excludes.clone(),
            create_dest_path: true,
            unpack_archive: false,
            parents,
            timestamp: None,
        };
        if word.starts_with("<<") && heredoc_i < ins.heredocs.len() {
            let h = &ins.heredocs[heredoc_i];
            heredoc_i += 1;
            let data = if h.expand { expand_heredoc(lw, st, &h.content, ins)? } else { h.content.clone() };
            // The body becomes a file on scratch (its own vertex, so the same body is
            // shared and cached once), then a copy source like any other.
            let file = lw.graph.add(
                Op::File(FileOp {
                    actions: vec![FileAction {
                        base: FileRef::Scratch,
                        kind: FileActionKind::Mkfile {
                            path: format!("/{}", h.name),
                            mode: 0o644,
                            data: data.into_bytes(),
                            owner: None,
                            timestamp: None,
                        },
                    }],
                }),
                vec![],
                cairn_ir::VertexMeta { description: format!("heredoc {}", h.name), ..Default::default() },
            );
            inputs.push(file);
            copies.push(CopyAction {
                src: FileRef::Input(inputs.len() as u32 - 1),
                src_paths: vec![format!("/{}", h.name)],
                owner: owner.clone().or(root_owner.clone()),
                parents: false,
                ..base
            });
            continue;
        }
        let src = lw.expand(st, word, *span)?;
        if is_add && from.is_none() && is_git(&src) {
            let (remote, frag) = match src.split_once('#') {
                Some((r, f)) => (r.to_string(), f.to_string()),
                None => (src.clone(), String::new()),
            };
            let (reference, subdir) = match frag.split_once(':') {
                Some((r, s)) => (r.to_string(), s.to_string()),
                None => (frag, String::new()),
            };
            let node = lw.graph.add(
                Op::Source(SourceOp::Git { remote: remote.clone(), reference, subdir, keep_git_dir }),
                vec![],
                cairn_ir::VertexMeta {
                    description: format!("git {src}"),
                    locations: vec![super::location(ins)],
                    ..Default::default()
                },
            );
            inputs.push(node);
            copies.push(CopyAction {
                src: FileRef::Input(inputs.len() as u32 - 1),
                src_paths: vec!["/".into()],
                owner: owner.clone().or(root_owner.clone()),
                ..base
            });
            continue;
        }
        if is_add && from.is_none() && is_url(&src) {
            let path = src.split(['?', '#']).next().unwrap_or("");
            let name =
                path.rsplit('/').next().filter(|n| !n.is_empty() && !path.ends_with("//")).unwrap_or("index.html");
            let node = lw.graph.add(
                Op::Source(SourceOp::Http { url: src.clone(), checksum, filename: name.to_string(), mode: chmod }),
                vec![],
                cairn_ir::VertexMeta {
                    description: src.clone(),
                    locations: vec![super::location(ins)],
                    ..Default::default()
                },
            );
            inputs.push(node);
            copies.push(CopyAction {
                src: FileRef::Input(inputs.len() as u32 - 1),
                src_paths: vec![format!("/{name}")],
                owner: owner.clone().or(root_owner.clone()),
                ..base
            });
            continue;
        }
        if checksum.is_some() && from.is_none() {
            return Err(lw.err(ins.span, "`--checksum` can only be used with a URL source"));
        }
        let src_path = clean_path(&format!("/{src}"));
        let input = match from_tree {
            Some(t) => {
                inputs.push(t);
                inputs.len() as u32 - 1
            }
            None => match context_input {
                Some(i) => i,
                None => {
                    let ctx = lw.context_node();
                    inputs.push(ctx);
                    let i = inputs.len() as u32 - 1;
                    context_input = Some(i);
                    i
                }
            },
        };
        copies.push(CopyAction {
            src: FileRef::Input(input),
            src_paths: vec![src_path],
            allow_wildcard: has_wildcard(&src),
            owner: if from.is_some() { owner.clone() } else { owner.clone().or(root_owner.clone()) },
            unpack_archive: is_add && from.is_none(),
            ..base
        });
    }
    // Chain the copies: each one modifies the result of the previous one.
    let mut prev = if link { FileRef::Scratch } else { FileRef::Input(0) };
    for c in copies {
        actions.push(FileAction { base: prev, kind: FileActionKind::Copy(c) });
        prev = FileRef::Action(actions.len() as u32 - 1);
    }
    // Same source tree twice (two --from copies) should be one input.
    dedup_inputs(&mut inputs, &mut actions);
    let meta = lw.meta(ins, st, written.to_string());
    let file = lw.graph.add(Op::File(FileOp { actions }), inputs, meta.clone());
    st.root = if link {
        lw.graph.add(
            Op::Merge(MergeOp {}),
            vec![st.root, file],
            cairn_ir::VertexMeta { description: format!("{written} (link)"), ..meta },
        )
    } else {
        file
    };
    st.history(format!("{} # buildkit", written), false);
    Ok(())
}

/// Merges equal inputs (the same stage used by two sources) and renumbers references.
fn dedup_inputs(inputs: &mut Vec<Ref>, actions: &mut [FileAction]) {
    let mut map: Vec<u32> = Vec::with_capacity(inputs.len());
    let mut out: Vec<Ref> = Vec::new();
    for r in inputs.iter() {
        match out.iter().position(|o| o == r) {
            Some(p) => map.push(p as u32),
            None => {
                map.push(out.len() as u32);
                out.push(*r);
            }
        }
    }
    let fix = |f: &mut FileRef| {
        if let FileRef::Input(i) = f {
            *i = map[*i as usize];
        }
    };
    for a in actions.iter_mut() {
        fix(&mut a.base);
        if let FileActionKind::Copy(c) = &mut a.kind {
            fix(&mut c.src);
        }
    }
    *inputs = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_kinds() {
        assert!(is_git("https://github.com/o/r.git#v1:sub"));
        assert!(is_git("git@github.com:o/r.git"));
        assert!(!is_git("https://example.com/a.tar.gz"));
        assert!(is_url("https://example.com/a.tar.gz"));
        assert!(has_wildcard("*.go"));
        assert!(!has_wildcard("main.go"));
    }
}
