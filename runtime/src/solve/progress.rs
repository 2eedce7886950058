//! Progress reporting: events from the scheduler and their renderers (`plain` in
//! BuildKit's line shapes, `tty` live view with indicatif, `rawjson` one JSON object per
//! line, `quiet`).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// One progress event. `id` is the step number shown as `#id`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// A step begins (or is found in the cache right after).
    Start {
        id: usize,
        name: String,
        time: f64,
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

/// Builds the renderer for `mode`, writing to stderr (`Auto`: tty if stderr is a terminal).
pub fn renderer(mode: Mode) -> Box<dyn Progress> {
    use std::io::IsTerminal;
    match mode {
        Mode::Auto if std::io::stderr().is_terminal() => Box::new(Tty::new()),
        Mode::Auto | Mode::Plain => Box::new(Plain::new(Box::new(std::io::stderr()))),
        Mode::Tty => Box::new(Tty::new()),
        Mode::RawJson => Box::new(RawJson { out: Mutex::new(Box::new(std::io::stderr())) }),
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
        }
    }
}

/// One JSON object per line.
pub struct RawJson {
    pub out: Mutex<Box<dyn Write + Send>>,
}

impl Progress for RawJson {
    fn event(&self, ev: Event) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(s) = serde_json::to_string(&ev) {
            let _ = writeln!(out, "{s}");
            let _ = out.flush();
        }
    }
}

/// Prints nothing (the CLI prints the image id at the end).
pub struct Quiet;

impl Progress for Quiet {
    fn event(&self, _ev: Event) {}
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
        p.event(Event::Start { id: 5, name: "[build 2/5] RUN make".into(), time: 0.0 });
        p.event(Event::Log { id: 5, elapsed: 0.532, line: "cc main.c".into(), time: 0.0 });
        p.event(Event::Done { id: 5, seconds: 0.31, time: 0.0 });
        p.event(Event::Start { id: 6, name: "[build 3/5] COPY a b".into(), time: 0.0 });
        p.event(Event::Cached { id: 6, time: 0.0 });
        p.event(Event::Start { id: 7, name: "[build 4/5] RUN false".into(), time: 0.0 });
        p.event(Event::Error { id: 7, message: "process exited with code 1".into(), time: 0.0 });
        p.event(Event::Start { id: 8, name: "FROM docker.io/library/busybox:latest".into(), time: 0.0 });
        p.event(Event::Start { id: 9, name: "[a 1/1] RUN x".into(), time: 0.0 });
        p.event(Event::Cached { id: 8, time: 0.0 });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "#5 [build 2/5] RUN make\n#5 0.532 cc main.c\n#5 DONE 0.3s\n\n#6 [build 3/5] COPY a b\n#6 CACHED\n\n#7 [build 4/5] RUN false\n#7 ERROR: process exited with code 1\n\n#8 FROM docker.io/library/busybox:latest\n\n#9 [a 1/1] RUN x\n\n#8 FROM docker.io/library/busybox:latest\n#8 CACHED\n"
        );
    }

    #[test]
    fn rawjson_is_one_object_per_line() {
        let buf = Buf::default();
        let p = RawJson { out: Mutex::new(Box::new(buf.clone())) };
        p.event(Event::Cached { id: 1, time: 2.5 });
        p.event(Event::Summary { seconds: 1.0, executed: 1, cached: 2, digest: None, time: 3.0 });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["type"], "cached");
        assert_eq!(lines[0]["id"], 1);
        assert_eq!(lines[1]["type"], "summary");
        assert_eq!(lines[1]["cached"], 2);
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
        t.event(Event::Start { id: 1, name: "[a 1/2] RUN x".into(), time: now() });
        t.event(Event::Log { id: 1, elapsed: 0.1, line: "hello".into(), time: now() });
        t.event(Event::Start { id: 2, name: "[a 2/2] COPY y".into(), time: now() });
        t.event(Event::Cached { id: 2, time: now() });
        t.event(Event::Done { id: 1, seconds: 0.2, time: now() });
        t.event(Event::Start { id: 3, name: "[b 1/1] RUN z".into(), time: now() });
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
