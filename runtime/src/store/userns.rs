//! Whether this process runs in a user namespace (rootless cairn, `sandbox/rootless.rs`),
//! which the store and layer code must know: `trusted.*` xattrs are out of reach there and
//! a `chown` to an unmapped id fails with `EINVAL`.

use std::fs;
use std::io;
use std::sync::OnceLock;

/// The lines of this process's `uid_map`: (inside, outside, count).
pub fn uid_map() -> Vec<(u32, u32, u32)> {
    let text = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let v: Vec<u32> = l.split_whitespace().filter_map(|f| f.parse().ok()).collect();
            (v.len() == 3).then(|| (v[0], v[1], v[2]))
        })
        .collect()
}

/// Whether this process is in a user namespace other than the initial one (whose map is
/// the identity over every id). Then `trusted.*` xattrs are out of reach. An unreadable
/// map (no `/proc`) counts as the initial namespace.
pub fn in_user_namespace() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| {
        let m = uid_map();
        !m.is_empty() && m != [(0, 0, u32::MAX)]
    })
}

/// Whether this process is in a user namespace that maps one id only (rootless without
/// subordinate ids).
pub fn single_id() -> bool {
    in_user_namespace() && uid_map().iter().map(|m| u64::from(m.2)).sum::<u64>() == 1
}

/// What a single-id namespace cannot do, said once where it matters.
pub const SINGLE_ID_NOTE: &str = "cairn runs rootless without subordinate ids, so only uid and gid 0 exist in its user namespace: `COPY --chown`, `USER` and `chown` to any other id fail; give the user a range in /etc/subuid and /etc/subgid (`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER`) and install `uidmap`";

/// A `chown` error; `EINVAL` in a user namespace means the id is outside the map: say so.
pub fn explain_chown(e: io::Error, uid: u32, gid: u32) -> io::Error {
    if e.raw_os_error() != Some(libc::EINVAL) || !in_user_namespace() {
        return e;
    }
    let note = if single_id() {
        SINGLE_ID_NOTE.to_string()
    } else {
        let n: u64 = uid_map().iter().map(|m| u64::from(m.2)).sum();
        format!("cairn runs rootless and its user namespace maps ids 0 to {}", n.saturating_sub(1))
    };
    io::Error::new(e.kind(), format!("cannot chown to {uid}:{gid}: {note}"))
}
