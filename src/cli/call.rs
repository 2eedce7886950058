//! `cairn build --call outline|targets|check[,format=json]`: BuildKit's subrequests,
//! answered from the Dockerfile instead of building it, printed in buildx's text shape
//! (or JSON). `outline`: the build args, secrets and SSH sockets the target uses, with
//! their Dockerfile lines; `targets`: the stages with the comment above each; `check`:
//! the Dockerfile checks (`cairn_compiler::lint`, configured by `# check=` and the
//! `BUILDKIT_DOCKERFILE_CHECK` build arg) and the compiler's warnings, and a failure when
//! there are any. [`lint`] also gives the warnings a normal build prints at its end.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::{bail, Context};
use cairn_grammar::ast::{Args, Dockerfile, Instruction, Keyword};
use serde_json::{json, Value};

/// What `--call` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Outline,
    Targets,
    Check,
}

/// A parsed `--call` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub kind: CallKind,
    pub json: bool,
}

/// Parses `outline|targets|check[,format=text|json]`.
pub fn parse_call(s: &str) -> anyhow::Result<Call> {
    let mut parts = s.split(',');
    let kind = match parts.next().unwrap_or("") {
        "outline" => CallKind::Outline,
        "targets" => CallKind::Targets,
        "check" | "lint" => CallKind::Check,
        other => bail!("Invalid `--call {s}`: unknown request `{other}` (expected outline, targets or check)"),
    };
    let mut json = false;
    for p in parts {
        match p {
            "format=json" => json = true,
            "format=text" => json = false,
            other => bail!("Invalid `--call {s}`: unknown field `{other}` (expected format=text|json)"),
        }
    }
    if json && kind == CallKind::Check {
        bail!("`--call check` has only the text format");
    }
    Ok(Call { kind, json })
}

/// One stage: its FROM, name, index and instructions.
struct Stage<'a> {
    name: Option<String>,
    from: &'a Instruction,
    base: String,
    body: &'a [Instruction],
}

fn words(i: &Instruction) -> Vec<&str> {
    match &i.args {
        Args::Words(w) => w.iter().map(|w| w.node.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// The global instructions (before the first FROM) and the stages.
fn stages(df: &Dockerfile) -> (&[Instruction], Vec<Stage<'_>>) {
    let starts: Vec<usize> =
        df.instructions.iter().enumerate().filter(|(_, i)| i.keyword == Keyword::From).map(|(n, _)| n).collect();
    let global = &df.instructions[..starts.first().copied().unwrap_or(df.instructions.len())];
    let mut out = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(df.instructions.len());
        let from = &df.instructions[s];
        let w = words(from);
        let name = match w.as_slice() {
            [_, as_, n] if as_.eq_ignore_ascii_case("as") => Some(n.to_ascii_lowercase()),
            _ => None,
        };
        out.push(Stage { name, from, base: w.first().unwrap_or(&"").to_string(), body: &df.instructions[s + 1..end] });
    }
    (global, out)
}

/// The comment block right above line `line` (1-based), nearest line first.
fn comments_above(source: &str, line: u32) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::new();
    let mut n = line as usize;
    while n >= 2 {
        let l = lines.get(n - 2).map(|l| l.trim()).unwrap_or("");
        let Some(c) = l.strip_prefix('#') else { break };
        out.push(c.trim().to_string());
        n -= 1;
    }
    out
}

/// BuildKit's description rule: a comment line above the instruction that starts with
/// the name and a space; the rest of it.
fn description(source: &str, line: u32, name: &str) -> String {
    let mut block = comments_above(source, line);
    block.reverse();
    block.iter().find_map(|c| c.strip_prefix(&format!("{name} ")).map(str::to_string)).unwrap_or_default()
}

/// The `key=value` fields of a `--mount`.
fn mount_fields(v: &str) -> Vec<(String, String)> {
    v.split(',')
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (f.trim().to_ascii_lowercase(), "true".to_string()),
        })
        .collect()
}

