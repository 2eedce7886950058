//! Progress reporting: events from the scheduler and their renderers (`plain` in
//! BuildKit's line shapes, `tty` live view with indicatif, `rawjson` BuildKit's
//! `SolveStatus` stream, one JSON object per line, `quiet`).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// One progress event. `id` is the step number shown as `#id`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// A step begins (or is found in the cache right after). `digest` is the vertex
    /// digest and `inputs` those of the vertices it reads (BuildKit's `Vertex` fields).
    Start {
        id: usize,
        name: String,
        time: f64,
        digest: String,
        inputs: Vec<String>,
    },
    /// One line of output of a running step; `elapsed` is seconds since its start.
    Log {
        id: usize,
        elapsed: f64,
        line: String,
        time: f64,
    },
    Cached {
        id: usize,
        time: f64,
    },
    Done {
        id: usize,
        seconds: f64,
        time: f64,
    },
    Error {
        id: usize,
        message: String,
        time: f64,
    },
    /// Why step `id` missed the cache (its key differs from the last build of the same
    /// step), sent right after its `Start`.
    Explain {
        id: usize,
        reasons: Vec<String>,
        time: f64,
    },
    /// A step is ready but waits for a `--jobs` permit (sent only when it has to wait);
    /// its `Start` follows once it has one. `name` is the step's name as `Start` gives it.
    Queued {
        name: String,
        time: f64,
    },
    /// A warning about the build (a compiler warning), not tied to one step.
    Warning {
        message: String,
        time: f64,
    },
    /// A line for the user that is not a step's output (`--verify-reproducible`).
    Notice {
        message: String,
        time: f64,
    },
    /// The build failed; `message` is the whole error. Only machine-readable renderers
    /// show it (the CLI prints it otherwise).
    Failed {
        message: String,
        time: f64,
    },
    /// The final line: totals and the image digest when there is one.
    Summary {
        seconds: f64,
        executed: usize,
        cached: usize,
        digest: Option<String>,
        time: f64,
    },
}

/// Seconds since the Unix epoch, as a float (rawjson timestamps).
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
}

/// Receives events from many threads.
pub trait Progress: Send + Sync {
    fn event(&self, ev: Event);
}

/// The `--progress` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Plain,
    Tty,
    RawJson,
    Quiet,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "auto" => Mode::Auto,
            "plain" => Mode::Plain,
            "tty" => Mode::Tty,
            "rawjson" => Mode::RawJson,
            "quiet" => Mode::Quiet,
            other => {
                return Err(format!("Unknown progress mode `{other}` (expected auto, plain, tty, rawjson or quiet)"))
            }
        })
    }
}

/// Whether stderr is a terminal with a size: the live view needs both (without a size it
/// would draw one unbroken line).
pub fn stderr_is_sized_terminal() -> bool {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return false;
    }
    // SAFETY: TIOCGWINSZ fills the winsize struct we own; nothing else is touched.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    ok && ws.ws_col > 0 && ws.ws_row > 0
}

/// Builds the renderer for `mode`, writing to stderr. `Auto` and `Tty` give the live view
/// only on a terminal with a size, and plain lines otherwise (as buildx does).
pub fn renderer(mode: Mode) -> Box<dyn Progress> {
    match mode {
        Mode::Auto | Mode::Tty if stderr_is_sized_terminal() => Box::new(Tty::new()),
        Mode::Auto | Mode::Tty | Mode::Plain => Box::new(Plain::new(Box::new(std::io::stderr()))),
        Mode::RawJson => Box::new(RawJson::new(Box::new(std::io::stderr()))),
        Mode::Quiet => Box::new(Quiet),
    }
}

/// Formats seconds the way BuildKit does (`0.3s`, `12.1s`).
pub fn secs(s: f64) -> String {
    format!("{s:.1}s")
}

/// The summary line.
pub fn summary_line(seconds: f64, executed: usize, cached: usize, digest: &Option<String>) -> String {
    let mut s = format!("Finished in {}: {executed} steps executed, {cached} cached", secs(seconds));
    if let Some(d) = digest {
        s.push_str(&format!(", image {d}"));
    }
    s
}

