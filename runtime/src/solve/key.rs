//! Cache keys: how cairn decides that a vertex's result can be reused.
//!
//! # The rule (cairn's implementation of SPEC.md §6)
//!
//! ```text
//! key(v) = BLAKE3( "cairn-cache-v2"
//!                , canonical(op with every Exec mount selector replaced by "")
//!                , the platform an Exec runs for (os/arch/variant; empty for other ops)
//!                , for each input i in order: part(i) )
//! ```
//!
//! where `part(i)` is, by how the vertex reads input `i`:
//!
//! - **only through selectors** — the `src` of Copy actions, read-only Bind mounts: the
//!   tag `content` and the content hash of exactly the selected paths (see below). The
//!   producer's own key is *not* used, so a producer that re-runs and produces the same
//!   files keeps its consumers cached (early cutoff).
//! - **otherwise** (the base tree of a file action, an Exec root or writable mount, a Merge
//!   or Diff input): the tag `key`, the producer's key and the output index. When the
//!   producer is a Local source, its "key" is the content hash of its whole visible tree.
//!
//! An input read both ways contributes both parts.
//!
//! The platform is the Exec's own (`ExecOp::platform`, normalised; for a Definition older
//! than version 3, which has none, the platform of the output being built). Other ops do
//! not depend on the platform being built (an image source names its platform in the
//! op), so a `FROM --platform=$BUILDPLATFORM` stage has one key for every target.
//!
//! Producer keys: `Scratch` hashes the tag `scratch`; an `Image` source hashes the image's
//! manifest digest (so two references to the same manifest share cache); a `Local` source
//! has no key of its own: every consumer hashes the paths it selects.
//!
//! Content hash of a selection (Copy): for each `src_paths` entry in order, the entry text
//! and, for each path it matches (in sorted order), the path relative to the tree root and
//! the content hash of the entry there ([`super::hash`]: type, mode bits, uid, gid, size and
//! bytes, link target, device number, sorted children; never timestamps). Copy actions keep
//! their `src_paths` in the op encoding, because the names of copied files end up in the
//! result. For a Local source only the paths its include/exclude patterns (and the
//! context's `.dockerignore`) leave visible count, so a context file that no instruction
//! selects never changes a key. For a read-only mount: the content hash of the tree at the
//! selector.
//!
//! Hashes of regular files in a Local directory are remembered in a stat cache keyed by
//! path and (size, mtime, ctime, inode, device): an unchanged file is not re-read, and an
//! mtime-only change re-reads the file but gives the same hash. Hashes of selections over
//! immutable layer chains are memoized by (layer ids, selection).
//!
//! `--no-cache` and `VertexMeta.ignore_cache` skip the lookup; the result is still stored.

use cairn_ir::{Op, Platform};

use super::backend::CacheKey;
use super::hash::Hash;

/// Prefix that versions every key; bump it when this rule changes.
pub const KEY_VERSION: &str = "cairn-cache-v2";

/// The op with every Exec mount selector cleared, canonically encoded.
pub fn stripped_op_encoding(op: &Op) -> Vec<u8> {
    let mut op = op.clone();
    if let Op::Exec(e) = &mut op {
        for m in &mut e.mounts {
            m.selector.clear();
        }
    }
    cairn_ir::encode::to_canonical(&op)
}

/// One input's contribution to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// The producer's key and the output index.
    Key(CacheKey, u32),
    /// The content hash of the selected paths.
    Content(Hash),
}

/// The platform `op` runs for: an Exec's own, else `default` for an Exec of an older
/// Definition; `None` for every other op.
pub fn step_platform(op: &Op, default: &Platform) -> Option<Platform> {
    match op {
        Op::Exec(e) => Some(e.platform.as_ref().unwrap_or(default).normalized()),
        _ => None,
    }
}

