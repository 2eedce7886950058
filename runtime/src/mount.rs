//! Overlay mounts: a stack of immutable layer directories (bottom first) with an optional
//! writable upper directory, mounted at a target and unmounted when the guard drops.
//!
//! Overlayfs takes `lowerdir` top-first, so the order is reversed here. The mount data is
//! limited to one page; a chain that does not fit is an error naming the chain length
//! (layer ids are short so ~100 layers fit).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Mounts `fstype` at `target` with `data`.
pub fn mount(source: &str, target: &Path, fstype: &str, flags: libc::c_ulong, data: Option<&str>) -> io::Result<()> {
    let src = CString::new(source).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in source"))?;
    let tgt = cstr(target)?;
    let fs = CString::new(fstype).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in fstype"))?;
    let data_c = data.map(CString::new).transpose().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in data"))?;
    // SAFETY: every pointer is a valid NUL-terminated string or null.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fs.as_ptr(),
            flags,
            data_c.as_ref().map_or(std::ptr::null(), |d| d.as_ptr() as *const libc::c_void),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Lazily unmounts `target` (and everything below it).
pub fn unmount(target: &Path) -> io::Result<()> {
    let t = cstr(target)?;
    // SAFETY: valid C string.
    if unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The overlay mount options for `lowers` (bottom first) and an optional upper/work pair.
/// Returns an error when the options do not fit in one page.
pub fn overlay_options(lowers: &[PathBuf], upper_work: Option<(&Path, &Path)>, empty: &Path) -> io::Result<String> {
    let esc = |p: &Path| p.display().to_string().replace('\\', "\\\\").replace(':', "\\:").replace(',', "\\,");
    let mut lower: Vec<String> = lowers.iter().rev().map(|p| esc(p)).collect();
    // Overlayfs needs two lowers when there is no upper; an empty directory fills in.
    if lower.is_empty() || (upper_work.is_none() && lower.len() == 1) {
        lower.push(esc(empty));
    }
    let mut data = format!("lowerdir={}", lower.join(":"));
    if let Some((u, w)) = upper_work {
        data.push_str(&format!(",upperdir={},workdir={}", esc(u), esc(w)));
    }
    data.push_str(",index=off,xino=off");
    if data.len() >= 4000 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("an overlay of {} layers does not fit in the kernel's mount options (one page)", lowers.len()),
        ));
    }
    Ok(data)
}

/// An overlay mounted at `target`; dropping it unmounts.
pub struct OverlayMount {
    target: PathBuf,
}

impl OverlayMount {
    /// `empty` is an empty directory used when overlayfs needs a filler lower layer.
    pub fn new(lowers: &[PathBuf], upper_work: Option<(&Path, &Path)>, target: &Path, empty: &Path) -> io::Result<OverlayMount> {
        let data = overlay_options(lowers, upper_work, empty)?;
        let flags = if upper_work.is_none() { libc::MS_RDONLY } else { 0 };
        mount("overlay", target, "overlay", flags, Some(&data)).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot mount an overlay of {} layers at `{}`: {e}", lowers.len(), target.display()))
        })?;
        Ok(OverlayMount { target: target.to_path_buf() })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        let _ = unmount(&self.target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_reverse_and_fill() {
        let e = Path::new("/e");
        let o = overlay_options(&[PathBuf::from("/a"), PathBuf::from("/b")], Some((Path::new("/u"), Path::new("/w"))), e).unwrap();
        assert!(o.starts_with("lowerdir=/b:/a,upperdir=/u,workdir=/w"), "{o}");
        let o = overlay_options(&[PathBuf::from("/a")], None, e).unwrap();
        assert!(o.starts_with("lowerdir=/a:/e"), "{o}");
        let o = overlay_options(&[], Some((Path::new("/u"), Path::new("/w"))), e).unwrap();
        assert!(o.starts_with("lowerdir=/e,"), "{o}");
        let many: Vec<PathBuf> = (0..400).map(|i| PathBuf::from(format!("/var/lib/cairn/layers/{i:08}"))).collect();
        assert!(overlay_options(&many, None, e).unwrap_err().to_string().contains("400 layers"));
    }
}
