//! The state of a stage between instructions, the per-platform lowering state, and the
//! path and owner helpers every instruction uses.

use std::collections::HashMap;
use std::rc::Rc;

use cairn_ir::{env_key, Env, History, IdOrName, ImageConfig, Owner, Platform};

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
    /// The environment RUN sees, once a RUN has built it: a chain node that every ENV and
    /// ARG extends by what it changes, so n ENV+RUN pairs cost O(n) (issue 13). `None`
    /// until the stage's first RUN (and after FROM of a stage, whose ARGs do not carry).
    pub run_env: Option<Env>,
    /// Where each key of `config.config.env` stands, so ENV and lookups cost O(1), not
    /// O(variables) each. Kept by [`State::set_env`], the only writer of that list after
    /// FROM.
    pub env_index: HashMap<String, usize>,
}

impl State {
    pub fn env(&self) -> &[String] {
        self.config.config.env.as_deref().unwrap_or(&[])
    }

    /// The index of a FROM's environment (a base image's list may name a key twice: the
    /// last one is the one a lookup sees and ENV replaces).
    pub fn index_env(env: &[String]) -> HashMap<String, usize> {
        env.iter().enumerate().map(|(i, kv)| (env_key(kv).to_string(), i)).collect()
    }

    fn env_get(&self, key: &str) -> Option<String> {
        let kv = &self.env()[*self.env_index.get(key)?];
        Some(kv.split_once('=').map_or("", |(_, v)| v).to_string())
    }

    /// ARG `key` now has `value` (`None`: declared without one): the RUN environment
    /// follows unless an ENV of that name shadows it.
    pub fn set_arg(&mut self, key: String, value: Option<String>) {
        self.args.retain(|(k, _)| k != &key);
        if let Some(run) = &self.run_env {
            if self.env_get(&key).is_none() {
                self.run_env = Some(match &value {
                    Some(v) => run.with(Vec::new(), vec![format!("{key}={v}")]),
                    None => run.with(vec![key.clone()], Vec::new()),
                });
            }
        }
        if let Some(v) = value {
            self.args.push((key, v));
        }
    }

    /// Variable lookup for expansion: ENV wins over ARG.
    pub fn lookup(&self, name: &str) -> Option<String> {
        self.env_get(name).or_else(|| self.args.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        if let Some(run) = &self.run_env {
            self.run_env = Some(run.with(Vec::new(), vec![entry.clone()]));
        }
        let env = self.config.config.env.get_or_insert_with(Vec::new);
        match self.env_index.get(key) {
            Some(&i) => env[i] = entry,
            None => {
                self.env_index.insert(key.to_string(), env.len());
                env.push(entry);
            }
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
