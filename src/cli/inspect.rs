//! `cairn history` and `cairn inspect`, in docker's shapes, and the docker formatting both
//! share with `cairn images`: sizes (`4.26MB`), ages (`2 weeks ago`), `tabwriter` columns,
//! a Go-template subset for `--format` and `path.Match` globs for `--filter reference=`.

use anyhow::{bail, Context};
use cairn_runtime::inspect::{self, HistoryEntry};
use cairn_runtime::store::{default_root, ImageRecord, Store};
use serde_json::{json, Value};

pub(crate) fn open() -> anyhow::Result<Store> {
    let root = default_root();
    Store::open(&root).map_err(|e| anyhow::anyhow!("Cannot open the store at `{}`: {e}", root.display()))
}

/// The record of `reference` in the store, or an error naming it.
pub(crate) fn find_image(s: &Store, reference: &str) -> anyhow::Result<ImageRecord> {
    s.get_image(reference)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_context(|| format!("No such image `{reference}` in the store (see `cairn images`)"))
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// The image (`name[:tag]`, `name@sha256:…` or an image id)
    pub image: String,
    /// Do not truncate ids and commands
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Print sizes and dates in human readable form (`-H=false` prints bytes and RFC 3339)
    #[arg(short = 'H', long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set, value_name = "BOOL")]
    pub human: bool,
    /// Print one JSON object per entry (`json`), or the table (`table`, the default)
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    pub format: String,
    /// Print only image ids
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The images (`name[:tag]`, `name@sha256:…` or an image id)
    #[arg(required = true)]
    pub images: Vec<String>,
    /// A Go template (field paths and `json` only: `{{.Id}}`, `{{.Config.Env}}`,
    /// `{{json .Config}}`), or `json` for the full document
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
}

// ---------------------------------------------------------------- docker's formatting

/// go-units `HumanSizeWithPrecision(n, 3)`: decimal units, three significant digits
/// (`4.26MB`, `999kB`, `1e+03kB` as Go's `%.3g` prints 999.9 kB).
pub(crate) fn go_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    format!("{}{}", go_g3(v), units[u])
}

/// Go's `%.3g` for a value in [0, 1000).
fn go_g3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // Rounded to three significant digits, Go switches to an exponent at 1000.
    let digits = 3 - 1 - v.abs().log10().floor() as i32;
    let rounded = (v * 10f64.powi(digits)).round() / 10f64.powi(digits);
    if rounded >= 1000.0 {
        return "1e+03".into();
    }
    let s = format!("{:.*}", digits.max(0) as usize, rounded);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// go-units `HumanDuration`: `Less than a second`, `About a minute`, `3 weeks`…
pub(crate) fn go_duration(secs: i64) -> String {
    let s = secs.max(0);
    let minutes = s / 60;
    let hours = ((s as f64) / 3600.0 + 0.5) as i64;
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `2 weeks ago`, or `N/A` without a time.
pub(crate) fn since(created: Option<i64>) -> String {
    match created {
        Some(t) => format!("{} ago", go_duration(now_unix() - t)),
        None => "N/A".into(),
    }
}

/// docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub(crate) fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// `sha256:0123…` → the first 12 hex digits (anything else unchanged), as `TruncateID`.
pub(crate) fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    if hex.len() > 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex[..12].to_string()
    } else {
        hex.to_string()
    }
}

/// Rows in columns as docker's `tabwriter` (minimum width 10, padding 3) lays them out.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0).max(7) + 3)
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Go's `path.Match` on the whole of `name`: `*` any run of non-`/`, `?` one non-`/`,
/// `[a-z]`/`[^…]` classes, `\` escapes.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, chars consumed including ']').
        let mut i = 0;
        let negate = p.first() == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let mut lo = p[i];
            if lo == '\\' {
                i += 1;
                lo = *p.get(i)?;
            }
            let mut hi = lo;
            if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&x| x != ']') {
                hi = p[i + 2];
                if hi == '\\' {
                    hi = *p.get(i + 3)?;
                    i += 1;
                }
                i += 2;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 1;
        }
        None
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).take_while(|&k| k == 0 || n[k - 1] != '/').any(|k| go(&p[1..], &n[k..])),
            Some('?') => n.first().is_some_and(|&c| c != '/') && go(&p[1..], &n[1..]),
            Some('[') => match n.first() {
                Some(&c) if c != '/' => match class(&p[1..], c) {
                    Some((true, used)) => go(&p[1 + used..], &n[1..]),
                    _ => false,
                },
                _ => false,
            },
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// docker's `reference` filter (`FamiliarMatch`): the pattern against the familiar name
/// with its tag (`busybox:latest`), then without it (`busybox`).
pub(crate) fn reference_matches(pattern: &str, normalized: &str) -> bool {
    let familiar = cairn_ir::reference::familiar(normalized);
    glob_match(pattern, &familiar)
        || glob_match(pattern, &cairn_ir::reference::familiar(inspect::repository_of(normalized)))
}

