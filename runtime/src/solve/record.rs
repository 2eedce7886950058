//! Step records: the parts of every step's cache key, kept per build so a miss can be
//! explained ("COPY src/ /app: src/main.rs changed", "ARG VERSION 1 → 2", "base
//! debian:bookworm now sha256:…", "--no-cache", "first build of this step").
//!
//! A key is a hash and says nothing once computed; the engine ([`super::engine`]) therefore
//! writes down its ingredients as labelled values ([`StepRecord::items`]) at the moment it
//! computes the key, and [`explain`] compares them with the record of the same step in an
//! earlier build. The same step is the same Dockerfile location, stage and platform
//! ([`step_identity`]), in a build of the same context (the caller picks the history).
//!
//! What is kept: the op kind, the instruction's text, the command, each environment
//! variable, the producer keys of inputs, the base image digests, and content hashes per
//! file of what a COPY or ADD selects from a build context (per selection for a stage's
//! layers). **Never a secret value:** secret mounts and `secret_env` carry ids only, and the
//! value of an environment variable whose name looks like a secret (the names BuildKit's
//! `SecretsUsedInArgOrEnv` rule looks for) is recorded as a keyed hash, with a key private
//! to the store, so a change is seen and the value is not.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use cairn_ir::{Definition, Op, Platform};

use crate::store::{Store, StoreError};

/// At most this many files are listed per selection; a larger one is kept by its entries.
pub const MAX_FILES_PER_SELECTION: usize = 2000;

/// One step of one build: what its key was made of, and why it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The vertex in its build's Definition (not kept: only `cairn plan` uses it).
    #[serde(skip)]
    pub vertex: usize,
    /// [`step_identity`]: location, stage and platform.
    pub step: String,
    /// The step's name as progress shows it.
    pub name: String,
    /// The cache key, hex.
    pub key: String,
    pub cached: bool,
    /// The key's ingredients by label (`env NAME`, `file PATH`, `base REF`, …).
    pub items: BTreeMap<String, String>,
    /// Why the step missed the cache (empty when it was cached).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// The steps of one build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// A short random id, printed by `cairn build --explain` and listed by `cairn explain`.
    pub id: String,
    /// Seconds since the Unix epoch at the start of the build.
    pub time: f64,
    /// The main build context, so history is looked up among builds of the same context.
    pub context: String,
    pub platform: String,
    pub steps: Vec<StepRecord>,
}

impl BuildRecord {
    /// The start time, RFC 3339 in UTC to the second.
    pub fn time_text(&self) -> String {
        let t = crate::image::rfc3339_nanos(self.time);
        format!("{}Z", &t[..t.len().min(19)])
    }
}

/// The same step across builds: the first source location (file and line), the stage, the
/// platform; a step without a location is known by its name.
pub fn step_identity(def: &Definition, v: usize, platform: &Platform) -> String {
    let meta = &def.vertices[v].meta;
    let stage = meta.group.as_ref().map(|g| g.name.as_str()).unwrap_or("");
    match meta.locations.first().and_then(|l| Some((l, def.sources.get(l.source as usize)?))) {
        Some((l, src)) => format!("{}:{} [{stage}] {platform}", src.path, l.start_line),
        None => format!("{} [{stage}] {platform}", meta.description),
    }
}

/// Whether an environment variable's name looks like it holds a secret, as BuildKit's
/// `SecretsUsedInArgOrEnv` decides: one of its `_`-separated words (case-insensitive) is a
/// secret word and none is `public`, `file` or `version` (the compiler's lint has the rule).
pub fn is_secret_name(name: &str) -> bool {
    const DENY: [&str; 10] =
        ["apikey", "auth", "credential", "credentials", "key", "password", "pword", "passwd", "secret", "token"];
    const ALLOW: [&str; 3] = ["public", "file", "version"];
    let has = |list: &[&str]| name.split('_').any(|w| list.iter().any(|s| w.eq_ignore_ascii_case(s)));
    has(&DENY) && !has(&ALLOW)
}

