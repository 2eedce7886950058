//! Stages: splitting the file into global ARGs and stages, the per-platform global ARG
//! values, lowering a stage on demand (its base, the base's ONBUILD triggers, its body) and
//! resolving what a `--from` names.

use std::collections::HashMap;
use std::rc::Rc;

use cairn_grammar::ast::{Args, Instruction, Keyword, Span};
use cairn_ir::{reference, ImageConfig, Platform, ProgressGroup, VertexMeta};

use super::instructions::{parse_from, ArgValue, Command, Expander, FromCommand};
use super::state::{PlatformCtx, StageDecl, State};
use super::{instructions, location, Lowerer, NamedContext, DEFAULT_PATH};
use crate::error::{CompileError, ErrorKind};
use cairn_sdk::{ImageOpts, State as Tree};

/// How deep stage lowering may recurse through `--from` / `RUN --mount from=` (each level
/// is a few kilobytes of stack; `FROM` chains do not count, they are lowered in a loop).
pub(super) const MAX_STAGE_DEPTH: usize = 32;

impl<'a> Lowerer<'a> {
    /// Splits the instructions into global ARGs and stages; checks what BuildKit checks
    /// for the whole file (even unreachable stages): names, ONBUILD chaining.
    pub(super) fn split_stages(&mut self) -> Result<(), CompileError> {
        let mut names: HashMap<String, Span> = HashMap::new();
        for ins in &self.df.instructions {
            if let Args::Onbuild(inner) = &ins.args {
                self.check_trigger(inner.keyword, inner.span)?;
            }
            if ins.keyword == Keyword::From {
                let command = parse_from(&self.src, ins)?;
                let name = match &command.name {
                    Some(w) => Some(self.stage_name(w.node.as_str(), w.span, &mut names)?),
                    None => None,
                };
                self.stages.push(StageDecl { from: ins, command, name, body: Vec::new() });
                continue;
            }
            match self.stages.last_mut() {
                Some(s) => s.body.push(ins),
                None if ins.keyword == Keyword::Arg => self.globals.push(ins),
                None => {
                    let message =
                        format!("`{}` before the first FROM: only ARG may come before FROM", ins.keyword.as_str());
                    return Err(self.err(ErrorKind::Stage, ins.span, message));
                }
            }
        }
        if self.stages.is_empty() {
            let span = self.df.instructions.last().map(|i| i.span).unwrap_or_default();
            let message = "The Dockerfile has no FROM instruction, so there is nothing to build";
            return Err(self.err(ErrorKind::Stage, span, message));
        }
        Ok(())
    }

