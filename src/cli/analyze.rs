//! `cairn analyze IMAGE` and `cairn build --analyze`: the runtime's layer analysis
//! ([`cairn_runtime::analyze`]) rendered with the Dockerfile line of every layer, the waste
//! with the instructions responsible and a fix, and dive's CI rules (`--ci`).
//!
//! The line of a layer comes from matching its history `created_by` (`RUN /bin/sh -c make
//! # buildkit`) against the Dockerfile's instructions in order: the history has no line
//! numbers, the Dockerfile the user names has them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cairn_runtime::analyze::{self, Analysis, WasteGroup, WasteKind};
use cairn_runtime::store::{ImageRecord, Store};
use serde_json::{json, Value};

use super::inspect::{ellipsis, find_image, go_size, open};

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// The image (`name[:tag]`, `name@sha256:…` or an image id)
    pub image: String,
    /// The Dockerfile the image was built from, to name the line of each layer
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// `text` (the default) or `json`
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub format: String,
    /// List every file each layer adds, modifies and deletes
    #[arg(long)]
    pub files: bool,
    /// Check the rules below and exit non-zero when one fails (dive's CI mode)
    #[arg(long)]
    pub ci: bool,
    /// Fail under this efficiency (a ratio, 0–1), or `disabled`
    #[arg(long, value_name = "RATIO", default_value = "0.9")]
    pub lowest_efficiency: String,
    /// Fail over this many wasted bytes (`20MB`, `1GiB`, a number), or `disabled`
    #[arg(long, value_name = "SIZE", default_value = "disabled")]
    pub highest_wasted_bytes: String,
    /// Fail when the wasted bytes of this build's layers over the bytes they add exceed
    /// this ratio (0–1), or `disabled`
    #[arg(long, value_name = "RATIO", default_value = "0.1")]
    pub highest_user_wasted_percent: String,
}

/// A layer's Dockerfile location: file name and first/last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub file: String,
    pub start: u32,
    pub end: u32,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.start == self.end {
            write!(f, "{}:{}", self.file, self.start)
        } else {
            write!(f, "{}:{}-{}", self.file, self.start, self.end)
        }
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The instruction of a history line as a person wrote it: `RUN make` for `RUN |1 A=b
/// /bin/sh -c make # buildkit`.
pub fn instruction(created_by: &str) -> String {
    let s = created_by.trim();
    let s = s.strip_suffix("# buildkit").unwrap_or(s).trim_end();
    let s = s.strip_prefix("/bin/sh -c #(nop) ").map_or(s, str::trim_start);
    let Some(rest) = s.strip_prefix("RUN ") else { return s.to_string() };
    let mut rest = rest;
    if let Some(n) =
        rest.strip_prefix('|').and_then(|r| r.split_once(' ')).and_then(|(n, r)| Some((n.parse::<usize>().ok()?, r)))
    {
        // `|N k=v …`: skip the N build args (values without spaces, as BuildKit prints them).
        let (count, mut r) = n;
        for _ in 0..count {
            r = r.split_once(' ').map_or("", |(_, t)| t);
        }
        rest = r;
    }
    let rest = rest.strip_prefix("/bin/sh -c ").unwrap_or(rest);
    format!("RUN {rest}")
}

/// Dockerfile lines for the layers of `a` above the base image, matching each history line
/// to the next instruction of the same keyword whose arguments it contains (or, failing
/// that, the next instruction of that keyword).
pub fn locate(dockerfile: &Path, a: &Analysis) -> anyhow::Result<Vec<Option<Line>>> {
    let src = std::fs::read_to_string(dockerfile)
        .with_context(|| format!("Cannot read the Dockerfile `{}`", dockerfile.display()))?;
    let name = dockerfile.display().to_string();
    let ast = cairn_grammar::parse(&name, &src).map_err(|e| anyhow::anyhow!("{e}"))?;
    use cairn_grammar::ast::Args;
    let ins: Vec<(&str, String, Line)> = ast
        .instructions
        .iter()
        .map(|i| {
            let text = match &i.args {
                Args::Shell(s) => s.clone(),
                Args::Exec(v) => v.join(" "),
                Args::Words(w) => w.iter().map(|w| w.node.as_str()).collect::<Vec<_>>().join(" "),
                _ => String::new(),
            };
            (i.keyword.as_str(), squash(&text), Line { file: name.clone(), start: i.start_line, end: i.end_line })
        })
        .collect();
    let mut next = 0;
    let mut out = Vec::new();
    for l in &a.layers {
        if l.base {
            out.push(None);
            continue;
        }
        let shown = squash(&instruction(&l.created_by));
        let kw = shown.split(' ').next().unwrap_or_default();
        let same = |j: &usize| ins[*j].0 == kw;
        let found = (next..ins.len())
            .filter(same)
            .find(|&j| !ins[j].1.is_empty() && shown.contains(&ins[j].1))
            .or_else(|| (next..ins.len()).find(same));
        out.push(found.map(|j| {
            next = j + 1;
            ins[j].2.clone()
        }));
    }
    Ok(out)
}

