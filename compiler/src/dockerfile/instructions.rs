//! Typed commands: each AST instruction becomes a [`Command`] whose flags are read once,
//! through the grammar's flag table ([`cairn_grammar::flags`]), as BuildKit's
//! `frontend/dockerfile/instructions` does. Words that take variables stay as written
//! here; [`Command::expand`] substitutes them all in one place, against the environment
//! the instruction sees, before the instruction is lowered.
//!
//! What is expanded: FROM's image and `--platform` (global ARGs); for the other
//! instructions, every flag value except booleans and HEALTHCHECK's, COPY/ADD sources,
//! destination and unquoted heredoc bodies, ENV and LABEL keys and values, ARG defaults
//! not overridden by a build arg, and the words of EXPOSE, VOLUME, USER, WORKDIR,
//! STOPSIGNAL and MAINTAINER. RUN, CMD, ENTRYPOINT, SHELL and ONBUILD are left to the
//! shell (or to the build that runs the trigger).

use std::collections::BTreeMap;

use cairn_grammar::ast::{Args, Flag, Heredoc, Instruction, Keyword, Span, Spanned};
use cairn_grammar::flags::{flag_spec, FlagKind};
use cairn_grammar::{expand, ErrorKind as GrammarKind};
use cairn_ir::Healthcheck;

use super::values::parse_duration;
use super::Src;
use crate::error::{CompileError, ErrorKind};

/// A word as written, with its place; [`Command::expand`] replaces the text in place.
pub(crate) type Word = Spanned<String>;

/// Every occurrence of a value flag, in order. Each is expanded and checked; the last one
/// counts (BuildKit refuses the repetition; cairn has always taken the last).
#[derive(Debug, Clone, Default)]
pub(crate) struct FlagValues(pub Vec<Word>);

impl FlagValues {
    pub fn last(&self) -> Option<&Word> {
        self.0.last()
    }

    /// The last occurrence read by `parse`, after every occurrence passed it.
    pub fn last_valid<T>(&self, parse: impl Fn(&Word) -> Result<T, CompileError>) -> Result<Option<T>, CompileError> {
        Ok(self.0.iter().map(parse).collect::<Result<Vec<T>, _>>()?.pop())
    }
}

/// `FROM [--platform=P] image [AS name]`.
#[derive(Debug, Clone)]
pub(crate) struct FromCommand {
    pub base: Word,
    /// As written (checked and lower-cased when the stages are split).
    pub name: Option<Word>,
    /// The first `--platform` (later ones are ignored, as they always were).
    pub platform: Option<Word>,
}

/// A command line in exec (JSON) or shell form.
#[derive(Debug, Clone)]
pub(crate) enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone)]
pub(crate) struct RunCommand {
    /// `--mount` values, parsed after expansion (`run::parse_mount`).
    pub mounts: Vec<Word>,
    pub network: FlagValues,
    pub security: FlagValues,
    pub command: CommandLine,
    pub heredocs: Vec<Heredoc>,
}

/// A COPY or ADD source.
#[derive(Debug, Clone)]
pub(crate) enum CopySource {
    /// A `<<NAME` word with its body (expanded unless the marker was quoted).
    Heredoc(Heredoc),
    Path(Word),
}

/// COPY and ADD (`add` tells them apart: ADD also fetches URLs and git repositories and
/// unpacks local archives).
#[derive(Debug, Clone)]
pub(crate) struct CopyCommand {
    pub add: bool,
    pub from: FlagValues,
    pub chown: FlagValues,
    pub chmod: FlagValues,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<Word>,
    pub checksum: FlagValues,
    pub keep_git_dir: bool,
    /// ADD `--unpack`: `None` when not given (local archives unpack, downloads do not).
    pub unpack: Option<bool>,
    pub sources: Vec<CopySource>,
    pub dest: Word,
    /// The instruction (heredoc expansion errors point at it).
    pub span: Span,
}

/// An ENV or LABEL pair; both sides expand.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    pub key: Word,
    pub value: Word,
}