/// BuildKit's plain output.
pub struct Plain {
    out: Mutex<Box<dyn Write + Send>>,
    names: Mutex<HashMap<usize, String>>,
    last: Mutex<Option<usize>>,
}

impl Plain {
    pub fn new(out: Box<dyn Write + Send>) -> Plain {
        Plain { out: Mutex::new(out), names: Mutex::new(HashMap::new()), last: Mutex::new(None) }
    }

    fn line(&self, id: usize, text: &str, is_start: bool) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        // Like BuildKit: a blank line between blocks of different steps, and the step's
        // header again when its output resumes after another step's.
        if *last != Some(id) {
            if last.is_some() {
                let _ = writeln!(out);
            }
            if !is_start {
                if let Some(name) = self.names.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
                    let _ = writeln!(out, "#{id} {name}");
                }
            }
            *last = Some(id);
        }
        let _ = writeln!(out, "#{id} {text}");
        let _ = out.flush();
    }
}

impl Progress for Plain {
    fn event(&self, ev: Event) {
        match ev {
            Event::Start { id, name, .. } => {
                self.names.lock().unwrap_or_else(|e| e.into_inner()).insert(id, name.clone());
                self.line(id, &name, true);
            }
            Event::Log { id, elapsed, line, .. } => self.line(id, &format!("{elapsed:.3} {line}"), false),
            Event::Cached { id, .. } => self.line(id, "CACHED", false),
            Event::Done { id, seconds, .. } => self.line(id, &format!("DONE {}", secs(seconds)), false),
            Event::Error { id, message, .. } => self.line(id, &format!("ERROR: {message}"), false),
            Event::Summary { seconds, executed, cached, digest, .. } => {
                let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(out, "\n{}", summary_line(seconds, executed, cached, &digest));
            }
            Event::Warning { message, .. } => {
                let _ = writeln!(self.out.lock().unwrap_or_else(|e| e.into_inner()), "warning: {message}");
            }
            Event::Notice { message, .. } => {
                let _ = writeln!(self.out.lock().unwrap_or_else(|e| e.into_inner()), "{message}");
            }
            // `--explain` prints reasons at the end; rawjson carries them as statuses.
            Event::Failed { .. } | Event::Explain { .. } | Event::Queued { .. } => {}
        }
    }
}

/// BuildKit's `--progress rawjson`: one `client.SolveStatus` object per line
/// (`vertexes`, `statuses`, `logs`, `warnings`, as `client/graph.go` marshals them:
/// empty fields left out, times RFC 3339 with nanoseconds, log data and warning texts
/// base64). Every event updates one vertex; a vertex is sent whole each time, as
/// BuildKit does. What is not a step (warnings, notices, a failure of the build) belongs
/// to a vertex of its own named `[cairn] …`, so the stream holds nothing but SolveStatus
/// objects.
pub struct RawJson {
    out: Mutex<Box<dyn Write + Send>>,
    vertexes: Mutex<HashMap<usize, RawVertex>>,
}

#[derive(Debug, Clone, Serialize)]
struct RawVertex {
    digest: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    inputs: Vec<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cached: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
}

/// The digest of a vertex that is not a step: sha256 of its name, so it is stable.
fn synthetic_digest(name: &str) -> String {
    use sha2::{Digest as _, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(name.as_bytes())))
}

fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn stamp(t: f64) -> String {
    crate::image::rfc3339_nanos(t)
}

impl RawJson {
    pub fn new(out: Box<dyn Write + Send>) -> RawJson {
        RawJson { out: Mutex::new(out), vertexes: Mutex::new(HashMap::new()) }
    }