/// How to avoid the waste of `w` (given the instructions of the two layers).
pub fn fix(w: &WasteGroup, a: &Analysis) -> String {
    let by_kw = |i: usize| instruction(&a.layers[i].created_by).split(' ').next().unwrap_or_default().to_string();
    let (writer, later) = (by_kw(w.layer), by_kw(w.by));
    match w.kind {
        WasteKind::Deleted if a.layers[w.layer].base => {
            "the bytes come from the base image: deleting them does not make \
             the image smaller; use a smaller base, or copy what you need into a fresh stage"
                .into()
        }
        WasteKind::Deleted if writer == "COPY" || writer == "ADD" => format!(
            "leave it out of the {writer} (`.dockerignore` or a narrower source), or read it through \
             `RUN --mount=type=bind` so it never becomes a layer"
        ),
        WasteKind::Deleted if later == "RUN" => "create and delete it in one RUN (`RUN … && rm …`), or write it to a \
             cache or tmpfs mount (`RUN --mount=type=cache,target=DIR` or `--mount=type=tmpfs,target=DIR`) so it \
             never reaches a layer"
            .into(),
        WasteKind::Deleted => "do not create what a later step deletes".into(),
        WasteKind::Overwritten => "change the file in the step that creates it (`COPY --chmod`/`--chown`, or the same \
             RUN): any later change stores the whole file again"
            .into(),
        WasteKind::Duplicate => format!(
            "the same bytes are already in layer {}: produce them once (one COPY, or a link to the first copy)",
            w.layer
        ),
    }
}

fn what(k: WasteKind) -> &'static str {
    match k {
        WasteKind::Deleted => "deleted",
        WasteKind::Overwritten => "overwritten",
        WasteKind::Duplicate => "duplicated",
    }
}

/// A threshold: `disabled`, or a number.
fn threshold(flag: &str, v: &str, parse: impl Fn(&str) -> Option<f64>) -> anyhow::Result<Option<f64>> {
    if v == "disabled" || v.is_empty() {
        return Ok(None);
    }
    parse(v).map(Some).with_context(|| format!("Invalid `--{flag} {v}`"))
}

/// `20MB`, `1.5GiB`, `300` → bytes.
fn parse_size(s: &str) -> Option<f64> {
    let s = s.trim();
    let i = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let n: f64 = s[..i].parse().ok()?;
    let unit = s[i..].trim().to_ascii_lowercase();
    let m = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(n * m)
}

fn ratio(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| (0.0..=1.0).contains(v))
}

/// One CI rule's verdict: (rule, `PASS`/`FAIL`/`SKIP`, message).
type Verdict = (&'static str, &'static str, String);

