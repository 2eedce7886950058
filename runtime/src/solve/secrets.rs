//! Build secrets (`RUN --mount=type=secret`): the values the client gives, by id.
//!
//! Design: secret bytes live only in memory. The solver looks them up per RUN step and hands
//! them to the sandbox helper inside its stdin JSON; the helper writes each one to a tmpfs
//! mounted in its private mount namespace and bind-mounts that file, read-only, on the
//! target (env secrets go straight into the process environment). Nothing is written under
//! the store, and the empty mount-point file is removed from the upper dir like every other
//! mount point. Secrets are not part of the cache key (as in BuildKit): changing a value
//! alone does not re-run a cached step; `--no-cache` does. Likewise a cache hit needs no
//! secret: `required` is checked only when the step runs.

use std::collections::HashMap;
use std::fmt;

pub use crate::process::SecretBytes;

/// The secrets of one build, by id.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(HashMap<String, SecretBytes>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.0.keys().collect();
        ids.sort();
        write!(f, "Secrets({ids:?})")
    }
}

impl Secrets {
    /// Adds (or replaces) the secret `id`.
    pub fn insert(&mut self, id: impl Into<String>, value: Vec<u8>) {
        self.0.insert(id.into(), SecretBytes(value));
    }

    pub fn get(&self, id: &str) -> Option<&SecretBytes> {
        self.0.get(id)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_values() {
        let mut s = Secrets::default();
        s.insert("tok", b"hunter2".to_vec());
        let shown = format!("{s:?} {:?}", s.get("tok").unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("tok") && shown.contains("7 bytes"), "{shown}");
    }
}