    fn emit(&self, status: serde_json::Value) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(s) = serde_json::to_string(&status) {
            let _ = writeln!(out, "{s}");
            let _ = out.flush();
        }
    }

    /// Updates vertex `id` and sends it.
    fn vertex(&self, id: usize, f: impl FnOnce(&mut RawVertex)) {
        let mut vs = self.vertexes.lock().unwrap_or_else(|e| e.into_inner());
        let Some(v) = vs.get_mut(&id) else { return };
        f(v);
        let v = v.clone();
        drop(vs);
        self.emit(serde_json::json!({ "vertexes": [v] }));
    }

    /// A vertex that is not a step, complete at `time`, with `error` when it failed.
    fn synthetic(&self, name: &str, time: f64, error: &str) -> String {
        let digest = synthetic_digest(name);
        let v = RawVertex {
            digest: digest.clone(),
            inputs: Vec::new(),
            name: name.to_string(),
            started: Some(stamp(time)),
            completed: Some(stamp(time)),
            cached: false,
            error: error.to_string(),
        };
        self.emit(serde_json::json!({ "vertexes": [v] }));
        digest
    }
}

impl Progress for RawJson {
    fn event(&self, ev: Event) {
        match ev {
            Event::Start { id, name, time, digest, inputs } => {
                let v = RawVertex {
                    digest,
                    inputs,
                    name,
                    started: Some(stamp(time)),
                    completed: None,
                    cached: false,
                    error: String::new(),
                };
                self.vertexes.lock().unwrap_or_else(|e| e.into_inner()).insert(id, v);
                self.vertex(id, |_| {});
            }
            Event::Log { id, line, time, .. } => {
                let digest = match self.vertexes.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
                    Some(v) => v.digest.clone(),
                    None => return,
                };
                let data = b64(format!("{line}\n").as_bytes());
                self.emit(serde_json::json!({
                    "logs": [{ "vertex": digest, "stream": 1, "data": data, "timestamp": stamp(time) }]
                }));
            }
            Event::Cached { id, time } => self.vertex(id, |v| {
                v.cached = true;
                v.completed = Some(stamp(time));
            }),
            Event::Done { id, time, .. } => self.vertex(id, |v| v.completed = Some(stamp(time))),
            Event::Error { id, message, time } => self.vertex(id, |v| {
                v.completed = Some(stamp(time));
                v.error = message;
            }),
            Event::Warning { message, time } => {
                let digest = self.synthetic("[cairn] frontend", time, "");
                self.emit(serde_json::json!({
                    "warnings": [{ "vertex": digest, "level": 1, "short": b64(message.as_bytes()) }]
                }));
            }
            Event::Notice { message, time } => {
                let digest = self.synthetic("[cairn] notices", time, "");
                let data = b64(format!("{message}\n").as_bytes());
                self.emit(serde_json::json!({
                    "logs": [{ "vertex": digest, "stream": 2, "data": data, "timestamp": stamp(time) }]
                }));
            }
            Event::Failed { message, time } => {
                self.synthetic("[cairn] build", time, &message);
            }
            // A reason is a status of the step's vertex (BuildKit's `VertexStatus`), named
            // `cache miss: …`, complete at once, so clients show it under the step.
            Event::Explain { id, reasons, time } => {
                let digest = match self.vertexes.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
                    Some(v) => v.digest.clone(),
                    None => return,
                };
                let statuses: Vec<_> = reasons
                    .iter()
                    .enumerate()
                    .map(|(n, r)| {
                        serde_json::json!({
                            "id": format!("cache-miss-{n}"), "vertex": digest, "name": format!("cache miss: {r}"),
                            "current": 0, "timestamp": stamp(time), "started": stamp(time), "completed": stamp(time)
                        })
                    })
                    .collect();
                self.emit(serde_json::json!({ "statuses": statuses }));
            }
            // BuildKit's stream has no summary (the image digest is `-q`'s, `--iidfile`'s
            // and `--metadata-file`'s business) and no queued state (a vertex appears when
            // it starts).
            Event::Summary { .. } | Event::Queued { .. } => {}
        }
    }
}

/// Prints only warnings and notices, to stderr (the CLI prints the image id at the end).
pub struct Quiet;

impl Progress for Quiet {
    fn event(&self, ev: Event) {
        match ev {
            Event::Warning { message, .. } => eprintln!("warning: {message}"),
            Event::Notice { message, .. } => eprintln!("{message}"),
            _ => {}
        }
    }
}

