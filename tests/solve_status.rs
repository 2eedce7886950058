//! A small reader of `--progress rawjson`, written against BuildKit's `client.SolveStatus`
//! (`client/graph.go`): each line one object with `vertexes` (digest, inputs, name,
//! started, completed, cached, error), `statuses`, `logs` (vertex, stream, base64 data,
//! timestamp) and `warnings` (vertex, level, base64 short/detail, url); times RFC 3339.
//! The build tests read cairn's progress through it, so they also check that cairn's
//! stream is that shape.

// Every SolveStatus field is declared (unknown fields are refused); not every test reads all.
#![allow(dead_code)]

use std::collections::HashMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SolveStatus {
    #[serde(default)]
    pub(crate) vertexes: Vec<Vertex>,
    #[serde(default)]
    pub(crate) statuses: Vec<VertexStatus>,
    #[serde(default)]
    pub(crate) logs: Vec<VertexLog>,
    #[serde(default)]
    pub(crate) warnings: Vec<VertexWarning>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Vertex {
    pub(crate) digest: String,
    #[serde(default)]
    pub(crate) inputs: Vec<String>,
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) started: Option<String>,
    pub(crate) completed: Option<String>,
    #[serde(default)]
    pub(crate) cached: bool,
    #[serde(default)]
    pub(crate) error: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VertexStatus {
    pub(crate) id: String,
    pub(crate) vertex: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) total: Option<i64>,
    pub(crate) current: i64,
    pub(crate) timestamp: Option<String>,
    pub(crate) started: Option<String>,
    pub(crate) completed: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VertexLog {
    pub(crate) vertex: String,
    #[serde(default)]
    pub(crate) stream: i64,
    #[serde(default)]
    pub(crate) data: String,
    pub(crate) timestamp: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VertexWarning {
    pub(crate) vertex: String,
    #[serde(default)]
    pub(crate) level: i64,
    #[serde(default)]
    pub(crate) short: String,
    #[serde(default)]
    pub(crate) detail: Vec<String>,
    #[serde(default)]
    pub(crate) url: String,
}

/// Decodes standard base64 (Go's `[]byte` in JSON).
pub(crate) fn b64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {s:?}"),
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(val).collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= u32::from(*b) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// An RFC 3339 time as seconds since the epoch (panics on anything else).
pub(crate) fn seconds(t: &str) -> f64 {
    let (date, time) = t.split_once('T').unwrap_or_else(|| panic!("not RFC 3339: {t}"));
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let time = time.strip_suffix('Z').unwrap_or_else(|| panic!("not UTC: {t}"));
    let hms: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + d[2] - 719_469;
    days as f64 * 86_400.0 + hms[0] * 3600.0 + hms[1] * 60.0 + hms[2]
}

/// Every line of `text` as a SolveStatus; panics on a line that is not one.
pub(crate) fn parse(text: &str) -> Vec<SolveStatus> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a SolveStatus ({e}): {l}")))
        .collect()
}

/// The last state of each vertex, in order of first appearance.
pub(crate) fn vertexes(stream: &[SolveStatus]) -> Vec<Vertex> {
    let mut order = Vec::new();
    let mut last: HashMap<String, Vertex> = HashMap::new();
    for s in stream {
        for v in &s.vertexes {
            if !last.contains_key(&v.digest) {
                order.push(v.digest.clone());
            }
            last.insert(v.digest.clone(), v.clone());
        }
    }
    order.into_iter().map(|d| last.remove(&d).unwrap()).collect()
}

/// Whether a vertex is an image the store already had (`FROM x`): reported cached, as
/// BuildKit does, but cairn's step counts never counted it.
fn is_image_source(v: &Vertex) -> bool {
    let n = v.name.split_once("] ").map_or(v.name.as_str(), |(_, rest)| rest);
    n.starts_with("FROM ")
}

/// (executed, cached) as cairn's summary counts them: vertexes that completed without
/// being cached or failing, and cached ones other than images from the store.
pub(crate) fn counts(stream: &[SolveStatus]) -> (u64, u64) {
    let vs = vertexes(stream);
    let steps = vs.iter().filter(|v| !v.name.starts_with("[cairn] "));
    let (mut executed, mut cached) = (0, 0);
    for v in steps {
        if v.cached {
            cached += u64::from(!is_image_source(v));
        } else if v.completed.is_some() && v.error.is_empty() {
            executed += 1;
        }
    }
    (executed, cached)
}

/// The stream rendered as text, for assertions on messages: vertex names, errors,
/// decoded log lines and warnings.
pub(crate) fn text(stream: &[SolveStatus]) -> String {
    let mut out = String::new();
    for s in stream {
        for v in &s.vertexes {
            out.push_str(&v.name);
            out.push('\n');
            if !v.error.is_empty() {
                out.push_str(&format!("ERROR: {}\n", v.error));
            }
        }
        for l in &s.logs {
            out.push_str(&String::from_utf8_lossy(&b64(&l.data)));
        }
        for w in &s.warnings {
            out.push_str(&format!("warning: {}\n", String::from_utf8_lossy(&b64(&w.short))));
        }
    }
    out
}

#[test]
fn base64_and_times_decode() {
    assert_eq!(b64("aGkK"), b"hi\n");
    assert_eq!(b64("Y2FyZWZ1bA=="), b"careful");
    assert_eq!(seconds("1970-01-01T00:00:01.5Z"), 1.5);
    assert_eq!(seconds("2000-03-01T00:00:00Z"), 951_868_800.0);
}