/// Where an ARG's value comes from.
#[derive(Debug, Clone)]
pub(crate) enum ArgValue {
    /// `--build-arg`: taken as given, the default is not even expanded.
    BuildArg(String),
    /// The default as written, expanded.
    Default(Word),
    /// Neither: a stage ARG then takes the global ARG of the same name.
    Unset,
}

#[derive(Debug, Clone)]
pub(crate) struct ArgDecl {
    pub key: String,
    /// The default as written (for history).
    pub written: Option<String>,
    pub value: ArgValue,
}

#[derive(Debug, Clone)]
pub(crate) enum Command {
    Run(RunCommand),
    Copy(CopyCommand),
    Env(Vec<Pair>),
    Arg(Vec<ArgDecl>),
    Label(Vec<Pair>),
    Maintainer(Vec<Word>),
    Expose(Vec<Word>),
    Volume(Vec<Word>),
    User(Vec<Word>),
    Workdir(Vec<Word>),
    Stopsignal(Vec<Word>),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Shell(Vec<String>),
    Healthcheck(Healthcheck),
    /// The trigger instruction (kept as written in the image config).
    Onbuild(Box<Instruction>),
}

/// The flags of one instruction, read through the flag table.
struct Flags<'a> {
    keyword: Keyword,
    flags: &'a [Flag],
}

