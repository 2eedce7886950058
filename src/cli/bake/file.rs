//! Reading a bake file (`docker-bake.hcl`, `docker-bake.json`, or a compose file's build
//! sections through [`super::compose`]) into resolved targets:
//! variables (defaults, overridden by the environment as buildx does), `${VAR}`
//! interpolation, groups and `inherits`.
//!
//! Both forms become one JSON value before anything else looks at them, so the rest of
//! bake reads a single shape: HCL through `hcl-rs` (its parser gives `line:col` for syntax
//! errors, its evaluator does the variables and interpolation), JSON strings through the
//! same crate's template evaluator, so `${VAR}` means the same in both.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use hcl::eval::{Context as EvalContext, Evaluate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A target's attributes as written (each optional, so `inherits` can tell "unset" from
/// "empty"). Unknown attributes are refused, not ignored.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<BTreeMap<String, Scalar>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contexts: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Vec<String>>,
    #[serde(default, rename = "no-cache", skip_serializing_if = "Option::is_none")]
    pub no_cache: Option<bool>,
    /// `--cache-from` specs (`type=registry,ref=…`, `type=local,src=…`, or a bare ref).
    #[serde(default, rename = "cache-from", skip_serializing_if = "Option::is_none")]
    pub cache_from: Option<Vec<String>>,
    /// `--cache-to` specs.
    #[serde(default, rename = "cache-to", skip_serializing_if = "Option::is_none")]
    pub cache_to: Option<Vec<String>>,
    #[serde(default, skip_serializing)]
    pub inherits: Vec<String>,
}

/// An arg value: a string, number or bool in the file, a string to the build.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    String(String),
    Number(serde_json::Number),
    Bool(bool),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::String(s) => s.clone(),
            Scalar::Number(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    #[serde(default)]
    targets: Vec<String>,
}

/// A bake file, read: its groups and targets (targets not yet merged with what they
/// inherit).
#[derive(Debug)]
pub struct BakeFile {
    pub path: String,
    groups: BTreeMap<String, Vec<String>>,
    targets: BTreeMap<String, Target>,
}

/// Reads `path`: `.json` as JSON, `.yaml`/`.yml` as a compose file, anything else as HCL;
/// `env` gives variable overrides (and compose's interpolation).
pub fn read(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<BakeFile> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("Cannot read bake file `{shown}`"))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let value = if ext == "json" {
        from_json(&shown, &text, env)?
    } else if ext == "yaml" || ext == "yml" {
        super::compose::from_compose(&shown, &text, env)?
    } else {
        from_hcl(&shown, &text, env)?
    };
    from_value(shown, value)
}

/// A variable's value from the environment, typed like its default (buildx parses a
/// bool or number default's override as one).
fn override_value(default: &hcl::Value, text: String) -> hcl::Value {
    match default {
        hcl::Value::Bool(_) => text.parse::<bool>().map(hcl::Value::Bool).unwrap_or(hcl::Value::String(text)),
        hcl::Value::Number(_) => text
            .parse::<i64>()
            .map(hcl::Value::from)
            .or_else(|_| text.parse::<f64>().map(hcl::Value::from))
            .unwrap_or(hcl::Value::String(text)),
        _ => hcl::Value::String(text),
    }
}

/// The evaluation context: each declared variable, its default or the environment's value.
fn variables(
    file: &str,
    declared: Vec<(String, Option<hcl::Value>)>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<EvalContext<'static>> {
    let mut ctx = EvalContext::new();
    for (name, default) in declared {
        let default = default.unwrap_or(hcl::Value::String(String::new()));
        let value = match env(&name) {
            Some(v) => override_value(&default, v),
            None => default,
        };
        if name.is_empty() {
            bail!("{file}: a variable needs a name");
        }
        ctx.declare_var(name, value);
    }
    Ok(ctx)
}

