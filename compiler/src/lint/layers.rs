//! What ends up in layers: CopyIgnoredFile (BuildKit's), and cairn's own rules —
//! PackageCacheInLayer (apt lists, pip and npm caches left in a RUN's layer without a
//! cache mount), AptGetUpdateAlone (`apt-get update` in a RUN of its own, whose cached
//! layer keeps stale lists for later installs) and FileDeletedInLaterLayer (a path COPY or
//! ADD puts in one layer and a later RUN removes: the bytes stay in the image).
//!
//! These read RUN commands as text: a shell script is not parsed, so a rule looks for the
//! command words it is about, split at `&&`, `||`, `;`, `|` and new lines.

use cairn_grammar::ast::{Args, Dockerfile, Instruction, Keyword};

use super::{
    stages, LintOptions, Warning, APT_GET_UPDATE_ALONE, COPY_IGNORED_FILE, FILE_DELETED_IN_LATER_LAYER,
    PACKAGE_CACHE_IN_LAYER,
};

/// The script of a RUN: its shell text or exec words, and its heredoc bodies.
fn script(ins: &Instruction) -> String {
    let mut s = match &ins.args {
        Args::Shell(t) => t.clone(),
        Args::Exec(w) => w.join(" "),
        _ => String::new(),
    };
    for h in &ins.heredocs {
        s.push('\n');
        s.push_str(&h.content);
    }
    s
}

/// The commands of a script, each as its words.
fn commands(script: &str) -> Vec<Vec<&str>> {
    script
        .split(['\n', ';', '|', '&'])
        .map(|c| c.split_whitespace().filter(|w| *w != "\\").collect::<Vec<_>>())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Targets of the RUN's cache mounts.
fn cache_targets(ins: &Instruction) -> Vec<String> {
    ins.flags
        .iter()
        .filter(|f| f.name == "mount")
        .filter_map(|f| f.value.as_deref())
        .filter(|v| v.split(',').any(|kv| kv == "type=cache"))
        .filter_map(|v| {
            v.split(',').find_map(|kv| {
                let (k, val) = kv.split_once('=')?;
                matches!(k, "target" | "dst" | "destination").then(|| val.trim_end_matches('/').to_string())
            })
        })
        .collect()
}

pub(super) fn check(df: &Dockerfile, opts: &LintOptions, out: &mut Vec<Warning>) {
    let (_, stages) = stages(df);
    for s in &stages {
        let pip_off = s.body.iter().any(|i| {
            i.keyword == Keyword::Env
                && matches!(&i.args, Args::Pairs(p) if p.iter().any(|kv| kv.key == "PIP_NO_CACHE_DIR"))
        });
        for (n, ins) in s.body.iter().enumerate() {
            match ins.keyword {
                Keyword::Copy | Keyword::Add => {
                    copy_ignored(ins, opts, out);
                    deleted_later(ins, &s.body[n + 1..], out);
                }
                Keyword::Run => run_rules(ins, pip_off, out),
                _ => {}
            }
        }
    }
}

/// The sources and destination of a COPY/ADD (`None` for `--from` copies).
fn copy_paths(ins: &Instruction) -> Option<(Vec<String>, String)> {
    if ins.flags.iter().any(|f| f.name == "from") {
        return None;
    }
    let mut words: Vec<String> = match &ins.args {
        Args::Words(w) => w.iter().map(|w| w.node.trim_matches('"').to_string()).collect(),
        Args::Exec(w) => w.clone(),
        _ => return None,
    };
    let dest = words.pop()?;
    Some((words, dest))
}

fn copy_ignored(ins: &Instruction, opts: &LintOptions, out: &mut Vec<Warning>) {
    let Some((srcs, _)) = copy_paths(ins) else { return };
    let cmd = if ins.keyword == Keyword::Add { "Add" } else { "Copy" };
    for src in srcs {
        if src.contains("://") || src.starts_with("<<") || src.contains('$') || src.starts_with("git@") {
            continue;
        }
        let clean = src.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
        if !clean.is_empty() && clean != "." && (opts.ignored)(clean) {
            let msg = format!("Attempting to {cmd} file \"{clean}\" that is excluded by .dockerignore");
            out.push(Warning::at(&COPY_IGNORED_FILE, msg, ins));
        }
    }
}

fn deleted_later(ins: &Instruction, later: &[&Instruction], out: &mut Vec<Warning>) {
    let Some((srcs, dest)) = copy_paths(ins) else { return };
    // Only a single source copied to an absolute file path names the path it creates.
    if srcs.len() != 1 || !dest.starts_with('/') || dest.ends_with('/') {
        return;
    }
    for r in later.iter().filter(|i| i.keyword == Keyword::Run) {
        let text = script(r);
        let removes = commands(&text).iter().any(|c| c.first() == Some(&"rm") && c.contains(&dest.as_str()));
        if removes {
            let msg = format!(
                "'{dest}' is added at line {} and deleted at line {}: it still costs its bytes in the image; add and delete it in one RUN (with a bind mount), or use a cache or tmpfs mount",
                ins.start_line, r.start_line
            );
            out.push(Warning::at(&FILE_DELETED_IN_LATER_LAYER, msg, ins));
            return;
        }
    }
}

fn run_rules(ins: &Instruction, pip_off: bool, out: &mut Vec<Warning>) {
    let text = script(ins);
    let cmds = commands(&text);
    let mounts = cache_targets(ins);
    let mounted = |dirs: &[&str]| mounts.iter().any(|m| dirs.contains(&m.as_str()));
    let is = |c: &Vec<&str>, tool: &[&str], sub: &[&str]| {
        c.first().is_some_and(|w| tool.contains(w))
            && c.iter().skip(1).find(|w| !w.starts_with('-')).is_some_and(|w| sub.contains(w))
    };
    let apt_update = |c: &Vec<&str>| is(c, &["apt-get", "apt"], &["update"]);
    if cmds.len() == 1 && apt_update(&cmds[0]) {
        let msg = "'apt-get update' alone in a RUN: its cached layer keeps stale package lists for the installs of later steps; run it with 'apt-get install' in one RUN".to_string();
        out.push(Warning::at(&APT_GET_UPDATE_ALONE, msg, ins));
    }
    let mut left = Vec::new();
    if cmds.iter().any(apt_update)
        && !text.contains("/var/lib/apt/lists")
        && !mounted(&["/var/lib/apt", "/var/lib/apt/lists"])
    {
        left.push(("apt lists", "/var/lib/apt/lists", "rm -rf /var/lib/apt/lists/*"));
    }
    let pip = cmds.iter().any(|c| {
        let c: Vec<&str> = match c.as_slice() {
            [py, "-m", rest @ ..] if py.starts_with("python") => rest.to_vec(),
            _ => c.clone(),
        };
        is(&c, &["pip", "pip3"], &["install"])
    });
    if pip && !pip_off && !text.contains("--no-cache-dir") && !mounted(&["/root/.cache", "/root/.cache/pip"]) {
        left.push(("pip's cache", "/root/.cache/pip", "pip install --no-cache-dir"));
    }
    let npm = cmds.iter().any(|c| is(c, &["npm"], &["install", "i", "ci", "add"]));
    if npm && !text.contains("npm cache clean") && !mounted(&["/root/.npm"]) {
        left.push(("npm's cache", "/root/.npm", "npm cache clean --force"));
    }
    for (what, dir, fix) in left {
        let msg = format!(
            "{what} ({dir}) are left in the layer: remove them in the same RUN ({fix}) or use --mount=type=cache,target={dir}"
        );
        out.push(Warning::at(&PACKAGE_CACHE_IN_LAYER, msg, ins));
    }
}