impl<'a> Flags<'a> {
    /// Refuses a flag the table does not list for the keyword (the parser already did for
    /// parsed text; this keeps a hand-built AST to the same rule).
    fn new(src: &Src, ins: &'a Instruction) -> Result<Flags<'a>, CompileError> {
        if let Some(f) = ins.flags.iter().find(|f| flag_spec(ins.keyword, &f.name).is_none()) {
            let message = cairn_grammar::flags::refused_flag_message(ins.keyword, &f.name);
            return Err(src.err(ErrorKind::Parse(GrammarKind::UnknownFlag), f.span, message));
        }
        Ok(Flags { keyword: ins.keyword, flags: &ins.flags })
    }

    fn each(&self, name: &'static str, kind: FlagKind) -> impl Iterator<Item = &'a Flag> + '_ {
        debug_assert_eq!(flag_spec(self.keyword, name).map(|s| s.kind), Some(kind), "--{name} in the flag table");
        self.flags.iter().filter(move |f| f.name == name)
    }

    fn words(&self, name: &'static str, kind: FlagKind) -> Vec<Word> {
        self.each(name, kind).map(|f| Spanned { node: f.value.clone().unwrap_or_default(), span: f.span }).collect()
    }

    fn values(&self, name: &'static str) -> FlagValues {
        FlagValues(self.words(name, FlagKind::Value))
    }

    fn list(&self, name: &'static str) -> Vec<Word> {
        self.words(name, FlagKind::List)
    }

    fn first(&self, name: &'static str) -> Option<Word> {
        self.words(name, FlagKind::Value).into_iter().next()
    }

    /// A boolean flag: absent is false; `--x`, `--x=true` true; `--x=false` false.
    fn bool(&self, src: &Src, name: &'static str) -> Result<bool, CompileError> {
        Ok(self.opt_bool(src, name)?.unwrap_or(false))
    }

    /// A boolean flag that may be absent (`None`); the last occurrence counts.
    fn opt_bool(&self, src: &Src, name: &'static str) -> Result<Option<bool>, CompileError> {
        let mut value = None;
        for f in self.each(name, FlagKind::Bool) {
            value = match f.value.as_deref() {
                None | Some("true") => Some(true),
                Some("false") => Some(false),
                Some(o) => {
                    return Err(src.err(
                        ErrorKind::Instruction,
                        f.span,
                        format!("`--{name}={o}`: expected true or false"),
                    ))
                }
            };
        }
        Ok(value)
    }
}

/// The error for an AST shape the grammar never produces.
fn shape(src: &Src, ins: &Instruction) -> CompileError {
    let message = format!("`{}` has arguments the parser never produces", ins.keyword.as_str());
    src.err(ErrorKind::Ast, ins.span, message)
}

/// FROM's image, name and platform.
pub(crate) fn parse_from(src: &Src, ins: &Instruction) -> Result<FromCommand, CompileError> {
    let flags = Flags::new(src, ins)?;
    match &ins.args {
        Args::Words(w) if w.len() == 1 || w.len() == 3 => {
            Ok(FromCommand { base: w[0].clone(), name: w.get(2).cloned(), platform: flags.first("platform") })
        }
        _ => Err(shape(src, ins)),
    }
}

/// Reads an instruction inside a stage (not FROM) into its command.
pub(crate) fn parse(
    src: &Src,
    ins: &Instruction,
    build_args: &BTreeMap<String, String>,
) -> Result<Command, CompileError> {
    let flags = Flags::new(src, ins)?;
    let words = || words_of(src, ins);
    Ok(match ins.keyword {
        Keyword::Run => Command::Run(parse_run(src, ins, &flags)?),
        Keyword::Copy | Keyword::Add => Command::Copy(parse_copy(src, ins, &flags)?),
        Keyword::Env => Command::Env(pairs(src, ins)?),
        Keyword::Label => Command::Label(pairs(src, ins)?),
        Keyword::Arg => Command::Arg(parse_arg(src, ins, build_args)?),
        Keyword::Maintainer => Command::Maintainer(words()?),
        Keyword::Expose => Command::Expose(words()?),
        Keyword::Volume => Command::Volume(words()?),
        Keyword::User => Command::User(words()?),
        Keyword::Workdir => Command::Workdir(words()?),
        Keyword::Stopsignal => Command::Stopsignal(words()?),
        Keyword::Cmd => Command::Cmd(command_line(src, ins, &ins.args)?),
        Keyword::Entrypoint => Command::Entrypoint(command_line(src, ins, &ins.args)?),
        Keyword::Shell => match &ins.args {
            Args::Exec(v) if !v.is_empty() => Command::Shell(v.clone()),
            _ => return Err(shape(src, ins)),
        },
        Keyword::Healthcheck => Command::Healthcheck(parse_healthcheck(src, ins)?),
        Keyword::Onbuild => match &ins.args {
            Args::Onbuild(inner) => Command::Onbuild(inner.clone()),
            _ => return Err(shape(src, ins)),
        },
        Keyword::From => return Err(shape(src, ins)),
    })
}

/// The words of EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, MAINTAINER (a JSON array's
/// strings point at the instruction).
fn words_of(src: &Src, ins: &Instruction) -> Result<Vec<Word>, CompileError> {
    match &ins.args {
        Args::Words(w) => Ok(w.clone()),
        Args::Exec(v) => Ok(v.iter().map(|s| Spanned { node: s.clone(), span: ins.span }).collect()),
        _ => Err(shape(src, ins)),
    }
}

fn command_line(src: &Src, ins: &Instruction, args: &Args) -> Result<CommandLine, CompileError> {
    match args {
        Args::Exec(v) => Ok(CommandLine::Exec(v.clone())),
        Args::Shell(s) => Ok(CommandLine::Shell(s.clone())),
        _ => Err(shape(src, ins)),
    }
}

fn parse_run(src: &Src, ins: &Instruction, flags: &Flags) -> Result<RunCommand, CompileError> {
    let command = command_line(src, ins, &ins.args)?;
    if matches!(&command, CommandLine::Exec(v) if v.is_empty()) {
        return Err(src.err(ErrorKind::Instruction, ins.span, "`RUN` needs a command: the JSON array is empty"));
    }
    Ok(RunCommand {
        mounts: flags.list("mount"),
        network: flags.values("network"),
        security: flags.values("security"),
        command,
        heredocs: ins.heredocs.clone(),
    })
}

fn parse_copy(src: &Src, ins: &Instruction, flags: &Flags) -> Result<CopyCommand, CompileError> {
    let kw = ins.keyword.as_str();
    let mut words = words_of(src, ins)?;
    if words.len() < 2 {
        let message = format!("`{kw}` requires at least two arguments: a source and a destination");
        return Err(src.err(ErrorKind::Instruction, ins.span, message));
    }
    let dest = words.pop().expect("two words");
    // `<<NAME` words take the heredoc bodies in order; a spare `<<x` is a path.
    let mut heredocs = ins.heredocs.iter();
    let sources = words
        .into_iter()
        .map(|w| match w.node.starts_with("<<").then(|| heredocs.next()).flatten() {
            Some(h) => CopySource::Heredoc(h.clone()),
            None => CopySource::Path(w),
        })
        .collect();
    let add = ins.keyword == Keyword::Add;
    Ok(CopyCommand {
        add,
        from: if add { FlagValues::default() } else { flags.values("from") },
        chown: flags.values("chown"),
        chmod: flags.values("chmod"),
        link: flags.bool(src, "link")?,
        parents: if add { false } else { flags.bool(src, "parents")? },
        exclude: flags.list("exclude"),
        checksum: if add { flags.values("checksum") } else { FlagValues::default() },
        keep_git_dir: if add { flags.bool(src, "keep-git-dir")? } else { false },
        unpack: if add { flags.opt_bool(src, "unpack")? } else { None },
        sources,
        dest,
        span: ins.span,
    })
}

fn pairs(src: &Src, ins: &Instruction) -> Result<Vec<Pair>, CompileError> {
    let Args::Pairs(pairs) = &ins.args else { return Err(shape(src, ins)) };
    let word = |s: &str, span: Span| Spanned { node: s.to_string(), span };
    Ok(pairs
        .iter()
        .map(|p| Pair { key: word(&p.key, p.span), value: word(p.value.as_deref().unwrap_or(""), p.span) })
        .collect())
}

fn parse_arg(
    src: &Src,
    ins: &Instruction,
    build_args: &BTreeMap<String, String>,
) -> Result<Vec<ArgDecl>, CompileError> {
    let Args::Pairs(pairs) = &ins.args else { return Err(shape(src, ins)) };
    Ok(pairs
        .iter()
        .map(|p| ArgDecl {
            key: p.key.clone(),
            written: p.value.clone(),
            value: match (build_args.get(&p.key), &p.value) {
                (Some(v), _) => ArgValue::BuildArg(v.clone()),
                (None, Some(d)) => ArgValue::Default(Spanned { node: d.clone(), span: p.span }),
                (None, None) => ArgValue::Unset,
            },
        })
        .collect())
}

/// HEALTHCHECK: its flags are durations and a count, never expanded.
fn parse_healthcheck(src: &Src, ins: &Instruction) -> Result<Healthcheck, CompileError> {
    let mut hc = Healthcheck::default();
    let err = |span: Span, message: String| src.err(ErrorKind::Instruction, span, message);
    match &ins.args {
        Args::HealthcheckNone => {
            if let Some(f) = ins.flags.first() {
                return Err(err(f.span, "`HEALTHCHECK NONE` takes no flags".into()));
            }
            hc.test = vec!["NONE".into()];
            return Ok(hc);
        }
        Args::HealthcheckCmd(inner) => match command_line(src, ins, inner)? {
            CommandLine::Exec(v) => hc.test = ["CMD".to_string()].into_iter().chain(v).collect(),
            CommandLine::Shell(s) => hc.test = vec!["CMD-SHELL".into(), s],
        },
        _ => return Err(shape(src, ins)),
    }
    for f in &ins.flags {
        let v = f.value.as_deref().unwrap_or("");
        if f.name == "retries" {
            hc.retries = v
                .parse::<u64>()
                .map_err(|_| err(f.span, format!("`--retries={v}`: expected a non-negative whole number")))?;
            continue;
        }
        let d = parse_duration(v).map_err(|e| err(f.span, format!("`--{}={v}`: {e}", f.name)))?;
        if d != 0 && d < 1_000_000 {
            return Err(err(f.span, format!("`--{}` cannot be less than 1ms", f.name)));
        }
        match f.name.as_str() {
            "interval" => hc.interval = d,
            "timeout" => hc.timeout = d,
            "start-period" => hc.start_period = d,
            _ => hc.start_interval = d,
        }
    }
    Ok(hc)
}

/// Expands words against one environment: the place every instruction's variables are
/// substituted.
pub(crate) struct Expander<'a> {
    pub src: &'a Src<'a>,
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Expander<'_> {
    pub fn string(&self, word: &str, span: Span) -> Result<String, CompileError> {
        expand::expand_word(word, self.src.escape, self.lookup)
            .map_err(|e| self.src.err(ErrorKind::Expansion, span, e.message))
    }