/// Live view: one spinner per running step with its last log line; finished steps are
/// printed above in the plain shapes.
pub struct Tty {
    multi: indicatif::MultiProgress,
    bars: Mutex<HashMap<usize, (indicatif::ProgressBar, String)>>,
}

impl Tty {
    pub fn new() -> Tty {
        Tty {
            multi: indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for Tty {
    fn default() -> Tty {
        Tty::new()
    }
}

impl Progress for Tty {
    fn event(&self, ev: Event) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        match ev {
            Event::Start { id, name, .. } => {
                let pb = self.multi.add(indicatif::ProgressBar::new_spinner());
                if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}")
                {
                    pb.set_style(style);
                }
                pb.set_prefix(format!("#{id} {name}"));
                pb.enable_steady_tick(Duration::from_millis(120));
                bars.insert(id, (pb, name));
            }
            Event::Log { id, line, .. } => {
                if let Some((pb, _)) = bars.get(&id) {
                    pb.set_message(format!("│ {line}"));
                }
            }
            Event::Cached { id, .. } => {
                if let Some((pb, name)) = bars.remove(&id) {
                    pb.finish_and_clear();
                    let _ = self.multi.println(format!("#{id} {name} CACHED"));
                }
            }
            Event::Done { id, seconds, .. } => {
                if let Some((pb, name)) = bars.remove(&id) {
                    pb.finish_and_clear();
                    let _ = self.multi.println(format!("#{id} {name} DONE {}", secs(seconds)));
                }
            }
            Event::Error { id, message, .. } => {
                if let Some((pb, name)) = bars.remove(&id) {
                    pb.finish_and_clear();
                    let _ = self.multi.println(format!("#{id} {name} ERROR: {message}"));
                }
            }
            Event::Summary { seconds, executed, cached, digest, .. } => {
                for (_, (pb, _)) in bars.drain() {
                    pb.finish_and_clear();
                }
                let _ = self.multi.println(summary_line(seconds, executed, cached, &digest));
            }
            Event::Warning { message, .. } => {
                let _ = self.multi.println(format!("warning: {message}"));
            }
            Event::Notice { message, .. } => {
                let _ = self.multi.println(message);
            }
            Event::Failed { .. } | Event::Explain { .. } | Event::Queued { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_uses_buildkit_line_shapes() {
        let buf = Buf::default();
        let p = Plain::new(Box::new(buf.clone()));
        p.event(Event::Start {
            id: 5,
            name: "[build 2/5] RUN make".into(),
            time: 0.0,
            digest: String::new(),
            inputs: vec![],
        });
        p.event(Event::Log { id: 5, elapsed: 0.532, line: "cc main.c".into(), time: 0.0 });
        p.event(Event::Done { id: 5, seconds: 0.31, time: 0.0 });
        p.event(Event::Start {
            id: 6,
            name: "[build 3/5] COPY a b".into(),
            time: 0.0,
            digest: String::new(),
            inputs: vec![],
        });
        p.event(Event::Cached { id: 6, time: 0.0 });
        p.event(Event::Start {
            id: 7,
            name: "[build 4/5] RUN false".into(),
            time: 0.0,
            digest: String::new(),
            inputs: vec![],
        });
        p.event(Event::Error { id: 7, message: "process exited with code 1".into(), time: 0.0 });
        p.event(Event::Start {
            id: 8,
            name: "FROM docker.io/library/busybox:latest".into(),
            time: 0.0,
            digest: String::new(),
            inputs: vec![],
        });
        p.event(Event::Start { id: 9, name: "[a 1/1] RUN x".into(), time: 0.0, digest: String::new(), inputs: vec![] });
        p.event(Event::Cached { id: 8, time: 0.0 });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "#5 [build 2/5] RUN make\n#5 0.532 cc main.c\n#5 DONE 0.3s\n\n#6 [build 3/5] COPY a b\n#6 CACHED\n\n#7 [build 4/5] RUN false\n#7 ERROR: process exited with code 1\n\n#8 FROM docker.io/library/busybox:latest\n\n#9 [a 1/1] RUN x\n\n#8 FROM docker.io/library/busybox:latest\n#8 CACHED\n"
        );
    }

    #[test]
    fn rawjson_is_buildkits_solve_status_stream() {
        let buf = Buf::default();
        let p = RawJson::new(Box::new(buf.clone()));
        let (d1, d2) = ("sha256:aa".to_string(), "sha256:bb".to_string());
        p.event(Event::Start { id: 1, name: "FROM x".into(), time: 1.5, digest: d1.clone(), inputs: vec![] });
        p.event(Event::Cached { id: 1, time: 2.5 });
        p.event(Event::Start { id: 2, name: "[a 1/1] RUN y".into(), time: 3.0, digest: d2.clone(), inputs: vec![d1] });
        p.event(Event::Log { id: 2, elapsed: 0.1, line: "hi".into(), time: 3.25 });
        p.event(Event::Error { id: 2, message: "exit 1".into(), time: 4.0 });
        p.event(Event::Warning { message: "careful".into(), time: 4.0 });
        p.event(Event::Failed { message: "failed to solve".into(), time: 4.0 });
        p.event(Event::Summary { seconds: 1.0, executed: 1, cached: 2, digest: None, time: 3.0 });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 8, "{text}");
        assert_eq!(lines[0]["vertexes"][0]["digest"], "sha256:aa");
        assert_eq!(lines[0]["vertexes"][0]["started"], "1970-01-01T00:00:01.5Z");
        assert!(lines[0]["vertexes"][0].get("completed").is_none());
        assert_eq!(lines[1]["vertexes"][0]["cached"], true);
        assert_eq!(lines[1]["vertexes"][0]["completed"], "1970-01-01T00:00:02.5Z");
        assert_eq!(lines[2]["vertexes"][0]["inputs"][0], "sha256:aa");
        assert_eq!(lines[3]["logs"][0]["vertex"], "sha256:bb");
        assert_eq!(lines[3]["logs"][0]["data"], "aGkK", "base64 of `hi\\n`");
        assert_eq!(lines[3]["logs"][0]["stream"], 1);
        assert_eq!(lines[4]["vertexes"][0]["error"], "exit 1");
        assert_eq!(lines[6]["warnings"][0]["short"], "Y2FyZWZ1bA==");
        assert_eq!(lines[6]["warnings"][0]["vertex"], lines[5]["vertexes"][0]["digest"]);
        assert_eq!(lines[7]["vertexes"][0]["error"], "failed to solve");
    }

    #[test]
    fn modes_parse_with_clear_errors() {
        assert_eq!("rawjson".parse::<Mode>().unwrap(), Mode::RawJson);
        let e = "fancy".parse::<Mode>().unwrap_err();
        assert!(e.starts_with("Unknown progress mode `fancy`"), "{e}");
    }

    #[test]
    fn tty_renderer_handles_every_event_without_a_terminal() {
        let t = Tty::new();
        t.event(Event::Start {
            id: 1,
            name: "[a 1/2] RUN x".into(),
            time: now(),
            digest: String::new(),
            inputs: vec![],
        });
        t.event(Event::Log { id: 1, elapsed: 0.1, line: "hello".into(), time: now() });
        t.event(Event::Start {
            id: 2,
            name: "[a 2/2] COPY y".into(),
            time: now(),
            digest: String::new(),
            inputs: vec![],
        });
        t.event(Event::Cached { id: 2, time: now() });
        t.event(Event::Done { id: 1, seconds: 0.2, time: now() });
        t.event(Event::Start {
            id: 3,
            name: "[b 1/1] RUN z".into(),
            time: now(),
            digest: String::new(),
            inputs: vec![],
        });
        t.event(Event::Error { id: 3, message: "boom".into(), time: now() });
        t.event(Event::Log { id: 99, elapsed: 0.0, line: "unknown step".into(), time: now() });
        t.event(Event::Summary { seconds: 1.0, executed: 1, cached: 1, digest: None, time: now() });
        assert!(t.bars.lock().unwrap().is_empty(), "every bar is finished");
        assert_eq!(
            summary_line(1.25, 2, 3, &Some("sha256:ab".into())),
            "Finished in 1.2s: 2 steps executed, 3 cached, image sha256:ab"
        );
    }
}
