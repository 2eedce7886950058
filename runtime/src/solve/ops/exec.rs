//! Exec ops: a process run by the [`Executor`] over an overlay of its root chain, with its
//! mounts (`mounts.rs`). Inputs that are only read through bind mounts without an output
//! enter the key by the content at their selectors; secret values never do (as in BuildKit).
//! A step whose platform (`ExecOp::platform`) this machine does not run natively runs under
//! QEMU through `binfmt_misc` ([`crate::emulation`]); a `FROM --platform=$BUILDPLATFORM`
//! stage's steps carry the build platform and run natively.
//!
//! [`Executor`]: crate::solve::backend::Executor

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use cairn_ir::{ExecOp, MountKind};

use super::OpCx;
use crate::emulation::Emulation;
use crate::process::{ProcessMount, ProcessMountSource};
use crate::solve::backend::{Backend, Chain, Exit, ProcessSpec, Scratch};
use crate::solve::engine::{fail, CacheMap, Inputs, Plan, Read, StepCx, StepError};

impl<B: Backend> OpCx<'_, B> {
    pub(super) fn exec<'s>(
        &'s self,
        v: usize,
        e: &'s ExecOp,
        inputs: &'s Inputs<'s>,
        cancel: &'s AtomicBool,
    ) -> Result<Plan<'s>, StepError> {
        if e.platform.is_none() && self.opts.platforms.len() > 1 {
            return Err(StepError::msg(format!(
                "`{}` has no platform (a Definition older than IR version 3): build one platform at a time",
                self.graph.def.vertices[v].meta.description
            )));
        }
        if e.network == cairn_ir::NetworkMode::Host && !self.opts.allow_network_host {
            return Err(StepError::msg(
                "`--network=host` needs the `network.host` entitlement: pass `--allow network.host`",
            ));
        }
        if e.security == cairn_ir::SecurityMode::Insecure && !self.opts.allow_insecure {
            return Err(StepError::msg(
                "`RUN --security=insecure` needs the `security.insecure` entitlement: pass `--allow security.insecure`",
            ));
        }
        // A bind mount without an output (read-only, or read-write with its writes
        // discarded) reads its input through its selector only.
        let mut map = CacheMap::default();
        for i in 0..self.graph.def.vertices[v].vertex.inputs.len() as u32 {
            let users: Vec<&cairn_ir::Mount> = e.mounts.iter().filter(|m| m.input == Some(i)).collect();
            let selector_only =
                !users.is_empty() && users.iter().all(|m| m.output.is_none() && matches!(m.kind, MountKind::Bind));
            if selector_only {
                map.reads.extend(users.into_iter().map(|m| (i, Read::Tree(m.selector.as_str()))));
            } else {
                map.reads.push((i, Read::Key));
            }
        }
        // Build-wide settings that can change what a step writes (`--ulimit`, …) are keyed.
        map.extra = self.opts.resources.key_bytes();
        Ok(Plan::Step { map, permit: true, exec: Box::new(move |cx| self.run_exec(e, inputs, cx, cancel)) })
    }

    fn run_exec(&self, e: &ExecOp, inputs: &Inputs, cx: &StepCx, cancel: &AtomicBool) -> Result<Vec<Chain>, StepError> {
        let mut secret_env = Vec::new();
        for s in &e.secret_env {
            match self.opts.secrets.get(&s.id) {
                Some(value) => secret_env.push((s.name.clone(), value.clone())),
                None if s.required => return Err(missing_secret(&s.id)),
                None => {}
            }
        }
        let root = &e.mounts[0];
        let root_chain: Chain = match root.input {
            None => Vec::new(),
            Some(i) => Self::chain_of(inputs.tree(i)?, "A build context cannot be the root filesystem of a process")?,
        };
        if !(root.selector.is_empty() || root.selector == "/") {
            return Err(StepError::msg("A root mount with a selector is not supported"));
        }
        let emulated = self.emulation(e)?;
        let root_layer = self.backend.new_layer().map_err(fail("Cannot create a layer"))?;
        let mut mounted = self.process_mounts(e, inputs, cancel)?;
        if let Some(interp) = emulated.and_then(|em| em.bind) {
            let source = ProcessMountSource::Bind(interp.clone());
            mounted.mounts.push(ProcessMount { target: interp.display().to_string(), readonly: true, source });
        }
        let spec = ProcessSpec {
            root_lowers: self.layer_dirs(&root_chain)?,
            root_upper: root_layer.upper().to_path_buf(),
            root_work: root_layer.work().to_path_buf(),
            args: e.meta.args.clone(),
            env: with_ssh_auth_sock(e, &self.opts.ssh),
            cwd: e.meta.cwd.clone(),
            user: e.meta.user.clone(),
            hostname: e.meta.hostname.clone(),
            network: e.network,
            insecure: e.security == cairn_ir::SecurityMode::Insecure,
            mounts: mounted.mounts.clone(),
            resources: self.opts.resources.clone(),
            secret_env,
        };
        let mut tail: VecDeque<String> = VecDeque::new();
        let mut partial: Vec<u8> = Vec::new();
        let emit = |line: &[u8], tail: &mut VecDeque<String>| {
            let text = String::from_utf8_lossy(line).trim_end_matches('\r').to_string();
            cx.log(text.clone());
            tail.push_back(text);
            if tail.len() > 12 {
                tail.pop_front();
            }
        };
        let result = self.backend.run(&spec, cancel, &mut |chunk: &[u8]| {
            partial.extend_from_slice(chunk);
            while let Some(pos) = partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = partial.drain(..=pos).collect();
                emit(&line[..line.len() - 1], &mut tail);
            }
        });
        if !partial.is_empty() {
            let rest = std::mem::take(&mut partial);
            emit(&rest, &mut tail);
        }
        let tail: Vec<String> = tail.into_iter().collect();
        let cmd = e.meta.args.join(" ");
        let info = result
            .map_err(|err| StepError::Failed { message: format!("Cannot run `{cmd}`: {err}"), tail: tail.clone() })?;
        if cancel.load(Ordering::SeqCst) {
            return Err(StepError::Cancelled);
        }
        if let Some(why) = exit_failure(&info) {
            return Err(StepError::Failed {
                message: format!("process \"{cmd}\" did not complete successfully: {why}"),
                tail,
            });
        }
        let mut chains = vec![Vec::new(); 1 + mounted.outputs.len()];
        let mut c0 = root_chain;
        c0.push(self.backend.commit_layer(root_layer).map_err(fail("Cannot commit the layer"))?);
        chains[0] = c0;
        let super::mounts::Mounted { outputs, .. } = mounted;
        for (o, mut chain, nl) in outputs {
            chain.push(self.backend.commit_layer(nl).map_err(fail("Cannot commit the layer"))?);
            if let Some(slot) = chains.get_mut(o as usize) {
                *slot = chain;
            }
        }
        Ok(chains)
    }
}