/// Computes a key from its ingredients; `platform` is [`step_platform`].
pub fn vertex_key(op: &Op, platform: Option<&Platform>, parts: &[Part]) -> CacheKey {
    let mut h = blake3::Hasher::new();
    let mut field = |b: &[u8]| {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    };
    field(KEY_VERSION.as_bytes());
    field(&stripped_op_encoding(op));
    field(platform.map(Platform::to_string).unwrap_or_default().as_bytes());
    for p in parts {
        match p {
            Part::Key(k, i) => {
                field(b"key");
                field(&k.0);
                field(&i.to_le_bytes());
            }
            Part::Content(c) => {
                field(b"content");
                field(c);
            }
        }
    }
    CacheKey(*h.finalize().as_bytes())
}

/// A fixed key for a tagged leaf (scratch, images by manifest digest).
pub fn leaf_key(tag: &str, value: &str) -> CacheKey {
    let mut h = blake3::Hasher::new();
    for b in [KEY_VERSION, tag, value] {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b.as_bytes());
    }
    CacheKey(*h.finalize().as_bytes())
}

/// The key of output `index` > 0 of a vertex whose key (of output 0) is `key`.
pub fn output_key(key: &CacheKey, index: u32) -> CacheKey {
    let mut h = blake3::Hasher::new();
    h.update(KEY_VERSION.as_bytes());
    h.update(b"output");
    h.update(&key.0);
    h.update(&index.to_le_bytes());
    CacheKey(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_ir::*;

    fn exec(selector: &str, args: &[&str]) -> Op {
        Op::Exec(ExecOp {
            meta: ExecMeta {
                args: args.iter().map(|s| s.to_string()).collect(),
                env: Vec::new().into(),
                cwd: "/".into(),
                user: String::new(),
                hostname: String::new(),
            },
            network: NetworkMode::Default,
            security: SecurityMode::Sandbox,
            mounts: vec![Mount {
                input: Some(0),
                selector: selector.into(),
                target: "/".into(),
                readonly: false,
                output: Some(0),
                kind: MountKind::Bind,
            }],
            secret_env: vec![],
            platform: None,
        })
    }

    #[test]
    fn selectors_do_not_enter_the_key_but_args_platform_and_inputs_do() {
        let p = Platform::new("linux", "amd64", "");
        let parts = [Part::Key(CacheKey([1; 32]), 0)];
        let p = Some(&p);
        let k = vertex_key(&exec("/a", &["true"]), p, &parts);
        assert_eq!(k, vertex_key(&exec("/b", &["true"]), p, &parts));
        assert_ne!(k, vertex_key(&exec("/a", &["false"]), p, &parts));
        assert_ne!(k, vertex_key(&exec("/a", &["true"]), Some(&Platform::new("linux", "arm64", "v8")), &parts));
        assert_ne!(k, vertex_key(&exec("/a", &["true"]), p, &[Part::Key(CacheKey([2; 32]), 0)]));
        assert_ne!(k, vertex_key(&exec("/a", &["true"]), p, &[Part::Key(CacheKey([1; 32]), 1)]));
        assert_ne!(k, vertex_key(&exec("/a", &["true"]), p, &[Part::Content([1; 32])]));
    }

    #[test]
    fn an_exec_keys_on_its_own_platform_normalised() {
        let host = Platform::new("linux", "amd64", "");
        let mut op = exec("/", &["true"]);
        assert_eq!(step_platform(&op, &host), Some(host.clone()), "an older Exec: the output's platform");
        if let Op::Exec(e) = &mut op {
            e.platform = Some(Platform::new("linux", "arm64", ""));
        }
        assert_eq!(step_platform(&op, &host), Some(Platform::new("linux", "arm64", "v8")));
        assert_eq!(step_platform(&Op::Source(SourceOp::Scratch), &host), None);
    }

    #[test]
    fn leaf_keys_differ_by_tag_and_value() {
        assert_ne!(leaf_key("image", "sha256:a"), leaf_key("image", "sha256:b"));
        assert_ne!(leaf_key("scratch", ""), leaf_key("image", ""));
        assert_eq!(CacheKey([0xab; 32]).hex().len(), 64);
    }
}
