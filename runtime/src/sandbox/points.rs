//! What the helper makes for a step besides mounts: the mount points it had to create in
//! the root (and removes from the upper afterwards), the tmpfs of secret files, `lo`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{errno, HelperSpec};
use crate::mount;
use crate::process::ProcessMountSource;
use crate::process::SecretBytes;

/// Mount points the helper had to create in the root filesystem (relative to it), and the
/// directories that copy-up created in the upper, so both can be removed after the run.
#[derive(Default)]
pub(super) struct Created {
    /// Paths relative to the root, in creation order.
    paths: Vec<PathBuf>,
}

impl Created {
    /// Makes sure `rel` exists under `root` (as a directory or an empty file), recording
    /// every component that did not exist in the merged view or in the upper.
    pub(super) fn ensure(&mut self, root: &Path, upper: &Path, rel: &Path, dir: bool) -> Result<(), String> {
        let mut cur = PathBuf::new();
        let comps: Vec<_> = rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            cur.push(c);
            let last = i + 1 == comps.len();
            let full = root.join(&cur);
            let in_upper = fs::symlink_metadata(upper.join(&cur)).is_ok();
            match fs::symlink_metadata(&full) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(format!("cannot mount at `/{}`: it is a symbolic link in the image", cur.display()))
                }
                Ok(_) => {
                    if !in_upper && !last {
                        // A parent from a lower layer: creating a child copies it up.
                        self.paths.push(cur.clone());
                    }
                }
                Err(_) => {
                    if last && !dir {
                        fs::File::create(&full)
                            .map_err(|e| format!("cannot create mount point `/{}`: {e}", cur.display()))?;
                    } else {
                        fs::create_dir(&full)
                            .map_err(|e| format!("cannot create mount point `/{}`: {e}", cur.display()))?;
                    }
                    self.paths.push(cur.clone());
                }
            }
        }
        Ok(())
    }

    /// Removes what `ensure` created from the upper directory, deepest first; a directory
    /// the command wrote into is kept.
    pub(super) fn clean(&self, upper: &Path) {
        let mut paths = self.paths.clone();
        paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        paths.dedup();
        for p in paths {
            let full = upper.join(&p);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {
                    let _ = fs::remove_dir(&full); // fails (and keeps it) when not empty
                }
                Ok(m) if m.is_file() && m.len() == 0 => {
                    let _ = fs::remove_file(&full);
                }
                _ => {}
            }
        }
    }
}

/// Mounts the tmpfs that holds this step's secret files (in the helper's own mount
/// namespace, so no other process sees it and nothing reaches the disk); returns its path.
pub(super) fn secrets_tmpfs(spec: &HelperSpec) -> Result<PathBuf, String> {
    let total: usize = spec
        .mounts
        .iter()
        .map(|m| match &m.source {
            ProcessMountSource::Secret { data, .. } => data.0.len() + 4096,
            _ => 0,
        })
        .sum();
    let dir = spec.scratch.join("secrets");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let data = format!("mode=0700,size={}", total + 65536);
    mount::mount("tmpfs", &dir, "tmpfs", libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, Some(&data))
        .map_err(|e| format!("cannot mount the tmpfs for secrets: {e}"))?;
    Ok(dir)
}

/// Writes one secret file (on the secrets tmpfs) with its mode and owner.
pub(super) fn write_secret(path: &Path, data: &SecretBytes, mode: u32, uid: u32, gid: u32) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(&data.0)?;
    drop(f);
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
}

/// Brings `lo` up in a fresh network namespace.
pub(super) fn loopback_up() -> Result<(), String> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(errno("cannot open a socket to configure lo"));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req) < 0 {
            libc::close(s);
            return Err(errno("cannot read lo's flags"));
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        let r = libc::ioctl(s, libc::SIOCSIFFLAGS, &req);
        libc::close(s);
        if r < 0 {
            return Err(errno("cannot bring lo up"));
        }
    }
    Ok(())
}