// ---------------------------------------------------------------- Go templates

/// One piece of a parsed template.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// `{{.A.B}}` (an empty path is `{{.}}`).
    Field(Vec<String>),
    /// `{{json .A.B}}`.
    Json(Vec<String>),
}

fn unsupported(template: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "Unsupported template `{template}`: cairn's `--format` understands field paths \
         (`{{{{.Id}}}}`, `{{{{.Config.Env}}}}`) and `json` (`{{{{json .Config}}}}`), nothing more"
    )
}

fn parse_path(s: &str, template: &str) -> anyhow::Result<Vec<String>> {
    let unsupported = || unsupported(template);
    if s == "." {
        return Ok(Vec::new());
    }
    let rest = s.strip_prefix('.').ok_or_else(unsupported)?;
    let parts: Vec<String> = rest.split('.').map(str::to_string).collect();
    if parts.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_')) {
        return Err(unsupported());
    }
    Ok(parts)
}

fn parse_template(t: &str) -> anyhow::Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        if i > 0 {
            out.push(Piece::Text(rest[..i].to_string()));
        }
        let Some(j) = rest[i..].find("}}") else { bail!("Invalid template `{t}`: `{{{{` without `}}}}`") };
        let action = rest[i + 2..i + j].trim();
        let words: Vec<&str> = action.split_whitespace().collect();
        out.push(match words.as_slice() {
            [path] => Piece::Field(parse_path(path, t)?),
            ["json", path] => Piece::Json(parse_path(path, t)?),
            _ => return Err(unsupported(t)),
        });
        rest = &rest[i + j + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

/// A value printed as Go's `fmt` prints the matching Go value: slices `[a b]`, maps
/// `map[k:v]` (sorted), strings bare.
fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            format!("map[{}]", m.iter().map(|(k, v)| format!("{k}:{}", go_print(v))).collect::<Vec<_>>().join(" "))
        }
        other => other.to_string(),
    }
}

