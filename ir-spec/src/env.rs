//! Process environments shared between execs (SPEC.md §4.2, since version 4).
//!
//! A Dockerfile of n `ENV`+`RUN` pairs gives n execs whose environments grow by one entry
//! each. Written out in every exec, that is n²/2 strings in memory, in the file and under
//! the hash of every digest and cache key (5,000 pairs: a 131 MB IR file, 6 s and 700 MB
//! to compile). So an exec's environment may instead be a node of a chain: the entries set
//! (and the keys unset) on top of a parent node, stored once per Definition in
//! [`crate::Definition`]'s `envs` table and named in the exec by the node's digest. Every
//! node costs what it adds, and an exec's encoding carries 71 bytes whatever its
//! environment's size; the full list is built only when a process is started.
//!
//! The inline form (a plain array, versions 1 to 3) stays valid: old files keep their
//! digests, and a frontend that writes JSON by hand need not build a chain.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::{encode::to_canonical, Digest};

/// The environment of an exec: a list written in full, or a node of a shared chain.
///
/// Equality and hashing follow the encoding: two nodes are equal when their digests are,
/// an inline list equals only an inline list. Both forms materialize with [`Env::to_vec`].
#[derive(Clone)]
pub struct Env(Repr);

#[derive(Clone)]
enum Repr {
    Inline(Arc<[String]>),
    Node(Arc<EnvNode>),
    /// Read by digest, not yet looked up in the Definition's table. Only exists while a
    /// Definition is being loaded: loading resolves every reference or fails.
    Ref(Digest),
}

/// One node of a chain: `unset` then `set` applied on top of `parent`.
pub struct EnvNode {
    digest: Digest,
    parent: Option<Arc<EnvNode>>,
    unset: Vec<String>,
    set: Vec<String>,
}

/// An entry of `Definition.envs`: a node as stored, its parent by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvEntry {
    /// sha256 over the canonical encoding of `EnvContent { parent, unset, set }`.
    pub digest: Digest,
    pub parent: Option<Digest>,
    pub unset: Vec<String>,
    pub set: Vec<String>,
}

#[derive(Serialize)]
struct EnvContent<'a> {
    parent: Option<Digest>,
    unset: &'a [String],
    set: &'a [String],
}

/// The key of a `KEY=value` entry (the whole entry when it has no `=`).
pub fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

impl Env {
    /// A list written in full (the form of versions 1 to 3).
    pub fn inline(list: Vec<String>) -> Env {
        Env(Repr::Inline(list.into()))
    }

    /// The root of a chain: exactly `set`.
    pub fn root(set: Vec<String>) -> Env {
        Env(Repr::Node(EnvNode::new(None, Vec::new(), set)))
    }

    /// A node on top of this environment: the keys in `unset` removed, then each
    /// `KEY=value` of `set` replacing the entry of that key in place, or appended. An
    /// inline list first becomes the root of a chain.
    pub fn with(&self, unset: Vec<String>, set: Vec<String>) -> Env {
        let parent = match &self.0 {
            Repr::Node(n) => n.clone(),
            Repr::Inline(list) => EnvNode::new(None, Vec::new(), list.to_vec()),
            // Never reached outside loading (see `Repr::Ref`); nothing known to build on.
            Repr::Ref(_) => EnvNode::new(None, Vec::new(), Vec::new()),
        };
        Env(Repr::Node(EnvNode::new(Some(parent), unset, set)))
    }

    /// The process environment, in order.
    pub fn to_vec(&self) -> Vec<String> {
        match &self.0 {
            Repr::Inline(list) => list.to_vec(),
            Repr::Node(n) => n.materialize(),
            // `validate` rejects a Definition holding one; nothing to start a process with.
            Repr::Ref(_) => Vec::new(),
        }
    }

