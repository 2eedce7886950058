//! Dispatch: each instruction of a stage is read into its typed command, expanded against
//! the stage's environment (the one place variables are substituted), then applied to the
//! stage: RUN and COPY/ADD add vertices (`run.rs`, `copy.rs`), WORKDIR a mkdir, and the
//! rest change the image config and history only.

use std::collections::BTreeMap;

use cairn_grammar::ast::{Instruction, Span};
use cairn_ir::Healthcheck;
use cairn_sdk::MkdirOpts;

use super::instructions::{self, ArgDecl, ArgValue, Command, CommandLine, Expander, Pair, Word};
use super::state::{abs_path, parse_owner, PlatformCtx, State};
use super::values::parse_ports;
use super::{copy, format, run, Lowerer};
use crate::error::{CompileError, ErrorKind};

impl Lowerer<'_> {
    /// Applies `ins` to the stage. `trigger`: the text of an ONBUILD trigger, which stands
    /// in for the source line in descriptions.
    pub(super) fn dispatch(
        &mut self,
        pc: &mut PlatformCtx,
        st: &mut State,
        ins: &Instruction,
        trigger: Option<String>,
    ) -> Result<(), CompileError> {
        let written = trigger.unwrap_or_else(|| self.written(ins));
        let mut cmd = instructions::parse(&self.src, ins, &self.opts.build_args)?;
        cmd.expand(&Expander { src: &self.src, lookup: &|n| st.lookup(n) })?;
        if matches!(cmd, Command::Run(_) | Command::Copy(_)) {
            st.step += 1;
        }
        match cmd {
            Command::Run(r) => run::dispatch_run(self, pc, st, ins, r, &written),
            Command::Copy(c) => copy::dispatch_copy(self, pc, st, ins, c, &written),
            Command::Env(pairs) => {
                dispatch_env(st, pairs);
                Ok(())
            }
            Command::Arg(decls) => {
                self.dispatch_arg(pc, st, decls);
                Ok(())
            }
            Command::Label(pairs) => self.dispatch_label(st, pairs),
            Command::Maintainer(words) => {
                let m = join(words);
                st.config.author = Some(m.clone());
                st.history(format!("MAINTAINER {m}"), true);
                Ok(())
            }
            Command::Expose(words) => self.dispatch_expose(st, ins.span, words),
            Command::Volume(words) => self.dispatch_volume(st, ins.span, words),
            Command::User(words) => {
                let u = self.single(ins, words)?;
                st.config.config.user = Some(u.clone());
                st.history(format!("USER {u}"), true);
                Ok(())
            }
            Command::Workdir(words) => {
                let dir = self.single(ins, words)?;
                self.dispatch_workdir(st, ins, dir, written)
            }
            Command::Cmd(line) => {
                dispatch_cmd(st, line);
                Ok(())
            }
            Command::Entrypoint(line) => {
                dispatch_entrypoint(st, line);
                Ok(())
            }
            Command::Shell(shell) => {
                st.history(format!("SHELL {}", format::go_quote_list(&shell)), true);
                st.config.config.shell = Some(shell);
                Ok(())
            }
            Command::Stopsignal(words) => self.dispatch_stopsignal(st, ins, words),
            Command::Healthcheck(hc) => {
                dispatch_healthcheck(st, hc);
                Ok(())
            }
            Command::Onbuild(inner) => {
                self.dispatch_onbuild(st, &inner);
                Ok(())
            }
        }
    }

    fn dispatch_arg(&mut self, pc: &PlatformCtx, st: &mut State, decls: Vec<ArgDecl>) {
        let mut shown = Vec::new();
        for d in decls {
            let value = match d.value {
                ArgValue::BuildArg(v) => {
                    self.used_args.insert(d.key.clone());
                    Some(v)
                }
                ArgValue::Default(w) => Some(w.node),
                ArgValue::Unset => pc.meta_get(&d.key),
            };
            shown.push(match &d.written {
                Some(v) => format!("{}={}", d.key, v),
                None => d.key.clone(),
            });
            st.set_arg(d.key, value);
        }
        st.history(format!("ARG {}", shown.join(" ")), true);
    }

    fn dispatch_label(&self, st: &mut State, pairs: Vec<Pair>) -> Result<(), CompileError> {
        let mut shown = Vec::new();
        for Pair { key, value } in pairs {
            if key.node.is_empty() {
                return Err(self.err(ErrorKind::Instruction, key.span, "`LABEL` names an empty key"));
            }
            shown.push(format!("{}={}", key.node, value.node));
            st.config.config.labels.get_or_insert_with(BTreeMap::new).insert(key.node, value.node);
        }
        st.history(format!("LABEL {}", shown.join(" ")), true);
        Ok(())
    }

    fn dispatch_expose(&self, st: &mut State, span: Span, words: Vec<Word>) -> Result<(), CompileError> {
        let mut ports = Vec::new();
        for w in &words {
            for p in w.node.split_whitespace() {
                ports.extend(parse_ports(p).map_err(|e| self.err(ErrorKind::Instruction, span, e.to_string()))?);
            }
        }
        let set = st.config.config.exposed_ports.get_or_insert_with(BTreeMap::new);
        for p in &ports {
            set.insert(p.clone(), Default::default());
        }
        st.history(format!("EXPOSE {}", format::go_port_map(&ports)), true);
        Ok(())
    }

    fn dispatch_volume(&self, st: &mut State, span: Span, words: Vec<Word>) -> Result<(), CompileError> {
        let vols: Vec<String> = words.into_iter().map(|w| w.node).collect();
        if vols.is_empty() || vols.iter().any(|v| v.trim().is_empty()) {
            return Err(self.err(ErrorKind::Instruction, span, "`VOLUME` specified can not be an empty string"));
        }
        let set = st.config.config.volumes.get_or_insert_with(BTreeMap::new);
        for v in &vols {
            set.insert(v.clone(), Default::default());
        }
        st.history(format!("VOLUME [{}]", vols.join(" ")), true);
        Ok(())
    }

    /// WORKDIR: a mkdir owned by the current user, unless the directory is `/`.
    fn dispatch_workdir(
        &mut self,
        st: &mut State,
        ins: &Instruction,
        dir: String,
        written: String,
    ) -> Result<(), CompileError> {
        let dir = abs_path(&st.workdir(), &dir);
        st.config.config.working_dir = Some(dir.clone());
        // `/` always exists: no mkdir and no layer, as BuildKit does it. (The optimizer
        // would drop the vertex anyway, leaving history out of step.)
        if dir == "/" {
            st.history(format!("WORKDIR {dir}"), true);
            return Ok(());
        }
        st.step += 1;
        let meta = self.meta(ins, st, written);
        let opts = MkdirOpts { owner: parse_owner(&st.user()), ..Default::default() };
        st.root = st.root.file().mkdir(&dir, opts).meta(meta).state().map_err(|e| self.sdk_err(ins.span, e))?;
        st.history(format!("WORKDIR {dir}"), false);
        Ok(())
    }

    fn dispatch_stopsignal(&self, st: &mut State, ins: &Instruction, words: Vec<Word>) -> Result<(), CompileError> {
        let s = self.single(ins, words)?;
        let ok = s.parse::<u32>().is_ok_and(|n| n > 0)
            || s.strip_prefix("SIG").is_some_and(|r| {
                !r.is_empty() && r.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-')
            });
        if !ok {
            let message = format!("Invalid signal `{s}`: expected a name such as `SIGTERM` or a number");
            return Err(self.err(ErrorKind::Instruction, ins.span, message));
        }
        st.config.config.stop_signal = Some(s.clone());
        st.history(format!("STOPSIGNAL {s}"), true);
        Ok(())
    }

    fn dispatch_onbuild(&self, st: &mut State, inner: &Instruction) {
        // The inner span may start at `ONBUILD` itself: keep only the trigger.
        let w = self.written(inner);
        let t = match w.get(..8) {
            Some(k) if k.eq_ignore_ascii_case("ONBUILD ") => w[8..].trim_start().to_string(),
            _ => w,
        };
        // No history entry: BuildKit writes none for ONBUILD (the triggers write theirs
        // where they run).
        st.config.config.on_build.get_or_insert_with(Vec::new).push(t);
    }

    /// USER, WORKDIR, STOPSIGNAL: one value, which must not expand to nothing.
    fn single(&self, ins: &Instruction, words: Vec<Word>) -> Result<String, CompileError> {
        let w = join(words).trim().to_string();
        if w.is_empty() {
            let message = format!("`{}` expects a value (did a variable expand to nothing?)", ins.keyword.as_str());
            return Err(self.err(ErrorKind::Instruction, ins.span, message));
        }
        Ok(w)
    }
}