/// Names the Dockerfile sources declare with ARG (so a changed variable is shown as
/// `ARG NAME` and not `ENV NAME`).
fn arg_names(def: &Definition) -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    for src in &def.sources {
        for line in src.text.lines() {
            let mut words = line.split_whitespace();
            if words.next().is_some_and(|w| w.eq_ignore_ascii_case("ARG")) {
                for w in words {
                    let name = w.split('=').next().unwrap_or("");
                    if !name.is_empty() {
                        out.insert(name.to_string());
                    }
                }
            }
        }
    }
    out
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(16)]
}

/// Collects the step records of one solve and explains misses against earlier builds.
#[derive(Debug)]
pub struct Recorder {
    /// The last record of each step in earlier builds of the same context.
    previous: HashMap<String, StepRecord>,
    /// Key of the keyed hash of secret-looking values.
    salt: [u8; 32],
    args: std::collections::HashSet<String>,
    /// Items computed with a key, until the step is shown (by vertex).
    pending: Mutex<HashMap<usize, BTreeMap<String, String>>>,
    /// Base images read by vertex: reference and manifest digest.
    bases: Mutex<HashMap<usize, (String, String)>>,
    steps: Mutex<Vec<StepRecord>>,
}

impl Recorder {
    /// A recorder for builds of `def`, given earlier records newest first.
    pub fn new(def: &Definition, history: &[BuildRecord], salt: [u8; 32]) -> Recorder {
        let mut previous = HashMap::new();
        for b in history {
            for s in &b.steps {
                previous.entry(s.step.clone()).or_insert_with(|| s.clone());
            }
        }
        Recorder {
            previous,
            salt,
            args: arg_names(def),
            pending: Mutex::default(),
            bases: Mutex::default(),
            steps: Mutex::default(),
        }
    }

    /// The items of an op itself (not of its inputs).
    pub fn op_items(&self, def: &Definition, v: usize) -> BTreeMap<String, String> {
        let entry = &def.vertices[v];
        let mut items = BTreeMap::new();
        items.insert("op".to_string(), entry.vertex.op.kind().to_string());
        items.insert("instruction".to_string(), entry.meta.description.clone());
        let op_hash = blake3::hash(&super::key::stripped_op_encoding(&entry.vertex.op));
        items.insert("definition".to_string(), short(&op_hash.to_hex()).to_string());
        if let Op::Exec(e) = &entry.vertex.op {
            items.insert("command".to_string(), e.meta.args.join(" "));
            items.insert("WORKDIR".to_string(), e.meta.cwd.clone());
            items.insert("USER".to_string(), e.meta.user.clone());
            for kv in e.meta.env.to_vec().iter() {
                let (name, value) = kv.split_once('=').unwrap_or((kv, ""));
                let kind = if self.args.contains(name) { "ARG" } else { "ENV" };
                items.insert(format!("{kind} {name}"), self.value(name, value));
            }
            for s in &e.secret_env {
                items.insert(format!("secret env {}", s.name), format!("id={}", s.id));
            }
        }
        items
    }

    /// A value as recorded: as is, or a keyed hash when its name looks like a secret.
    fn value(&self, name: &str, value: &str) -> String {
        if is_secret_name(name) {
            let h = blake3::keyed_hash(&self.salt, value.as_bytes());
            format!("hidden:{}", short(&h.to_hex()))
        } else {
            value.to_string()
        }
    }

    /// Remembers that vertex `v` is an image source for `reference` at `digest`.
    pub fn set_base(&self, v: usize, reference: &str, digest: &str) {
        lock(&self.bases).insert(v, (reference.to_string(), digest.to_string()));
    }

    /// The base image a vertex stands for, if it is an image source.
    pub fn base(&self, v: usize) -> Option<(String, String)> {
        lock(&self.bases).get(&v).cloned()
    }

    /// The items of vertex `v`'s key, kept until the step is shown.
    pub fn set_items(&self, v: usize, items: BTreeMap<String, String>) {
        lock(&self.pending).insert(v, items);
    }

    /// Records the step of vertex `v` under `key`; for a miss, returns why it ran.
    pub fn finish(&self, step: String, name: String, v: usize, key: &str, cached: bool) -> Vec<String> {
        let items = lock(&self.pending).remove(&v).unwrap_or_default();
        let mut rec = StepRecord { vertex: v, step, name, key: key.to_string(), cached, items, reasons: Vec::new() };
        if !cached {
            rec.reasons = explain(self.previous.get(&rec.step), &rec);
        }
        let reasons = rec.reasons.clone();
        lock(&self.steps).push(rec);
        reasons
    }

