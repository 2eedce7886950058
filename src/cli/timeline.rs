//! `cairn build --timeline FILE.svg|FILE.html`: a Gantt chart of the build from its
//! progress events. A [`Recorder`] passes every event on to the chosen renderer and keeps
//! each step's start, end and outcome; [`render_svg`] draws one bar per step, grouped by
//! stage, executed, cached and failed steps in different colours, the critical path
//! outlined, and a caption with the total time and the parallel width (the most steps
//! executing at one instant).
//!
//! The critical path follows the Definition: from the step that finished last, to the one
//! of its inputs (through vertices without a step of their own) that finished last, and so
//! on. A step is matched to its vertex by the name the engine gives it (`[stage 2/5] RUN …`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{bail, Context};
use cairn_ir::Definition;
use cairn_runtime::solve::progress::{Event, Progress};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Executed,
    Cached,
    Failed,
    /// Started, never finished (the build stopped).
    Unfinished,
}

/// One step of the build as the chart shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub name: String,
    /// Seconds since the build started.
    pub start: f64,
    pub end: f64,
    pub outcome: Outcome,
    /// Bars this one waited for (indexes into the bar list).
    pub deps: Vec<usize>,
    /// When the step was ready but waited for a `--jobs` permit (seconds since the build
    /// started), if it had to.
    pub queued: Option<f64>,
}

