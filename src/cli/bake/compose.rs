//! The `build:` sections of a compose file (`compose.yaml`, `docker-compose.yml`, …) as
//! bake targets, as buildx reads them: one target per service that has a `build`, named
//! after the service, all of them in the group `default`. The service's `image` is the
//! first tag. Strings are interpolated from the environment as compose does (`$VAR`,
//! `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR:+alt}`, and
//! `$$` for a dollar), before anything else reads them.
//!
//! A `build` key cairn bake cannot honour (secrets, ssh, labels, network, …) is an error
//! naming the service and the key, never silently dropped.

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

/// The keys of a service's `build` this reader understands, and their bake names.
const KEYS: [(&str, &str); 10] = [
    ("context", "context"),
    ("dockerfile", "dockerfile"),
    ("args", "args"),
    ("target", "target"),
    ("tags", "tags"),
    ("platforms", "platforms"),
    ("additional_contexts", "contexts"),
    ("no_cache", "no-cache"),
    ("cache_from", "cache-from"),
    ("cache_to", "cache-to"),
];

/// A compose file's build sections as a bake value (`{"target": …, "group": …}`).
pub fn from_compose(file: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Value> {
    let mut doc: Value = yaml_serde::from_str(text).map_err(|e| match e.location() {
        Some(l) => anyhow::anyhow!("{file}:{}:{}: {e}", l.line(), l.column()),
        None => anyhow::anyhow!("{file}: {e}"),
    })?;
    interpolate(file, &mut doc, env)?;
    let Some(services) = doc.get("services").and_then(Value::as_object) else {
        bail!("{file}: no `services`");
    };
    let mut targets = Map::new();
    for (name, svc) in services {
        let Some(build) = svc.get("build") else { continue };
        let mut t = Map::new();
        match build {
            Value::String(ctx) => {
                t.insert("context".into(), json!(ctx));
            }
            Value::Object(b) => {
                for (k, v) in b {
                    let at = || format!("{file}: service `{name}`: build.{k}");
                    let Some((_, bake)) = KEYS.iter().find(|(c, _)| c == k) else {
                        bail!("{}: not supported by cairn bake", at());
                    };
                    let v = match k.as_str() {
                        "args" => Value::Object(pairs(v, env).with_context(at)?),
                        "additional_contexts" => Value::Object(pairs(v, &|_| None).with_context(at)?),
                        _ => v.clone(),
                    };
                    t.insert(bake.to_string(), v);
                }
            }
            _ => bail!("{file}: service `{name}`: `build` is a path or a map"),
        }
        if let Some(image) = svc.get("image").and_then(Value::as_str) {
            let mut tags = vec![json!(image)];
            if let Some(Value::Array(more)) = t.remove("tags") {
                tags.extend(more);
            }
            t.insert("tags".into(), Value::Array(tags));
        }
        targets.insert(name.clone(), Value::Object(t));
    }
    if targets.is_empty() {
        bail!("{file}: no service has a `build` section");
    }
    let names: Vec<&String> = targets.keys().collect();
    Ok(json!({ "group": { "default": { "targets": names } }, "target": targets }))
}

/// `args` and `additional_contexts`: a map, or a list of `KEY=VALUE` (a bare `KEY` takes
/// the environment's value, and is left out without one, as compose does).
fn pairs(v: &Value, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let v = match v {
                    Value::Null => match env(k) {
                        Some(e) => e,
                        None => continue,
                    },
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => v.to_string(),
                    _ => bail!("`{k}`: expected a string"),
                };
                out.insert(k.clone(), Value::String(v));
            }
        }
        Value::Array(items) => {
            for item in items {
                let Some(s) = item.as_str() else { bail!("expected `KEY=VALUE` strings") };
                match s.split_once('=') {
                    Some((k, v)) => out.insert(k.to_string(), json!(v)),
                    None => match env(s) {
                        Some(e) => out.insert(s.to_string(), json!(e)),
                        None => None,
                    },
                };
            }
        }
        _ => bail!("expected a map or a list of `KEY=VALUE`"),
    }
    Ok(out)
}

