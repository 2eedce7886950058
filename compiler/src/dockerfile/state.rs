//! The state of a stage between instructions, the per-platform lowering state, and the
//! path and owner helpers every instruction uses.

use std::rc::Rc;
use std::sync::Arc;

use cairn_ir::{History, IdOrName, ImageConfig, Owner, Platform};

use super::instructions::FromCommand;
use cairn_grammar::ast::Instruction;

const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// A stage as declared: its FROM line and body.
pub(super) struct StageDecl<'a> {
    pub from: &'a Instruction,
    pub command: FromCommand,
    /// The stage name, lower-cased.
    pub name: Option<String>,
    pub body: Vec<&'a Instruction>,
}

/// Per-platform lowering state.
pub(super) struct PlatformCtx {
    pub target: Platform,
    /// Global ARG values (and the automatic platform args), in declaration order.
    pub meta: Vec<(String, String)>,
    pub done: Vec<Option<Rc<State>>>,
    pub active: Vec<bool>,
    /// How many stage lowerings are under way (nested through `--from`).
    pub depth: usize,
}

impl PlatformCtx {
    /// A global ARG's value (what FROM lines and ARGs without a default see).
    pub fn meta_get(&self, name: &str) -> Option<String> {
        self.meta.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

/// The state of a stage between instructions.
#[derive(Debug, Clone)]
pub(super) struct State {
    /// The stage's tree so far, an SDK state; its own values (env, working directory, …)
    /// are not used: `config` is the truth, given to each step as it is made.
    pub root: cairn_sdk::State,
    pub config: ImageConfig,
    /// CMD set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// ARGs declared in this stage with a value, in order.
    pub args: Vec<(String, String)>,
    pub platform: Platform,
    /// The progress group: the stage's name (`stage-N` when it has none), empty when the
    /// Dockerfile has one stage, as BuildKit.
    pub group: String,
    pub step: u32,
    pub total: u32,
    /// `--no-cache-filter` names this stage: its steps run even when cached.
    pub ignore_cache: bool,
    /// The base image's ONBUILD triggers are being dispatched (progress shows `ONBUILD `).
    pub in_trigger: bool,
    /// The environment of the stage's last RUN, shared by the next ones until ENV or ARG
    /// changes it (every change of `config.config.env` or `args` resets it to `None`).
    pub last_run_env: Option<Arc<[String]>>,
}

impl State {
    pub fn env(&self) -> &[String] {
        self.config.config.env.as_deref().unwrap_or(&[])
    }

    fn env_get(&self, key: &str) -> Option<String> {
        self.env().iter().rev().find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v.to_string()))
    }

    /// Variable lookup for expansion: ENV wins over ARG.
    pub fn lookup(&self, name: &str) -> Option<String> {
        self.env_get(name).or_else(|| self.args.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.last_run_env = None;
        let env = self.config.config.env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env.iter_mut().find(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == key) {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    }

    pub fn workdir(&self) -> String {
        match self.config.config.working_dir.as_deref() {
            Some(w) if !w.is_empty() => w.to_string(),
            _ => "/".to_string(),
        }
    }

    pub fn user(&self) -> String {
        self.config.config.user.clone().unwrap_or_default()
    }

    pub fn shell(&self) -> Vec<String> {
        match &self.config.config.shell {
            Some(s) if !s.is_empty() => s.clone(),
            _ => vec!["/bin/sh".to_string(), "-c".to_string()],
        }
    }

    /// `shell` followed by `command`: the argv of a shell-form command.
    pub fn shell_with(&self, command: String) -> Vec<String> {
        let mut a = self.shell();
        a.push(command);
        a
    }

    pub fn history(&mut self, created_by: String, empty_layer: bool) {
        self.config.history.push(History {
            created: None,
            created_by: Some(created_by),
            author: None,
            comment: Some(HISTORY_COMMENT.to_string()),
            empty_layer,
        });
    }
}

/// `user[:group]` as a chown owner; `None` for an empty user (root, kept as is).
pub(super) fn parse_owner(s: &str) -> Option<Owner> {
    if s.is_empty() {
        return None;
    }
    let id = |p: &str| match p.parse::<u32>() {
        Ok(n) => IdOrName::Id(n),
        Err(_) => IdOrName::Name(p.to_string()),
    };
    Some(match s.split_once(':') {
        Some((u, g)) => Owner { user: id(u), group: (!g.is_empty()).then(|| id(g)) },
        None => Owner { user: id(s), group: None },
    })
}

/// Joins `p` onto `base` unless `p` is absolute.
pub(super) fn join_path(base: &str, p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{}", base.trim_end_matches('/'), p)
    }
}

/// Lexically cleans an absolute path (`.`, `..`, repeated slashes); the result is
/// absolute and never ends in `/` except for the root.
pub(super) fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `path` made absolute against the working directory and cleaned.
pub(super) fn abs_path(workdir: &str, path: &str) -> String {
    clean_path(&join_path(workdir, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(clean_path("/a/./b/../c//"), "/a/c");
        assert_eq!(abs_path("/app", "../x"), "/x");
        assert_eq!(join_path("/app", "/abs"), "/abs");
    }
}