/// Stages the target needs (indexes), the target first.
fn reachable(st: &[Stage<'_>], target: usize) -> Vec<usize> {
    let find = |r: &str| -> Option<usize> {
        let r = r.to_ascii_lowercase();
        st.iter()
            .position(|s| s.name.as_deref() == Some(r.as_str()))
            .or_else(|| r.parse().ok().filter(|i| *i < st.len()))
    };
    let mut seen = vec![target];
    let mut k = 0;
    while k < seen.len() {
        let s = &st[seen[k]];
        let mut refs = vec![s.base.clone()];
        for i in s.body {
            for f in &i.flags {
                match (f.name.as_str(), &f.value) {
                    ("from", Some(v)) => refs.push(v.clone()),
                    ("mount", Some(v)) => {
                        refs.extend(mount_fields(v).into_iter().filter(|(k, _)| k == "from").map(|(_, v)| v))
                    }
                    _ => {}
                }
            }
        }
        for r in refs {
            if let Some(i) = find(&r).filter(|i| !seen.contains(i) && *i != seen[k]) {
                seen.push(i);
            }
        }
        k += 1;
    }
    seen
}

fn location(i: &Instruction) -> Value {
    json!({"sourceIndex": 0, "ranges": [{"start": {"line": i.start_line}, "end": {"line": i.end_line}}]})
}

/// Whether `text` refers to the variable `name` (`$name`, `${name…}`).
fn refers_to(text: &str, name: &str) -> bool {
    text.match_indices('$').any(|(at, _)| {
        let rest = &text[at + 1..];
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        rest.strip_prefix(name).is_some_and(|after| !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
    })
}

fn unquote(v: &str) -> String {
    let t = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = t.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    t.to_string()
}

/// The target stage's index: `--target` or the last stage.
fn target_index(st: &[Stage<'_>], target: Option<&str>) -> anyhow::Result<usize> {
    if st.is_empty() {
        bail!("The Dockerfile has no FROM instruction");
    }
    match target {
        None => Ok(st.len() - 1),
        Some(t) => st
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .with_context(|| format!("Unknown target `{t}`: no stage is named so")),
    }
}

/// The outline of `target` as BuildKit's JSON (`name`, `description`, `args`, `secrets`,
/// `ssh`, each with its `location`).
pub fn outline(df: &Dockerfile, source: &str, target: Option<&str>) -> anyhow::Result<Value> {
    let (global, st) = stages(df);
    let t = target_index(&st, target)?;
    let mut order = reachable(&st, t);
    order.sort_unstable();
    let mut args = Vec::new();
    let mut names = BTreeSet::new();
    let mut arg = |i: &Instruction, key: &str, value: &Option<String>| {
        if names.insert(key.to_string()) {
            let mut a = json!({"name": key, "location": location(i)});
            let d = description(source, i.start_line, key);
            if !d.is_empty() {
                a["description"] = d.into();
            }
            if let Some(v) = value {
                a["value"] = unquote(v).into();
            }
            args.push(a);
        }
    };
    // Global ARGs count when a FROM of the target's stages uses them.
    for i in global.iter().filter(|i| i.keyword == Keyword::Arg) {
        let Args::Pairs(pairs) = &i.args else { continue };
        for p in pairs {
            if order.iter().any(|&s| words(st[s].from).iter().any(|w| refers_to(w, &p.key))) {
                arg(i, &p.key, &p.value);
            }
        }
    }
    let (mut secrets, mut ssh) = (Vec::new(), Vec::new());
    for &s in &order {
        for i in st[s].body {
            if let (Keyword::Arg, Args::Pairs(pairs)) = (i.keyword, &i.args) {
                for p in pairs {
                    arg(i, &p.key, &p.value);
                }
            }
            if i.keyword != Keyword::Run {
                continue;
            }
            for f in i.flags.iter().filter(|f| f.name == "mount") {
                let fields = mount_fields(f.value.as_deref().unwrap_or(""));
                let get = |k: &str| fields.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
                let required = get("required").is_some_and(|v| v == "true");
                match get("type") {
                    Some("secret") => {
                        let id = get("id").map(str::to_string).or_else(|| {
                            get("target")
                                .or(get("dst"))
                                .or(get("destination"))
                                .map(|t| t.rsplit('/').next().unwrap_or(t).to_string())
                        });
                        if let Some(id) = id {
                            secrets.push(json!({"name": id, "required": required, "location": location(i)}));
                        }
                    }
                    Some("ssh") => {
                        let id = get("id").unwrap_or("default");
                        ssh.push(json!({"name": id, "required": required, "location": location(i)}));
                    }
                    _ => {}
                }
            }
        }
    }
    let stage = &st[t];
    let mut o = json!({});
    if let Some(n) = &stage.name {
        o["name"] = n.clone().into();
        let d = description(source, stage.from.start_line, n);
        if !d.is_empty() {
            o["description"] = d.into();
        }
    }
    if !args.is_empty() {
        o["args"] = args.into();
    }
    if !secrets.is_empty() {
        o["secrets"] = secrets.into();
    }
    if !ssh.is_empty() {
        o["ssh"] = ssh.into();
    }
    Ok(o)
}

/// The stages as BuildKit's targets JSON (`targets`: `name`, `description`, `base`,
/// `default`, `location`).
pub fn targets(df: &Dockerfile, source: &str) -> anyhow::Result<Value> {
    let (_, st) = stages(df);
    target_index(&st, None)?;
    let list: Vec<Value> = st
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let mut t = json!({"base": s.base, "location": location(s.from)});
            if let Some(n) = &s.name {
                t["name"] = n.clone().into();
                let d = description(source, s.from.start_line, n);
                if !d.is_empty() {
                    t["description"] = d.into();
                }
            }
            if k + 1 == st.len() {
                t["default"] = true.into();
            }
            t
        })
        .collect();
    Ok(json!({ "targets": list }))
}

/// Go's `text/tabwriter` with padding `pad`: every cell but a row's last padded to its
/// column's width.
fn table(rows: &[Vec<String>], pad: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 < r.len() {
                let _ = write!(out, "{cell:<w$}", w = widths[c] + pad);
            } else {
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// buildx's text for an outline.
pub fn outline_text(o: &Value) -> String {
    let mut out = String::new();
    if o.get("name").is_some() || o.get("description").is_some() {
        let name = o.get("name").map_or_else(|| "(default)".to_string(), s);
        let mut rows = vec![vec!["TARGET:".to_string(), name]];
        if let Some(d) = o.get("description") {
            rows.push(vec!["DESCRIPTION:".to_string(), s(d)]);
        }
        out += &table(&rows, 1);
        out.push('\n');
    }
    if let Some(args) = o["args"].as_array() {
        let mut rows = vec![vec!["BUILD ARG".into(), "VALUE".into(), "DESCRIPTION".into()]];
        rows.extend(args.iter().map(|a| vec![s(&a["name"]), s(&a["value"]), s(&a["description"])]));
        out += &table(&rows, 3);
        out.push('\n');
    }
    for (key, title) in [("secrets", "SECRET"), ("ssh", "SSH")] {
        if let Some(list) = o[key].as_array() {
            let mut rows = vec![vec![title.to_string(), "REQUIRED".into()]];
            rows.extend(list.iter().map(|x| {
                vec![s(&x["name"]), if x["required"].as_bool() == Some(true) { "true".into() } else { String::new() }]
            }));
            out += &table(&rows, 3);
            out.push('\n');
        }
    }
    out
}

/// buildx's text for a target list.
pub fn targets_text(t: &Value) -> String {
    let mut rows = vec![vec!["TARGET".to_string(), "DESCRIPTION".to_string()]];
    for x in t["targets"].as_array().into_iter().flatten() {
        let default = x["default"].as_bool() == Some(true);
        let name = match (x.get("name").map(s), default) {
            (None, true) => "(default)".to_string(),
            (Some(n), true) => format!("{n} (default)"),
            (n, false) => n.unwrap_or_default(),
        };
        rows.push(vec![name, s(&x["description"])]);
    }
    table(&rows, 1)
}

/// buildx's text for `--call check`: the rendered findings, then the compiler's warnings.
pub fn check_text(report: &LintReport, warnings: &[String]) -> String {
    let mut out = match report.warnings.len() + warnings.len() {
        0 => return "Check complete, no warnings found.\n".to_string(),
        1 => "Check complete, 1 warning has been found!\n".to_string(),
        n => format!("Check complete, {n} warnings have been found!\n"),
    };
    for w in &report.warnings {
        let _ = write!(out, "\n{}", w.render(&report.file, &report.text));
    }
    for w in warnings {
        let _ = write!(out, "\nWARNING: {w}\n");
    }
    out
}

/// The checks of one Dockerfile: findings, the Dockerfile's name and text (to render
/// them), and whether `error=true` makes them fail the build. Empty for a file an external
/// frontend reads (the checks are the Dockerfile's).
#[derive(Default)]
pub struct LintReport {
    pub warnings: Vec<cairn_compiler::lint::Warning>,
    pub file: String,
    pub text: String,
    pub error: bool,
}

impl LintReport {
    /// buildx's short form at the end of a build: `Rule: message (line N)`.
    pub fn short(&self) -> Vec<String> {
        self.warnings.iter().map(|w| format!("{}: {} (line {})", w.rule.name, w.message, w.start_line)).collect()
    }

    /// BuildKit's failure for `error=true`.
    pub fn violation(&self) -> Option<String> {
        self.error.then(|| cairn_compiler::lint::violation_error(&self.warnings)).flatten()
    }
}

/// Runs the Dockerfile checks on the file the build read and parsed (once, for the compiler
/// and for this): base images' environments come from `resolver` (already resolved by the
/// compile), `.dockerignore` from beside the Dockerfile or the context.
pub fn lint_parsed(
    input: &super::frontend::FrontendInput,
    df: &cairn_grammar::ast::Dockerfile,
    text: String,
    resolver: &dyn cairn_compiler::resolver::ImageResolver,
) -> anyhow::Result<LintReport> {
    use cairn_compiler::lint::{check, Config, LintOptions};
    let file = input.dockerfile.strip_prefix(".").unwrap_or(input.dockerfile).display().to_string();
    let arg = input.build_args.iter().rev().find(|(k, _)| k == "BUILDKIT_DOCKERFILE_CHECK").map(|(_, v)| v.as_str());
    let config = Config::of(df, arg).map_err(anyhow::Error::msg).with_context(|| format!("`{file}`"))?;
    let ignore = super::frontend::read_dockerignore(input.dockerfile, input.context)?;
    let filter = cairn_runtime::solve::pattern::Filter::new(&[], &ignore)
        .map_err(|e| anyhow::anyhow!("Invalid `.dockerignore` pattern: {e}"))?;
    let platform = input.platforms.first().cloned().unwrap_or_else(cairn_ir::Platform::host);
    let base_env = |image: &str| -> Option<Vec<String>> {
        let reference = cairn_ir::reference::normalize(image).ok()?;
        let config = resolver.resolve(&reference, &platform).ok()??;
        let env = config.config.env.unwrap_or_default();
        Some(env.iter().map(|kv| kv.split_once('=').map_or(kv.as_str(), |x| x.0).to_string()).collect())
    };
    let ignored = |p: &str| !filter.visible(p);
    let warnings = check(df, &text, &LintOptions { base_env: &base_env, ignored: &ignored }, &config);
    Ok(LintReport { warnings, file, text, error: config.error })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DF: &str = "# syntax=docker/dockerfile:1\nARG BASE=busybox\nARG UNUSED=1\n\n# base prepares the tools\nFROM $BASE AS base\n# VERSION the version to build\nARG VERSION=\"1.2\"\nRUN --mount=type=secret,id=npmrc,required=true --mount=type=ssh true\n\nFROM busybox AS other\nARG OTHER\n\n# release is the image we ship\nFROM base AS release\nCOPY --from=base /x /y\nRUN --mount=type=secret,target=/run/secrets/token true\n";

    #[test]
    fn outline_lists_what_the_target_uses_with_lines() {
        let df = cairn_grammar::parse("Dockerfile", DF).unwrap();
        let o = outline(&df, DF, None).unwrap();
        assert_eq!(o["name"], "release");
        assert_eq!(o["description"], "is the image we ship");
        let names: Vec<&str> = o["args"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["BASE", "VERSION"], "{o}");
        assert_eq!(o["args"][1]["value"], "1.2");
        assert_eq!(o["args"][1]["description"], "the version to build");
        assert_eq!(o["args"][1]["location"]["ranges"][0]["start"]["line"], 8);
        assert_eq!(
            o["secrets"][0],
            json!({"name": "npmrc", "required": true, "location": o["secrets"][0]["location"]})
        );
        assert_eq!(o["secrets"][1]["name"], "token");
        assert_eq!(o["ssh"][0]["name"], "default");
        let text = outline_text(&o);
        assert!(text.starts_with("TARGET:      release\nDESCRIPTION: is the image we ship\n\nBUILD ARG   VALUE     DESCRIPTION\nBASE        busybox   \nVERSION     1.2       the version to build\n\nSECRET   REQUIRED\nnpmrc    true\ntoken    \n"), "{text}");
    }

    #[test]
    fn targets_list_stages_with_their_comments() {
        let df = cairn_grammar::parse("Dockerfile", DF).unwrap();
        let text = targets_text(&targets(&df, DF).unwrap());
        assert_eq!(
            text,
            "TARGET            DESCRIPTION\nbase              prepares the tools\nother             \nrelease (default) is the image we ship\n"
        );
    }

    #[test]
    fn call_values_parse() {
        assert_eq!(parse_call("outline,format=json").unwrap(), Call { kind: CallKind::Outline, json: true });
        assert!(parse_call("build").unwrap_err().to_string().contains("unknown request `build`"));
        let none = LintReport { warnings: Vec::new(), file: "Dockerfile".into(), text: String::new(), error: false };
        assert_eq!(check_text(&none, &[]), "Check complete, no warnings found.\n");
        let one = check_text(&none, &["a warning".to_string()]);
        assert_eq!(one, "Check complete, 1 warning has been found!\n\nWARNING: a warning\n");
    }
}