/// Compose interpolation in every string of `v`.
fn interpolate(file: &str, v: &mut Value, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    match v {
        Value::String(s) if s.contains('$') => {
            *s = expand(s, env).map_err(|e| anyhow::anyhow!("{file}: `{s}`: {e}"))?;
        }
        Value::Array(a) => a.iter_mut().try_for_each(|x| interpolate(file, x, env))?,
        Value::Object(o) => o.values_mut().try_for_each(|x| interpolate(file, x, env))?,
        _ => {}
    }
    Ok(())
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// One string: `$$`, `$NAME`, `${NAME}` and `${NAME<op>word}` with `:-` `-` `:?` `?` `:+`
/// `+` (the word itself interpolated).
fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = r
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(j, _)| j)
                .ok_or("missing `}`")?;
            out.push_str(&substitute(&r[..end], env)?);
            rest = &r[end + 1..];
        } else {
            let n = rest.find(|c: char| !is_name(c)).unwrap_or(rest.len());
            if n == 0 {
                out.push('$');
            } else {
                out.push_str(&env(&rest[..n]).unwrap_or_default());
            }
            rest = &rest[n..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The inside of `${…}`.
fn substitute(inner: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let n = inner.find(|c: char| !is_name(c)).unwrap_or(inner.len());
    let (name, op) = inner.split_at(n);
    if name.is_empty() {
        return Err(format!("invalid variable `${{{inner}}}`"));
    }
    let value = env(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let word = |w: &str| expand(w, env);
    Ok(match op {
        "" => value.unwrap_or_default(),
        _ if op.starts_with(":-") => {
            if set_nonempty {
                value.unwrap_or_default()
            } else {
                word(&op[2..])?
            }
        }
        _ if op.starts_with('-') => value.map_or_else(|| word(&op[1..]), Ok)?,
        _ if op.starts_with(":+") => {
            if set_nonempty {
                word(&op[2..])?
            } else {
                String::new()
            }
        }
        _ if op.starts_with('+') => {
            if value.is_some() {
                word(&op[1..])?
            } else {
                String::new()
            }
        }
        _ if op.starts_with(":?") || op.starts_with('?') => {
            let msg = op.trim_start_matches(':')[1..].to_string();
            let ok = if op.starts_with(':') { set_nonempty } else { value.is_some() };
            if !ok {
                let msg = if msg.is_empty() { "is not set".to_string() } else { word(&msg)? };
                return Err(format!("{name}: {msg}"));
            }
            value.unwrap_or_default()
        }
        _ => return Err(format!("invalid substitution `${{{inner}}}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "TAG" => Some("1.2".into()),
            "EMPTY" => Some(String::new()),
            "FROM_ENV" => Some("e".into()),
            _ => None,
        }
    }

    #[test]
    fn interpolation_as_compose_does_it() {
        let x = |s: &str| expand(s, &env).unwrap();
        assert_eq!(x("app:$TAG"), "app:1.2");
        assert_eq!(x("app:${TAG}-x"), "app:1.2-x");
        assert_eq!(x("${NOPE:-dev}"), "dev");
        assert_eq!(x("${EMPTY:-dev} ${EMPTY-dev}"), "dev ");
        assert_eq!(x("${TAG:+set} ${NOPE:+set}."), "set .");
        assert_eq!(x("$$HOME ${NOPE:-${TAG}}"), "$HOME 1.2");
        assert!(expand("${NOPE:?needed}", &env).unwrap_err().contains("NOPE: needed"));
        assert!(expand("${TAG", &env).unwrap_err().contains("missing `}`"));
    }

    #[test]
    fn services_with_build_become_targets() {
        let text = "services:\n  web:\n    image: example/web:${TAG}\n    build:\n      context: ./web\n      \
                    args:\n        - A=1\n        - FROM_ENV\n        - MISSING\n      tags: [example/web:latest]\n  \
                    api:\n    build: ./api\n  db:\n    image: postgres\n";
        let v = from_compose("compose.yaml", text, &env).unwrap();
        assert_eq!(v["group"]["default"]["targets"], json!(["api", "web"]));
        assert_eq!(v["target"]["api"], json!({ "context": "./api" }));
        assert_eq!(v["target"]["web"]["tags"], json!(["example/web:1.2", "example/web:latest"]));
        assert_eq!(v["target"]["web"]["args"], json!({ "A": "1", "FROM_ENV": "e" }));
        let e = from_compose("compose.yaml", "services:\n  a:\n    build:\n      ssh: [default]\n", &env).unwrap_err();
        assert!(e.to_string().contains("service `a`: build.ssh: not supported"), "{e}");
        let e = from_compose("compose.yaml", "services:\n  a: [\n", &env).unwrap_err();
        assert!(e.to_string().starts_with("compose.yaml:"), "{e}");
    }
}
