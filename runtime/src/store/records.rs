//! Cache records, and when the layers they name can be trusted.
//!
//! RUN and file steps write their layers through `volatile` overlays, whose unmount does
//! not flush the disk, so a layer is in the page cache, not yet on disk, when its record
//! is written — at once, so a build killed with SIGKILL keeps every step it finished
//! (the page cache survives a killed process). Only a power cut (or a kernel crash) loses
//! unflushed data, and that means a new boot. So a record says in which boot, and when,
//! it was written; [`Store::sync`] (once per build, after the solve, before any image or
//! tag names a layer) flushes the store's filesystem and then notes, per boot, the time
//! the flush started. A record is trusted when it was written in the running boot, or
//! before a flush of its own boot; any other (written in a boot that ended before a flush
//! covered it) is a miss, and `prune` removes it. Records of the older form (a bare
//! array, written when every step synced) are trusted. So a record needs no fsync of its
//! own: the flush that makes it trusted writes it too, and one lost or left empty by a
//! power cut is a miss like any untrusted one.

use std::fs;
use std::io;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{io_err, Store, StoreError};

#[derive(Serialize, Deserialize)]
struct Record {
    /// `/proc/sys/kernel/random/boot_id` when the record was written.
    boot: String,
    /// Nanoseconds since the epoch when it was written.
    t: u64,
    chains: Vec<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AnyRecord {
    Current(Record),
    /// Before volatile overlays: the layers were synced before the record was written.
    Synced(Vec<Vec<String>>),
}

fn boot_id() -> &'static str {
    static BOOT: OnceLock<String> = OnceLock::new();
    BOOT.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
    })
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// The bytes of a record of `chains`, written now.
pub(super) fn encode(chains: &[Vec<String>]) -> Vec<u8> {
    let r = Record { boot: boot_id().to_string(), t: now(), chains: chains.to_vec() };
    serde_json::to_vec(&r).expect("plain data serializes")
}

impl Store {
    /// The chains of a record, when it parses and can be trusted (see the module doc).
    pub(super) fn decode_record(&self, bytes: &[u8]) -> Option<Vec<Vec<String>>> {
        match serde_json::from_slice::<AnyRecord>(bytes).ok()? {
            AnyRecord::Synced(chains) => Some(chains),
            AnyRecord::Current(r) if r.boot == boot_id() => Some(r.chains),
            AnyRecord::Current(r) => (r.t < self.synced_until(&r.boot)?).then_some(r.chains),
        }
    }

    /// When the last flush of `boot` started (none noted: `None`).
    fn synced_until(&self, boot: &str) -> Option<u64> {
        if boot.is_empty() || !super::valid_name(boot) {
            return None;
        }
        fs::read_to_string(self.layout.sync_marker(boot)).ok()?.trim().parse().ok()
    }

    /// Makes everything written to the store's filesystem durable (`syncfs`), then notes
    /// that every record of this boot written before now is backed by layers on disk.
    pub fn sync(&self) -> Result<(), StoreError> {
        let started = now();
        let root = self.layout.root().to_path_buf();
        let dir = fs::File::open(&root).map_err(io_err("open", &root))?;
        // SAFETY: a valid descriptor owned by `dir` for the whole call.
        if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) } < 0 {
            return Err(StoreError::Io {
                action: "sync the filesystem of",
                path: root,
                source: io::Error::last_os_error(),
            });
        }
        let boot = boot_id();
        if boot.is_empty() || !super::valid_name(boot) {
            return Ok(());
        }
        // Two builds flushing at once may leave the older time: that only makes records
        // in between count as unflushed after a power cut (misses), never the reverse.
        if self.synced_until(boot).is_some_and(|t| t >= started) {
            return Ok(());
        }
        let marker = self.layout.sync_marker(boot);
        if let Some(d) = marker.parent() {
            fs::create_dir_all(d).map_err(io_err("create", d))?;
        }
        self.write_atomic(&marker, started.to_string().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (std::path::PathBuf, Store) {
        let d = std::env::temp_dir().join(format!("cairn-records-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let s = Store::open(&d).unwrap();
        (d, s)
    }

    /// The trust rule: this boot's records, records flushed before a power cut, and the
    /// older bare form are trusted; a record of an ended boot that no flush covered is not.
    #[test]
    fn records_are_trusted_in_their_boot_or_once_flushed() {
        let (d, s) = store();
        let chains = vec![vec!["a".to_string()]];
        assert_eq!(s.decode_record(&encode(&chains)), Some(chains.clone()));
        assert_eq!(s.decode_record(br#"[["a"]]"#), Some(chains.clone()));
        let old_boot = |t: u64| format!(r#"{{"boot":"0123-gone","t":{t},"chains":[["a"]]}}"#).into_bytes();
        assert_eq!(s.decode_record(&old_boot(5)), None, "no flush noted for that boot");
        fs::create_dir_all(s.layout.sync_marker("x").parent().unwrap()).unwrap();
        s.write_atomic(&s.layout.sync_marker("0123-gone"), b"10").unwrap();
        assert_eq!(s.decode_record(&old_boot(5)), Some(chains), "written before a flush");
        assert_eq!(s.decode_record(&old_boot(15)), None, "written after the last flush");
        // A flush notes this boot; a record from before it stays trusted.
        s.sync().unwrap();
        assert!(s.synced_until(boot_id()).is_some());
        assert_eq!(s.decode_record(b"not json"), None);
        let _ = fs::remove_dir_all(&d);
    }
}