    /// Records the step of vertex `v` as predicted to run for `reasons` (`cairn plan`).
    pub fn finish_with(&self, step: String, name: String, v: usize, reasons: Vec<String>) {
        let items = lock(&self.pending).remove(&v).unwrap_or_default();
        let rec = StepRecord { vertex: v, step, name, key: String::new(), cached: false, items, reasons };
        lock(&self.steps).push(rec);
    }

    /// The steps recorded so far, one per step (the last record wins).
    pub fn steps(&self) -> Vec<StepRecord> {
        let all = lock(&self.steps).clone();
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<StepRecord> = all.into_iter().rev().filter(|s| seen.insert(s.step.clone())).collect();
        out.reverse();
        out
    }
}

/// The records of earlier builds of `context` that a build of `def` on `platforms` compares
/// its steps with, newest first (unreadable ones skipped). Read back only until every RUN
/// and file step of `def` has a record: [`Recorder`] keeps each step's newest, so older
/// builds could not change those (a store keeps 50 builds; a cached build of a 5,000-line
/// Dockerfile read and parsed all of them, 14 MB, where the last one was enough). A source
/// (not always recorded) is compared with its newest record among the builds read.
pub fn history(store: &Store, context: &str, def: &Definition, platforms: &[Platform]) -> Vec<BuildRecord> {
    let steps: Vec<usize> =
        (0..def.vertices.len()).filter(|&v| matches!(def.vertices[v].vertex.op, Op::Exec(_) | Op::File(_))).collect();
    let mut missing: std::collections::HashSet<String> =
        platforms.iter().flat_map(|p| steps.iter().map(move |&v| step_identity(def, v, p))).collect();
    let mut out = Vec::new();
    let Ok(records) = store.build_records_newest_first() else { return out };
    for (_, bytes) in records {
        let Ok(b) = serde_json::from_slice::<BuildRecord>(&bytes) else { continue };
        if b.context != context {
            continue;
        }
        for s in &b.steps {
            missing.remove(&s.step);
        }
        out.push(b);
        if missing.is_empty() {
            break;
        }
    }
    out
}

/// How a build's main context is named in its record: the canonical path, so `ctx` and
/// `./ctx/` are one context.
pub fn context_name(dir: Option<&std::path::PathBuf>) -> String {
    dir.map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()).display().to_string()).unwrap_or_default()
}

/// Every kept build record, newest first.
pub fn all_builds(store: &Store) -> Vec<BuildRecord> {
    let records = store.build_records().unwrap_or_default();
    records.into_iter().filter_map(|(_, bytes)| serde_json::from_slice(&bytes).ok()).collect()
}

/// A new build id: 12 random hex digits.
pub fn new_build_id() -> String {
    let mut id = [0u8; 6];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut id);
    }
    hex::encode(id)
}

