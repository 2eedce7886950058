//! The public JSON shape of the AST (`cairn compile --emit ast --format json`), documented
//! in docs/ast.md:
//!
//! `{"directives": {"escape": "\\", ...}, "instructions": [{"keyword", "start_line",
//! "end_line", "flags": ["--x=y"], "json": bool, "args": [...] | "pairs": [{"key", "value"}]
//! | "trigger": {...}, "heredocs": [{"name", "content", "expand", "chomp"}]}]}`.

use serde_json::{json, Map, Value};

use crate::ast::{Args, Dockerfile, Instruction};

/// Renders the AST in the documented JSON shape.
pub fn to_json(doc: &Dockerfile) -> Value {
    let mut directives = Map::new();
    directives.insert("escape".into(), Value::String(doc.escape.to_string()));
    for d in &doc.directives {
        directives.insert(d.name.clone(), Value::String(d.value.clone()));
    }
    json!({
        "directives": directives,
        "instructions": doc.instructions.iter().map(instruction).collect::<Vec<_>>(),
    })
}

fn instruction(i: &Instruction) -> Value {
    let mut m = Map::new();
    m.insert("keyword".into(), json!(i.keyword.as_str()));
    m.insert("start_line".into(), json!(i.start_line));
    m.insert("end_line".into(), json!(i.end_line));
    m.insert("flags".into(), json!(i.flags.iter().map(|f| f.text()).collect::<Vec<_>>()));
    let (is_json, key, value) = match &i.args {
        Args::Exec(v) => (true, "args", json!(v)),
        Args::Shell(s) => (false, "args", json!([s])),
        Args::Pairs(p) => {
            (false, "pairs", json!(p.iter().map(|kv| json!({"key": kv.key, "value": kv.value})).collect::<Vec<_>>()))
        }
        Args::HealthcheckNone => (false, "args", json!(["NONE"])),
        Args::HealthcheckCmd(cmd) => match cmd.as_ref() {
            Args::Exec(v) => {
                let mut a = vec!["CMD".to_string()];
                a.extend(v.iter().cloned());
                (true, "args", json!(a))
            }
            Args::Shell(s) => (false, "args", json!(["CMD", s])),
            other => unreachable!("{other:?} in a HEALTHCHECK CMD"),
        },
        Args::Onbuild(inner) => (false, "trigger", instruction(inner)),
        Args::Words(w) => (false, "args", json!(w.iter().map(|w| &w.node).collect::<Vec<_>>())),
    };
    m.insert("json".into(), json!(is_json));
    m.insert(key.into(), value);
    m.insert(
        "heredocs".into(),
        json!(i
            .heredocs
            .iter()
            .map(|h| json!({"name": h.name, "content": h.content, "expand": h.expand, "chomp": h.chomp}))
            .collect::<Vec<_>>()),
    );
    Value::Object(m)
}
