//! `cairn explain [BUILD]` and `cairn build --explain`: why steps missed the cache, from the
//! step records every build keeps in the store (`cairn_runtime::solve::record`). The reasons
//! are computed when the build runs, against the last build of each step, and kept in the
//! build's record, so an old build shows what was true then.

use anyhow::bail;
use cairn_runtime::solve::progress::{now, Event, Progress};
use cairn_runtime::solve::record::{self, BuildRecord};

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The build's id (or a prefix of it); the last build by default
    pub build: Option<String>,
    /// List the kept builds (id, time, context, steps run and cached)
    #[arg(long, conflicts_with = "build")]
    pub list: bool,
    /// `text` (the default) or `json` (the whole record, with every step's key parts)
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub format: String,
}

pub fn run(args: ExplainArgs) -> anyhow::Result<()> {
    if !matches!(args.format.as_str(), "text" | "json") {
        bail!("Unknown `--format {}` (expected text or json)", args.format);
    }
    let st = super::inspect::open()?;
    let builds = record::all_builds(&st);
    if args.list {
        let mut out = String::from("BUILD         TIME                  RAN  CACHED  CONTEXT\n");
        for b in &builds {
            let ran = b.steps.iter().filter(|s| !s.cached).count();
            let time = b.time_text();
            out.push_str(&format!("{:<13} {time:<21} {ran:>3}  {:>6}  {}\n", b.id, b.steps.len() - ran, b.context));
        }
        return print(&out);
    }
    let found = match &args.build {
        None => builds.first(),
        Some(id) => {
            let matching: Vec<&BuildRecord> = builds.iter().filter(|b| b.id.starts_with(id.as_str())).collect();
            if matching.len() > 1 {
                bail!("Build id `{id}` is ambiguous: {} builds start with it", matching.len());
            }
            matching.first().copied()
        }
    };
    let Some(b) = found else {
        match &args.build {
            Some(id) => bail!("No build `{id}` among the kept build records (see `cairn explain --list`)"),
            None => bail!("No build has been recorded in this store yet"),
        }
    };
    match args.format.as_str() {
        "json" => print(&format!("{}\n", serde_json::to_string_pretty(b)?)),
        _ => print(&explain_text(b)),
    }
}

/// `--explain` after a build: the text on stderr, or inside the rawjson stream as notices
/// (the stream holds nothing but SolveStatus objects).
pub fn report(b: &BuildRecord, rawjson: bool, progress: &dyn Progress) {
    let text = explain_text(b);
    match rawjson {
        true => progress.event(Event::Notice { message: text.trim_end().to_string(), time: now() }),
        false => eprint!("\n{text}"),
    }
}

/// The reasons of every step of `b` that missed the cache, one block per step.
pub fn explain_text(b: &BuildRecord) -> String {
    let missed: Vec<_> = b.steps.iter().filter(|s| !s.cached).collect();
    let mut out = format!("Build {} ({}): {} of {} steps ran\n", b.id, b.platform, missed.len(), b.steps.len());
    for s in missed {
        let location = s.step.split_once(' ').map_or(s.step.as_str(), |x| x.0);
        out.push_str(&format!("{}  ({location})\n", s.name));
        for r in &s.reasons {
            out.push_str(&format!("    {r}\n"));
        }
    }
    out
}

fn print(s: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout();
    out.write_all(s.as_bytes()).and_then(|()| out.flush()).map_err(|e| anyhow::anyhow!("Cannot write to stdout: {e}"))
}