fn ci_rules(a: &Analysis, args: &AnalyzeArgs) -> anyhow::Result<Vec<Verdict>> {
    let mut out = Vec::new();
    match threshold("highest-user-wasted-percent", &args.highest_user_wasted_percent, ratio)? {
        None => out.push(("highestUserWastedPercent", "SKIP", "rule disabled".into())),
        Some(t) if a.user_wasted_percent > t => out.push((
            "highestUserWastedPercent",
            "FAIL",
            format!(
                "too many bytes wasted, relative to the user bytes added (%-user-wasted-bytes={:.4} > threshold={t})",
                a.user_wasted_percent
            ),
        )),
        Some(_) => out.push(("highestUserWastedPercent", "PASS", String::new())),
    }
    match threshold("highest-wasted-bytes", &args.highest_wasted_bytes, parse_size)? {
        None => out.push(("highestWastedBytes", "SKIP", "rule disabled".into())),
        Some(t) if a.wasted_bytes as f64 > t => out.push((
            "highestWastedBytes",
            "FAIL",
            format!("too many bytes wasted (wasted-bytes={} > threshold={})", a.wasted_bytes, t as u64),
        )),
        Some(_) => out.push(("highestWastedBytes", "PASS", String::new())),
    }
    match threshold("lowest-efficiency", &args.lowest_efficiency, ratio)? {
        None => out.push(("lowestEfficiency", "SKIP", "rule disabled".into())),
        Some(t) if a.efficiency < t => out.push((
            "lowestEfficiency",
            "FAIL",
            format!("image efficiency is too low (efficiency={:.4} < threshold={t})", a.efficiency),
        )),
        Some(_) => out.push(("lowestEfficiency", "PASS", String::new())),
    }
    Ok(out)
}

fn percent(r: f64) -> String {
    format!("{:.2}%", r * 100.0)
}

/// The text report.
pub fn render(title: &str, a: &Analysis, lines: &[Option<Line>], files: bool) -> String {
    let mut o = String::new();
    let base_size: u64 = a.layers.iter().filter(|l| l.base).map(|l| l.size).sum();
    o.push_str(&format!(
        "{title}: {} layers, {}; base image: {} layers, {}\n\n",
        a.layers.len(),
        go_size(a.size),
        a.base_layers,
        go_size(base_size)
    ));
    let loc = |i: usize| lines.get(i).cloned().flatten().map(|l| format!("{l}  ")).unwrap_or_default();
    let mut rows = vec![["LAYER", "SIZE", "ADDED", "MODIFIED", "DELETED", "INSTRUCTION"].map(String::from).to_vec()];
    for l in &a.layers {
        let base = if l.base { " (base image)" } else { "" };
        rows.push(vec![
            l.index.to_string(),
            go_size(l.size),
            l.added.len().to_string(),
            l.modified.len().to_string(),
            l.deleted.len().to_string(),
            format!("{}{}{base}", loc(l.index), ellipsis(&instruction(&l.created_by), 70)),
        ]);
    }
    o.push_str(&super::inspect::table(&rows));
    o.push_str(&format!(
        "\nEfficiency: {}   wasted: {}   wasted by this build: {} ({} of the {} its layers add)\n",
        percent(a.efficiency),
        go_size(a.wasted_bytes),
        go_size(a.user_wasted_bytes),
        percent(a.user_wasted_percent),
        go_size(a.user_size)
    ));
    if files {
        for l in &a.layers {
            o.push_str(&format!("\nLayer {}: {}\n", l.index, instruction(&l.created_by)));
            for (mark, list) in [("A", &l.added), ("M", &l.modified), ("D", &l.deleted)] {
                for f in list {
                    o.push_str(&format!("  {mark} {:>9}  {}\n", go_size(f.size), f.path));
                }
            }
        }
    }
    if !a.waste.is_empty() {
        o.push_str("\nWasted space, largest first:\n");
    }
    for w in &a.waste {
        let more =
            if w.files > w.paths.len() { format!(" and {} more", w.files - w.paths.len()) } else { String::new() };
        o.push_str(&format!(
            "  {}  {} {} file{}: {}{more}\n",
            go_size(w.bytes),
            what(w.kind),
            w.files,
            if w.files == 1 { "" } else { "s" },
            w.paths.join(", ")
        ));
        let verb = match w.kind {
            WasteKind::Duplicate => "first stored by",
            _ => "written by",
        };
        o.push_str(&format!(
            "      {verb} layer {}: {}{}\n",
            w.layer,
            loc(w.layer),
            ellipsis(&instruction(&a.layers[w.layer].created_by), 90)
        ));
        o.push_str(&format!(
            "      {} by layer {}: {}{}\n",
            what(w.kind),
            w.by,
            loc(w.by),
            ellipsis(&instruction(&a.layers[w.by].created_by), 90)
        ));
        o.push_str(&format!("      fix: {}\n", fix(w, a)));
    }
    o
}