fn join(words: Vec<Word>) -> String {
    words.into_iter().map(|w| w.node).collect::<Vec<_>>().join(" ")
}

/// ENV: each pair sets (or replaces) a variable; all of them were expanded against the
/// environment from before the instruction.
fn dispatch_env(st: &mut State, pairs: Vec<Pair>) {
    let mut shown = Vec::new();
    for Pair { key, value } in pairs {
        st.set_env(&key.node, &value.node);
        shown.push(format!("{}={}", key.node, value.node));
    }
    st.history(format!("ENV {}", shown.join(" ")), true);
}

fn argv(st: &State, line: CommandLine) -> Vec<String> {
    match line {
        CommandLine::Exec(v) => v,
        CommandLine::Shell(s) => st.shell_with(s),
    }
}

fn dispatch_cmd(st: &mut State, line: CommandLine) {
    let args = argv(st, line);
    st.history(format!("CMD {}", format::go_quote_list(&args)), true);
    st.config.config.cmd = Some(args);
    // BuildKit sets it on every CMD, whatever the form (Docker's image spec keeps it).
    st.config.config.args_escaped = Some(true);
    st.cmd_set = true;
}

/// ENTRYPOINT clears an inherited CMD, not one set in this stage.
fn dispatch_entrypoint(st: &mut State, line: CommandLine) {
    let args = argv(st, line);
    st.history(format!("ENTRYPOINT {}", format::go_quote_list(&args)), true);
    st.config.config.entrypoint = Some(args);
    if !st.cmd_set {
        st.config.config.cmd = None;
    }
}

fn dispatch_healthcheck(st: &mut State, hc: Healthcheck) {
    st.history(format!("HEALTHCHECK {}", format::go_healthcheck(&hc)), true);
    st.config.config.healthcheck = Some(hc);
}