    /// The value of `key`, as the process would see it.
    pub fn get(&self, key: &str) -> Option<String> {
        let list = self.to_vec();
        list.iter().find(|kv| env_key(kv) == key).map(|kv| kv.split_once('=').map_or("", |(_, v)| v).to_string())
    }

    /// The chain node's digest; `None` for an inline list.
    pub fn digest(&self) -> Option<Digest> {
        match &self.0 {
            Repr::Inline(_) => None,
            Repr::Node(n) => Some(n.digest),
            Repr::Ref(d) => Some(*d),
        }
    }

    pub(crate) fn is_unresolved(&self) -> bool {
        matches!(self.0, Repr::Ref(_))
    }

    /// Adds this environment's chain to `out` (parents first, each node once).
    pub(crate) fn collect_entries(&self, seen: &mut HashSet<Digest>, out: &mut Vec<EnvEntry>) {
        let Repr::Node(n) = &self.0 else { return };
        let mut pending = Vec::new();
        let mut cur = Some(n);
        while let Some(node) = cur {
            if seen.contains(&node.digest) {
                break;
            }
            pending.push(node);
            cur = node.parent.as_ref();
        }
        for node in pending.into_iter().rev() {
            seen.insert(node.digest);
            out.push(EnvEntry {
                digest: node.digest,
                parent: node.parent.as_ref().map(|p| p.digest),
                unset: node.unset.clone(),
                set: node.set.clone(),
            });
        }
    }

    /// Replaces a reference read from a file by its node in `table`.
    pub(crate) fn resolve(&mut self, table: &HashMap<Digest, Arc<EnvNode>>) -> Result<(), Digest> {
        if let Repr::Ref(d) = self.0 {
            self.0 = Repr::Node(table.get(&d).ok_or(d)?.clone());
        }
        Ok(())
    }
}

impl EnvNode {
    fn new(parent: Option<Arc<EnvNode>>, unset: Vec<String>, set: Vec<String>) -> Arc<EnvNode> {
        let digest = Self::digest_of(parent.as_ref().map(|p| p.digest), &unset, &set);
        Arc::new(EnvNode { digest, parent, unset, set })
    }

    fn digest_of(parent: Option<Digest>, unset: &[String], set: &[String]) -> Digest {
        Digest::of(&to_canonical(&EnvContent { parent, unset, set }))
    }

    /// Root first, each node applied in turn; linear in the chain's entries.
    fn materialize(&self) -> Vec<String> {
        let mut chain = vec![self];
        while let Some(p) = chain.last().and_then(|n| n.parent.as_deref()) {
            chain.push(p);
        }
        let mut list: Vec<Option<String>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for node in chain.into_iter().rev() {
            for key in &node.unset {
                if let Some(i) = index.remove(key.as_str()) {
                    list[i] = None;
                }
            }
            for kv in &node.set {
                match index.get(env_key(kv)) {
                    Some(&i) => list[i] = Some(kv.clone()),
                    None => {
                        index.insert(env_key(kv).to_string(), list.len());
                        list.push(Some(kv.clone()));
                    }
                }
            }
        }
        list.into_iter().flatten().collect()
    }
}

impl fmt::Debug for EnvNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvNode({})", self.digest)
    }
}

impl Drop for EnvNode {
    /// Iterative, so that dropping a chain of 100,000 nodes does not overflow the stack.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(node) = next {
            next = match Arc::try_unwrap(node) {
                Ok(mut n) => n.parent.take(),
                Err(_) => None,
            };
        }
    }
}