fn json_report(image: &ImageRecord, a: &Analysis, lines: &[Option<Line>], ci: Option<&[Verdict]>) -> Value {
    let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
    v["image"] = json!(image.config_digest.to_string());
    if let Some(layers) = v["layers"].as_array_mut() {
        for (i, l) in layers.iter_mut().enumerate() {
            l["instruction"] = json!(instruction(&a.layers[i].created_by));
            l["line"] = match lines.get(i).cloned().flatten() {
                Some(x) => json!({"file": x.file, "start": x.start, "end": x.end}),
                None => Value::Null,
            };
        }
    }
    if let Some(ws) = v["waste"].as_array_mut() {
        for (i, w) in ws.iter_mut().enumerate() {
            w["fix"] = json!(fix(&a.waste[i], a));
        }
    }
    if let Some(c) = ci {
        v["ci"] = c.iter().map(|(r, s, m)| json!({"rule": r, "result": s, "message": m})).collect();
    }
    v
}

/// Analyzes `rec` and prints the report (what `build --analyze` calls).
pub fn print_report(s: &Store, rec: &ImageRecord, title: &str, dockerfile: Option<&Path>) -> anyhow::Result<()> {
    let a = analyze::analyze_image(s, rec).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The image is built: a Dockerfile that cannot be read again only costs the lines.
    let lines = dockerfile.and_then(|d| locate(d, &a).map_err(|e| eprintln!("warning: {e:#}")).ok());
    let lines = lines.unwrap_or_else(|| vec![None; a.layers.len()]);
    print!("{}", render(title, &a, &lines, false));
    Ok(())
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let s = open()?;
    let rec = find_image(&s, &args.image)?;
    let a = analyze::analyze_image(&s, &rec).map_err(|e| anyhow::anyhow!("{e}"))?;
    let lines = match &args.file {
        Some(d) => locate(d, &a)?,
        None => vec![None; a.layers.len()],
    };
    let ci = if args.ci { Some(ci_rules(&a, &args)?) } else { None };
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&json_report(&rec, &a, &lines, ci.as_deref()))?),
        "text" | "" => {
            print!("{}", render(&format!("Image {}", args.image), &a, &lines, args.files));
            if let Some(c) = &ci {
                println!("\nResults:");
                for (rule, res, msg) in c {
                    if msg.is_empty() {
                        println!("  {res}: {rule}");
                    } else {
                        println!("  {res}: {rule}: {msg}");
                    }
                }
                let n = |r: &str| c.iter().filter(|x| x.1 == r).count();
                println!(
                    "Result:{} [Total:{}] [Passed:{}] [Failed:{}] [Warn:0] [Skipped:{}]",
                    if n("FAIL") > 0 { "FAIL" } else { "PASS" },
                    c.len(),
                    n("PASS"),
                    n("FAIL"),
                    n("SKIP")
                );
            }
        }
        other => bail!("Unsupported `--format {other}`: expected text or json"),
    }
    if let Some(c) = &ci {
        let failed: Vec<&str> = c.iter().filter(|x| x.1 == "FAIL").map(|x| x.0).collect();
        if !failed.is_empty() {
            bail!("`cairn analyze --ci`: {} failed", failed.join(", "));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_from_history_lines() {
        assert_eq!(instruction("RUN /bin/sh -c make all # buildkit"), "RUN make all");
        assert_eq!(instruction("RUN |2 A=1 B=2 /bin/sh -c echo $A # buildkit"), "RUN echo $A");
        assert_eq!(instruction("COPY src/ /app # buildkit"), "COPY src/ /app");
        assert_eq!(instruction("/bin/sh -c #(nop)  CMD [\"sh\"]"), "CMD [\"sh\"]");
        assert_eq!(instruction("WORKDIR /w"), "WORKDIR /w");
    }

    #[test]
    fn sizes_and_ratios_for_thresholds() {
        assert_eq!(parse_size("20MB"), Some(20e6));
        assert_eq!(parse_size("1KiB"), Some(1024.0));
        assert_eq!(parse_size("300"), Some(300.0));
        assert_eq!(parse_size("3 parsecs"), None);
        assert_eq!(ratio("0.5"), Some(0.5));
        assert_eq!(ratio("5"), None);
        assert_eq!(threshold("x", "disabled", ratio).unwrap(), None);
        assert!(threshold("x", "lots", ratio).unwrap_err().to_string().contains("Invalid `--x lots`"));
    }
}