/// Records step events while passing them on to `inner`.
pub struct Recorder {
    inner: Box<dyn Progress>,
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    pub fn new(inner: Box<dyn Progress>) -> Recorder {
        Recorder { inner, events: Mutex::new(Vec::new()) }
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Progress for Recorder {
    fn event(&self, ev: Event) {
        if !matches!(ev, Event::Log { .. }) {
            self.events.lock().unwrap_or_else(|e| e.into_inner()).push(ev.clone());
        }
        self.inner.event(ev);
    }
}

/// The name the engine gives vertex `v`'s step (as `solve::Engine::step_name`).
fn step_name(def: &Definition, v: usize) -> String {
    let e = &def.vertices[v];
    e.meta.label().unwrap_or_else(|| e.vertex.op.kind().to_string())
}

/// The bars of a build from its events, with dependencies from `def`.
pub fn bars(events: &[Event], def: &Definition, started: f64) -> Vec<Bar> {
    let mut out: Vec<Bar> = Vec::new();
    let mut by_id: HashMap<usize, usize> = HashMap::new();
    let mut last = started;
    // Steps waiting for a permit, by name, until their `Start`.
    let mut queued: HashMap<&str, Vec<f64>> = HashMap::new();
    for ev in events {
        match ev {
            Event::Queued { name, time } => queued.entry(name.as_str()).or_default().push(time - started),
            Event::Start { id, name, time, .. } => {
                by_id.insert(*id, out.len());
                let waited = queued.get_mut(name.as_str()).and_then(|q| (!q.is_empty()).then(|| q.remove(0)));
                out.push(Bar {
                    name: name.clone(),
                    start: time - started,
                    end: time - started,
                    outcome: Outcome::Unfinished,
                    deps: Vec::new(),
                    queued: waited,
                });
                last = last.max(*time);
            }
            Event::Cached { id, time } | Event::Done { id, time, .. } | Event::Error { id, time, .. } => {
                if let Some(b) = by_id.get(id).map(|&i| &mut out[i]) {
                    b.end = time - started;
                    b.outcome = match ev {
                        Event::Cached { .. } => Outcome::Cached,
                        Event::Done { .. } => Outcome::Executed,
                        _ => Outcome::Failed,
                    };
                }
                last = last.max(*time);
            }
            _ => {}
        }
    }
    for b in out.iter_mut().filter(|b| b.outcome == Outcome::Unfinished) {
        b.end = last - started;
    }
    // Vertex of each bar, by name; then each bar's nearest ancestors that have bars.
    let index: HashMap<cairn_ir::Digest, usize> = def.vertices.iter().enumerate().map(|(i, e)| (e.digest, i)).collect();
    let mut names: HashMap<String, Vec<usize>> = HashMap::new();
    for v in (0..def.vertices.len()).rev() {
        names.entry(step_name(def, v)).or_default().push(v);
    }
    let mut bar_of_vertex: HashMap<usize, usize> = HashMap::new();
    let mut vertex_of_bar: Vec<Option<usize>> = Vec::new();
    for (i, b) in out.iter().enumerate() {
        let v = names.get_mut(&b.name).and_then(Vec::pop);
        if let Some(v) = v {
            bar_of_vertex.insert(v, i);
        }
        vertex_of_bar.push(v);
    }
    for (i, v) in vertex_of_bar.iter().enumerate() {
        let Some(v) = v else { continue };
        let mut stack: Vec<usize> =
            def.vertices[*v].vertex.inputs.iter().filter_map(|inp| index.get(&inp.digest).copied()).collect();
        let mut seen = std::collections::HashSet::new();
        let mut deps = Vec::new();
        while let Some(u) = stack.pop() {
            if !seen.insert(u) {
                continue;
            }
            match bar_of_vertex.get(&u) {
                Some(&b) => deps.push(b),
                None => {
                    stack.extend(def.vertices[u].vertex.inputs.iter().filter_map(|x| index.get(&x.digest).copied()))
                }
            }
        }
        deps.sort_unstable();
        out[i].deps = deps;
    }
    out
}

/// The critical path: bar indexes from the first to the one that finished last.
pub fn critical_path(bars: &[Bar]) -> Vec<usize> {
    let latest = |it: &mut dyn Iterator<Item = usize>| {
        it.max_by(|&a, &b| bars[a].end.partial_cmp(&bars[b].end).unwrap_or(std::cmp::Ordering::Equal))
    };
    let mut path = Vec::new();
    let mut cur = latest(&mut (0..bars.len()));
    while let Some(c) = cur {
        path.push(c);
        cur = latest(&mut bars[c].deps.iter().copied());
    }
    path.reverse();
    path
}

/// The most executed steps running at one instant.
pub fn parallel_width(bars: &[Bar]) -> usize {
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for b in bars.iter().filter(|b| matches!(b.outcome, Outcome::Executed | Outcome::Failed)) {
        edges.push((b.start, 1));
        edges.push((b.end, -1));
    }
    // Ends before starts at the same instant: touching bars do not overlap.
    edges.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal).then(a.1.cmp(&b.1)));
    let (mut cur, mut max) = (0i32, 0i32);
    for (_, d) in edges {
        cur += d;
        max = max.max(cur);
    }
    max as usize
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The stage of a step name (`[build 2/5] RUN …` → `build`), `""` for none.
fn stage_of(name: &str) -> &str {
    // `[build  7/24]`, `[ 1/10]` (one stage: no name), `[linux/arm64 build 1/2]`.
    let inside = name.strip_prefix('[').and_then(|r| r.split_once(']')).map_or("", |(s, _)| s);
    inside.trim_end().rsplit_once(' ').map_or("", |(s, _)| s.trim())
}

/// The caption: total time, steps, parallel width and the critical path's length.
pub fn caption(bars: &[Bar], total: f64) -> String {
    let n = |o: Outcome| bars.iter().filter(|b| b.outcome == o).count();
    let path = critical_path(bars);
    let path_secs = match (path.first(), path.last()) {
        (Some(&a), Some(&b)) => bars[b].end - bars[a].start,
        _ => 0.0,
    };
    format!(
        "Total {total:.2}s · {} steps: {} executed, {} cached{} · parallel width {} · critical path {path_secs:.2}s ({} steps)",
        bars.len(),
        n(Outcome::Executed),
        n(Outcome::Cached),
        if n(Outcome::Failed) > 0 { format!(", {} failed", n(Outcome::Failed)) } else { String::new() },
        parallel_width(bars),
        path.len()
    )
}

/// The chart as a standalone SVG document.
pub fn render_svg(bars: &[Bar], total: f64) -> String {
    const LABEL: f64 = 420.0;
    const CHART: f64 = 640.0;
    const ROW: f64 = 22.0;
    const TOP: f64 = 44.0;
    let total = total.max(bars.iter().map(|b| b.end).fold(0.0, f64::max)).max(0.001);
    let x = |t: f64| LABEL + t.max(0.0) / total * CHART;
    let critical: std::collections::HashSet<usize> = critical_path(bars).into_iter().collect();
    // Rows grouped by stage (stages in order of their first step), steps by start.
    let mut order: Vec<usize> = (0..bars.len()).collect();
    // A stage's place is that of its first step after FROM (one base image source may
    // serve several stages and is named after one of them).
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, b) in bars.iter().enumerate().filter(|(_, b)| !b.name.contains("] FROM ")) {
        first.entry(stage_of(&b.name)).or_insert(i);
    }
    for b in bars {
        first.entry(stage_of(&b.name)).or_insert(usize::MAX);
    }
    order.sort_by(|&a, &b| {
        (first[stage_of(&bars[a].name)], bars[a].start)
            .partial_cmp(&(first[stage_of(&bars[b].name)], bars[b].start))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut body = String::new();
    let mut y = TOP;
    let mut stage: Option<&str> = None;
    for &i in &order {
        let b = &bars[i];
        let s = stage_of(&b.name);
        if stage != Some(s) {
            if stage.is_some() {
                y += 6.0;
            }
            stage = Some(s);
            let title = if s.is_empty() { "(no stage)".to_string() } else { format!("stage {s}") };
            body.push_str(&format!("<text class=\"stage\" x=\"8\" y=\"{:.1}\">{}</text>\n", y + 14.0, esc(&title)));
            y += ROW;
        }
        let (class, what) = match b.outcome {
            Outcome::Executed => ("executed", "executed"),
            Outcome::Cached => ("cached", "cached"),
            Outcome::Failed => ("failed", "failed"),
            Outcome::Unfinished => ("failed", "unfinished"),
        };
        let crit = if critical.contains(&i) { " critical" } else { "" };
        let w = (x(b.end) - x(b.start)).max(2.0);
        let label = super::inspect::ellipsis(&b.name, 64);
        if let Some(q) = b.queued.filter(|q| *q < b.start) {
            body.push_str(&format!(
                "<rect class=\"bar waiting\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{} — \
                 waiting for a --jobs permit, {:.2}s</title></rect>\n",
                x(q),
                y + 3.0,
                (x(b.start) - x(q)).max(1.0),
                ROW - 6.0,
                esc(&b.name),
                b.start - q
            ));
        }
        body.push_str(&format!(
            "<text class=\"label\" x=\"16\" y=\"{:.1}\">{}</text>\n<rect class=\"bar {class}{crit}\" x=\"{:.1}\" \
             y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\"><title>{} — {what}, {:.2}s (from {:.2}s)</title></rect>\n",
            y + 15.0,
            esc(&label),
            x(b.start),
            y + 3.0,
            ROW - 6.0,
            esc(&b.name),
            b.end - b.start,
            b.start
        ));
        y += ROW;
    }
    // Time axis: about eight ticks at a round interval.
    let step = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0]
        .into_iter()
        .find(|s| total / s <= 8.0)
        .unwrap_or(3600.0);
    let mut axis = String::new();
    let mut t = 0.0;
    while t <= total + 1e-9 {
        axis.push_str(&format!(
            "<line class=\"tick\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\"/><text class=\"tick\" x=\"{0:.1}\" \
             y=\"{3:.1}\">{4}s</text>\n",
            x(t),
            TOP - 6.0,
            y,
            TOP - 10.0,
            (t * 100.0).round() / 100.0
        ));
        t += step;
    }
    let height = y + 56.0;
    let width = LABEL + CHART + 24.0;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <style>.executed{{fill:#4a7fd4}} .cached{{fill:#8fcf8f}} .failed{{fill:#d9534f}} .waiting{{fill:#e0e0e0}} \
         .critical{{stroke:#e8590c;stroke-width:2}} .tick{{stroke:#ddd;fill:#666;font-size:10px;text-anchor:middle}} \
         text.tick{{stroke:none}} .stage{{font-weight:bold}} .caption{{fill:#333}}</style>\n\
         <rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n\
         <text x=\"8\" y=\"18\" font-size=\"14\" font-weight=\"bold\">cairn build timeline</text>\n\
         {axis}{body}\
         <rect class=\"executed\" x=\"8\" y=\"{ly:.1}\" width=\"12\" height=\"10\"/><text x=\"24\" y=\"{lt:.1}\">executed</text>\
         <rect class=\"cached\" x=\"90\" y=\"{ly:.1}\" width=\"12\" height=\"10\"/><text x=\"106\" y=\"{lt:.1}\">cached</text>\
         <rect class=\"failed\" x=\"164\" y=\"{ly:.1}\" width=\"12\" height=\"10\"/><text x=\"180\" y=\"{lt:.1}\">failed</text>\
         <rect fill=\"none\" class=\"critical\" x=\"230\" y=\"{ly:.1}\" width=\"12\" height=\"10\"/><text x=\"246\" y=\"{lt:.1}\">critical path</text>\
         <rect class=\"waiting\" x=\"330\" y=\"{ly:.1}\" width=\"12\" height=\"10\"/><text x=\"346\" y=\"{lt:.1}\">waiting for a permit</text>\n\
         <text class=\"caption\" x=\"8\" y=\"{cy:.1}\">{}</text>\n</svg>\n",
        esc(&caption(bars, total)),
        ly = y + 12.0,
        lt = y + 21.0,
        cy = y + 44.0,
    )
}

/// Writes the chart of the recorded build to `path` (`.svg`, or `.html` with the SVG
/// inline).
pub fn write(path: &Path, rec: &Recorder, def: &Definition, started: f64, total: f64) -> anyhow::Result<()> {
    let bars = bars(&rec.events(), def, started);
    let svg = render_svg(&bars, total);
    let text = match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => svg,
        Some("html" | "htm") => format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cairn build timeline</title></head>\n\
             <body style=\"margin:8px\">\n{svg}</body></html>\n"
        ),
        _ => bail!("`--timeline {}`: the file name must end in .svg or .html", path.display()),
    };
    std::fs::write(path, text).with_context(|| format!("Cannot write the timeline `{}`", path.display()))
}

/// Checks a `--timeline` path before the build runs.
pub fn check_path(path: &Path) -> anyhow::Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg" | "html" | "htm") => Ok(()),
        _ => bail!("`--timeline {}`: the file name must end in .svg or .html", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_of_reads_buildkit_labels() {
        assert_eq!(stage_of("[build  7/24] RUN make"), "build");
        assert_eq!(stage_of("[ 1/10] RUN make"), "");
        assert_eq!(stage_of("[1/3] FROM busybox"), "");
        assert_eq!(stage_of("[linux/arm64 build 1/2] RUN x"), "linux/arm64 build");
        assert_eq!(stage_of("load build context"), "");
    }

    fn bar(name: &str, start: f64, end: f64, outcome: Outcome, deps: &[usize]) -> Bar {
        Bar { name: name.into(), start, end, outcome, deps: deps.to_vec(), queued: None }
    }

    /// A step that waited for a `--jobs` permit: its bar has a waiting mark before it.
    #[test]
    fn a_step_that_waited_for_a_permit_has_a_waiting_mark() {
        let start = |id: usize, name: &str, time: f64| Event::Start {
            id,
            name: name.into(),
            time,
            digest: String::new(),
            inputs: vec![],
        };
        let events = vec![
            start(1, "[a 2/2] RUN x", 10.0),
            Event::Queued { name: "[b 2/2] RUN y".into(), time: 10.0 },
            Event::Done { id: 1, seconds: 1.0, time: 11.0 },
            start(2, "[b 2/2] RUN y", 11.0),
            Event::Done { id: 2, seconds: 1.0, time: 12.0 },
        ];
        let def = cairn_ir::Definition {
            version: cairn_ir::FORMAT_VERSION,
            vertices: vec![],
            outputs: vec![],
            sources: vec![],
        };
        let bars = bars(&events, &def, 10.0);
        assert_eq!(bars[0].queued, None);
        assert_eq!(bars[1].queued, Some(0.0));
        assert_eq!(bars[1].start, 1.0);
        let svg = render_svg(&bars, 2.0);
        assert_eq!(svg.matches("<rect class=\"bar waiting\"").count(), 1, "{svg}");
        assert!(svg.contains("waiting for a --jobs permit, 1.00s"), "{svg}");
    }

    #[test]
    fn critical_path_width_and_svg() {
        let bars = vec![
            bar("[a 1/2] FROM busybox", 0.0, 0.0, Outcome::Cached, &[]),
            bar("[a 2/2] RUN sleep 1", 0.0, 1.0, Outcome::Executed, &[0]),
            bar("[b 2/2] RUN sleep 2 && <x>", 0.0, 2.0, Outcome::Executed, &[0]),
            bar("[c 3/3] COPY --from=a --from=b", 2.0, 2.5, Outcome::Executed, &[1, 2]),
        ];
        assert_eq!(critical_path(&bars), [0, 2, 3]);
        assert_eq!(parallel_width(&bars), 2);
        let svg = render_svg(&bars, 2.6);
        assert_eq!(svg.matches("<rect class=\"bar ").count(), 4);
        assert_eq!(svg.matches(" critical\"").count(), 3);
        assert!(svg.contains("RUN sleep 2 &amp;&amp; &lt;x&gt;"));
        assert!(
            svg.contains(
                "Total 2.60s · 4 steps: 3 executed, 1 cached · parallel width 2 · critical path 2.50s (3 steps)"
            ),
            "{svg}"
        );
        assert!(check_path(Path::new("t.png")).is_err());
    }
}