/// Writes the record of a build (the steps `recorder` saw) and returns it.
pub fn save(
    store: &Store,
    recorder: &Recorder,
    context: &str,
    platform: &Platform,
    start: std::time::SystemTime,
) -> Result<BuildRecord, StoreError> {
    let since = start.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let rec = BuildRecord {
        id: new_build_id(),
        time: since.as_secs_f64(),
        context: context.to_string(),
        platform: platform.to_string(),
        steps: recorder.steps(),
    };
    let bytes =
        serde_json::to_vec(&rec).map_err(|e| StoreError::Invalid(format!("Cannot encode a build record: {e}")))?;
    store.save_build_record(since.as_nanos(), &rec.id, &bytes)?;
    Ok(rec)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why the step of `new` ran, compared with its previous record.
pub fn explain(old: Option<&StepRecord>, new: &StepRecord) -> Vec<String> {
    let mut out = Vec::new();
    if new.items.contains_key("no-cache") {
        out.push("--no-cache".to_string());
    }
    let Some(old) = old else {
        out.push("first build of this step".to_string());
        return out;
    };
    let (o, n) = (&old.items, &new.items);
    let get = |m: &BTreeMap<String, String>, k: &str| m.get(k).cloned();
    let instr = n.get("instruction").cloned().unwrap_or_default();
    let mut explained = false;
    if get(o, "instruction") != get(n, "instruction") {
        out.push(format!("instruction changed: `{}` → `{instr}`", o.get("instruction").cloned().unwrap_or_default()));
        explained = true;
    }
    let mut files = Vec::new();
    for label in o.keys().chain(n.keys().filter(|k| !o.contains_key(*k))) {
        let (a, b) = (o.get(label), n.get(label));
        if a == b {
            continue;
        }
        let (kind, name) = label.split_once(' ').unwrap_or((label.as_str(), ""));
        let shown = |v: Option<&String>| match v {
            None => "(unset)".to_string(),
            Some(v) if v.starts_with("hidden:") => "(hidden)".to_string(),
            Some(v) => v.clone(),
        };
        let text = match kind {
            "file" => {
                files.push(match (a, b) {
                    (None, _) => format!("{name} added"),
                    (_, None) => format!("{name} removed"),
                    _ => format!("{name} changed"),
                });
                continue;
            }
            "selection" => format!("{instr}: the files selected from {name} changed"),
            "ARG" | "ENV"
                if a.is_some_and(|v| v.starts_with("hidden:")) || b.is_some_and(|v| v.starts_with("hidden:")) =>
            {
                format!("{kind} {name} changed (value hidden: the name looks like a secret)")
            }
            "ARG" | "ENV" => format!("{kind} {name} {} → {}", shown(a), shown(b)),
            "base" => format!("base {} now {}", short_ref(name), shown(b)),
            "input" => match b {
                Some(v) => format!("input `{}` changed", v.split_once(' ').map_or(v.as_str(), |x| x.1)),
                None => continue,
            },
            "WORKDIR" | "USER" => format!("{kind} {} → {}", shown(a), shown(b)),
            "secret" => format!("{label} changed"),
            "settings" => "step settings changed (--ulimit, --shm-size, --add-host, limits)".to_string(),
            "source" => "the source's content changed".to_string(),
            // Shown only when nothing finer explains the change (below).
            "definition" | "instruction" | "command" | "op" | "no-cache" => continue,
            _ => format!("{label} changed"),
        };
        out.push(text);
        explained = true;
    }
    if !files.is_empty() {
        let more = files.len().saturating_sub(10);
        let mut list = files.into_iter().take(10).collect::<Vec<_>>().join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        out.push(format!("{instr}: {list}"));
        explained = true;
    }
    if !explained {
        if get(o, "command") != get(n, "command") {
            out.push(format!("command changed: `{}`", n.get("command").cloned().unwrap_or_default()));
        } else if get(o, "definition") != get(n, "definition") {
            out.push("the step's definition changed (flags, mounts or options)".to_string());
        } else if old.key == new.key && !new.items.contains_key("no-cache") {
            out.push("the cached result is no longer in the store".to_string());
        } else if old.key != new.key {
            out.push("its cache key changed".to_string());
        }
    }
    out
}

/// `debian:bookworm` for `docker.io/library/debian:bookworm`.
pub fn short_ref(r: &str) -> &str {
    r.strip_prefix("docker.io/library/").or_else(|| r.strip_prefix("docker.io/")).unwrap_or(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(items: &[(&str, &str)], key: &str) -> StepRecord {
        StepRecord {
            vertex: 0,
            step: "Dockerfile:3 [] linux/amd64".into(),
            name: "RUN x".into(),
            key: key.into(),
            cached: false,
            items: items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            reasons: Vec::new(),
        }
    }

    #[test]
    fn reasons_name_what_changed() {
        let i = ("instruction", "COPY src/ /app");
        let old = rec(&[i, ("file src/main.rs", "1"), ("file src/a.rs", "1"), ("ARG VERSION", "1")], "a");
        let new = rec(&[i, ("file src/main.rs", "2"), ("file src/b.rs", "1"), ("ARG VERSION", "2")], "b");
        let r = explain(Some(&old), &new);
        assert_eq!(r, ["ARG VERSION 1 → 2", "COPY src/ /app: src/a.rs removed, src/main.rs changed, src/b.rs added"]);
        assert_eq!(explain(None, &new), ["first build of this step"]);
        let nc = rec(&[i, ("no-cache", "true")], "b");
        assert_eq!(explain(Some(&rec(&[i], "b")), &nc)[0], "--no-cache");
        let b = explain(
            Some(&rec(&[("base docker.io/library/debian:bookworm", "sha256:1")], "a")),
            &rec(&[("base docker.io/library/debian:bookworm", "sha256:2")], "b"),
        );
        assert_eq!(b, ["base debian:bookworm now sha256:2"]);
        assert_eq!(explain(Some(&rec(&[i], "a")), &rec(&[i], "a")), ["the cached result is no longer in the store"]);
    }

    #[test]
    fn secret_looking_names_are_hidden() {
        assert!(is_secret_name("API_TOKEN") && is_secret_name("password") && is_secret_name("AWS_SECRET_KEY"));
        assert!(!is_secret_name("VERSION") && !is_secret_name("TOKENIZER") && !is_secret_name("MONKEY"));
        assert!(!is_secret_name("PUBLIC_KEY") && !is_secret_name("TOKEN_FILE"));
        let old = rec(&[("ARG API_TOKEN", "hidden:1")], "a");
        let new = rec(&[("ARG API_TOKEN", "hidden:2")], "b");
        assert_eq!(explain(Some(&old), &new), ["ARG API_TOKEN changed (value hidden: the name looks like a secret)"]);
    }

    /// A Definition of a scratch source and one file step per name (the name is the
    /// step's description, so its identity).
    fn steps_def(names: &[&str]) -> Definition {
        use cairn_ir::*;
        let mut d = Definition { version: FORMAT_VERSION, vertices: vec![], outputs: vec![], sources: vec![] };
        let mut push = |inputs: Vec<Input>, op: Op, description: &str| {
            let vertex = Vertex { inputs, op };
            let digest = vertex_digest(&vertex);
            let meta = VertexMeta { description: description.into(), ..Default::default() };
            d.vertices.push(VertexEntry { digest, vertex, meta });
            Input { digest, index: 0 }
        };
        let mut last = push(vec![], Op::Source(SourceOp::Scratch), "scratch");
        for n in names {
            let kind = FileActionKind::Mkfile {
                path: format!("/{n}"),
                mode: 0o644,
                data: vec![],
                owner: None,
                timestamp: None,
            };
            let op = Op::File(FileOp { actions: vec![FileAction { base: FileRef::Input(0), kind }] });
            last = push(vec![last], op, n);
        }
        d.outputs = vec![Output { platform: Platform::host(), root: last, config: ImageConfig::default() }];
        d
    }

    /// History is read newest first, other contexts skipped, and no further back than the
    /// build that gives the last of the steps its newest record.
    #[test]
    fn history_reads_back_only_until_every_step_has_a_record() {
        let dir = std::env::temp_dir().join(format!("cairn-history-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let p = Platform::host();
        let def = steps_def(&["A", "B"]);
        let step = |name: &str, key: &str| StepRecord {
            vertex: 0,
            step: format!("{name} [] {p}"),
            name: name.into(),
            key: key.into(),
            cached: false,
            items: BTreeMap::new(),
            reasons: Vec::new(),
        };
        let builds = [
            ("c", vec![step("A", "a1"), step("B", "b1")]),
            ("c", vec![step("B", "b2")]),
            ("other", vec![step("A", "x"), step("B", "x")]),
            ("c", vec![step("A", "a4")]),
        ];
        for (i, (context, steps)) in builds.into_iter().enumerate() {
            let rec = BuildRecord {
                id: format!("b{i}"),
                time: i as f64,
                context: context.into(),
                platform: p.to_string(),
                steps,
            };
            store.save_build_record(i as u128 + 1, &rec.id, &serde_json::to_vec(&rec).unwrap()).unwrap();
        }
        let read: Vec<String> =
            history(&store, "c", &def, std::slice::from_ref(&p)).into_iter().map(|b| b.id).collect();
        assert_eq!(read, ["b3", "b1"], "b0 is older than every step's newest record");
        let previous = Recorder::new(&def, &history(&store, "c", &def, std::slice::from_ref(&p)), [0; 32]).previous;
        let keys: BTreeMap<&str, &str> = previous.values().map(|s| (s.name.as_str(), s.key.as_str())).collect();
        assert_eq!(keys, BTreeMap::from([("A", "a4"), ("B", "b2")]));
        // A step no build has: every build of the context is read.
        let read = history(&store, "c", &steps_def(&["A", "B", "C"]), std::slice::from_ref(&p));
        assert_eq!(read.len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
