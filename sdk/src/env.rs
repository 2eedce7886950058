//! `Env`: the environment a [`crate::State`] carries, and the one function that turns it
//! into an exec's `ExecMeta.env`.
//!
//! Why one function: the IR's representation of an exec's environment is shared between
//! consecutive steps (issue 13: a stage of many RUNs must not hold many copies of a long
//! environment), and that representation may change. Everything in the builder goes
//! through [`exec_env`], so such a change touches this file only.

use crate::error::{Error, ErrorKind};

/// BuildKit's default `PATH`, which every new [`crate::State`] starts with (as the
/// Dockerfile frontend gives `FROM scratch`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `KEY=value` entries in order, each key at most once. A node of the IR's shared
/// environment chain ([`cairn_ir::Env`], SPEC §4.2): setting a variable adds a node that
/// holds just that entry, so a long environment changed a little at each of many steps
/// costs O(steps), and an unchanged one given to many execs is one node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Env(cairn_ir::Env);

impl Default for Env {
    /// `PATH` set to [`DEFAULT_PATH`], nothing else.
    fn default() -> Env {
        Env(cairn_ir::Env::root(vec![format!("PATH={DEFAULT_PATH}")]))
    }
}

impl From<cairn_ir::Env> for Env {
    /// An environment a frontend computed itself (the Dockerfile frontend's chain), kept
    /// exactly: its order, its nodes and hence its digest.
    fn from(env: cairn_ir::Env) -> Env {
        Env(env)
    }
}

impl Env {
    /// No variables at all.
    pub fn empty() -> Env {
        Env(cairn_ir::Env::root(Vec::new()))
    }

    /// An environment given as `KEY=value` entries, in that order.
    pub fn from_entries(entries: impl Into<Vec<String>>) -> Env {
        Env(cairn_ir::Env::root(entries.into()))
    }

    /// The entries, `KEY=value`, in order.
    pub fn entries(&self) -> Vec<String> {
        self.0.to_vec()
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<String> {
        self.0.get(key)
    }

    /// This environment with `key` set to `value` (replaced in place when set, appended
    /// otherwise). A key that is empty or holds `=` is an error.
    pub fn set(&self, key: &str, value: &str) -> Result<Env, Error> {
        if key.is_empty() || key.contains('=') {
            let message = format!("Invalid environment variable name `{key}`: it must be non-empty and hold no `=`");
            return Err(Error::new(ErrorKind::Env, message));
        }
        Ok(Env(self.0.with(Vec::new(), vec![format!("{key}={value}")])))
    }

    /// This environment without `key`.
    pub fn unset(&self, key: &str) -> Env {
        Env(self.0.with(vec![key.to_string()], Vec::new()))
    }
}

/// The environment of an exec built from `env`: the single place the builder's
/// environment becomes `ExecMeta.env`.
pub(crate) fn exec_env(env: &Env) -> cairn_ir::Env {
    env.0.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_in_place_and_shares_when_unchanged() {
        let e = Env::default().set("A", "1").unwrap().set("B", "2").unwrap().set("A", "3").unwrap();
        assert_eq!(e.entries(), [format!("PATH={DEFAULT_PATH}"), "A=3".into(), "B=2".into()]);
        assert_eq!(e.get("A").as_deref(), Some("3"));
        assert_eq!(e.unset("A").get("A"), None);
        assert_eq!(exec_env(&e), exec_env(&e.clone()));
        assert!(exec_env(&e).digest().is_some(), "a node of the shared chain");
        let err = e.set("A=B", "x").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Env);
        assert!(err.message.contains("`A=B`"), "{err}");
        assert!(e.set("", "x").is_err());
    }
}