/// Builds the nodes of `entries` (parents before children), checking each digest.
pub(crate) fn build_table(entries: &[EnvEntry]) -> Result<HashMap<Digest, Arc<EnvNode>>, String> {
    let mut table: HashMap<Digest, Arc<EnvNode>> = HashMap::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let parent =
            match &e.parent {
                None => None,
                Some(p) => Some(table.get(p).cloned().ok_or_else(|| {
                    format!("env {i} (`{}`): parent `{p}` is not an earlier entry of `envs`", e.digest)
                })?),
            };
        let node = EnvNode::new(parent, e.unset.clone(), e.set.clone());
        if node.digest != e.digest {
            return Err(format!(
                "env {i}: stored digest `{}` does not match its content (`{}`)",
                e.digest, node.digest
            ));
        }
        if table.insert(e.digest, node).is_some() {
            return Err(format!("env {i}: digest `{}` appears twice in `envs`", e.digest));
        }
    }
    Ok(table)
}

impl From<Vec<String>> for Env {
    fn from(list: Vec<String>) -> Env {
        Env::inline(list)
    }
}

impl PartialEq for Env {
    fn eq(&self, other: &Env) -> bool {
        match (&self.0, &other.0) {
            (Repr::Inline(a), Repr::Inline(b)) => a == b,
            (Repr::Inline(_), _) | (_, Repr::Inline(_)) => false,
            _ => self.digest() == other.digest(),
        }
    }
}

impl Eq for Env {}

impl std::hash::Hash for Env {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match &self.0 {
            Repr::Inline(list) => list.hash(state),
            _ => self.digest().hash(state),
        }
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Inline(list) => f.debug_list().entries(list.iter()).finish(),
            Repr::Node(n) => write!(f, "Env({}, {} entries)", n.digest, n.materialize().len()),
            Repr::Ref(d) => write!(f, "Env(unresolved {d})"),
        }
    }
}

impl Serialize for Env {
    /// Inline: the array; a node: its digest (the table travels in the Definition).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Inline(list) => list.serialize(s),
            _ => self.digest().serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Env, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Env;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of `KEY=value` strings or the digest of an entry of `envs`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Env, E> {
                Ok(Env(Repr::Ref(v.parse().map_err(E::custom)?)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Env, A::Error> {
                let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(s) = seq.next_element::<String>()? {
                    list.push(s);
                }
                Ok(Env::inline(list))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn chains_materialize_in_place_and_append() {
        let root = Env::root(s(&["PATH=/bin", "A=1"]));
        let e = root.with(vec![], s(&["B=2", "A=3"])).with(s(&["PATH"]), s(&["C=4"]));
        assert_eq!(e.to_vec(), s(&["A=3", "B=2", "C=4"]));
        assert_eq!(e.get("B").as_deref(), Some("2"));
        assert_eq!(root.to_vec(), s(&["PATH=/bin", "A=1"]));
        // Same content, same digest; the inline form is another encoding.
        assert_eq!(Env::root(s(&["PATH=/bin", "A=1"])), root);
        assert_ne!(Env::inline(s(&["PATH=/bin", "A=1"])), root);
    }

    #[test]
    fn deep_chains_build_materialize_and_drop_without_recursion() {
        let mut e = Env::root(vec![]);
        for i in 0..200_000 {
            e = e.with(vec![], vec![format!("V{}={i}", i % 7)]);
        }
        assert_eq!(e.to_vec().len(), 7);
        drop(e);
    }

    #[test]
    fn table_round_trip_and_tampering() {
        let e = Env::root(s(&["A=1"])).with(vec![], s(&["B=2"]));
        let mut entries = Vec::new();
        e.collect_entries(&mut HashSet::new(), &mut entries);
        assert_eq!(entries.len(), 2);
        let table = build_table(&entries).unwrap();
        let mut r = Env(Repr::Ref(e.digest().unwrap()));
        r.resolve(&table).unwrap();
        assert_eq!(r.to_vec(), s(&["A=1", "B=2"]));
        let mut bad = entries.clone();
        bad[1].set = s(&["B=3"]);
        assert!(build_table(&bad).unwrap_err().contains("does not match"));
        let reversed: Vec<_> = entries.iter().rev().cloned().collect();
        assert!(build_table(&reversed).unwrap_err().contains("not an earlier entry"));
    }
}