fn from_hcl(file: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Value> {
    let body = hcl::parse(text).map_err(|e| match e {
        hcl::Error::Parse(p) => {
            let l = p.location();
            anyhow::anyhow!("{file}:{}:{}: {}", l.line(), l.column(), p.message())
        }
        other => anyhow::anyhow!("{file}: {other}"),
    })?;
    let mut declared = Vec::new();
    for block in body.blocks().filter(|b| b.identifier() == "variable") {
        let [label] = block.labels() else { bail!("{file}: a `variable` block takes one name") };
        let default = match block.body().attributes().find(|a| a.key() == "default") {
            Some(a) => Some(
                a.expr()
                    .evaluate(&EvalContext::new())
                    .map_err(|e| anyhow::anyhow!("{file}: variable `{}`: {e}", label.as_str()))?,
            ),
            None => None,
        };
        declared.push((label.as_str().to_string(), default));
    }
    let ctx = variables(file, declared, env)?;
    let body = body.evaluate(&ctx).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let value: hcl::Value = hcl::from_body(body).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    serde_json::to_value(value).with_context(|| format!("{file}: cannot convert"))
}

fn from_json(file: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Value> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{file}:{}:{}: {e}", e.line(), e.column()))?;
    let mut declared = Vec::new();
    if let Some(vars) = value.get("variable").and_then(Value::as_object) {
        for (name, v) in vars {
            let default = v.get("default").map(|d| serde_json::from_value::<hcl::Value>(d.clone())).transpose()?;
            declared.push((name.clone(), default));
        }
    }
    let ctx = variables(file, declared, env)?;
    interpolate(file, &mut value, &ctx)?;
    Ok(value)
}

/// `${VAR}` in every string of a JSON bake file.
fn interpolate(file: &str, v: &mut Value, ctx: &EvalContext) -> anyhow::Result<()> {
    match v {
        Value::String(s) if s.contains("${") => {
            let t = s.parse::<hcl::Template>().map_err(|e| anyhow::anyhow!("{file}: `{s}`: {e}"))?;
            *s = t.evaluate(ctx).map_err(|e| anyhow::anyhow!("{file}: `{s}`: {e}"))?;
        }
        Value::Array(a) => a.iter_mut().try_for_each(|x| interpolate(file, x, ctx))?,
        Value::Object(o) => o.values_mut().try_for_each(|x| interpolate(file, x, ctx))?,
        _ => {}
    }
    Ok(())
}

fn from_value(path: String, value: Value) -> anyhow::Result<BakeFile> {
    let Value::Object(top) = value else { bail!("{path}: expected blocks `target`, `group` and `variable`") };
    let mut file = BakeFile { path, groups: BTreeMap::new(), targets: BTreeMap::new() };
    for (key, v) in top {
        match key.as_str() {
            "variable" => {}
            "group" => {
                for (name, g) in objects(&file.path, "group", v)? {
                    let g: Group =
                        serde_json::from_value(g).map_err(|e| anyhow::anyhow!("{}: group `{name}`: {e}", file.path))?;
                    file.groups.insert(name, g.targets);
                }
            }
            "target" => {
                for (name, t) in objects(&file.path, "target", v)? {
                    let t: Target = serde_json::from_value(t)
                        .map_err(|e| anyhow::anyhow!("{}: target `{name}`: {e}", file.path))?;
                    file.targets.insert(name, t);
                }
            }
            other => bail!("{}: unsupported block `{other}` (cairn bake reads target, group and variable)", file.path),
        }
    }
    Ok(file)
}

/// The named blocks of one kind: `{"name": {...}}`.
fn objects(file: &str, kind: &str, v: Value) -> anyhow::Result<Vec<(String, Value)>> {
    match v {
        Value::Object(o) => Ok(o.into_iter().collect()),
        _ => bail!("{file}: `{kind}` blocks need a name"),
    }
}

impl BakeFile {
    /// Adds a later file: its targets override (attribute by attribute) and its groups
    /// replace the earlier file's.
    pub fn extend(&mut self, later: BakeFile) {
        self.groups.extend(later.groups);
        for (name, t) in later.targets {
            match self.targets.get_mut(&name) {
                Some(old) => {
                    if !t.inherits.is_empty() {
                        old.inherits = t.inherits.clone();
                    }
                    merge(old, t);
                }
                None => {
                    self.targets.insert(name, t);
                }
            }
        }
        self.path = format!("{}, {}", self.path, later.path);
    }

    /// The targets `names` (targets or groups; none: the group or target `default`) name,
    /// each once, in the order first named.
    pub fn select(&self, names: &[String]) -> anyhow::Result<Vec<String>> {
        let names = match names {
            [] if self.groups.contains_key("default") || self.targets.contains_key("default") => {
                vec!["default".to_string()]
            }
            [] => bail!("{}: no target named: give one, or define a `default` group", self.path),
            n => n.to_vec(),
        };
        let mut out = Vec::new();
        for n in &names {
            self.expand(n, &mut Vec::new(), &mut out)?;
        }
        Ok(out)
    }

    fn expand(&self, name: &str, stack: &mut Vec<String>, out: &mut Vec<String>) -> anyhow::Result<()> {
        if stack.iter().any(|s| s == name) {
            bail!("{}: group `{name}` contains itself", self.path);
        }
        if let Some(members) = self.groups.get(name) {
            stack.push(name.to_string());
            for m in members {
                self.expand(m, stack, out)?;
            }
            stack.pop();
            return Ok(());
        }
        if !self.targets.contains_key(name) {
            let known: Vec<&str> = self.targets.keys().chain(self.groups.keys()).map(String::as_str).collect();
            bail!("{}: no target or group named `{name}` (it has: {})", self.path, known.join(", "));
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
        Ok(())
    }

    /// Target `name` merged with what it inherits (parents in order, then its own
    /// attributes; `args` and `contexts` merge key by key, the rest replaces).
    pub fn resolve(&self, name: &str) -> anyhow::Result<Target> {
        self.resolve_in(name, &mut Vec::new())
    }

    fn resolve_in(&self, name: &str, stack: &mut Vec<String>) -> anyhow::Result<Target> {
        if stack.iter().any(|s| s == name) {
            bail!("{}: target `{name}` inherits from itself (through {})", self.path, stack.join(" → "));
        }
        let Some(own) = self.targets.get(name) else {
            bail!(
                "{}: target `{}` inherits from `{name}`, which is not a target",
                self.path,
                stack.last().map_or("", |s| s)
            );
        };
        stack.push(name.to_string());
        let mut t = Target::default();
        for parent in &own.inherits {
            let p = self.resolve_in(parent, stack)?;
            merge(&mut t, p);
        }
        stack.pop();
        merge(&mut t, Target { inherits: Vec::new(), ..own.clone() });
        Ok(t)
    }
}

fn merge(into: &mut Target, from: Target) {
    fn map<V>(a: &mut Option<BTreeMap<String, V>>, b: Option<BTreeMap<String, V>>) {
        if let Some(b) = b {
            a.get_or_insert_with(BTreeMap::new).extend(b);
        }
    }
    map(&mut into.args, from.args);
    map(&mut into.contexts, from.contexts);
    macro_rules! replace {
        ($($f:ident),*) => { $( if from.$f.is_some() { into.$f = from.$f; } )* };
    }
    replace!(context, dockerfile, tags, target, platforms, output, no_cache, cache_from, cache_to);
}
