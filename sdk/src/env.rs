//! `Env`: the environment a [`crate::State`] carries, and the one function that turns it
//! into an exec's `ExecMeta.env`.
//!
//! Why one function: the IR's representation of an exec's environment is shared between
//! consecutive steps (issue 13: a stage of many RUNs must not hold many copies of a long
//! environment), and that representation may change. Everything in the builder goes
//! through [`exec_env`], so such a change touches this file only.

use std::sync::Arc;

use crate::error::{Error, ErrorKind};

/// BuildKit's default `PATH`, which every new [`crate::State`] starts with (as the
/// Dockerfile frontend gives `FROM scratch`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `KEY=value` entries in order, each key at most once. Cheap to clone: the entries are
/// shared, and an unchanged environment given to many execs is one allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Env(Arc<[String]>);

impl Default for Env {
    /// `PATH` set to [`DEFAULT_PATH`], nothing else.
    fn default() -> Env {
        Env(Arc::from(vec![format!("PATH={DEFAULT_PATH}")]))
    }
}

fn key_of(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

impl Env {
    /// No variables at all.
    pub fn empty() -> Env {
        Env(Arc::from(Vec::<String>::new()))
    }

    /// An environment given as `KEY=value` entries, kept exactly (order and sharing): a
    /// frontend that computes its own environment, as the Dockerfile frontend does, hands
    /// it over unchanged.
    pub fn from_entries(entries: impl Into<Arc<[String]>>) -> Env {
        Env(entries.into())
    }

    /// The entries, `KEY=value`, in order.
    pub fn entries(&self) -> &[String] {
        &self.0
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    /// This environment with `key` set to `value` (replaced in place when set, appended
    /// otherwise). A key that is empty or holds `=` is an error.
    pub fn set(&self, key: &str, value: &str) -> Result<Env, Error> {
        if key.is_empty() || key.contains('=') {
            let message = format!("Invalid environment variable name `{key}`: it must be non-empty and hold no `=`");
            return Err(Error::new(ErrorKind::Env, message));
        }
        let entry = format!("{key}={value}");
        let mut v: Vec<String> = self.0.to_vec();
        match v.iter_mut().find(|e| key_of(e) == key) {
            Some(slot) => *slot = entry,
            None => v.push(entry),
        }
        Ok(Env(v.into()))
    }

    /// This environment without `key`.
    pub fn unset(&self, key: &str) -> Env {
        Env(self.0.iter().filter(|e| key_of(e) != key).cloned().collect::<Vec<_>>().into())
    }
}

/// The environment of an exec built from `env`: the single place the builder's
/// environment becomes `ExecMeta.env`.
pub(crate) fn exec_env(env: &Env) -> Arc<[String]> {
    env.0.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_in_place_and_shares_when_unchanged() {
        let e = Env::default().set("A", "1").unwrap().set("B", "2").unwrap().set("A", "3").unwrap();
        assert_eq!(e.entries(), [format!("PATH={DEFAULT_PATH}"), "A=3".into(), "B=2".into()]);
        assert_eq!(e.get("A"), Some("3"));
        assert_eq!(e.unset("A").get("A"), None);
        assert!(Arc::ptr_eq(&exec_env(&e), &exec_env(&e.clone())));
        let err = e.set("A=B", "x").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Env);
        assert!(err.message.contains("`A=B`"), "{err}");
        assert!(e.set("", "x").is_err());
    }
}