/// Renders `template` (see [`Piece`]) against `v`; a missing field prints `<no value>`.
pub(crate) fn render_template(template: &str, v: &Value) -> anyhow::Result<String> {
    let lookup = |path: &[String]| path.iter().try_fold(v, |cur, k| cur.get(k));
    let mut out = String::new();
    for p in parse_template(template)? {
        match p {
            Piece::Text(t) => out.push_str(&t),
            Piece::Field(path) => out.push_str(&lookup(&path).map_or("<no value>".into(), go_print)),
            Piece::Json(path) => out.push_str(&lookup(&path).map_or("null".into(), |x| x.to_string())),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- commands

fn history_row(e: &HistoryEntry, a: &HistoryArgs) -> Value {
    let id = match &e.id {
        Some(d) if a.no_trunc => d.to_string(),
        Some(d) => short_id(&d.to_string()),
        None => "<missing>".into(),
    };
    let created_at = e.created_unix.map(inspect::format_time).unwrap_or_default();
    let created_by = e.created_by.replace('\t', " ");
    json!({
        "ID": id,
        "CreatedAt": created_at,
        "CreatedSince": if a.human { since(e.created_unix) } else { created_at.clone() },
        "CreatedBy": if a.no_trunc { created_by } else { ellipsis(&created_by, 45) },
        "Size": if a.human { go_size(e.size) } else { e.size.to_string() },
        "Comment": e.comment,
    })
}

pub fn history(a: HistoryArgs) -> anyhow::Result<()> {
    let s = open()?;
    let rec = find_image(&s, &a.image)?;
    let entries = inspect::image_history(&s, &rec).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rows: Vec<Value> = entries.iter().map(|e| history_row(e, &a)).collect();
    match a.format.as_str() {
        _ if a.quiet => rows.iter().for_each(|r| println!("{}", r["ID"].as_str().unwrap_or_default())),
        "json" => rows.iter().for_each(|r| println!("{r}")),
        "" | "table" => {
            let mut cells = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(String::from).to_vec()];
            for r in &rows {
                cells.push(
                    ["ID", "CreatedSince", "CreatedBy", "Size", "Comment"]
                        .iter()
                        .map(|k| r[*k].as_str().unwrap_or_default().to_string())
                        .collect(),
                );
            }
            print!("{}", table(&cells));
        }
        t => rows.iter().try_for_each(|r| render_template(t, r).map(|line| println!("{line}")))?,
    }
    Ok(())
}

pub fn inspect(a: InspectArgs) -> anyhow::Result<()> {
    let s = open()?;
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for i in &a.images {
        match s.get_image(i).map_err(|e| anyhow::anyhow!("{e}"))? {
            Some(rec) => docs.push(inspect::inspect_image(&s, &rec).map_err(|e| anyhow::anyhow!("{e}"))?),
            None => missing.push(i.as_str()),
        }
    }
    match a.format.as_deref() {
        None | Some("json") => println!("{}", serde_json::to_string_pretty(&Value::Array(docs))?),
        Some(t) => {
            for d in &docs {
                println!("{}", render_template(t, d)?);
            }
        }
    }
    if !missing.is_empty() {
        bail!("No such image: {}", missing.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_as_go_units_prints_them() {
        assert_eq!(go_size(0), "0B");
        assert_eq!(go_size(999), "999B");
        assert_eq!(go_size(4_261_000), "4.26MB");
        assert_eq!(go_size(1_500), "1.5kB");
        assert_eq!(go_size(209_715_200), "210MB");
        assert_eq!(go_size(999_900), "1e+03kB");
        assert_eq!(go_size(12_345), "12.3kB");
        assert_eq!(go_duration(0), "Less than a second");
        assert_eq!(go_duration(59), "59 seconds");
        assert_eq!(go_duration(90), "About a minute");
        assert_eq!(go_duration(3600), "About an hour");
        assert_eq!(go_duration(3 * 86_400), "3 days");
        assert_eq!(go_duration(21 * 86_400), "3 weeks");
        assert_eq!(go_duration(3 * 365 * 86_400), "3 years");
    }

    #[test]
    fn ids_and_ellipsis() {
        assert_eq!(short_id(&format!("sha256:{}", "ab".repeat(32))), "abababababab");
        assert_eq!(short_id("<missing>"), "<missing>");
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abc", 4), "abc");
    }

    #[test]
    fn globs_as_go_path_match() {
        assert!(glob_match("busy*", "busybox"));
        assert!(!glob_match("busy*", "busybox/x"));
        assert!(glob_match("*/app:?", "team/app:1"));
        assert!(glob_match("[a-c]pp", "bpp"));
        assert!(!glob_match("[^a-c]pp", "bpp"));
        assert!(glob_match("a\\*b", "a*b"));
        assert!(!glob_match("a", "ab"));
        assert!(reference_matches("busybox", "docker.io/library/busybox:latest"));
        assert!(reference_matches("busybox:l*", "docker.io/library/busybox:latest"));
        assert!(reference_matches("localhost:5000/*", "localhost:5000/app:1"));
        assert!(!reference_matches("bus", "docker.io/library/busybox:latest"));
    }

    #[test]
    fn templates_field_paths_and_json_only() {
        let v =
            json!({"Id": "sha256:ab", "Config": {"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "1"}}, "Size": 3});
        assert_eq!(render_template("{{.Id}}", &v).unwrap(), "sha256:ab");
        assert_eq!(render_template("env={{ .Config.Env }}!", &v).unwrap(), "env=[A=1 B=2]!");
        assert_eq!(render_template("{{.Config.Labels}}", &v).unwrap(), "map[a:1 b:2]");
        assert_eq!(render_template("{{json .Config.Env}}", &v).unwrap(), r#"["A=1","B=2"]"#);
        assert_eq!(render_template("{{.Size}} {{.Nope}}", &v).unwrap(), "3 <no value>");
        for bad in ["{{range .Config.Env}}x{{end}}", "{{index .Config 1}}", "{{.Config.Env | len}}", "{{"] {
            let e = render_template(bad, &v).unwrap_err().to_string();
            assert!(e.contains("Unsupported template") || e.contains("without"), "{bad}: {e}");
        }
    }
}