    /// ONBUILD ONBUILD, FROM and MAINTAINER are no triggers (BuildKit).
    fn check_trigger(&self, keyword: Keyword, span: Span) -> Result<(), CompileError> {
        match keyword {
            Keyword::Onbuild => {
                Err(self.err(ErrorKind::Instruction, span, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"))
            }
            Keyword::From | Keyword::Maintainer => {
                let message = format!("`{}` isn't allowed as an ONBUILD trigger", keyword.as_str());
                Err(self.err(ErrorKind::Instruction, span, message))
            }
            _ => Ok(()),
        }
    }

    /// A stage name, lower-cased, checked and not yet taken.
    fn stage_name(&self, word: &str, span: Span, names: &mut HashMap<String, Span>) -> Result<String, CompileError> {
        let n = word.to_ascii_lowercase();
        let valid = n.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !valid {
            return Err(self.err(
                ErrorKind::Stage,
                span,
                format!("Invalid stage name `{word}`: it must start with a letter and contain only letters, digits, `-`, `_` and `.`"),
            ));
        }
        if let Some(prev) = names.get(&n) {
            let message = format!("Duplicate stage name `{n}` (first defined on line {})", prev.line);
            return Err(self.err(ErrorKind::Stage, span, message));
        }
        names.insert(n.clone(), span);
        Ok(n)
    }

    pub(super) fn target_index(&self) -> Result<usize, CompileError> {
        let Some(t) = &self.opts.target else { return Ok(self.stages.len() - 1) };
        let t = t.to_ascii_lowercase();
        self.stages.iter().position(|s| s.name.as_deref() == Some(&t)).ok_or_else(|| {
            let names: Vec<&str> = self.stages.iter().filter_map(|s| s.name.as_deref()).collect();
            let names = if names.is_empty() { "none are named".to_string() } else { names.join(", ") };
            let message = format!("`--target {t}`: no stage named `{t}` (stages: {names})");
            CompileError::general(ErrorKind::Stage, &self.opts.file, message)
        })
    }

    /// The stage a `--build-context NAME=target:STAGE` names.
    fn context_stage(&self, target: &str, name: &str, span: Span) -> Result<usize, CompileError> {
        let t = target.to_ascii_lowercase();
        self.stages.iter().position(|s| s.name.as_deref() == Some(t.as_str())).ok_or_else(|| {
            let message = format!("`--build-context {name}=target:{target}`: no stage named `{target}`");
            self.err(ErrorKind::Stage, span, message)
        })
    }

    /// Every `--no-cache-filter` name is a stage of the file.
    pub(super) fn check_no_cache_filter(&self) -> Result<(), CompileError> {
        for f in &self.opts.no_cache_filter {
            let f = f.to_ascii_lowercase();
            if !self.stages.iter().any(|s| s.name.as_deref() == Some(&f)) {
                let message = format!("`--no-cache-filter {f}`: no stage named `{f}`");
                return Err(CompileError::general(ErrorKind::Stage, &self.opts.file, message));
            }
        }
        Ok(())
    }

    /// Automatic platform args, then the global ARGs (build args override defaults).
    pub(super) fn platform_ctx(&mut self, target: Platform) -> Result<PlatformCtx, CompileError> {
        let b = &self.opts.build_platform;
        let mut meta: Vec<(String, String)> = vec![
            ("BUILDPLATFORM".into(), b.to_string()),
            ("BUILDOS".into(), b.os.clone()),
            ("BUILDARCH".into(), b.architecture.clone()),
            ("BUILDVARIANT".into(), b.variant.clone()),
            ("TARGETPLATFORM".into(), target.to_string()),
            ("TARGETOS".into(), target.os.clone()),
            ("TARGETARCH".into(), target.architecture.clone()),
            ("TARGETVARIANT".into(), target.variant.clone()),
        ];
        for ins in self.globals.clone() {
            let mut cmd = instructions::parse(&self.src, ins, &self.opts.build_args)?;
            let before = meta.clone();
            let lookup = |n: &str| before.iter().rev().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            cmd.expand(&Expander { src: &self.src, lookup: &lookup })?;
            let Command::Arg(decls) = cmd else { unreachable!("only ARG comes before the first FROM") };
            for d in decls {
                let value = match d.value {
                    ArgValue::BuildArg(v) => {
                        self.used_args.insert(d.key.clone());
                        v
                    }
                    ArgValue::Default(w) => w.node,
                    ArgValue::Unset => continue,
                };
                meta.retain(|(k, _)| k != &d.key);
                meta.push((d.key, value));
            }
        }
        Ok(PlatformCtx {
            target,
            meta,
            done: vec![None; self.stages.len()],
            active: vec![false; self.stages.len()],
            depth: 0,
        })
    }

    /// Compiles stage `i` for this platform (once) and returns its final state.
    ///
    /// The chain of earlier stages `i` is built `FROM` is lowered first, deepest first, in
    /// a loop: a 2,000-stage `FROM s{n-1} AS s{n}` chain needs no recursion. What is left
    /// (a `--from` reaching a stage not compiled yet) recurses, at most [`MAX_STAGE_DEPTH`]
    /// deep.
    pub(super) fn lower_stage(&mut self, pc: &mut PlatformCtx, i: usize) -> Result<Rc<State>, CompileError> {
        for j in self.base_chain(pc, i).into_iter().rev() {
            self.lower_one_stage(pc, j)?;
        }
        self.lower_one_stage(pc, i)
    }

    /// The stages below `i` through `FROM <stage>` not compiled yet, nearest first.
    fn base_chain(&self, pc: &PlatformCtx, i: usize) -> Vec<usize> {
        let mut chain = Vec::new();
        let mut k = i;
        loop {
            let mut cmd = self.stages[k].command.clone();
            // An expansion error is reported when stage `k` itself is lowered.
            if cmd.expand(&Expander { src: &self.src, lookup: &|n| pc.meta_get(n) }).is_err() {
                break;
            }
            let lower = cmd.base.node.to_ascii_lowercase();
            match self.stages[..k].iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
                Some(j) if pc.done[j].is_none() && !pc.active[j] => {
                    chain.push(j);
                    k = j;
                }
                _ => break,
            }
        }
        chain
    }

    fn lower_one_stage(&mut self, pc: &mut PlatformCtx, i: usize) -> Result<Rc<State>, CompileError> {
        if let Some(done) = &pc.done[i] {
            return Ok(done.clone());
        }
        let from = self.stages[i].from;
        if pc.active[i] {
            return Err(self.err(ErrorKind::Stage, from.span, "Circular dependency between stages"));
        }
        if pc.depth >= MAX_STAGE_DEPTH {
            let message = format!(
                "Stages reach each other through `--from` more than {MAX_STAGE_DEPTH} deep: build the deepest ones in a separate build, or use them through `FROM`"
            );
            return Err(self.err(ErrorKind::Stage, from.span, message));
        }
        pc.active[i] = true;
        pc.depth += 1;
        let st = self.lower_stage_inner(pc, i);
        pc.depth -= 1;
        let st = st?;
        pc.active[i] = false;
        let st = Rc::new(st);
        pc.done[i] = Some(st.clone());
        Ok(st)
    }

    fn lower_stage_inner(&mut self, pc: &mut PlatformCtx, i: usize) -> Result<State, CompileError> {
        let decl = &self.stages[i];
        let (from, body) = (decl.from, decl.body.clone());
        // A build context named like the stage replaces it, body and all (BuildKit).
        if let Some(name) = decl.name.clone().filter(|n| self.opts.contexts.contains_key(n)) {
            let mut cmd = decl.command.clone();
            cmd.expand(&Expander { src: &self.src, lookup: &|n| pc.meta_get(n) })?;
            cmd.base.node = name.clone();
            let group = ProgressGroup { name: name.clone(), step: 1, total: 1 };
            let mut st = self.stage_base(pc, i, from, &cmd, group, false)?;
            st.group = name;
            return Ok(st);
        }
        let group = match &decl.name {
            _ if self.stages.len() == 1 => String::new(),
            Some(name) => name.clone(),
            None => format!("stage-{i}"),
        };
        let ignore_cache =
            decl.name.as_ref().is_some_and(|n| self.opts.no_cache_filter.iter().any(|f| f.eq_ignore_ascii_case(n)));
        let mut cmd = decl.command.clone();
        cmd.expand(&Expander { src: &self.src, lookup: &|n| pc.meta_get(n) })?;
        // Steps are numbered as BuildKit numbers them: the FROM of an image (not scratch,
        // not an earlier stage), then each RUN, COPY, ADD and WORKDIR (and each ONBUILD
        // trigger in the total); the other instructions make no step.
        let base = cmd.base.node.to_ascii_lowercase();
        let from_image =
            base != "scratch" && !self.stages[..i].iter().any(|s| s.name.as_deref() == Some(base.as_str()));
        let total = u32::from(from_image) + body.iter().filter(|ins| makes_step(ins.keyword)).count() as u32;
        // Several target platforms: steps are named with their stage's platform, as
        // BuildKit names them (`[linux/arm64 stage-1 2/3]`, `[linux/arm64 2/3]`).
        let multi = self.opts.platforms.len() > 1;
        let with_platform = |p: &Platform| match (multi, group.is_empty()) {
            (false, _) => group.clone(),
            (true, true) => p.to_string(),
            (true, false) => format!("{p} {group}"),
        };
        let from_platform = cmd.platform.as_ref().and_then(|w| Platform::parse(&w.node)).unwrap_or(pc.target.clone());
        let from_group = with_platform(&from_platform);
        // The base's triggers count in the total of every step, its FROM's too (BuildKit
        // counts them before it names any step): `stage_base` adds them to the group of an
        // image's own FROM vertex, which it makes after reading the image's config.
        let mut st = self.stage_base(pc, i, from, &cmd, ProgressGroup { name: from_group, step: 1, total }, true)?;
        st.group = with_platform(&st.platform);
        st.ignore_cache = ignore_cache;
        st.total = total;
        st.step = u32::from(from_image);
        self.run_triggers(pc, &mut st, from)?;
        for ins in &body {
            self.dispatch(pc, &mut st, ins, None)?;
        }
        Ok(st)
    }

    /// The state a stage starts from: an earlier stage, scratch, a named context or an
    /// image, with BuildKit's defaults filled in. `with_triggers`: the image's ONBUILD
    /// triggers will run as steps of the stage, so its FROM counts them in its total.
    fn stage_base(
        &mut self,
        pc: &mut PlatformCtx,
        i: usize,
        from: &Instruction,
        cmd: &FromCommand,
        group: ProgressGroup,
        with_triggers: bool,
    ) -> Result<State, CompileError> {
        let base = &cmd.base.node;
        if base.is_empty() {
            let message = "`FROM` names an empty image (a variable expanded to nothing?)";
            return Err(self.err(ErrorKind::Image, cmd.base.span, message));
        }
        let platform = match &cmd.platform {
            Some(w) => Some(Platform::parse(&w.node).ok_or_else(|| {
                let message =
                    format!("Invalid platform `{}`: expected `os/arch[/variant]`, e.g. `linux/amd64`", w.node);
                self.err(ErrorKind::Instruction, w.span, message)
            })?),
            None => None,
        };
        let lower = base.to_ascii_lowercase();
        // Only earlier stages can be a base (as in BuildKit); a later stage of the same
        // name as an image does not shadow the image.
        let stage = match self.opts.contexts.get(base) {
            Some(NamedContext::Stage(t)) => Some(self.context_stage(t, base, cmd.base.span)?),
            _ => self.stages[..i].iter().position(|s| s.name.as_deref() == Some(lower.as_str())),
        };
        if let Some(j) = stage {
            let mut s = (*self.lower_stage(pc, j)?).clone();
            s.cmd_set = false;
            s.args.clear();
            s.run_env = None;
            if let Some(p) = platform {
                s.platform = p;
            }
            return Ok(s);
        }
        let platform = platform.unwrap_or_else(|| pc.target.clone());
        let meta = |description: String, config: &ImageConfig| {
            // The base image's ONBUILD triggers are steps of this stage: they count in the
            // total its FROM shows.
            let triggers = config.config.on_build.as_ref().filter(|_| with_triggers).map_or(0, |t| t.len() as u32);
            let group = ProgressGroup { total: group.total + triggers, ..group.clone() };
            VertexMeta { description, group: Some(group), locations: vec![location(from)], ignore_cache: false }
        };
        let image = |lw: &Self, r: &str, meta: VertexMeta| {
            let opts = ImageOpts { platform: Some(platform.clone()), meta };
            Tree::image_with(r, opts).map_err(|e| lw.sdk_err(cmd.base.span, e))
        };
        let (root, mut config) = if lower == "scratch" {
            (Tree::scratch_source(meta("FROM scratch".into(), &ImageConfig::default())), ImageConfig::default())
        } else if let Some(ctx) = self.opts.contexts.get(base).cloned() {
            match ctx {
                NamedContext::Local => (self.local_node(base, cmd.base.span)?, ImageConfig::default()),
                NamedContext::Image(r) => {
                    let config = self.image_config(&r, &platform, from.span)?;
                    (image(self, &r, meta(format!("FROM {r}"), &config))?, config)
                }
                NamedContext::Stage(_) => unreachable!("handled with the stages above"),
            }
        } else {
            let r = reference::normalize(base)
                .map_err(|e| self.err(ErrorKind::Image, cmd.base.span, format!("Invalid base image `{base}`: {e}")))?;
            let config = self.image_config(&r, &platform, from.span)?;
            // The IR names the image by digest when the resolver pinned it (a moved tag is
            // then another vertex); the step keeps the name as written.
            let pinned = self.resolver.pinned(&r, &platform).unwrap_or_else(|| r.clone());
            (image(self, &pinned, meta(format!("FROM {}", reference::familiar(&r)), &config))?, config)
        };
        // The base's `created` is not this image's (BuildKit clears it too); its history
        // entries keep their times.
        config.created = None;
        let has_path = config.config.env.iter().flatten().any(|kv| kv.starts_with("PATH="));
        if !has_path {
            config.config.env.get_or_insert_with(Vec::new).insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        if config.config.working_dir.as_deref().unwrap_or("").is_empty() && lower == "scratch" {
            config.config.working_dir = Some("/".into());
        }
        if config.rootfs.kind.is_empty() {
            config.rootfs.kind = "layers".into();
        }
        let total = group.total;
        let env_index = State::index_env(config.config.env.as_deref().unwrap_or(&[]));
        Ok(State {
            root,
            config,
            cmd_set: false,
            args: Vec::new(),
            platform,
            group: String::new(),
            step: 1,
            total,
            ignore_cache: false,
            in_trigger: false,
            run_env: None,
            env_index,
        })
    }

    /// ONBUILD triggers of the base run first, then are cleared from the image.
    fn run_triggers(&mut self, pc: &mut PlatformCtx, st: &mut State, from: &Instruction) -> Result<(), CompileError> {
        let triggers = st.config.config.on_build.take().unwrap_or_default();
        st.total += triggers.len() as u32;
        st.in_trigger = true;
        for t in &triggers {
            let parsed = cairn_grammar::parse(&format!("{} (ONBUILD trigger)", self.opts.file), t).map_err(|e| {
                let message = format!("Invalid ONBUILD trigger `{t}` of the base image: {}", e.message);
                self.err(ErrorKind::Image, from.span, message)
            })?;
            for ins in &parsed.instructions {
                if matches!(ins.keyword, Keyword::Onbuild | Keyword::From | Keyword::Maintainer) {
                    let message = format!("`{}` isn't allowed as an ONBUILD trigger", ins.keyword.as_str());
                    return Err(self.err(ErrorKind::Image, from.span, message));
                }
                // Triggers point at the FROM line: that is where the user sees them come in.
                let mut ins = ins.clone();
                ins.start_line = from.start_line;
                ins.end_line = from.end_line;
                ins.span = from.span;
                self.dispatch(pc, st, &ins, Some(t.to_string()))?;
            }
        }
        st.in_trigger = false;
        Ok(())
    }

    /// The tree a `--from` / `from=` names: a stage (by name or index), a named context
    /// or an image.
    pub(super) fn resolve_from(
        &mut self,
        pc: &mut PlatformCtx,
        st: &State,
        name: &str,
        span: Span,
    ) -> Result<Tree, CompileError> {
        let lower = name.to_ascii_lowercase();
        let image = |lw: &Self, r: &str, description: String| {
            let meta = VertexMeta { description, ..Default::default() };
            let opts = ImageOpts { platform: Some(st.platform.clone()), meta };
            Tree::image_with(r, opts).map_err(|e| lw.sdk_err(span, e))
        };
        if let Some(j) = self.stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
            return Ok(self.lower_stage(pc, j)?.root.clone());
        }
        if let Some(ctx) = self.opts.contexts.get(name).cloned() {
            return match ctx {
                NamedContext::Stage(t) => {
                    let j = self.context_stage(&t, name, span)?;
                    Ok(self.lower_stage(pc, j)?.root.clone())
                }
                NamedContext::Local => self.local_node(name, span),
                NamedContext::Image(r) => image(self, &r, format!("load {r}")),
            };
        }
        if let Ok(j) = name.parse::<usize>() {
            if j >= self.stages.len() {
                let message = format!("There is no stage with index {j} (the file has {})", self.stages.len());
                return Err(self.err(ErrorKind::Stage, span, message));
            }
            return Ok(self.lower_stage(pc, j)?.root.clone());
        }
        let r = reference::normalize(name).map_err(|e| {
            let message = format!("`{name}` is neither a stage, a build context nor a valid image: {e}");
            self.err(ErrorKind::Image, span, message)
        })?;
        image(self, &r, format!("load {}", reference::familiar(&r)))
    }
}

/// Does `keyword` make a numbered step in progress (BuildKit's `prefixCommand` callers)?
/// WORKDIR counts in the total even when it is `/` and makes no step.
pub(super) fn makes_step(keyword: Keyword) -> bool {
    matches!(keyword, Keyword::Run | Keyword::Copy | Keyword::Add | Keyword::Workdir)
}