    fn word(&self, w: &mut Word) -> Result<(), CompileError> {
        w.node = self.string(&w.node, w.span)?;
        Ok(())
    }

    fn all<'w>(&self, words: impl IntoIterator<Item = &'w mut Word>) -> Result<(), CompileError> {
        words.into_iter().try_for_each(|w| self.word(w))
    }

    /// Heredoc content: `$v` and `${…}` substitute, quotes stay as written, the escape
    /// character before `$` gives a literal `$` (BuildKit expands COPY heredocs this way).
    fn heredoc(&self, text: &str, span: Span) -> Result<String, CompileError> {
        let esc = self.src.escape;
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == esc && chars.get(i + 1) == Some(&'$') {
                out.push('$');
                i += 2;
                continue;
            }
            let Some(end) = (c == '$').then(|| variable_end(&chars, i)).flatten() else {
                out.push(c);
                i += 1;
                continue;
            };
            let seg: String = chars[i..end].iter().collect();
            out.push_str(&self.string(&seg, span)?);
            i = end;
        }
        Ok(out)
    }
}

/// The end of the `$name` or `${…}` starting at `chars[i]` (a `$`), if one starts there.
fn variable_end(chars: &[char], i: usize) -> Option<usize> {
    match chars.get(i + 1) {
        Some('{') => {
            let mut depth = 0;
            let mut j = i + 1;
            while j < chars.len() {
                match chars[j] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Some((j + 1).min(chars.len()))
        }
        Some(c) if c.is_ascii_alphanumeric() || *c == '_' => {
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            Some(j)
        }
        _ => None,
    }
}

impl FromCommand {
    /// FROM sees the global ARGs only.
    pub fn expand(&mut self, x: &Expander) -> Result<(), CompileError> {
        x.word(&mut self.base)?;
        x.all(self.platform.as_mut())
    }
}

impl Command {
    /// Substitutes every expandable word of the command (see the module doc for which).
    pub fn expand(&mut self, x: &Expander) -> Result<(), CompileError> {
        match self {
            Command::Run(r) => x.all(r.mounts.iter_mut().chain(&mut r.network.0).chain(&mut r.security.0)),
            Command::Copy(c) => {
                x.all(c.from.0.iter_mut().chain(&mut c.chown.0).chain(&mut c.chmod.0))?;
                x.all(c.exclude.iter_mut().chain(&mut c.checksum.0).chain([&mut c.dest]))?;
                for s in &mut c.sources {
                    match s {
                        CopySource::Path(w) => x.word(w)?,
                        CopySource::Heredoc(h) if h.expand => h.content = x.heredoc(&h.content, c.span)?,
                        CopySource::Heredoc(_) => {}
                    }
                }
                Ok(())
            }
            Command::Env(pairs) | Command::Label(pairs) => {
                x.all(pairs.iter_mut().flat_map(|p| [&mut p.key, &mut p.value]))
            }
            Command::Arg(decls) => x.all(decls.iter_mut().filter_map(|d| match &mut d.value {
                ArgValue::Default(w) => Some(w),
                _ => None,
            })),
            Command::Maintainer(w)
            | Command::Expose(w)
            | Command::Volume(w)
            | Command::User(w)
            | Command::Workdir(w)
            | Command::Stopsignal(w) => x.all(w),
            Command::Cmd(_)
            | Command::Entrypoint(_)
            | Command::Shell(_)
            | Command::Healthcheck(_)
            | Command::Onbuild(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_grammar::ast::Dockerfile;

    fn src(text: &str) -> Src<'_> {
        Src { file: "Dockerfile", text, escape: '\\' }
    }

    fn first_in_stage(df: &Dockerfile) -> &Instruction {
        &df.instructions[1]
    }

    #[test]
    fn flags_are_read_once_into_typed_fields() {
        let text =
            "FROM a\nCOPY --from=b --chmod=644 --chmod=0755 --link --exclude=*.o --exclude=x <<EOF x /d/\nhi\nEOF\n";
        let df = cairn_grammar::parse("Dockerfile", text).unwrap();
        let Command::Copy(c) = parse(&src(text), first_in_stage(&df), &BTreeMap::new()).unwrap() else { panic!() };
        assert_eq!(c.from.last().map(|w| w.node.as_str()), Some("b"));
        assert_eq!(c.chmod.0.len(), 2, "every occurrence is kept, so each is checked");
        assert!(c.link && !c.parents);
        assert_eq!(c.exclude.iter().map(|w| w.node.as_str()).collect::<Vec<_>>(), ["*.o", "x"]);
        assert!(
            matches!(&c.sources[..], [CopySource::Heredoc(h), CopySource::Path(p)] if h.name == "EOF" && p.node == "x")
        );
    }

    #[test]
    fn a_hand_built_ast_meets_the_parsers_rules() {
        let text = "FROM a\nRUN true\n";
        let mut df = cairn_grammar::parse("Dockerfile", text).unwrap();
        let span = df.instructions[1].span;
        df.instructions[1].flags.push(Flag { name: "frob".into(), value: None, span });
        let e = parse(&src(text), first_in_stage(&df), &BTreeMap::new()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Parse(GrammarKind::UnknownFlag));
        assert_eq!(e.message, "Unknown flag `--frob` for `RUN`");
        df.instructions[1].flags.clear();
        df.instructions[1].args = Args::Pairs(Vec::new());
        let e = parse(&src(text), first_in_stage(&df), &BTreeMap::new()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Ast);
    }

    #[test]
    fn expansion_is_one_pass_over_the_command() {
        let text = "FROM a\nENV $K=${V}x\n";
        let df = cairn_grammar::parse("Dockerfile", text).unwrap();
        let s = src(text);
        let mut cmd = parse(&s, first_in_stage(&df), &BTreeMap::new()).unwrap();
        let lookup = |n: &str| Some(n.to_lowercase());
        cmd.expand(&Expander { src: &s, lookup: &lookup }).unwrap();
        let Command::Env(pairs) = cmd else { panic!() };
        assert_eq!((pairs[0].key.node.as_str(), pairs[0].value.node.as_str()), ("k", "vx"));
        let mut cmd = parse(&s, first_in_stage(&df), &BTreeMap::new()).unwrap();
        let unset = |_: &str| None;
        let mut bad = cmd.clone();
        if let Command::Env(p) = &mut bad {
            p[0].value.node = "${V:?is unset}".into();
        }
        let e = bad.expand(&Expander { src: &s, lookup: &unset }).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Expansion);
        assert!(cmd.expand(&Expander { src: &s, lookup: &unset }).is_ok());
    }

    #[test]
    fn a_build_arg_keeps_the_default_unexpanded() {
        let text = "FROM a\nARG V=${UNSET:?never evaluated}\n";
        let df = cairn_grammar::parse("Dockerfile", text).unwrap();
        let s = src(text);
        let args = BTreeMap::from([("V".to_string(), "1".to_string())]);
        let mut cmd = parse(&s, first_in_stage(&df), &args).unwrap();
        cmd.expand(&Expander { src: &s, lookup: &|_| None }).unwrap();
        let Command::Arg(d) = cmd else { panic!() };
        assert!(matches!(&d[0].value, ArgValue::BuildArg(v) if v == "1"));
    }
}