impl<B: Backend> OpCx<'_, B> {
    /// What a step for another platform needs (`None`: it runs natively). Asked when the
    /// step runs, not when it is keyed, so a cached foreign step needs no emulator.
    fn emulation(&self, e: &ExecOp) -> Result<Option<Emulation>, StepError> {
        let default = &self.opts.platforms[0];
        let platform = e.platform.as_ref().unwrap_or(default);
        if crate::emulation::runs_natively(platform) {
            return Ok(None);
        }
        crate::emulation::prepare(platform).map(Some).map_err(StepError::msg)
    }
}

pub(super) fn missing_secret(id: &str) -> StepError {
    StepError::msg(format!(
        "Secret `{id}` is required but was not given (use `--secret id={id},src=PATH` or `--secret id={id},env=VAR`)"
    ))
}

/// `None` when the process succeeded, else BuildKit-style words for how it ended.
fn exit_failure(info: &Exit) -> Option<String> {
    match (info.code, info.signal) {
        (Some(0), _) => None,
        (Some(c), _) => Some(format!("exit code: {c}")),
        (None, Some(s)) => Some(format!("killed by signal {s}")),
        (None, None) => Some("unknown exit status".to_string()),
    }
}

/// BuildKit's rule: a forwarded agent at the default target is announced to the step as
/// `SSH_AUTH_SOCK` (unless the environment sets it).
fn with_ssh_auth_sock(e: &ExecOp, agents: &std::collections::BTreeMap<String, std::path::PathBuf>) -> Vec<String> {
    let mut env: Vec<String> = e.meta.env.to_vec();
    let set = env.iter().any(|kv| kv.starts_with("SSH_AUTH_SOCK="));
    let default = e.mounts.iter().find(|m| {
        m.target == DEFAULT_SSH_TARGET && matches!(&m.kind, MountKind::Ssh { id, .. } if agents.contains_key(id))
    });
    if let (false, Some(m)) = (set, default) {
        env.push(format!("SSH_AUTH_SOCK={}", m.target));
    }
    env
}

/// Where `RUN --mount=type=ssh` puts the agent without `target=`.
const DEFAULT_SSH_TARGET: &str = "/run/buildkit/ssh_agent.0";
